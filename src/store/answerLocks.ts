/**
 * Answers being written, across the app's tabs. The tab that streams an answer holds the Web Lock
 * `phi3-chat:answer:<message id>` from its start until its last save. While it streams, the text
 * is saved every 2 s with the cut-off note (chatSlice.ts, CUT_OFF), because that is what a closed
 * or crashed tab leaves; another tab showing the same chat reads those saves, and there the note
 * would be wrong and its Continue would write the same answer twice. The lock tells the two apart:
 * held, the answer is being written elsewhere; free, it was cut off. The browser releases a
 * closed or crashed tab's locks, so waiting for the lock tells when the answer ends there, or its
 * tab goes.
 * Where the Web Locks API is missing, no tab holds or sees anything: every saved note reads "cut
 * off", as before.
 */

export interface AnswerLocks {
  /** Holds the lock for `messageId` until the returned function is called. */
  hold(messageId: string): () => void;
  /** Whether a tab (in practice another one: this one never asks about its own) holds it now. */
  held(messageId: string): Promise<boolean>;
  /** Resolves true once no tab holds it, or false when `signal` aborts first. */
  whenFree(messageId: string, signal: AbortSignal): Promise<boolean>;
}

const lockName = (messageId: string) => `phi3-chat:answer:${messageId}`;

export function webAnswerLocks(locks: LockManager | null = (typeof navigator === 'undefined' ? null : navigator.locks) ?? null): AnswerLocks {
  return {
    hold(messageId) {
      if (!locks) return () => {};
      let letGo: (() => void) | undefined;
      let released = false;
      // The callback's promise is the lock's lifetime; a release before the grant lets it go at once.
      void locks
        .request(lockName(messageId), { mode: 'exclusive' }, () => (released ? undefined : new Promise<void>((done) => (letGo = done))))
        .catch(() => {});
      return () => {
        released = true;
        letGo?.();
      };
    },
    async held(messageId) {
      if (!locks) return false;
      const { held = [] } = await locks.query();
      return held.some((l) => l.name === lockName(messageId));
    },
    async whenFree(messageId, signal) {
      if (!locks) return true;
      // A shared request is granted once the writer's exclusive hold ends, and let go at once.
      return locks.request(lockName(messageId), { mode: 'shared', signal }, () => true).catch(() => false);
    },
  };
}
