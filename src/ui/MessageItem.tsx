/**
 * One message on the selected path: user text as plain text (never Markdown — what the user
 * typed is shown exactly), assistant text as safe Markdown, the branch arrows, copy / regenerate
 * / edit actions, Continue on the last answer when it did not finish, the answer's stats and the
 * context note; an answer sent before the model was ready says what it waits for. Selects only its own message and,
 * for the answer being streamed, the streamed text.
 */
import { lazy, memo, Suspense, useEffect, useRef, useState, type KeyboardEvent } from 'react';
import { useShallow } from 'zustand/react/shallow';
import { useAppStore } from '../store';
import { canContinue, CUT_OFF } from '../store/chatSlice';
import type { GenerationStats } from '../engine/types';
import type { ContextNote, MessageNode } from '../conversations/types';
import { CopyButton } from './CopyButton';
import { focusComposer } from './Composer';
import { useReturnFocus } from './useReturnFocus';

function useSiblings(conversationId: string, message: MessageNode) {
  return useAppStore(
    useShallow((s) => {
      const ids = s.conversations[conversationId]?.messages.filter((m) => m.parentId === message.parentId).map((m) => m.id) ?? [];
      return ids;
    }),
  );
}

// Markdown and the highlighter are most of the bundle: load them after the first paint. Until
// they arrive, the text is shown plain (never as HTML).
const Markdown = lazy(() => import('./Markdown').then((m) => ({ default: m.Markdown })));

const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '–');

export function Stats({ stats }: { stats: GenerationStats }) {
  const stop = { eos: 'finished', 'max-tokens': 'hit the max new tokens', aborted: 'stopped', 'context-full': 'context full' }[stats.stopReason];
  return (
    <p className="stats" data-testid="message-stats">
      <span>first token {Math.round(stats.timeToFirstTokenMs)} ms</span>
      <span>prefill {fmt(stats.prefillTokensPerSec)} tok/s</span>
      <span>decode {fmt(stats.decodeTokensPerSec)} tok/s</span>
      <span>
        {stats.promptTokens} prompt{stats.cachedTokens ? ` (${stats.cachedTokens} cached)` : ''} + {stats.newTokens} new tokens
      </span>
      <span>{stop}</span>
    </p>
  );
}

/** The placeholder of an answer sent before the model was ready (chatSlice: `untilModelSettles`). */
function WaitingForModel() {
  const status = useAppStore((s) => s.model.status);
  const percent = useAppStore((s) => {
    const p = s.model.progress;
    return p && p.totalBytes > 0 ? Math.floor((100 * p.doneBytes) / p.totalBytes) : null;
  });
  if (status === 'downloading') {
    return <>Waiting for the model to download{percent === null ? '' : ` (${percent}%)`} and load; this answer starts then. Stop cancels the answer, not the download.</>;
  }
  if (status === 'loading') return <>Waiting for the model to load to the GPU; this answer starts then.</>;
  return <>Waiting for the model…</>;
}

const usePrefill = (messageId: string) => useAppStore(useShallow((s) => (s.chat.streaming?.messageId === messageId ? s.chat.streaming.prefill : undefined)));
const n = (x: number) => x.toLocaleString('en');

/** Before the first token: how far a long prompt has been read (prefill, in chunks), else "Thinking…". */
function Thinking({ messageId }: { messageId: string }) {
  const prefill = usePrefill(messageId);
  if (!prefill) return <>Thinking…</>;
  return (
    <span data-testid="prefill-progress">
      Reading the prompt: {n(prefill.done)} of {n(prefill.total)} tokens…
    </span>
  );
}

/**
 * Mid-answer, while the whole chat is read again (Phi-3 128K past 4,096 tokens switches to its
 * long-context rotary factors, and every earlier token is run again with them): the pause explained.
 */
function ReadingAgain({ messageId }: { messageId: string }) {
  const prefill = usePrefill(messageId);
  if (!prefill?.again) return null;
  return (
    <p className="muted" role="status" data-testid="reading-again">
      Reading the whole chat again for the long context: {n(prefill.done)} of {n(prefill.total)} tokens…
    </p>
  );
}

