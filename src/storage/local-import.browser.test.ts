import { afterEach, describe, expect, it } from 'vitest';
import { importLocalFiles } from './local-import';
import { ModelStore } from './model-store';
import { sha256Hex, uniqueName } from './test-hub';

const names: string[] = [];
afterEach(async () => {
  for (const name of names.splice(0)) {
    await new Promise((r) => {
      const req = indexedDB.deleteDatabase(name);
      req.onsuccess = req.onerror = req.onblocked = r;
    });
  }
});

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

describe('local files as a model source', () => {
  it('copies a picked folder into the store in chunks, verified, readable as any downloaded model', async () => {
    const name = uniqueName('local');
    names.push(name);
    const store = await ModelStore.open(name);
    const graph = bytes(300_000, 1);
    const data = bytes(700_000, 2);
    const files = [
      { path: 'onnx/model_q4.onnx', file: new File([graph], 'model_q4.onnx') },
      { path: 'onnx/model_q4.onnx_data', file: new File([data], 'model_q4.onnx_data') },
      { path: 'config.json', file: new File(['{"model_type":"phi3"}'], 'config.json') },
      { path: 'notes.txt', file: new File(['ignored'], 'notes.txt') },
    ];
    const seen: number[] = [];
    const m = await importLocalFiles(store, 'my phi3', files, { chunkSize: 64 * 1024, onBytes: (d) => seen.push(d) });
    expect(m.modelId).toBe('local:my phi3');
    expect(m.complete).toBe(true);
    expect(m.files.map((f) => `${f.role}:${f.path}:${f.size}`)).toEqual(['graph:onnx/model_q4.onnx:300000', 'weights:onnx/model_q4.onnx_data:700000', 'config:config.json:21']);
    expect(seen[seen.length - 1]).toBe(1_000_021);
    const src = await store.openFile(m.modelId, 'onnx/model_q4.onnx_data');
    expect(await sha256Hex(await src.read(0, src.size))).toBe(await sha256Hex(data));
    expect((await store.list()).map((c) => [c.modelId, c.complete, c.storedBytes])).toEqual([['local:my phi3', true, 1_000_021]]);
    store.close();
  });

  it('checks local files against a catalog entry and refuses a folder that lacks one', async () => {
    const name = uniqueName('local');
    names.push(name);
    const store = await ModelStore.open(name);
    const entry = {
      id: 'x',
      name: 'x',
      repo: 'o/x',
      revision: 'main',
      folder: '',
      contextLength: 4096,
      note: '',
      files: [{ path: 'w.bin', role: 'weights' as const, sha256: await sha256Hex(bytes(1000, 3)) }],
    };
    await expect(importLocalFiles(store, 'bad', [{ path: 'w.bin', file: new File([bytes(1000, 4)], 'w.bin') }], { entry })).rejects.toMatchObject({ code: 'DOWNLOAD_INTEGRITY' });
    // A failed copy leaves nothing behind: it could not be resumed, and the files are still on the disk.
    expect(await store.getManifest('local:bad')).toBeUndefined();
    expect(await store.list()).toEqual([]);
    const ok = await importLocalFiles(store, 'good', [{ path: 'w.bin', file: new File([bytes(1000, 3)], 'w.bin') }], { entry });
    expect(ok.files[0].verifiedBy).toBe('sha256');
    await expect(importLocalFiles(store, 'none', [{ path: 'readme.md', file: new File(['x'], 'readme.md') }])).rejects.toMatchObject({ code: 'MODEL_NOT_FOUND' });
    store.close();
  });

  it('never replaces another model of the same name: other files take "name (2)", the same files replace their copy', async () => {
    const name = uniqueName('local');
    names.push(name);
    const store = await ModelStore.open(name);
    const model = (graphSize: number) => [
      { path: 'model.onnx', file: new File([bytes(graphSize, 5)], 'model.onnx') },
      { path: 'config.json', file: new File(['{}'], 'config.json') },
    ];
    const ids: string[] = [];
    const first = await importLocalFiles(store, 'phi', model(1000), { onBytes: (d, _t, id) => d === 0 && ids.push(id) });
    expect(first.modelId).toBe('local:phi');
    const other = await importLocalFiles(store, 'phi', model(2000), { onBytes: (d, _t, id) => d === 0 && ids.push(id) });
    expect(other).toMatchObject({ modelId: 'local:phi (2)', name: 'phi (2)', complete: true });
    // The first call names the id, before any byte is copied: the UI selects it from there.
    expect(ids).toEqual(['local:phi', 'local:phi (2)']);
    const src = await store.openFile('local:phi', 'model.onnx');
    expect(src.size).toBe(1000);
    // The same files again (the folder picked twice) replace their own copy; nothing is added.
    const again = await importLocalFiles(store, 'phi', model(2000));
    expect(again.modelId).toBe('local:phi (2)');
    expect(new Map((await store.list()).map((c) => [c.modelId, c.storedBytes]))).toEqual(
      new Map([
        ['local:phi', 1002],
        ['local:phi (2)', 2002],
      ]),
    );
    store.close();
  });

  it('a stopped import deletes what it copied and leaves the other models alone', async () => {
    const name = uniqueName('local');
    names.push(name);
    const store = await ModelStore.open(name);
    const kept = await importLocalFiles(store, 'kept', [{ path: 'model.onnx', file: new File([bytes(5000, 6)], 'model.onnx') }]);
    const stop = new AbortController();
    const files = [{ path: 'model.onnx', file: new File([bytes(300_000, 7)], 'model.onnx') }];
    await expect(
      importLocalFiles(store, 'kept', files, { chunkSize: 64 * 1024, signal: stop.signal, onBytes: (d) => d > 100_000 && stop.abort() }),
    ).rejects.toMatchObject({ code: 'ABORTED' });
    expect((await store.list()).map((c) => [c.modelId, c.complete, c.storedBytes])).toEqual([[kept.modelId, true, 5000]]);
    store.close();
  });
});
