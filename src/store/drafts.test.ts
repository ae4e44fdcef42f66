import { describe, expect, it } from 'vitest';
import { createAppStore } from './index';
import { MapStorage, testServices } from './testing';
import { DRAFT_PREFIX, storageDrafts } from './drafts';

describe('drafts', () => {
  it('keeps one unsent message per conversation, forgets an empty one, and survives a full storage', () => {
    const storage = new MapStorage();
    const drafts = storageDrafts(() => storage);
    drafts.write('a', 'half a question');
    drafts.write(null, 'typed before any chat');
    expect(drafts.read('a')).toBe('half a question');
    expect(drafts.read('b')).toBe('');
    expect(storage.items).toEqual(new Map([[`${DRAFT_PREFIX}a`, 'half a question'], [`${DRAFT_PREFIX}new`, 'typed before any chat']]));
    drafts.write('a', '');
    expect(storage.items.has(`${DRAFT_PREFIX}a`)).toBe(false);
    storage.full = true;
    expect(() => drafts.write('a', 'more')).not.toThrow();
    expect(drafts.read('a')).toBe('');
    expect(storageDrafts(() => undefined).read('a')).toBe('');
  });

  it("hears another tab's drafts through storage events, for its own storage only", () => {
    const storage = new MapStorage();
    const window = new EventTarget();
    const drafts = storageDrafts(() => storage, window);
    const heard: [string | null, string][] = [];
    const unsubscribe = drafts.subscribe((id, text) => heard.push([id, text]));
    const storageEvent = (key: string | null, newValue: string | null, storageArea: Storage = storage) => window.dispatchEvent(Object.assign(new Event('storage'), { key, newValue, storageArea }));
    storageEvent(`${DRAFT_PREFIX}a`, 'from the other tab');
    storageEvent(`${DRAFT_PREFIX}new`, 'before any chat');
    storageEvent(`${DRAFT_PREFIX}a`, null); // sent or cleared there
    storageEvent('phi3-chat:read-ahead', '1'); // not a draft
    storageEvent(null, null); // localStorage.clear()
    storageEvent(`${DRAFT_PREFIX}a`, 'sessionStorage', new MapStorage());
    expect(heard).toEqual([
      ['a', 'from the other tab'],
      [null, 'before any chat'],
      ['a', ''],
    ]);
    unsubscribe();
    storageEvent(`${DRAFT_PREFIX}a`, 'after');
    expect(heard).toHaveLength(3);
    expect(storageDrafts(() => storage).subscribe(() => {})).toBeTypeOf('function');
  });

  it('the store: a draft typed before any chat goes on in the first one; a deleted chat takes its draft along', async () => {
    const storage = new MapStorage();
    const store = createAppStore({ ...testServices(), drafts: storageDrafts(() => storage) });
    store.getState().saveDraft(null, 'What is a subgroup?');
    const a = await store.getState().newConversation();
    expect(store.getState().draftOf(a)).toBe('What is a subgroup?');
    expect(store.getState().draftOf(null)).toBe('');

    // Another chat opened from one that is no longer untouched (renamed) starts empty; the first keeps its draft.
    await store.getState().commit({ ...store.getState().conversations[a], title: 'Subgroups' });
    const b = await store.getState().newConversation();
    expect(b).not.toBe(a);
    expect(store.getState().draftOf(b)).toBe('');
    store.getState().saveDraft(b, 'Second thoughts');

    await store.getState().deleteConversation(b);
    expect(store.getState().draftOf(b)).toBe('');
    expect([...storage.items.keys()]).toEqual([`${DRAFT_PREFIX}${a}`]);
  });
});
