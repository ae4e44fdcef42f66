import { afterEach, describe, expect, it } from 'vitest';
import { openDB } from 'idb';
import { IdbConversationRepo, MemoryConversationRepo } from './repo';
import { addMessage, createConversation } from './tree';
import type { Conversation } from './types';

const names: string[] = [];
function repo(): IdbConversationRepo {
  const name = `chat-test-${crypto.randomUUID()}`;
  names.push(name);
  return new IdbConversationRepo(name);
}

afterEach(async () => {
  for (const n of names.splice(0)) {
    await new Promise<void>((resolve) => {
      const req = indexedDB.deleteDatabase(n);
      req.onsuccess = req.onerror = req.onblocked = () => resolve();
    });
  }
});

function conv(id: string): Conversation {
  return addMessage({ ...createConversation(5, id), title: `T ${id}` }, { id: 'u1', parentId: null, role: 'user', content: `hello ${id}`, createdAt: 6 }, 6);
}

describe('IndexedDB conversation repo', () => {
  it('steps aside for a newer app version in another tab; its next write asks for a reload and the stored records stay', async () => {
    const a = repo();
    await a.put(conv('c1'));
    // The newer version's upgrade only gets through because this connection closes itself.
    const newer = await openDB(names[0], 2);
    await expect(a.put(conv('c2'))).rejects.toMatchObject({
      code: 'STORAGE_OUTDATED',
      message: expect.stringMatching(/newer version of this app.*saved conversations.*Reload this tab/),
    });
    expect(((await newer.get('conversations', 'c1')) as Conversation).title).toBe('T c1');
    newer.close();
  });

  it('lists the conversations updated last, newest first, and every one in pages of ids, as the memory repo does', async () => {
    const a = repo();
    const memory = new MemoryConversationRepo();
    // Ids out of update order, one id that sorts between others by code unit ('B' < 'a').
    const all = ['c3', 'c10', 'c1', 'B7', 'c2', 'a', 'c11'].map((id, i) => ({ ...conv(id), updatedAt: [50, 10, 70, 20, 60, 30, 40][i] }));
    await a.putMany(all);
    await memory.putMany(all);
    for (const r of [a, memory]) {
      expect((await r.listRecent(3)).map((c) => c.id)).toEqual(['c1', 'c2', 'c3']);
      expect((await r.listRecent(100)).map((c) => c.id)).toEqual(['c1', 'c2', 'c3', 'c11', 'a', 'B7', 'c10']);
      const pages: string[][] = [];
      for (let after: string | undefined, page: Conversation[]; (page = await r.listPage(after, 3)).length > 0; after = page[page.length - 1].id) pages.push(page.map((c) => c.id));
      expect(pages).toEqual([['B7', 'a', 'c1'], ['c10', 'c11', 'c2'], ['c3']]);
      expect(await r.listPage('c3', 3)).toEqual([]);
    }
    expect((await a.listRecent(1))[0]).toEqual(all[2]);
  });

  it('stores, lists, gets, replaces and deletes whole conversations, across connections', async () => {
    const a = repo();
    await a.put(conv('c1'));
    await a.put(conv('c2'));
    await a.put({ ...conv('c1'), title: 'renamed' });
    await a.close();
    const b = new IdbConversationRepo(names[0]);
    expect(await b.get('c2')).toEqual(conv('c2'));
    expect(await b.get('c9')).toBeUndefined();
    const listed = (await b.list()).sort((x, y) => x.id.localeCompare(y.id));
    expect(listed).toEqual([{ ...conv('c1'), title: 'renamed' }, conv('c2')]);
    await b.delete('c1');
    expect((await b.list()).map((c) => c.id)).toEqual(['c2']);
    await b.close();
  });

  it('putMany is all or nothing', async () => {
    const r = repo();
    await r.put(conv('keep'));
    // A record IndexedDB cannot clone (a function) fails the transaction part-way through.
    const poisoned = { ...conv('p2'), title: (() => 'x') as unknown as string };
    await expect(r.putMany([conv('p1'), poisoned, conv('p3')])).rejects.toThrow();
    expect((await r.list()).map((c) => c.id)).toEqual(['keep']);
    await r.putMany([conv('p1'), conv('p3')]);
    expect((await r.list()).map((c) => c.id).sort()).toEqual(['keep', 'p1', 'p3']);
    await r.close();
  });
});
