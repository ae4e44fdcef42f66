/**
 * The open conversation: its title bar (settings, export), the messages on the selected path in
 * a polite live log (or, while it has none, what the model is doing and a way to the model
 * panel: ModelHint.tsx), the context meter and the composer. Follows the stream to the bottom
 * unless the user has scrolled up; smooth scrolling only when motion is welcome.
 * A long conversation opens on its newest `MESSAGE_PAGE` messages, with "Show earlier messages"
 * above them adding a page at a time, the message that was first staying where it was: rendering
 * all 400 messages of a 200-question chat took about 2 s at each switch to it.
 * Screen readers hear answers through a separate polite region (`useAnswerAnnouncement`), not the
 * log itself.
 */
import { useEffect, useLayoutEffect, useRef, useState } from 'react';
import { useShallow } from 'zustand/react/shallow';
import { useAppStore } from '../store';
import { selectedPath } from '../conversations/tree';
import { MessageItem } from './MessageItem';
import { Composer } from './Composer';
import { ContextMeter } from './ContextMeter';
import { ModelHint } from './ModelHint';
import { downloadFile } from './download';

function useVisibleMessages() {
  return useAppStore(
    useShallow((s) => {
      const conv = s.activeId ? s.conversations[s.activeId] : undefined;
      return conv ? selectedPath(conv) : [];
    }),
  );
}

/** Downloads the file and closes the disclosure menu, returning focus to its summary. */
function exportAndClose(button: HTMLElement, file: Parameters<typeof downloadFile>[0]) {
  downloadFile(file);
  const details = button.closest('details');
  if (details) {
    details.open = false;
    details.querySelector('summary')?.focus();
  }
}

function ChatHeader() {
  const conv = useAppStore(useShallow((s) => (s.activeId ? { id: s.activeId, title: s.conversations[s.activeId]?.title ?? '' } : null)));
  const setSettingsOpen = useAppStore((s) => s.setSettingsOpen);
  const exportConversations = useAppStore((s) => s.exportConversations);
  return (
    <div className="chat-header">
      <h2 className="chat-title">{conv?.title ?? 'New chat'}</h2>
      {/* Export comes and goes with the conversation: it sits left of Settings, so Settings never moves. */}
      <div className="actions">
        {conv && (
          <details className="menu">
            <summary>Export</summary>
            <div className="menu-items">
              <button type="button" onClick={(e) => exportAndClose(e.currentTarget, exportConversations([conv.id], 'json'))}>
                Export JSON
              </button>
              <button type="button" onClick={(e) => exportAndClose(e.currentTarget, exportConversations([conv.id], 'md'))}>
                Export Markdown
              </button>
            </div>
          </details>
        )}
        <button type="button" onClick={() => setSettingsOpen(true)}>
          Settings
        </button>
      </div>
    </div>
  );
}

/** Messages a conversation opens on, and how many more each "Show earlier messages" adds. */
export const MESSAGE_PAGE = 40;

/**
 * How many of the open conversation's `count` messages are hidden above the shown ones. Until
 * the user asks for earlier ones it is all but the newest page (so it follows new messages);
 * after, it stays where they left it, so nothing they brought into view goes away. Another
 * conversation starts again from its newest page.
 */
function useHiddenAbove(activeId: string | null, count: number): [number, () => void] {
  const [asked, setAsked] = useState<{ id: string | null; hidden: number } | null>(null);
  const hidden = asked && asked.id === activeId ? Math.min(asked.hidden, Math.max(0, count - 1)) : Math.max(0, count - MESSAGE_PAGE);
  return [hidden, () => setAsked({ id: activeId, hidden: Math.max(0, hidden - MESSAGE_PAGE) })];
}

/** A rendered answer's words without its code blocks' bars (a language name and a Copy button). */
function spokenText(shown: HTMLElement): string {
  const copy = shown.cloneNode(true) as HTMLElement;
  copy.querySelectorAll('.code-bar').forEach((bar) => bar.remove());
  return (copy.textContent ?? '').replace(/\s+/g, ' ').trim();
}

/** What a finished answer's announcement adds after its text, by why it stopped. */
const STOP_SUFFIX: Record<string, string> = { aborted: ' (stopped)', 'max-tokens': ' (it hit the max new tokens)', 'context-full': ' (the context is full)' };

/**
 * What a screen reader is told about answers, for a polite live region beside the log. The log
 * itself is not live: as one, it read out every message shown when the user switched to a
 * conversation or asked for earlier messages, and each fragment of an answer as it streamed.
 * Instead this says "Phi-3 is answering…" when an answer starts (first "The answer starts once
 * the model is ready." for a message sent before it was), and, when it ends, the answer's
 * text as the page shows it (Markdown rendered, so no "```" read aloud) and why it stopped if it
 * did not finish. An answer that failed adds nothing: its error is an alert of its own. An answer
 * that ends in a conversation the user left is named by its conversation's title.
 */
