/**
 * A conversation opened from a share link: shown read-only in place of the chat, with "Continue
 * this chat" (imports it as a new conversation through the store's validated import) and "Close".
 * A link that fails to decode shows why, and nothing else.
 * Rule: what a link holds is untrusted — user text is plain text, assistant text goes through
 * the app's safe Markdown renderer (no raw HTML, filtered URLs); never add another renderer here.
 */
import { lazy, Suspense, useEffect, useState } from 'react';
import { useAppStore } from '../store';
import { newId } from '../conversations/tree';
import { exportJson } from '../conversations/exportFormats';
import type { Conversation } from '../conversations/types';
import { decodeShare } from './codec';

const Markdown = lazy(() => import('../ui/Markdown').then((m) => ({ default: m.Markdown })));

type Loaded = { state: 'loading' } | { state: 'error'; message: string } | { state: 'ready'; conversation: Conversation };

export function SharedView({ payload, onClose }: { payload: string; onClose: () => void }) {
  const importConversations = useAppStore((s) => s.importConversations);
  const [loaded, setLoaded] = useState<Loaded>({ state: 'loading' });
  const [importError, setImportError] = useState<string | null>(null);

  useEffect(() => {
    // The parent keys this view by payload, so a new link starts from 'loading'.
    let live = true;
    decodeShare(payload).then(
      (conversation) => live && setLoaded({ state: 'ready', conversation }),
      (err: unknown) => live && setLoaded({ state: 'error', message: err instanceof Error ? err.message : String(err) }),
    );
    return () => {
      live = false;
    };
  }, [payload]);

  const continueChat = async (conv: Conversation) => {
    const now = Date.now();
    const result = await importConversations(exportJson([{ ...conv, id: newId(), createdAt: now, updatedAt: now }], now));
    if (result.ok) onClose();
    else setImportError(result.error);
  };

  return (
    <main className="chat shared-view" aria-label="Shared conversation">
      <div className="chat-header">
        <h2 className="chat-title">{loaded.state === 'ready' ? loaded.conversation.title : 'Shared conversation'}</h2>
        <div className="actions">
          {loaded.state === 'ready' && (
            <button type="button" className="primary" onClick={() => void continueChat(loaded.conversation)}>
              Continue this chat
            </button>
          )}
          <button type="button" onClick={onClose}>
            Close
          </button>
        </div>
      </div>
      <div className="messages" role="log" aria-label="Shared messages" tabIndex={0}>
        {loaded.state === 'loading' && <p className="status">Opening the shared conversation…</p>}
        {loaded.state === 'error' && (
          <p className="error" role="alert" data-testid="share-error">
            This share link could not be opened. {loaded.message}
          </p>
        )}
        {loaded.state === 'ready' && (
          <>
            <p className="notice" data-testid="share-readonly">
              Read-only: shared through a link. It came inside the link itself and was not sent to any server. “Continue this chat” saves a copy here that you can reply to.
            </p>
            {importError && (
              <p className="error" role="alert">
                {importError}
              </p>
            )}
            {loaded.conversation.messages.map((m) => (
              <article key={m.id} className={`message ${m.role}`} aria-label={`${m.role === 'user' ? 'You' : 'Phi-3'} said`} data-testid={`shared-${m.role}`}>
                <header className="message-head">
                  <span className="who">{m.role === 'user' ? 'You' : 'Phi-3'}</span>
                </header>
                {m.role === 'user' ? (
                  <p className="user-text">{m.content}</p>
                ) : (
                  <Suspense fallback={<p className="plain-text">{m.content}</p>}>
                    <Markdown text={m.content} />
                  </Suspense>
                )}
              </article>
            ))}
          </>
        )}
      </div>
    </main>
  );
}
