import { afterEach, describe, expect, it } from 'vitest';
import { openDB } from 'idb';
import { DB_VERSION, ModelStore, chunkCount, requestPersistence, storageEstimate, type Manifest } from './model-store';
import { uniqueName } from './test-hub';

const names: string[] = [];
afterEach(async () => {
  for (const name of names.splice(0)) {
    await new Promise((r) => {
      const req = indexedDB.deleteDatabase(name);
      req.onsuccess = req.onerror = req.onblocked = r;
    });
  }
});

function manifest(modelId: string, size: number, chunkSize: number): Manifest {
  return {
    modelId,
    name: modelId,
    source: 'hub',
    files: [{ path: 'w.bin', role: 'weights', size, chunkSize, present: new Array(chunkCount(size, chunkSize)).fill(0), verified: false }],
    complete: false,
    createdAt: 0,
    updatedAt: 0,
  };
}

const pattern = (n: number, offset = 0) => Uint8Array.from({ length: n }, (_, i) => (i + offset) % 251);

async function fill(store: ModelStore, modelId: string, size: number, chunkSize: number) {
  await store.putManifest(manifest(modelId, size, chunkSize));
  for (let i = 0; i * chunkSize < size; i++) await store.putChunk(modelId, 'w.bin', i, pattern(Math.min(chunkSize, size - i * chunkSize), i * chunkSize));
  return store.markVerified(modelId, 'w.bin', 'size');
}

/** A database as the first app version made it (schema 1), opened as that version would (no versionchange handler). */
function openVersion1(name: string) {
  names.push(name);
  return openDB(name, 1, {
    upgrade(db) {
      db.createObjectStore('manifests', { keyPath: 'modelId' });
      db.createObjectStore('chunks', { keyPath: ['modelId', 'path', 'index'] });
    },
  });
}

