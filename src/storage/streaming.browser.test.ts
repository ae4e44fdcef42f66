import { describe, expect, it } from 'vitest';
import { cdp } from 'vitest/browser';
import { ModelStore, READ_AHEAD, chunkCount, type Manifest } from './model-store';
import { uniqueName } from './test-hub';

// Streaming a stored file back out of IndexedDB: the heap stays bounded whatever the file size.
// A 512 MiB file is written as 64 chunks of 8 MiB, then read (a) chunk by chunk with raw IndexedDB
// gets and (b) through the ByteSource in 1 MiB reads, with the read-ahead a load uses, as the ONNX
// reader and GPU upload do.

const MiB = 1024 * 1024;
const SIZE = 512 * MiB;
const CHUNK = 8 * MiB;

describe('streaming a 512 MiB stored file', () => {
  it('reads it through the ByteSource with peak heap far under 256 MB, close to raw IndexedDB speed', async () => {
    const session = cdp();
    const heap = async () => {
      const h = (await session.send('Runtime.getHeapUsage')) as { usedSize: number; backingStorageSize?: number };
      return h.usedSize + (h.backingStorageSize ?? 0);
    };
    const gc = () => session.send('HeapProfiler.collectGarbage');
    const name = uniqueName('stream');
    const store = await ModelStore.open(name);
    try {
      const m: Manifest = {
        modelId: 'big',
        name: 'big',
        source: 'local',
        files: [{ path: 'w.bin', role: 'weights', size: SIZE, chunkSize: CHUNK, present: new Array(chunkCount(SIZE, CHUNK)).fill(0), verified: false }],
        complete: false,
        createdAt: 0,
        updatedAt: 0,
      };
      await store.putManifest(m);
      const tw = performance.now();
      for (let i = 0; i < SIZE / CHUNK; i++) {
        const c = new Uint8Array(CHUNK);
        c.fill(i & 0xff);
        c[0] = 0xa5;
        await store.putChunk('big', 'w.bin', i, c);
      }
      const writeS = (performance.now() - tw) / 1000;
      await store.markVerified('big', 'w.bin', 'size');

      await gc();
      const t0 = performance.now();
      let rawBytes = 0;
      for (let i = 0; i < SIZE / CHUNK; i++) rawBytes += (await store.getChunk('big', 'w.bin', i))!.byteLength;
      const rawS = (performance.now() - t0) / 1000;
      expect(rawBytes).toBe(SIZE);

      await gc();
      const base = await heap();
      let peak = base;
      const src = await store.openFile('big', 'w.bin', { readAhead: READ_AHEAD });
      const t1 = performance.now();
      let n = 0;
      for (let off = 0; off < SIZE; off += MiB) {
        const b = await src.read(off, MiB);
        const chunk = Math.floor(off / CHUNK);
        expect(b[b.length - 1]).toBe(chunk & 0xff);
        if (off % CHUNK === 0) expect(b[0]).toBe(0xa5);
        n += b.byteLength;
        if (off % (4 * MiB) === 0) peak = Math.max(peak, await heap());
      }
      const srcS = (performance.now() - t1) / 1000;
      peak = Math.max(peak, await heap());
      expect(n).toBe(SIZE);
      expect(src.chunkReads).toBe(SIZE / CHUNK);
      const peakMB = (peak - base) / 1e6;
      console.log(
        `512 MiB: write ${writeS.toFixed(2)} s (${(SIZE / 1e6 / writeS).toFixed(0)} MB/s); raw IndexedDB chunk reads ${rawS.toFixed(2)} s ` +
          `(${(SIZE / 1e6 / rawS).toFixed(0)} MB/s); ByteSource 1 MiB reads ${srcS.toFixed(2)} s (${(SIZE / 1e6 / srcS).toFixed(0)} MB/s); ` +
          `peak heap growth (JS heap + ArrayBuffer backing stores) ${peakMB.toFixed(1)} MB`,
      );
      expect(peakMB).toBeLessThan(256);
    } finally {
      await store.deleteAll();
      store.close();
      await new Promise((r) => {
        const req = indexedDB.deleteDatabase(name);
        req.onsuccess = req.onerror = req.onblocked = r;
      });
    }
  });
});