function useAnswerAnnouncement(logRef: React.RefObject<HTMLDivElement | null>): string {
  const streaming = useAppStore(
    useShallow((s) => (s.chat.streaming ? { conversationId: s.chat.streaming.conversationId, messageId: s.chat.streaming.messageId, waiting: s.chat.streaming.waitingForModel === true } : null)),
  );
  const [announcement, setAnnouncement] = useState('');
  const previous = useRef<typeof streaming>(null);
  useEffect(() => {
    const ended = previous.current;
    previous.current = streaming;
    if (streaming) {
      if (streaming.messageId !== ended?.messageId || streaming.waiting !== ended.waiting) {
        setAnnouncement(streaming.waiting ? 'The answer starts once the model is ready.' : 'Phi-3 is answering…');
      }
      return;
    }
    if (!ended) return;
    const conv = useAppStore.getState().conversations[ended.conversationId];
    const message = conv?.messages.find((m) => m.id === ended.messageId);
    if (!message || message.error || !message.content) {
      setAnnouncement('');
      return;
    }
    const shown = logRef.current?.querySelector<HTMLElement>(`[data-message-id="${CSS.escape(message.id)}"] .answer-text`);
    const suffix = STOP_SUFFIX[message.stats?.stopReason ?? ''] ?? '';
    setAnnouncement(shown ? `Phi-3: ${spokenText(shown)}${suffix}` : `Phi-3 finished an answer in “${conv.title}”${suffix}.`);
  }, [streaming, logRef]);
  return announcement;
}

/** `onSetUpModel` brings the model panel into view (a drawer on narrow screens) with focus on its action. */
export function ChatView({ onSetUpModel }: { onSetUpModel: () => void }) {
  const activeId = useAppStore((s) => s.activeId);
  const messages = useVisibleMessages();
  const streamLength = useAppStore((s) => s.chat.streaming?.text.length ?? 0);
  const streaming = useAppStore((s) => s.chat.streaming !== null);
  const stop = useAppStore((s) => s.stop);
  const logRef = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  const [hidden, showEarlier] = useHiddenAbove(activeId, messages.length);
  const announcement = useAnswerAnnouncement(logRef);
  /** The log's height below its top edge when earlier messages were asked for: kept after they render. */
  const fromBottom = useRef<number | null>(null);
  useLayoutEffect(() => {
    const el = logRef.current;
    if (!el || fromBottom.current === null) return;
    el.scrollTop = el.scrollHeight - fromBottom.current;
    fromBottom.current = null;
    // The last page shown takes the button away: focus goes to the log, not to the page's start.
    if (hidden === 0 && (document.activeElement === null || document.activeElement === document.body)) el.focus({ preventScroll: true });
  }, [hidden]);

  useEffect(() => {
    const el = logRef.current;
    if (!el || !stick.current) return;
    const smooth = !window.matchMedia('(prefers-reduced-motion: reduce)').matches;
    el.scrollTo({ top: el.scrollHeight, behavior: smooth && streamLength === 0 ? 'smooth' : 'auto' });
  }, [messages, streamLength]);

  // Esc stops an answer from anywhere on the page, except inside a dialog (where it closes it).
  useEffect(() => {
    if (!streaming) return;
    const onKey = (e: globalThis.KeyboardEvent) => {
      if (e.key === 'Escape' && !(e.target instanceof Element && e.target.closest('dialog'))) stop();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [streaming, stop]);

  return (
    <main className="chat" aria-label="Chat">
      <ChatHeader />
      <div
        className="messages"
        ref={logRef}
        role="log"
        aria-live="off"
        aria-label="Messages"
        tabIndex={0}
        onScroll={(e) => {
          const el = e.currentTarget;
          stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 80;
        }}
      >
        {messages.length === 0 ? (
          <div className="empty">
            <ModelHint onSetUp={onSetUpModel} />
          </div>
        ) : (
          <>
            {hidden > 0 && (
              <button
                type="button"
                className="small show-earlier"
                onClick={() => {
                  const el = logRef.current;
                  if (el) fromBottom.current = el.scrollHeight - el.scrollTop;
                  showEarlier();
                }}
              >
                Show {Math.min(hidden, MESSAGE_PAGE)} earlier messages ({hidden} not shown)
              </button>
            )}
            {messages.slice(hidden).map((m, i) => (
              <MessageItem key={m.id} conversationId={activeId!} message={m} last={hidden + i === messages.length - 1} />
            ))}
          </>
        )}
      </div>
      <div className="visually-hidden" aria-live="polite" aria-atomic="true" data-testid="answer-announcement">
        {announcement}
      </div>
      <div className="composer-area">
        {messages.length > 0 && <ModelHint compact onSetUp={onSetUpModel} />}
        <ContextMeter />
        <Composer />
      </div>
    </main>
  );
}
