/**
 * `ByteSource`s over what a model arrives as in the browser: bytes already in memory (tests, small
 * files) and a Blob or File (a user's pick, or a file reassembled from IndexedDB chunks).
 * Rule: a source reads only the range asked for (`blob.slice`), so a 1.45 GB `_data` file is never
 * loaded whole. The Node file source lives in node-source.ts so that this module stays browser-safe.
 */
import { AppError } from '../errors';
import type { ByteSource } from './types';

function checkRange(offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new AppError('BAD_ARGUMENT', `ByteSource.read: bad range (offset ${offset}, length ${length}).`);
  }
}

/** A source over bytes in memory. `read` returns views into `u8`, not copies. */
export function bytesSource(u8: Uint8Array): ByteSource {
  return {
    size: u8.byteLength,
    async read(offset, length) {
      checkRange(offset, length);
      return u8.subarray(Math.min(offset, u8.byteLength), Math.min(offset + length, u8.byteLength));
    },
  };
}

/** A source over a Blob or File; each read is one `slice().arrayBuffer()`. */
export function blobSource(blob: Blob): ByteSource {
  return {
    size: blob.size,
    async read(offset, length) {
      checkRange(offset, length);
      return new Uint8Array(await blob.slice(offset, Math.min(offset + length, blob.size)).arrayBuffer());
    },
  };
}

export interface ReadStats {
  /** Number of `read` calls. */
  reads: number;
  /** Sum of the bytes returned. */
  bytesRead: number;
  /** Largest single read, in bytes returned. */
  largestRead: number;
}

/** Wraps a source and counts its reads (tests and heap checks). */
export function countingSource(inner: ByteSource): ByteSource & { readonly stats: ReadStats } {
  const stats: ReadStats = { reads: 0, bytesRead: 0, largestRead: 0 };
  return {
    size: inner.size,
    stats,
    async read(offset, length) {
      const bytes = await inner.read(offset, length);
      stats.reads++;
      stats.bytesRead += bytes.byteLength;
      stats.largestRead = Math.max(stats.largestRead, bytes.byteLength);
      return bytes;
    },
  };
}
