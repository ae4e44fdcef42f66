/**
 * One copy of the model in GPU memory across the app's tabs. Each tab has its own engine worker,
 * so a second tab that loaded the stored model at start would hold a second copy (2.3 GB for
 * Phi-3 Mini). A tab with a model on the GPU holds the Web Lock `phi3-chat:model-on-gpu`; a tab
 * that starts while another holds it does not load by itself, says so, offers to load anyway,
 * and waits in line for the lock, so it loads by itself once the other tab closes or unloads.
 * The browser releases a closed tab's locks.
 * Rule: the lock only decides loading by itself; the user's own Load always loads.
 */

export interface ModelLock {
  /**
   * Takes the lock if no other tab holds it (true), else false at once; `wait` instead waits in
   * line until it is free (true) or `signal` aborts (false). Taking it again is a no-op.
   */
  acquire(options?: { wait?: boolean; signal?: AbortSignal }): Promise<boolean>;
  /** Lets it go (the model was unloaded). */
  release(): void;
}

const NAME = 'phi3-chat:model-on-gpu';

/** Over the Web Locks API; where it is missing, every tab loads by itself as before. */
export function webModelLock(locks: LockManager | undefined = typeof navigator === 'undefined' ? undefined : navigator.locks): ModelLock {
  let releaseHeld: (() => void) | undefined;
  return {
    async acquire({ wait = false, signal } = {}) {
      if (!locks || releaseHeld) return true;
      return new Promise<boolean>((resolve) => {
        locks
          .request(NAME, { mode: 'exclusive', ...(wait ? { signal } : { ifAvailable: true }) }, (lock) => {
            if (!lock || releaseHeld) {
              resolve(releaseHeld !== undefined);
              return undefined;
            }
            resolve(true);
            // Held until release(): the callback's promise is the lock's lifetime.
            return new Promise<void>((done) => (releaseHeld = done));
          })
          .catch(() => resolve(false)); // aborted while waiting
      });
    },
    release() {
      releaseHeld?.();
      releaseHeld = undefined;
    },
  };
}
