import { describe, expect, it, vi } from 'vitest';
import { createAppStore } from './index';
import { repoWith, testServices } from './testing';
import { exportJson } from '../conversations/exportFormats';
import { createConversation } from '../conversations/tree';
import { DEFAULT_SETTINGS } from '../conversations/tree';
import { draftFrom } from './settingsSlice';

describe('conversations slice', () => {
  it('creates, renames, deletes and persists conversations', async () => {
    const services = testServices();
    const store = createAppStore(services);
    const a = await store.getState().newConversation();
    expect(await store.getState().renameConversation(a, '  Kernel   notes ')).toBeNull();
    expect(store.getState().conversations[a].title).toBe('Kernel notes');
    expect(await store.getState().renameConversation(a, '   ')).toBe('A title cannot be empty.');
    expect(await store.getState().renameConversation(a, 'x'.repeat(201))).toBe('A title must be at most 200 characters; this one has 201.');
    const b = await store.getState().newConversation();
    expect(b).not.toBe(a);
    expect(store.getState().activeId).toBe(b);
    expect((await services.repo.list()).map((c) => c.title).sort()).toEqual(['Kernel notes', 'New chat']);

    await store.getState().deleteConversation(b);
    expect(store.getState().activeId).toBe(a);
    expect((await services.repo.list()).map((c) => c.id)).toEqual([a]);

    // A fresh store over the same repo sees what was saved (the reload case).
    const reloaded = createAppStore({ ...services });
    await reloaded.getState().loadConversations();
    expect(reloaded.getState().loadState).toBe('ready');
    expect(Object.values(reloaded.getState().conversations).map((c) => c.title)).toEqual(['Kernel notes']);
    expect(reloaded.getState().activeId).toBe(a);
  });

  it('New chat keeps an untouched empty chat open instead of adding another', async () => {
    const services = testServices();
    const store = createAppStore(services);
    // The scripted engine stands for a loaded model, so a sent message is answered.
    store.setState((s) => ({ model: { ...s.model, status: 'ready' } }));
    const a = await store.getState().newConversation();
    expect(await store.getState().newConversation()).toBe(a);
    expect(await services.repo.list()).toHaveLength(1);
    // Touched in any way (renamed, its settings changed, a message sent), it is left as it is.
    await store.getState().renameConversation(a, 'Notes');
    const b = await store.getState().newConversation();
    expect(b).not.toBe(a);
    await store.getState().saveSettings({ ...draftFrom(DEFAULT_SETTINGS), seed: '9' });
    const c = await store.getState().newConversation();
    expect(c).not.toBe(b);
    await store.getState().send('Hello');
    expect(await store.getState().newConversation()).not.toBe(c);
    // Another conversation open: New chat makes a new one even though an empty one exists.
    store.getState().selectConversation(a);
    expect([a, b, c]).not.toContain(await store.getState().newConversation());
  });

  it('shows a failed save instead of swallowing it', async () => {
    const services = testServices();
    services.repo.put = () => Promise.reject(new Error('QuotaExceededError'));
    const store = createAppStore(services);
    await store.getState().newConversation();
    expect(store.getState().storageError).toBe('Could not save "New chat": QuotaExceededError');
  });

  it('imports a valid file with fresh ids on collision, and a bad file changes nothing', async () => {
    const services = testServices();
    const store = createAppStore(services);
    const mine = await store.getState().newConversation();
    const before = structuredClone(store.getState().conversations);

    const bad = exportJson([{ ...createConversation(1, 'x1'), title: 42 as unknown as string }], 1);
    const r = await store.getState().importConversations(bad);
    expect(r).toEqual({ ok: false, error: 'Nothing was imported. conversations[0].title: expected text, got 42.' });
    expect(store.getState().conversations).toEqual(before);
    expect((await services.repo.list()).length).toBe(1);

    const good = exportJson([{ ...createConversation(1, mine), title: 'Same id' }, { ...createConversation(2, 'other'), title: 'Other' }], 3);
    expect(await store.getState().importConversations(good)).toEqual({ ok: true, count: 2 });
    const titles = Object.values(store.getState().conversations).map((c) => c.title).sort();
    expect(titles).toEqual(['New chat', 'Other', 'Same id']);
    expect(store.getState().conversations[mine].title).toBe('New chat');
    expect((await services.repo.list()).length).toBe(3);
  });

  it('exports one conversation or all, as JSON and Markdown', async () => {
    const store = createAppStore(testServices());
    const id = await store.getState().newConversation();
    await store.getState().renameConversation(id, 'Tiles & tables');
    await store.getState().newConversation();
    const one = store.getState().exportConversations([id], 'md');
    expect(one).toMatchObject({ fileName: 'tiles-tables.md', mime: 'text/markdown' });
    expect(one.text.startsWith('# Tiles & tables\n')).toBe(true);
    const all = store.getState().exportConversations('all', 'json');
    expect(all.fileName).toBe('phi3-chat-conversations.json');
    expect(JSON.parse(all.text).conversations).toHaveLength(2);
  });

  it('saves valid settings and rejects invalid ones without a change', async () => {
    const store = createAppStore(testServices());
    const id = await store.getState().newConversation();
    const bad = await store.getState().saveSettings({ ...draftFrom(DEFAULT_SETTINGS), topP: '1.5', seed: 'abc' });
    expect(bad).toEqual({
      ok: false,
      errors: {
        topP: 'Top-p must be a number above 0 to 1 (1 turns nucleus sampling off); got "1.5".',
        seed: 'Seed must be a whole number from 0 to 4294967295 (the same seed and settings repeat an answer; Regenerate takes the next seed); got "abc".',
      },
    });
    expect(store.getState().conversations[id].settings).toEqual(DEFAULT_SETTINGS);
    expect(await store.getState().saveSettings({ ...draftFrom(DEFAULT_SETTINGS), temperature: '0', systemPrompt: 'Terse.' })).toEqual({ ok: true });
    expect(store.getState().conversations[id].settings).toEqual({ ...DEFAULT_SETTINGS, temperature: 0, systemPrompt: 'Terse.' });
  });
});

