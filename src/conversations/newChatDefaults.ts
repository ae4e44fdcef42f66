/**
 * The settings new conversations start from: the built-in `DEFAULT_SETTINGS` until the user saves
 * their own ("Also use these for new chats" in the settings dialog). Kept in localStorage, one
 * small record shared by the app's tabs, read afresh each time a conversation is created. A
 * stored record that no longer validates (an older or hand-edited one) is ignored, never applied
 * in part. Rule: conversations keep their own copy; changing these never changes an existing
 * conversation.
 */
import { sameSettings, validateSettings } from './settings';
import { DEFAULT_SETTINGS } from './tree';
import type { ConversationSettings } from './types';

export interface NewChatDefaults {
  /** The user's saved settings for new chats, or null for the built-in ones. */
  read(): ConversationSettings | null;
  /** Saves them; null (or the built-in values) goes back to the built-in ones. */
  write(settings: ConversationSettings | null): void;
}

const KEY = 'phi3-chat:new-chat-settings';

/** Over a Storage (localStorage in the app); a blocked or full storage reads as none and saves nothing. */
export function storageNewChatDefaults(storage: () => Storage | undefined): NewChatDefaults {
  return {
    read() {
      try {
        const raw = storage()?.getItem(KEY);
        if (!raw) return null;
        const r = validateSettings(JSON.parse(raw));
        return r.ok ? r.settings : null;
      } catch {
        return null;
      }
    },
    write(settings) {
      try {
        if (settings === null || sameSettings(settings, DEFAULT_SETTINGS)) storage()?.removeItem(KEY);
        else storage()?.setItem(KEY, JSON.stringify(settings));
      } catch {
        // Storage blocked or full: new chats keep starting from the built-in settings.
      }
    },
  };
}

/** The browser's localStorage, where there is one. */
export const localNewChatDefaults = storageNewChatDefaults(() => (typeof localStorage === 'undefined' ? undefined : localStorage));
