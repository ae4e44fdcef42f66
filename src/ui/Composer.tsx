/**
 * The message box. Enter sends, Shift+Enter adds a line, Esc stops an answer; while an answer
 * streams the button is "Stop". IME composition is respected (Enter that confirms a Japanese or
 * Chinese candidate never sends). Each conversation keeps its own unsent message, saved as it is
 * typed (store/drafts.ts): switching chats shows that chat's draft, and a reload brings it back.
 * Rule: the composer only calls store actions.
 */
import { useEffect, useRef, useState, type KeyboardEvent } from 'react';
import { useAppStore } from '../store';
import { consumeLaunchPrompt, launchPrompt } from '../share/launch';

const INPUT_ID = 'composer-input';

/**
 * Moves focus to the message box: for actions whose button disappears while the answer streams
 * (Regenerate, Continue, Send edit), so keyboard focus is not dropped to the page and Escape or
 * the next message is one key away.
 */
export function focusComposer(): void {
  document.getElementById(INPUT_ID)?.focus();
}

/**
 * The message box's text and its setter, kept as the open conversation's draft. Drafts are read
 * once the conversations are listed (the open one is known only then); at that first read, text
 * already in the box (a share link's `?prompt=`, or typed while the list loaded) is kept and
 * becomes that conversation's draft. From then on, opening another conversation shows its draft.
 * What another tab types into the same conversation's draft shows here too, unless this box is
 * being typed in (the page and the box have the focus; then what is typed here wins); otherwise
 * typing here later would write over it from a stale copy.
 */
function useDraft(): [string, (text: string) => void] {
  const activeId = useAppStore((s) => s.activeId);
  const listed = useAppStore((s) => s.loadState === 'ready' || s.loadState === 'error');
  const draftOf = useAppStore((s) => s.draftOf);
  const saveDraft = useAppStore((s) => s.saveDraft);
  const watchDrafts = useAppStore((s) => s.watchDrafts);
  // A share link's `?prompt=` starts as the draft; it is never sent without the user.
  const [text, setText] = useState(launchPrompt);
  const shownFor = useRef<string | null | undefined>(undefined);
  useEffect(consumeLaunchPrompt, []);
  useEffect(() => {
    if (!listed || shownFor.current === activeId) return;
    const first = shownFor.current === undefined;
    shownFor.current = activeId;
    if (first && text) saveDraft(activeId, text);
    else setText(draftOf(activeId));
  }, [listed, activeId, text, draftOf, saveDraft]);
  useEffect(
    () =>
      watchDrafts((id, draft) => {
        // A box keeps the focus in a tab the user left, so the focus alone does not say "typing here".
        const typingHere = document.hasFocus() && document.activeElement?.id === INPUT_ID;
        if (id === shownFor.current && !typingHere) setText(draft);
      }),
    [watchDrafts],
  );
  return [
    text,
    (next) => {
      setText(next);
      if (shownFor.current !== undefined) saveDraft(shownFor.current, next);
    },
  ];
}

export function Composer() {
  const streaming = useAppStore((s) => s.chat.streaming !== null);
  const send = useAppStore((s) => s.send);
  const stop = useAppStore((s) => s.stop);
  const [text, setText] = useDraft();
  const ref = useRef<HTMLTextAreaElement>(null);

  const submit = () => {
    if (streaming || !text.trim()) return;
    const value = text;
    setText('');
    void send(value);
    ref.current?.focus();
  };

  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      submit();
    } else if (e.key === 'Escape' && streaming) {
      e.preventDefault();
      stop();
    }
  };

  return (
    <form
      className="composer"
      aria-label="Send a message"
      onSubmit={(e) => {
        e.preventDefault();
        submit();
      }}
    >
      <textarea
        ref={ref}
        id={INPUT_ID}
        aria-label="Message"
        aria-describedby="composer-hint"
        placeholder="Message Phi-3…"
        rows={Math.min(8, Math.max(1, text.split('\n').length))}
        value={text}
        onChange={(e) => setText(e.target.value)}
        onKeyDown={onKeyDown}
      />
      <p id="composer-hint" className="visually-hidden">
        Enter sends, Shift+Enter starts a new line, Escape stops the answer.
      </p>
      {streaming ? (
        <button type="button" className="primary" onClick={stop}>
          Stop
        </button>
      ) : (
        <button type="submit" className="primary" disabled={!text.trim()}>
          Send
        </button>
      )}
    </form>
  );
}
