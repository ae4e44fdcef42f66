import { it } from 'vitest';
import { ModelStore } from './model-store';

it('idb read concurrency', async () => {
  const name = 'zz-idbread-' + Date.now();
  const store = await ModelStore.open(name);
  const N = 48, CS = 8 << 20;
  const now = Date.now();
  await store.putManifest({ modelId: 'm', name: 'm', source: 'local', files: [{ path: 'w', role: 'weights', size: N * CS, chunkSize: CS, present: new Array(N).fill(0), verified: false }], complete: false, createdAt: now, updatedAt: now } as never);
  const buf = new Uint8Array(CS);
  for (let i = 0; i < N; i++) { buf.fill(i); await store.putChunk('m', 'w', i, buf.slice()); }
  const results: string[] = [];
  for (let round = 0; round < 3; round++) {
    for (const k of [1, 2, 4]) {
      const t0 = performance.now();
      let next = 0;
      const worker = async () => { while (next < N) { const i = next++; const b = await store.getChunk('m', 'w', i); if (!b || b[0] !== (i & 255)) throw new Error('bad'); } };
      await Promise.all(Array.from({ length: k }, worker));
      const ms = performance.now() - t0;
      results.push(`round ${round} inflight ${k}: ${ms.toFixed(0)} ms, ${((N * CS) / ms / 1e3).toFixed(0)} MB/s`);
    }
  }
  console.log(results.join('\n'));
  store.close();
  await new Promise((r) => { const q = indexedDB.deleteDatabase(name); q.onsuccess = q.onerror = q.onblocked = r; });
}, 600_000);
