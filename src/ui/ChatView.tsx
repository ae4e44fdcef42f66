/**
 * The open conversation: its title bar (settings, export), the messages on the selected path in
 * a polite live log (or, while it has none, what the model is doing and a way to the model
 * panel: ModelHint.tsx), the context meter and the composer. Follows the stream to the bottom
 * unless the user has scrolled up; smooth scrolling only when motion is welcome.
 */
import { useEffect, useRef } from 'react';
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

/** `onSetUpModel` brings the model panel into view (a drawer on narrow screens) with focus on its action. */
export function ChatView({ onSetUpModel }: { onSetUpModel: () => void }) {
  const activeId = useAppStore((s) => s.activeId);
  const messages = useVisibleMessages();
  const streamLength = useAppStore((s) => s.chat.streaming?.text.length ?? 0);
  const streaming = useAppStore((s) => s.chat.streaming !== null);
  const stop = useAppStore((s) => s.stop);
  const logRef = useRef<HTMLDivElement>(null);
  const stick = useRef(true);

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
        aria-live="polite"
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
          messages.map((m, i) => <MessageItem key={m.id} conversationId={activeId!} message={m} last={i === messages.length - 1} />)
        )}
      </div>
      <div className="composer-area">
        {messages.length > 0 && <ModelHint compact onSetUp={onSetUpModel} />}
        <ContextMeter />
        <Composer />
      </div>
    </main>
  );
}