function ContextNotice({ note }: { note: ContextNote }) {
  return (
    <p className="notice" role="note">
      {note.droppedMessages} older {note.droppedMessages === 1 ? 'message was' : 'messages were'} left out so the conversation fits the model&apos;s {note.contextLimit}-token context (the system prompt is always kept).
    </p>
  );
}

/**
 * The arrow pressed last. The version it brings in is another message, so another component: its
 * arrows take focus from here when they mount (the same arrow, or the other one at the end of
 * the versions), where the pressed button, removed with its message, would drop it to the page.
 */
let arrowPressed: { parentId: string | null; kind: string; next: boolean; at: number } | null = null;

function BranchArrows({ conversationId, message, kind }: { conversationId: string; message: MessageNode; kind: string }) {
  const ids = useSiblings(conversationId, message);
  const selectBranch = useAppStore((s) => s.selectBranch);
  const busy = useAppStore((s) => s.chat.streaming !== null);
  const prev = useRef<HTMLButtonElement>(null);
  const next = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    const pressed = arrowPressed;
    if (!pressed || pressed.parentId !== message.parentId || pressed.kind !== kind) return;
    arrowPressed = null;
    // A press whose version never came (a failed save) must not move focus much later.
    if (performance.now() - pressed.at > 2000) return;
    const [same, other] = pressed.next ? [next.current, prev.current] : [prev.current, next.current];
    (same && !same.disabled ? same : other)?.focus();
  }, [message.parentId, kind]);
  if (ids.length < 2) return null;
  const i = ids.indexOf(message.id);
  const go = (to: number) => {
    arrowPressed = { parentId: message.parentId, kind, next: to > i, at: performance.now() };
    void selectBranch(ids[to]);
  };
  return (
    <span className="branches" role="group" aria-label={`${kind} versions`}>
      <button ref={prev} type="button" className="small" disabled={busy || i <= 0} aria-label={`Previous ${kind.toLowerCase()} version`} onClick={() => go(i - 1)}>
        ‹
      </button>
      <span data-testid="branch-position">
        {i + 1} / {ids.length}
      </span>
      <button ref={next} type="button" className="small" disabled={busy || i >= ids.length - 1} aria-label={`Next ${kind.toLowerCase()} version`} onClick={() => go(i + 1)}>
        ›
      </button>
    </span>
  );
}

function EditBox({ initial, onDone }: { initial: string; onDone: (text: string | null) => void }) {
  const [text, setText] = useState(initial);
  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      if (text.trim()) onDone(text);
    } else if (e.key === 'Escape') {
      e.preventDefault();
      onDone(null);
    }
  };
  return (
    <form
      className="edit-box"
      onSubmit={(e) => {
        e.preventDefault();
        if (text.trim()) onDone(text);
      }}
    >
      {/* Focus moves here when editing starts: the user asked for it by pressing Edit. */}
      <textarea aria-label="Edit message" value={text} autoFocus rows={Math.min(10, text.split('\n').length + 1)} onChange={(e) => setText(e.target.value)} onKeyDown={onKeyDown} />
      <div className="actions">
        <button type="submit" className="primary" disabled={!text.trim()}>
          Send edit
        </button>
        <button type="button" onClick={() => onDone(null)}>
          Cancel
        </button>
      </div>
    </form>
  );
}

/**
 * Who is writing this answer, for one saved with the cut-off note (`check`): its saves while it
 * streams carry the note (chatSlice.ts, CUT_OFF; answerLocks.ts). 'unknown' until the first
 * answer (a few ms), so the note is not shown, and announced, before it is known to hold.
 */
function useAnswerWriter(conversationId: string, message: MessageNode, check: boolean): 'unknown' | 'elsewhere' | 'none' {
  const watchAnswer = useAppStore((s) => s.watchAnswer);
  const [known, setKnown] = useState<{ id: string; elsewhere: boolean } | null>(null);
  useEffect(() => {
    if (!check) return;
    const ctrl = new AbortController();
    void watchAnswer(conversationId, message.id, (elsewhere) => setKnown({ id: message.id, elsewhere }), ctrl.signal);
    return () => ctrl.abort();
  }, [watchAnswer, conversationId, message, check]);
  if (!check) return 'none';
  // Each save is a new message object, asked about again; until that answer comes, the last one's holds.
  if (known?.id !== message.id) return 'unknown';
  return known.elsewhere ? 'elsewhere' : 'none';
}

