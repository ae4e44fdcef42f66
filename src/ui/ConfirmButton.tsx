/**
 * A button whose action costs the user something they cannot get back quickly (a deleted model
 * is a 2–3 GB download again): the first click asks, in place, with the action and "Keep" side by
 * side; Keep, Escape or the question's own answer puts the button back. Focus goes to the
 * confirming button, so the keyboard path is Enter, Enter; Keep or Escape gives it back to the
 * button that asked (it would otherwise drop to the start of the page).
 */
import { useState } from 'react';
import { useReturnFocus } from './useReturnFocus';

export function ConfirmButton(props: {
  /** The button's text, and its accessible name unless `ariaLabel` is given. */
  label: string;
  ariaLabel?: string;
  /** What is asked, saying what will be lost. */
  question: string;
  /** The confirming button's text (e.g. "Delete"). */
  confirmLabel: string;
  keepLabel?: string;
  className?: string;
  disabled?: boolean;
  onConfirm: () => void;
}) {
  const { label, ariaLabel, question, confirmLabel, keepLabel = 'Keep', className, disabled, onConfirm } = props;
  const [asking, setAsking] = useState(false);
  const [button, returnFocus] = useReturnFocus<HTMLButtonElement>(asking);
  const keep = () => {
    returnFocus();
    setAsking(false);
  };
  if (!asking || disabled) {
    return (
      <button ref={button} type="button" className={className} disabled={disabled} aria-label={ariaLabel} onClick={() => setAsking(true)}>
        {label}
      </button>
    );
  }
  return (
    <span className="confirm" role="group" aria-label={question} onKeyDown={(e) => e.key === 'Escape' && (e.stopPropagation(), keep())}>
      <span className="confirm-question">{question}</span>
      <button
        type="button"
        className="small danger"
        autoFocus
        onClick={() => {
          setAsking(false);
          onConfirm();
        }}
      >
        {confirmLabel}
      </button>
      <button type="button" className="small" onClick={keep}>
        {keepLabel}
      </button>
    </span>
  );
}
