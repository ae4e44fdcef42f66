/**
 * Unsent messages, one per conversation, kept in localStorage (`phi3-chat:draft:<id>`; the
 * composer before any conversation exists uses `phi3-chat:draft:new`). Without them, a reload,
 * a tab the browser discarded or crashed, or the update prompt's Reload threw away whatever the
 * user was typing, and every conversation shared one message box. Written on every change (a
 * synchronous write of one string), so nothing typed before a crash is lost; an empty draft is
 * removed. Deleting a conversation deletes its draft. A blocked or full storage keeps the draft
 * in the box for this page only: the box itself never loses it.
 * Another tab's writes arrive through `subscribe` (the browser's `storage` event, which fires in
 * every tab of the origin but the writer's): a tab showing the same chat takes them while its box
 * is not being typed in (Composer.tsx), so typing on there later does not write over them.
 */
export interface Drafts {
  read(conversationId: string | null): string;
  write(conversationId: string | null, text: string): void;
  /** Calls `listener` with each draft another tab writes ('' when it removes one); returns unsubscribe. */
  subscribe(listener: (conversationId: string | null, text: string) => void): () => void;
}

export const DRAFT_PREFIX = 'phi3-chat:draft:';

const keyOf = (conversationId: string | null) => `${DRAFT_PREFIX}${conversationId ?? 'new'}`;

/** `events`: where the storage events arrive (the window); absent, no other tab is heard. */
export function storageDrafts(storage: () => Storage | undefined, events?: EventTarget): Drafts {
  return {
    subscribe(listener) {
      if (!events) return () => {};
      const onStorage = (e: Event) => {
        const { key, newValue, storageArea } = e as StorageEvent;
        if (storageArea !== storage() || !key?.startsWith(DRAFT_PREFIX)) return;
        const id = key.slice(DRAFT_PREFIX.length);
        listener(id === 'new' ? null : id, newValue ?? '');
      };
      events.addEventListener('storage', onStorage);
      return () => events.removeEventListener('storage', onStorage);
    },
    read(conversationId) {
      try {
        return storage()?.getItem(keyOf(conversationId)) ?? '';
      } catch {
        return '';
      }
    },
    write(conversationId, text) {
      try {
        if (text) storage()?.setItem(keyOf(conversationId), text);
        else storage()?.removeItem(keyOf(conversationId));
      } catch {
        // Storage blocked or full: the draft stays in the box for this page.
      }
    },
  };
}

/** Drafts in the browser's localStorage (none where there is no localStorage). */
export const localDrafts = storageDrafts(() => (typeof localStorage === 'undefined' ? undefined : localStorage), typeof window === 'undefined' ? undefined : window);
