/**
 * A `ByteSource` over a file on disk, for the Node CLI and tests. Node only: import it from Node
 * code, never from the app or the worker (it pulls in `node:fs`).
 */
import { open } from 'node:fs/promises';
import { AppError } from '../errors';
import type { ByteSource } from './types';

export async function nodeFileSource(path: string): Promise<ByteSource & { close(): Promise<void> }> {
  const handle = await open(path, 'r');
  let size: number;
  try {
    size = (await handle.stat()).size;
  } catch (err) {
    await handle.close();
    throw err;
  }
  return {
    size,
    async read(offset, length) {
      if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
        throw new AppError('BAD_ARGUMENT', `nodeFileSource.read: bad range (offset ${offset}, length ${length}) in ${path}.`);
      }
      const want = Math.max(0, Math.min(length, size - offset));
      const out = new Uint8Array(want);
      let filled = 0;
      while (filled < want) {
        const { bytesRead } = await handle.read(out, filled, want - filled, offset + filled);
        if (bytesRead === 0) break; // the file shrank under us: return what there is
        filled += bytesRead;
      }
      return filled === want ? out : out.subarray(0, filled);
    },
    close: () => handle.close(),
  };
}
