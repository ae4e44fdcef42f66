/**
 * "Share conversation": packs the open conversation's selected branch into a link whose
 * fragment holds it (see codec.ts), shows the link with "Copy link", or says plainly why it
 * cannot (too long for a link: export JSON instead).
 * Rule: the link is built and shown locally; nothing is uploaded anywhere.
 */
import { useState } from 'react';
import { useAppStore } from '../store';
import { encodeShare, shareUrl } from './codec';

/** Decorative: the button is named by its aria-label. */
function ShareIcon() {
  return (
    <svg width={16} height={16} viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth={2} strokeLinecap="round" strokeLinejoin="round" aria-hidden focusable={false}>
      <circle cx="18" cy="5" r="3" />
      <circle cx="6" cy="12" r="3" />
      <circle cx="18" cy="19" r="3" />
      <path d="M8.6 13.5l6.8 4M15.4 6.5l-6.8 4" />
    </svg>
  );
}

type Panel = { kind: 'closed' } | { kind: 'link'; url: string; copied: boolean } | { kind: 'error'; message: string };

export function ShareButton() {
  const conv = useAppStore((s) => (s.activeId ? s.conversations[s.activeId] : undefined));
  const streaming = useAppStore((s) => s.chat.streaming !== null);
  const [panel, setPanel] = useState<Panel>({ kind: 'closed' });
  const empty = !conv || conv.messages.length === 0;

  const share = async () => {
    if (!conv) return;
    try {
      const url = shareUrl(location.href, await encodeShare(conv, Date.now()));
      let copied = false;
      try {
        await navigator.clipboard.writeText(url);
        copied = true;
      } catch {
        // No clipboard permission: the link is shown to copy by hand.
      }
      setPanel({ kind: 'link', url, copied });
    } catch (err) {
      setPanel({ kind: 'error', message: err instanceof Error ? err.message : String(err) });
    }
  };

  return (
    <div className="share">
      <button
        type="button"
        className="share-button"
        aria-label="Share conversation"
        onClick={() => void share()}
        disabled={empty || streaming}
        title={empty ? 'Write a message first' : streaming ? 'Wait for the answer to finish' : 'Share conversation as a link'}
      >
        <ShareIcon />
        <span className="share-text">Share</span>
      </button>
      {panel.kind !== 'closed' && (
        <div className="share-panel notice" role="region" aria-label="Share link">
          {panel.kind === 'link' ? (
            <>
              <p>
                {panel.copied ? 'Link copied. ' : ''}The conversation is inside the link itself (after “#”), so it is never sent to a server. Anyone with the link can read it.
              </p>
              <input aria-label="Share link" readOnly value={panel.url} onFocus={(e) => e.currentTarget.select()} data-testid="share-link" />
            </>
          ) : (
            <p className="error" role="alert" data-testid="share-too-large">
              {panel.message}
            </p>
          )}
          <button type="button" onClick={() => setPanel({ kind: 'closed' })}>
            Close
          </button>
        </div>
      )}
    </div>
  );
}
