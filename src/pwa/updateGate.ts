/**
 * When a new service worker may take over and the page reload. A reload in the middle of an
 * answer would throw the answer away, so a reload asked for while the chat is streaming waits
 * until the stream ends. Rule: nothing here reloads on its own initiative — `requestReload` is
 * only called from a user's click on "Reload".
 */

export interface StreamingSource {
  isStreaming: () => boolean;
  /** Calls `listener` on every change; returns the unsubscribe function. */
  subscribe: (listener: () => void) => () => void;
}

export interface UpdateGate {
  /** Reloads now, or as soon as the current answer stops streaming. */
  requestReload: () => void;
  /** True while a requested reload is waiting for the answer to finish. */
  isDeferred: () => boolean;
}

export function createUpdateGate(source: StreamingSource, reload: () => void): UpdateGate {
  let waiting: (() => void) | null = null;
  return {
    requestReload() {
      if (!source.isStreaming()) {
        reload();
        return;
      }
      if (waiting) return;
      waiting = source.subscribe(() => {
        if (source.isStreaming() || !waiting) return;
        waiting();
        waiting = null;
        reload();
      });
    },
    isDeferred: () => waiting !== null,
  };
}