describe('loading', () => {
  it('keeps a conversation created while the saved list was being read', async () => {
    const services = testServices();
    const saved = { ...createConversation(1, 'saved'), title: 'Saved' };
    await services.repo.put(saved);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const repo = services.repo;
    services.conversations = repoWith(repo, {
      listRecent: async (limit) => {
        const l = await repo.listRecent(limit);
        await gate; // the read is slow: the user creates a conversation meanwhile
        return l;
      },
    });
    const store = createAppStore(services);
    const loading = store.getState().loadConversations();
    const fresh = await store.getState().newConversation();
    release();
    await loading;
    expect(Object.keys(store.getState().conversations).sort()).toEqual([fresh, 'saved'].sort());
    expect(store.getState().activeId).toBe(fresh);
  });
});

describe('loading many conversations', () => {
  /** `n` saved chats, "chat-000" the oldest; and a repo whose pages wait for `release` once read. */
  async function many(n: number) {
    const services = testServices();
    const saved = Array.from({ length: n }, (_, i) => ({ ...createConversation(1000 + i, `chat-${String(i).padStart(3, '0')}`), title: `Chat ${i}` }));
    await services.repo.putMany(saved);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const repo = services.repo;
    const pages: string[] = [];
    let failPages = false;
    services.conversations = repoWith(repo, {
      list: () => Promise.reject(new Error('the whole list is never read at once')),
      listPage: async (after, limit) => {
        const page = await repo.listPage(after, limit);
        pages.push(`${after ?? 'start'}+${page.length}`);
        await gate;
        if (failPages) throw new Error('disk went away');
        return page;
      },
    });
    const store = createAppStore(services);
    const loading = store.getState().loadConversations();
    // The newest 100 are in state and the list is 'ready' while the rest is read.
    await vi.waitFor(() => expect(store.getState().loadState).toBe('ready'));
    return { services, store, loading, release, pages, fail: () => (failPages = true) };
  }

  it('lists the 100 updated last first, then every other one in pages, without reading all at once', async () => {
    const { store, loading, release, pages } = await many(250);
    expect(Object.keys(store.getState().conversations).sort()).toEqual(Array.from({ length: 100 }, (_, i) => `chat-${150 + i}`));
    expect(store.getState().listComplete).toBe(false);
    expect(store.getState().activeId).toBe('chat-249');
    release();
    await loading;
    expect(Object.keys(store.getState().conversations)).toHaveLength(250);
    expect(store.getState().listComplete).toBe(true);
    expect(pages).toEqual(['start+100', 'chat-099+100', 'chat-199+50']);
  });

  it('does not bring back a conversation deleted here or in another tab while the rest was read', async () => {
    const { services, store, loading, release } = await many(120);
    await store.getState().deleteConversation('chat-119');
    await services.repo.delete('chat-050'); // another tab deletes one this tab has not read yet…
    await store.getState().reloadConversation('chat-050'); // …and names it
    // The pages were read before those deletions; they are released after them.
    release();
    await loading;
    expect(Object.keys(store.getState().conversations)).toHaveLength(118);
    expect(store.getState().conversations['chat-119']).toBeUndefined();
    expect(store.getState().conversations['chat-050']).toBeUndefined();
  });

  it('an import waits for every saved conversation, so it never replaces one not listed yet', async () => {
    const { services, store, loading, release } = await many(150);
    const old = (await services.repo.get('chat-003'))!;
    const file = exportJson([{ ...old, title: 'Imported twin' }], 1);
    const importing = store.getState().importConversations(file);
    release();
    expect(await importing).toEqual({ ok: true, count: 1 });
    await loading;
    expect((await services.repo.get('chat-003'))!.title).toBe('Chat 3');
    expect(Object.values(store.getState().conversations).filter((c) => c.title === 'Imported twin')).toHaveLength(1);
    expect(Object.keys(store.getState().conversations)).toHaveLength(151);
  });

  it('when the rest cannot be read: says so, keeps the newest listed, and imports nothing', async () => {
    const { store, loading, release, fail } = await many(130);
    fail();
    release();
    await loading;
    expect(store.getState().storageError).toBe('Could not read every saved conversation (disk went away): only the 100 updated last are listed. Reload the page to try again.');
    expect(Object.keys(store.getState().conversations)).toHaveLength(100);
    expect(store.getState().listComplete).toBe(false);
    const r = await store.getState().importConversations(exportJson([{ ...createConversation(5, 'x'), title: 'New one' }], 1));
    expect(r).toEqual({ ok: false, error: 'Nothing was imported: the saved conversations could not all be read (disk went away), so an imported one might replace one of them. Reload the page and try again.' });
  });
});

