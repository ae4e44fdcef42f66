import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nodeFileSource } from './node-source';
import { blobSource, bytesSource, countingSource } from './sources';

const data = Uint8Array.from({ length: 5000 }, (_, i) => (i * 7) & 0xff);

describe('byte sources', () => {
  it('bytes, Blob and Node file sources agree, including reads past the end', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'onnx-sources-'));
    const path = join(dir, 'x.bin');
    await writeFile(path, data);
    const file = await nodeFileSource(path);
    try {
      for (const source of [bytesSource(data), blobSource(new Blob([data])), file]) {
        expect(source.size).toBe(5000);
        expect(Array.from(await source.read(100, 50))).toEqual(Array.from(data.subarray(100, 150)));
        expect((await source.read(4990, 100)).byteLength).toBe(10);
        expect((await source.read(6000, 10)).byteLength).toBe(0);
        expect((await source.read(0, 0)).byteLength).toBe(0);
        await expect(source.read(-1, 10)).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
      }
    } finally {
      await file.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('countingSource records reads, bytes and the largest read', async () => {
    const counted = countingSource(bytesSource(data));
    await counted.read(0, 10);
    await counted.read(10, 300);
    await counted.read(4900, 200);
    expect(counted.stats).toEqual({ reads: 3, bytesRead: 410, largestRead: 300 });
  });
});