describe('model store (IndexedDB)', () => {
  it('migrates a version-1 database to the current schema without losing records', async () => {
    const name = uniqueName('mig');
    const v1 = await openVersion1(name);
    const m = manifest('old', 10, 10);
    m.files[0].present = [1];
    await v1.put('manifests', m);
    await v1.put('chunks', { modelId: 'old', path: 'w.bin', index: 0, bytes: pattern(10).buffer });
    v1.close();

    const store = await ModelStore.open(name);
    expect(DB_VERSION).toBe(2);
    expect((await store.list()).map((c) => [c.modelId, c.storedBytes])).toEqual([['old', 10]]);
    expect(await store.getChunk('old', 'w.bin', 0)).toEqual(pattern(10));
    await store.delete('old'); // uses the v2 byModel index
    expect(await store.list()).toEqual([]);
    expect(await store.getChunk('old', 'w.bin', 0)).toBeUndefined();
    store.close();
  });

  it("waits on an older tab's open connection, says so through `blocked`, and goes on once that tab lets go", async () => {
    const name = uniqueName('blocked');
    // An older app version's connection with no versionchange handler: it never steps aside.
    const old = await openVersion1(name);
    let blocked = 0;
    let opened = false;
    const opening = ModelStore.open(name, { blocked: () => blocked++ }).then((s) => ((opened = true), s));
    await expect.poll(() => blocked).toBe(1);
    await new Promise((r) => setTimeout(r, 100));
    expect(opened).toBe(false);
    old.close();
    const store = await opening;
    expect(await store.list()).toEqual([]);
    store.close();
  });

  it('steps aside for a newer app version in another tab, says so through `closed`, and opening again asks for a reload', async () => {
    const name = uniqueName('newer');
    names.push(name);
    const closed: string[] = [];
    const store = await ModelStore.open(name, { closed: (reason) => closed.push(reason) });
    await fill(store, 'kept', 10, 10);
    // The newer version's upgrade only gets through because this connection closes itself.
    const newer = await openDB(name, DB_VERSION + 1);
    expect(closed).toEqual(['newer-version']);
    // Every later call says what to do, rather than the browser's "connection is closing".
    await expect(store.list()).rejects.toMatchObject({ code: 'STORAGE_OUTDATED' });
    await expect(store.putChunk('kept', 'w.bin', 0, pattern(10))).rejects.toMatchObject({ code: 'STORAGE_OUTDATED' });
    await expect(store.getManifest('kept')).rejects.toMatchObject({ code: 'STORAGE_OUTDATED' });
    await expect(ModelStore.open(name)).rejects.toMatchObject({ code: 'STORAGE_OUTDATED', message: expect.stringMatching(/newer version of this app.*Reload this tab.*nothing stored is lost/) });
    // Nothing was lost: the newer version still reads the record.
    expect((await newer.get('manifests', 'kept'))?.complete).toBe(true);
    newer.close();
  });

  it('reads any range of a stored file, touching only the chunks it needs', async () => {
    const name = uniqueName('src');
    names.push(name);
    const store = await ModelStore.open(name);
    const size = 10_000;
    await fill(store, 'm', size, 1024);
    const src = await store.openFile('m', 'w.bin', { cacheChunks: 0 });
    expect(src.size).toBe(size);
    expect(await src.read(100, 100)).toEqual(pattern(100, 100));
    expect(src.chunkReads).toBe(1);
    expect(await src.read(1020, 3000)).toEqual(pattern(3000, 1020)); // chunks 0..3
    expect(src.chunkReads).toBe(5);
    expect(await src.read(9990, 100)).toEqual(pattern(10, 9990)); // clipped at the end
    expect(await src.read(size, 5)).toEqual(new Uint8Array(0));
    const cached = await store.openFile('m', 'w.bin', { cacheChunks: 2 });
    for (let off = 0; off < 1024; off += 16) await cached.read(off, 16);
    expect(cached.chunkReads).toBe(1);
    store.close();
  });

  it('reads ahead while a file is read in order, never past its end; a jump reads nothing ahead; a missing chunk fails only the read that needs it', async () => {
    const name = uniqueName('ahead');
    names.push(name);
    const store = await ModelStore.open(name);
    const size = 10 * 1024 - 100;
    await fill(store, 'm', size, 1024);
    const src = await store.openFile('m', 'w.bin', { cacheChunks: 0, readAhead: 2 });
    const reads: number[] = [];
    for (let i = 0; i < 10; i++) {
      expect(await src.chunk(i)).toEqual(pattern(Math.min(1024, size - i * 1024), i * 1024));
      reads.push(src.chunkReads);
    }
    // Chunk 0 brings 1 and 2 along; each next one asks for the one two ahead; none past chunk 9.
    expect(reads).toEqual([3, 4, 5, 6, 7, 8, 9, 10, 10, 10]);

    const jumps = await store.openFile('m', 'w.bin', { cacheChunks: 0, readAhead: 2 });
    await jumps.chunk(5);
    await jumps.chunk(2);
    expect(jumps.chunkReads).toBe(2);
    await jumps.chunk(3);
    expect(jumps.chunkReads).toBe(5);

    const raw = await openDB(name);
    await raw.delete('chunks', ['m', 'w.bin', 7]);
    raw.close();
    const gap = await store.openFile('m', 'w.bin', { cacheChunks: 0, readAhead: 2 });
    // Chunk 7 is asked for ahead from chunk 5 on, and its failure waits for the read of chunk 7.
    for (let i = 0; i < 7; i++) await gap.chunk(i);
    await expect(gap.chunk(7)).rejects.toMatchObject({ code: 'MODEL_NOT_CACHED', message: expect.stringContaining('chunk 7 of w.bin is missing') });
    store.close();
  });

  it('lists models with sizes, deletes one and all, and refuses unverified or missing files', async () => {
    const name = uniqueName('list');
    names.push(name);
    const store = await ModelStore.open(name);
    await fill(store, 'a', 3000, 1024);
    await store.putManifest(manifest('b', 5000, 1024));
    await store.putChunk('b', 'w.bin', 1, pattern(1024));
    const list = (await store.list()).sort((x, y) => x.modelId.localeCompare(y.modelId));
    expect(list.map(({ modelId, complete, storedBytes, totalBytes }) => ({ modelId, complete, storedBytes, totalBytes }))).toEqual([
      { modelId: 'a', complete: true, storedBytes: 3000, totalBytes: 3000 },
      { modelId: 'b', complete: false, storedBytes: 1024, totalBytes: 5000 },
    ]);
    await expect(store.openFile('b', 'w.bin')).rejects.toMatchObject({ code: 'DOWNLOAD_INTEGRITY' });
    await expect(store.openFile('zzz', 'w.bin')).rejects.toMatchObject({ code: 'MODEL_NOT_CACHED' });
    await expect(store.putChunk('b', 'w.bin', 2, pattern(5))).rejects.toMatchObject({ code: 'DOWNLOAD_INTEGRITY' });
    await store.delete('a');
    expect((await store.list()).map((c) => c.modelId)).toEqual(['b']);
    await store.deleteAll();
    expect(await store.list()).toEqual([]);
    expect(await store.getChunk('b', 'w.bin', 1)).toBeUndefined();
    store.close();
  });

  it('reports the storage estimate and the persistence outcome', async () => {
    const est = await storageEstimate();
    expect(est.quota).toBeGreaterThan(0);
    expect(est.available).toBe(Math.max(0, est.quota - est.usage));
    const p = await requestPersistence();
    expect(typeof p.persisted).toBe('boolean');
    expect(p.persisted).toBe(await navigator.storage.persisted());
  });
});
