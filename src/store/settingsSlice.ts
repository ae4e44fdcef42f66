/**
 * Settings slice: the open conversation's sampling settings and system prompt, and whether the
 * settings panel is open. Saving validates every field (messages quote the bad value) and
 * applies nothing unless all are valid. New conversations start from `newChatSettings()`: the
 * user's own, saved with `forNewChats`, else `DEFAULT_SETTINGS` (conversations/newChatDefaults.ts).
 */
import type { StateCreator } from 'zustand';
import type { AppState, Services } from './index';
import { validateSettings, type SettingsErrors } from '../conversations/settings';
import type { ConversationSettings } from '../conversations/types';
import { DEFAULT_SETTINGS } from '../conversations/tree';

/** The form's raw values: what the user typed, before validation. */
export type SettingsDraft = Record<keyof ConversationSettings, string>;

export interface SettingsSlice {
  settingsOpen: boolean;
  setSettingsOpen: (open: boolean) => void;
  /**
   * Validates and saves to the open conversation (creating one if none is open); with
   * `forNewChats`, new conversations start from these settings too.
   */
  saveSettings: (draft: SettingsDraft, options?: { forNewChats?: boolean }) => Promise<{ ok: true } | { ok: false; errors: SettingsErrors }>;
  /** The settings a new conversation starts from, read afresh (another tab may have saved some). */
  newChatSettings: () => ConversationSettings;
  /** Whether new conversations start from settings the user saved rather than the built-in ones. */
  hasOwnNewChatSettings: () => boolean;
}

export function draftFrom(s: ConversationSettings): SettingsDraft {
  return {
    systemPrompt: s.systemPrompt,
    temperature: String(s.temperature),
    topK: String(s.topK),
    topP: String(s.topP),
    repetitionPenalty: String(s.repetitionPenalty),
    maxNewTokens: String(s.maxNewTokens),
    seed: String(s.seed),
  };
}

export const createSettingsSlice =
  (services: Services): StateCreator<AppState, [], [], SettingsSlice> =>
  (set, get) => ({
    settingsOpen: false,
    setSettingsOpen: (open) => set({ settingsOpen: open }),
    saveSettings: async (draft, options = {}) => {
      const result = validateSettings(draft);
      if (!result.ok) return { ok: false, errors: result.errors };
      if (options.forNewChats) services.newChatDefaults?.write(result.settings);
      const id = get().activeId ?? (await get().newConversation());
      const conv = get().conversations[id];
      await get().commit({ ...conv, settings: result.settings, updatedAt: services.now() });
      return { ok: true };
    },
    newChatSettings: () => services.newChatDefaults?.read() ?? DEFAULT_SETTINGS,
    hasOwnNewChatSettings: () => (services.newChatDefaults?.read() ?? null) !== null,
  });