/** `last`: the last message on the path, the only answer that may be continued. */
export const MessageItem = memo(function MessageItem({ conversationId, message, last }: { conversationId: string; message: MessageNode; last: boolean }) {
  const streamText = useAppStore((s) => (s.chat.streaming?.messageId === message.id ? s.chat.streaming.text : null));
  const busy = useAppStore((s) => s.chat.streaming !== null);
  const waiting = useAppStore((s) => s.chat.streaming?.messageId === message.id && s.chat.streaming.waitingForModel === true);
  const regenerate = useAppStore((s) => s.regenerate);
  const continueAnswer = useAppStore((s) => s.continueAnswer);
  const edit = useAppStore((s) => s.edit);
  const [editing, setEditing] = useState(false);
  // A cancelled edit gives focus back to Edit (the box that had it is gone).
  const [editButton, returnFocusToEdit] = useReturnFocus<HTMLButtonElement>(editing);
  // This message's actions hide while the answer streams: focus goes to the composer, not the page.
  const startAnswer = (action: () => Promise<void>) => {
    focusComposer();
    void action();
  };
  const isUser = message.role === 'user';
  const streaming = streamText !== null;
  const text = streaming ? streamText : message.content;
  const who = isUser ? 'You' : 'Phi-3';
  const writer = useAnswerWriter(conversationId, message, !streaming && message.error === CUT_OFF);
  const elsewhere = writer === 'elsewhere';

  return (
    <article className={`message ${message.role}`} aria-label={`${who} said`} data-testid={`message-${message.role}`} data-message-id={message.id}>
      <header className="message-head">
        <span className="who">{who}</span>
        <BranchArrows conversationId={conversationId} message={message} kind={isUser ? 'Question' : 'Answer'} />
      </header>
      {message.context && <ContextNotice note={message.context} />}
      {editing ? (
        <EditBox
          initial={message.content}
          onDone={(t) => {
            setEditing(false);
            if (t !== null) startAnswer(() => edit(message.id, t));
            else returnFocusToEdit();
          }}
        />
      ) : isUser ? (
        <p className="user-text">{text}</p>
      ) : streaming && !text ? (
        <p className="thinking">{waiting ? <WaitingForModel /> : <Thinking messageId={message.id} />}</p>
      ) : !text && !message.error ? (
        <p className="muted">No answer: it was stopped before the first token.</p>
      ) : !text ? null : (
        <div className="answer-text">
          <Suspense fallback={<p className="plain-text">{text}</p>}>
            <Markdown text={text} />
          </Suspense>
        </div>
      )}
      {streaming && text && <ReadingAgain messageId={message.id} />}
      {/* While it streams, here or in another tab, the saved copy's cut-off note (chatSlice.ts, CUT_OFF) is not news. */}
      {elsewhere && (
        <p className="muted" role="status" data-testid="written-elsewhere">
          Another tab is writing this answer; it shows here as it goes, every few seconds.
        </p>
      )}
      {message.error && !streaming && writer === 'none' && (
        <p className="error" role="alert">
          {message.error}
        </p>
      )}
      {!streaming && message.stats && <Stats stats={message.stats} />}
      {!streaming && !editing && writer === 'none' && (
        <div className="actions" role="group" aria-label={`Actions for this ${isUser ? 'question' : 'answer'}`}>
          {message.content && <CopyButton text={message.content} label={isUser ? 'Copy question' : 'Copy answer'} />}
          {isUser ? (
            <button ref={editButton} type="button" className="small" disabled={busy} onClick={() => setEditing(true)}>
              Edit
            </button>
          ) : (
            <>
              {last && canContinue(message) && (
                <button type="button" className="small" disabled={busy} onClick={() => startAnswer(() => continueAnswer(message.id))}>
                  Continue
                </button>
              )}
              <button type="button" className="small" disabled={busy} onClick={() => startAnswer(() => regenerate(message.id))}>
                Regenerate
              </button>
            </>
          )}
        </div>
      )}
    </article>
  );
});
