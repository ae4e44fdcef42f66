/**
 * Settings slice: the open conversation's sampling settings and system prompt, and whether the
 * settings panel is open. Saving validates every field (messages quote the bad value) and
 * applies nothing unless all are valid. New conversations start from `DEFAULT_SETTINGS`.
 */
import type { StateCreator } from 'zustand';
import type { AppState, Services } from './index';
import { validateSettings, type SettingsErrors } from '../conversations/settings';
import type { ConversationSettings } from '../conversations/types';

/** The form's raw values: what the user typed, before validation. */
export type SettingsDraft = Record<keyof ConversationSettings, string>;

export interface SettingsSlice {
  settingsOpen: boolean;
  setSettingsOpen: (open: boolean) => void;
  /** Validates and saves to the open conversation (creating one if none is open). */
  saveSettings: (draft: SettingsDraft) => Promise<{ ok: true } | { ok: false; errors: SettingsErrors }>;
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
    saveSettings: async (draft) => {
      const result = validateSettings(draft);
      if (!result.ok) return { ok: false, errors: result.errors };
      const id = get().activeId ?? (await get().newConversation());
      const conv = get().conversations[id];
      await get().commit({ ...conv, settings: result.settings, updatedAt: services.now() });
      return { ok: true };
    },
  });
