/**
 * Settings for new chats: saved with `forNewChats`, read afresh by each new conversation, never
 * applied to existing ones; an invalid save stores nothing; the built-in values or a stored
 * record that no longer validates mean the built-in defaults. Over a real Storage implementation
 * (a Map behind the Storage interface, as Node has no localStorage).
 */
import { describe, expect, it } from 'vitest';
import { storageNewChatDefaults } from '../conversations/newChatDefaults';
import { DEFAULT_SETTINGS } from '../conversations/tree';
import { createAppStore } from './index';
import { draftFrom } from './settingsSlice';
import { MapStorage, testServices } from './testing';

function setup(storage = new MapStorage()) {
  const store = createAppStore({ ...testServices(), newChatDefaults: storageNewChatDefaults(() => storage) });
  return { store, storage };
}
const settingsOf = (store: ReturnType<typeof setup>['store'], id: string) => store.getState().conversations[id].settings;

describe('settings for new chats', () => {
  it('start from the built-in defaults, then from what the user saved for them; existing chats keep theirs', async () => {
    const { store } = setup();
    const first = await store.getState().newConversation();
    expect(settingsOf(store, first)).toEqual(DEFAULT_SETTINGS);
    expect(store.getState().hasOwnNewChatSettings()).toBe(false);

    const draft = { ...draftFrom(DEFAULT_SETTINGS), systemPrompt: 'Answer in French.', temperature: '0.2' };
    expect(await store.getState().saveSettings(draft, { forNewChats: true })).toEqual({ ok: true });
    const own = { ...DEFAULT_SETTINGS, systemPrompt: 'Answer in French.', temperature: 0.2 };
    expect(settingsOf(store, first)).toEqual(own);
    expect(store.getState().hasOwnNewChatSettings()).toBe(true);

    // The first chat is now as new chats start: New chat would keep it open, so name it.
    await store.getState().renameConversation(first, 'Bonjour');
    const second = await store.getState().newConversation();
    expect(second).not.toBe(first);
    expect(settingsOf(store, second)).toEqual(own);
    // Saving without the box changes only the open conversation.
    await store.getState().saveSettings({ ...draft, systemPrompt: 'Only here.' });
    expect(settingsOf(store, second).systemPrompt).toBe('Only here.');
    expect(settingsOf(store, await store.getState().newConversation())).toEqual(own);
    expect(settingsOf(store, first)).toEqual(own);
  });

  it('another tab (the same storage) sees them at its next new chat', async () => {
    const a = setup();
    const b = setup(a.storage);
    await a.store.getState().saveSettings({ ...draftFrom(DEFAULT_SETTINGS), seed: '7' }, { forNewChats: true });
    expect(settingsOf(b.store, await b.store.getState().newConversation()).seed).toBe(7);
  });

  it('an invalid save stores nothing; saving the built-in values goes back to them', async () => {
    const { store, storage } = setup();
    const bad = await store.getState().saveSettings({ ...draftFrom(DEFAULT_SETTINGS), topP: '7' }, { forNewChats: true });
    expect(bad.ok).toBe(false);
    expect(storage.length).toBe(0);
    await store.getState().saveSettings({ ...draftFrom(DEFAULT_SETTINGS), topK: '5' }, { forNewChats: true });
    expect(storage.length).toBe(1);
    await store.getState().saveSettings(draftFrom(DEFAULT_SETTINGS), { forNewChats: true });
    expect(storage.length).toBe(0);
    expect(store.getState().hasOwnNewChatSettings()).toBe(false);
  });

  it('a stored record that no longer validates is ignored, never applied in part', async () => {
    const storage = new MapStorage();
    storage.setItem('phi3-chat:new-chat-settings', JSON.stringify({ ...DEFAULT_SETTINGS, systemPrompt: 'Kept?', topK: -1 }));
    const { store } = setup(storage);
    expect(settingsOf(store, await store.getState().newConversation())).toEqual(DEFAULT_SETTINGS);
    storage.setItem('phi3-chat:new-chat-settings', '{not json');
    expect(store.getState().newChatSettings()).toEqual(DEFAULT_SETTINGS);
  });

  it('a storage that throws (blocked) reads as none and saving still saves the conversation', async () => {
    const blocked = storageNewChatDefaults(() => {
      throw new DOMException('blocked', 'SecurityError');
    });
    const store = createAppStore({ ...testServices(), newChatDefaults: blocked });
    expect(await store.getState().saveSettings({ ...draftFrom(DEFAULT_SETTINGS), seed: '9' }, { forNewChats: true })).toEqual({ ok: true });
    expect(store.getState().conversations[store.getState().activeId!].settings.seed).toBe(9);
    expect(store.getState().newChatSettings()).toEqual(DEFAULT_SETTINGS);
  });
});