describe('several tabs', () => {
  it('a rename, a new conversation and a delete in one tab show up in the other', async () => {
    const { BroadcastConversationSync } = await import('../conversations/repo');
    const channel = `test-${crypto.randomUUID()}`;
    const shared = testServices();
    const syncA = new BroadcastConversationSync(channel);
    const syncB = new BroadcastConversationSync(channel);
    const tabA = createAppStore({ ...shared, sync: syncA });
    const tabB = createAppStore({ ...shared, sync: syncB });
    await tabA.getState().loadConversations();
    await tabB.getState().loadConversations();
    // A change elsewhere reads only the changed record, never the whole list.
    const list = shared.repo.list.bind(shared.repo);
    let listed = 0;
    shared.repo.list = () => {
      listed++;
      return list();
    };

    const id = await tabA.getState().newConversation();
    await expect.poll(() => tabB.getState().conversations[id]?.title).toBe('New chat');
    await tabA.getState().renameConversation(id, 'Renamed in A');
    await expect.poll(() => tabB.getState().conversations[id]?.title).toBe('Renamed in A');
    tabB.getState().selectConversation(id);
    await tabA.getState().deleteConversation(id);
    await expect.poll(() => tabB.getState().conversations[id]).toBeUndefined();
    expect(tabB.getState().activeId).toBeNull();
    expect(listed).toBe(0);
    syncA.close();
    syncB.close();
  });
});
