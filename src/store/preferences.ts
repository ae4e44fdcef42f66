/**
 * App-wide preferences kept in localStorage (one key each, shared by the app's tabs, read once
 * when the page starts). Today one: whether the open chat is read into the model's KV cache ahead
 * of its next message (chatSlice.ts, `readAhead`). A blocked or full storage reads as the default
 * and saves nothing: a preference is never worth an error.
 */
export interface Flag {
  read(): boolean;
  write(on: boolean): void;
}

/** A boolean kept under `key` ('1' / '0'); anything else reads as `fallback`. */
export function storageFlag(key: string, fallback: boolean, storage: () => Storage | undefined): Flag {
  return {
    read() {
      try {
        const raw = storage()?.getItem(key);
        return raw === '1' ? true : raw === '0' ? false : fallback;
      } catch {
        return fallback;
      }
    },
    write(on) {
      try {
        storage()?.setItem(key, on ? '1' : '0');
      } catch {
        // Storage blocked or full: the choice holds for this page only.
      }
    },
  };
}

export const READ_AHEAD_KEY = 'phi3-chat:read-ahead';

/** Reading ahead, in the browser's localStorage: on unless the user turned it off. */
export const localReadAhead = storageFlag(READ_AHEAD_KEY, true, () => (typeof localStorage === 'undefined' ? undefined : localStorage));
