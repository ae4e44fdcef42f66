/**
 * The IndexedDB model store (through `idb`): one manifest record per model and fixed-size chunk
 * records beside it, plus a `ByteSource` that reads a stored file chunk by chunk.
 *
 * Chunks are 8 MiB by default (the manifest records the size each file was stored with). Why 8 MiB:
 * a cut connection costs at most one chunk to fetch again; four chunks in flight hold 32 MiB, and a
 * chunk read while loading holds 8 MiB, which keeps the load's heap far under the 256 MB target;
 * it matches the 8 MiB GPU upload step; and a 2.7 GB model is ~330 records, far from any per-record
 * or per-transaction trouble in Chrome, Firefox or Safari (values well under Chrome's ~2 GiB limit).
 *
 * Rules a contributor could break:
 * - A chunk record and its `present` bit in the manifest are written in ONE transaction, so the
 *   manifest never claims bytes that are not stored (a crash or a quota error aborts both).
 * - `file.verified` / `manifest.complete` are set only by the downloader after the size and hash
 *   check; `openFile` refuses unverified files, so unverified bytes are never loaded.
 * - Schema changes go through `MIGRATIONS` (append one; never edit a shipped one).
 *
 * Tabs running different versions of the app share the database. A newer version's upgrade closes
 * this connection (`blocking`) and `StoreHooks.closed` tells the owner to drop it; calls on the
 * closed store, and opening again, then fail with STORAGE_OUTDATED, "reload this tab", instead of
 * the browser's "connection is closing". This version's own upgrade waits while an older tab that never steps aside holds the
 * database open; `StoreHooks.blocked` says so, so the page can ask the user to close that tab.
 */
import { openDB, type DBSchema, type IDBPDatabase, type IDBPTransaction, type StoreNames } from 'idb';
import { AppError } from '../engine/errors';
import { formatBytes } from './format';
import type { ByteSource } from '../engine/onnx/types';
import type { FileRole } from './catalog';

export const DB_NAME = 'phi3-model-store';
export const DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024;

export interface ManifestFile {
  path: string;
  role: FileRole;
  size: number;
  /** Expected sha256 (hex), when the catalog or the tree API gave one. */
  sha256?: string;
  /** Expected git blob id (sha1 of "blob <size>\0" + bytes), the Hub's `oid` for small non-LFS files. */
  gitOid?: string;
  chunkSize: number;
  /** One entry per chunk: 1 when that chunk is stored. */
  present: number[];
  /** Size and hash checked against the stored bytes. */
  verified: boolean;
  /** What the check compared: 'sha256', 'git-oid', or only 'size' when the Hub gave no hash. */
  verifiedBy?: 'sha256' | 'git-oid' | 'size';
}

export interface Manifest {
  /** Catalog id (or `hub:<repo>/<folder>@<rev>` / `local:<name>`). */
  modelId: string;
  name: string;
  source: 'hub' | 'local';
  hub?: string;
  repo?: string;
  /** The revision asked for, and the commit it resolved to (what every URL uses). */
  revision?: string;
  commit?: string;
  files: ManifestFile[];
  /** True only when every file is verified. */
  complete: boolean;
  createdAt: number;
  updatedAt: number;
}

interface ChunkRecord {
  modelId: string;
  path: string;
  index: number;
  bytes: ArrayBuffer;
}

interface StoreSchema extends DBSchema {
  manifests: { key: string; value: Manifest };
  chunks: { key: [string, string, number]; value: ChunkRecord; indexes: { byModel: string } };
  meta: { key: string; value: { key: string; value: number | string } };
}

type UpgradeTx = IDBPTransaction<StoreSchema, StoreNames<StoreSchema>[], 'versionchange'>;

/** MIGRATIONS[v - 1] upgrades a database at version v-1 to version v. */
const MIGRATIONS: Array<(db: IDBPDatabase<StoreSchema>, tx: UpgradeTx) => void> = [
  // v1: manifests and chunks.
  (db) => {
    db.createObjectStore('manifests', { keyPath: 'modelId' });
    db.createObjectStore('chunks', { keyPath: ['modelId', 'path', 'index'] });
  },
  // v2: index chunks by model (delete a model without scanning), and a meta store.
  (db, tx) => {
    tx.objectStore('chunks').createIndex('byModel', 'modelId');
    db.createObjectStore('meta', { keyPath: 'key' });
  },
];
export const DB_VERSION = MIGRATIONS.length;

export interface CachedModel {
  modelId: string;
  name: string;
  complete: boolean;
  /** Bytes of chunks stored. */
  storedBytes: number;
  totalBytes: number;
  commit?: string;
  updatedAt: number;
}

export interface StorageEstimateResult {
  usage: number;
  quota: number;
  /** `quota - usage`, never negative. */
  available: number;
  persisted: boolean;
}

/**
 * Chunks a stream of a stored file (a load, a verification) asks for ahead of its reads: one more
 * 8 MiB chunk in the heap for 1.25× the read rate in a worker (`npm run bench:store-read`, 5
 * rounds: 279 → 348 MB/s on the 2-core VM; 2 and 4 chunks ahead gave the same within noise).
 */
export const READ_AHEAD = 1;

export const chunkCount = (size: number, chunkSize: number) => Math.max(1, Math.ceil(size / chunkSize));
export const chunkLength = (f: Pick<ManifestFile, 'size' | 'chunkSize'>, i: number) => Math.min(f.chunkSize, f.size - i * f.chunkSize);
export const storedBytes = (f: ManifestFile) => f.present.reduce((n, p, i) => n + (p ? chunkLength(f, i) : 0), 0);

function isQuotaError(err: unknown): boolean {
  return err instanceof DOMException && (err.name === 'QuotaExceededError' || err.code === 22);
}

export async function storageEstimate(): Promise<StorageEstimateResult> {
  const sm = navigator.storage;
  if (!sm?.estimate) throw new AppError('STORAGE_UNAVAILABLE', 'This browser does not report storage quota (navigator.storage.estimate is missing).');
  const { usage = 0, quota = 0 } = await sm.estimate();
  const persisted = sm.persisted ? await sm.persisted() : false;
  return { usage, quota, available: Math.max(0, quota - usage), persisted };
}

/**
 * Asks the browser not to evict the store. Chrome grants it silently to engaged or installed
 * sites; Firefox asks the user. Call it from a window: the Storage Standard exposes `persist()`
 * to windows only (a worker sees `persisted()` and `estimate()` but no `persist`), and there this
 * returns "not persisted" without asking.
 */
export async function requestPersistence(): Promise<{ persisted: boolean; wasPersisted: boolean }> {
  const sm = navigator.storage;
  if (!sm?.persist) return { persisted: false, wasPersisted: false };
  const wasPersisted = sm.persisted ? await sm.persisted() : false;
  return { persisted: wasPersisted || (await sm.persist()), wasPersisted };
}

/** Opening `what` failed because a newer version of the app upgraded it in another tab. */
export function outdatedError(what: string): AppError {
  return new AppError(
    'STORAGE_OUTDATED',
    `A newer version of this app, open in another tab, has updated the ${what} on this device. Reload this tab to use the new version; nothing stored is lost.`,
  );
}

/**
 * The quota error, with the bytes still needed against what the browser says is available. The
 * two can disagree: a browser may refuse a write while its estimate still shows room (a per-site
 * or per-group limit below the estimate's quota, as Firefox's group limit and Chromium's quota
 * override do), and then the message says so instead of "5.5 MB needed, 10.74 GB available".
 */
export function quotaError(needed: number, available: number): AppError {
  const room =
    available > needed
      ? `${formatBytes(needed)} still needed; the browser reports ${formatBytes(available)} free but refused to store more for this site. `
      : `${formatBytes(needed)} still needed, ${formatBytes(available)} available. `;
  return new AppError(
    'STORAGE_QUOTA',
    `Not enough storage for this model: ${room}` +
      'Free disk space, delete other cached models, or leave private browsing; the bytes already stored are kept.',
  );
}

/** What the owner of a `ModelStore` hears about other tabs' connections (see the module header). */
export interface StoreHooks {
  /** The open waits: another tab holds an older version of the database open and does not close it. */
  blocked?: () => void;
  /**
   * The connection is gone: 'newer-version' when another tab's newer app upgrades the database
   * (this one closed itself so it could), 'terminated' when the browser closed it (storage cleared,
   * disk error). Drop the store; a new `open` tells what is possible.
   */
  closed?: (reason: 'newer-version' | 'terminated') => void;
}

export class ModelStore {
  /** Why the connection closed under us, once it has (see `StoreHooks.closed`). */
  private gone: 'newer-version' | 'terminated' | undefined;

  private constructor(private readonly conn: IDBPDatabase<StoreSchema>) {}

  /**
   * The connection, for every method's first step: once it has closed under us, each call fails
   * with what to do (reload) instead of the browser's "The database connection is closing".
   * Transactions already running when it closed finish normally (IndexedDB's close waits for them).
   */
  private get db(): IDBPDatabase<StoreSchema> {
    if (this.gone === 'newer-version') throw outdatedError('model store');
    if (this.gone === 'terminated') {
      throw new AppError('STORAGE_UNAVAILABLE', 'The browser closed the model store (its storage was cleared, or the disk failed). Reload this page; a model whose bytes are gone downloads again.');
    }
    return this.conn;
  }

  static async open(name = DB_NAME, hooks: StoreHooks = {}): Promise<ModelStore> {
    if (typeof indexedDB === 'undefined') throw new AppError('STORAGE_UNAVAILABLE', 'IndexedDB is not available in this context.');
    let db: IDBPDatabase<StoreSchema>;
    // Filled in once the open succeeds; `blocking` and `terminated` can only come after that.
    const opened: { store?: ModelStore } = {};
    const lost = (reason: 'newer-version' | 'terminated') => {
      if (opened.store) opened.store.gone = reason;
      hooks.closed?.(reason);
    };
    try {
      db = await openDB<StoreSchema>(name, DB_VERSION, {
        upgrade(database, oldVersion, _newVersion, tx) {
          for (let v = oldVersion; v < DB_VERSION; v++) MIGRATIONS[v](database, tx);
        },
        blocked() {
          hooks.blocked?.();
        },
        blocking() {
          // Another tab wants a newer schema: step aside so it can upgrade.
          db.close();
          lost('newer-version');
        },
        terminated() {
          lost('terminated');
        },
      });
    } catch (err) {
      if (err instanceof DOMException && err.name === 'VersionError') throw outdatedError('model store');
      throw err;
    }
    opened.store = new ModelStore(db);
    return opened.store;
  }

  close(): void {
    this.conn.close();
  }

  async getManifest(modelId: string): Promise<Manifest | undefined> {
    return this.db.get('manifests', modelId);
  }

  async putManifest(m: Manifest): Promise<void> {
    await this.db.put('manifests', { ...m, updatedAt: Date.now() });
  }

  /**
   * Stores one chunk and sets its `present` bit in one transaction. A quota error aborts both and
   * is rethrown as `STORAGE_QUOTA` with the bytes still needed against the bytes available.
   */
  async putChunk(modelId: string, path: string, index: number, bytes: Uint8Array): Promise<void> {
    const buf = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes.buffer : bytes.slice().buffer;
    try {
      const tx = this.db.transaction(['manifests', 'chunks'], 'readwrite');
      const m = await tx.objectStore('manifests').get(modelId);
      const f = m?.files.find((x) => x.path === path);
      if (!m || !f) throw new AppError('MODEL_NOT_CACHED', `no manifest entry for ${modelId}/${path}`);
      if (bytes.byteLength !== chunkLength(f, index)) throw new AppError('DOWNLOAD_INTEGRITY', `chunk ${index} of ${path} has ${bytes.byteLength} bytes, expected ${chunkLength(f, index)}`);
      await tx.objectStore('chunks').put({ modelId, path, index, bytes: buf as ArrayBuffer });
      f.present[index] = 1;
      m.updatedAt = Date.now();
      await tx.objectStore('manifests').put(m);
      await tx.done;
    } catch (err) {
      if (isQuotaError(err) || (err instanceof DOMException && err.name === 'AbortError' && isQuotaError((err as DOMException & { cause?: unknown }).cause))) {
        throw await this.quotaErrorFor(modelId);
      }
      throw err;
    }
  }

  /** The quota error for a model, with the bytes it still needs. */
  async quotaErrorFor(modelId: string): Promise<AppError> {
    const m = await this.getManifest(modelId);
    const needed = m ? m.files.reduce((n, f) => n + f.size - storedBytes(f), 0) : 0;
    let available = 0;
    try {
      available = (await storageEstimate()).available;
    } catch {
      // No estimate API: report 0 available.
    }
    return quotaError(needed, available);
  }

  async getChunk(modelId: string, path: string, index: number): Promise<Uint8Array | undefined> {
    const r = await this.db.get('chunks', [modelId, path, index]);
    return r ? new Uint8Array(r.bytes) : undefined;
  }

  /** Drops a file's chunks and clears its present bits and verified flag (after a failed check). */
  async discardFile(modelId: string, path: string): Promise<void> {
    const tx = this.db.transaction(['manifests', 'chunks'], 'readwrite');
    await tx.objectStore('chunks').delete(IDBKeyRange.bound([modelId, path, 0], [modelId, path, Number.MAX_SAFE_INTEGER]));
    const m = await tx.objectStore('manifests').get(modelId);
    const f = m?.files.find((x) => x.path === path);
    if (m && f) {
      f.present = f.present.map(() => 0);
      f.verified = false;
      delete f.verifiedBy;
      m.complete = false;
      await tx.objectStore('manifests').put(m);
    }
    await tx.done;
  }

  /** Records a file as checked; marks the model complete when every file is. */
  async markVerified(modelId: string, path: string, by: NonNullable<ManifestFile['verifiedBy']>): Promise<Manifest> {
    const tx = this.db.transaction('manifests', 'readwrite');
    const m = await tx.store.get(modelId);
    const f = m?.files.find((x) => x.path === path);
    if (!m || !f) throw new AppError('MODEL_NOT_CACHED', `no manifest entry for ${modelId}/${path}`);
    if (f.present.some((p) => !p)) throw new AppError('DOWNLOAD_INTEGRITY', `${path} cannot be verified: chunks are missing`);
    f.verified = true;
    f.verifiedBy = by;
    m.complete = m.files.every((x) => x.verified);
    m.updatedAt = Date.now();
    await tx.store.put(m);
    await tx.done;
    return m;
  }

  async list(): Promise<CachedModel[]> {
    const all = await this.db.getAll('manifests');
    return all.map((m) => ({
      modelId: m.modelId,
      name: m.name,
      complete: m.complete,
      storedBytes: m.files.reduce((n, f) => n + storedBytes(f), 0),
      totalBytes: m.files.reduce((n, f) => n + f.size, 0),
      commit: m.commit,
      updatedAt: m.updatedAt,
    }));
  }

  /** Deletes a model's manifest and every chunk of it, in one transaction. */
  async delete(modelId: string): Promise<void> {
    const tx = this.db.transaction(['manifests', 'chunks'], 'readwrite');
    const idx = tx.objectStore('chunks').index('byModel');
    for (let cur = await idx.openKeyCursor(modelId); cur; cur = await cur.continue()) await tx.objectStore('chunks').delete(cur.primaryKey);
    await tx.objectStore('manifests').delete(modelId);
    await tx.done;
  }

  async deleteAll(): Promise<void> {
    const tx = this.db.transaction(['manifests', 'chunks'], 'readwrite');
    await Promise.all([tx.objectStore('manifests').clear(), tx.objectStore('chunks').clear(), tx.done]);
  }

  /** A `ByteSource` over a verified stored file. `allowUnverified` is for the verifier only. */
  async openFile(modelId: string, path: string, opts: { allowUnverified?: boolean; cacheChunks?: number; readAhead?: number } = {}): Promise<ChunkedFileSource> {
    const m = await this.getManifest(modelId);
    const f = m?.files.find((x) => x.path === path);
    if (!m || !f) throw new AppError('MODEL_NOT_CACHED', `${path} of ${modelId} is not in the store; download the model first.`);
    if (!f.verified && !opts.allowUnverified) throw new AppError('DOWNLOAD_INTEGRITY', `${path} of ${modelId} is not verified; it will not be loaded.`);
    return new ChunkedFileSource(this, modelId, f, opts.cacheChunks ?? 2, opts.readAhead ?? 0);
  }
}

/**
 * Random access to a stored file: `read` fetches only the chunks that overlap the range, and keeps
 * the last `cacheChunks` chunks for the many small sequential reads of a protobuf walk.
 *
 * Read-ahead: once the file is read in order (chunk i right after chunk i-1), the next
 * `readAhead` chunks are requested before they are asked for, so IndexedDB reads the next while
 * the caller uploads or hashes this one, with two reads in flight (1.25× the read rate of one at a
 * time: docs/storage.md, "Read-ahead"). A prefetched chunk that fails
 * fails the call that asks for it, never an earlier one. Out-of-order reads (a protobuf walk's
 * jumps) prefetch nothing.
 *
 * Holds at most `(cacheChunks + readAhead) × chunkSize` bytes besides the result; never
 * concatenates the file.
 */
export class ChunkedFileSource implements ByteSource {
  readonly size: number;
  private cache = new Map<number, Uint8Array>();
  /** Chunks requested ahead and not yet asked for. */
  private ahead = new Map<number, Promise<Uint8Array>>();
  /** The chunk asked for last; -1 so that a read from the start counts as in order. */
  private last = -1;
  /** Chunks read from IndexedDB so far, prefetched ones included (for tests and the load-time figures). */
  chunkReads = 0;

  constructor(
    private readonly store: ModelStore,
    private readonly modelId: string,
    private readonly file: ManifestFile,
    private readonly cacheChunks: number,
    private readonly readAhead = 0,
  ) {
    this.size = file.size;
  }

  private fetch(index: number): Promise<Uint8Array> {
    this.chunkReads++;
    return this.store.getChunk(this.modelId, this.file.path, index).then((bytes) => {
      if (!bytes || bytes.byteLength !== chunkLength(this.file, index)) {
        throw new AppError('MODEL_NOT_CACHED', `chunk ${index} of ${this.file.path} is missing from the store; download the model again.`);
      }
      return bytes;
    });
  }

  async chunk(index: number): Promise<Uint8Array> {
    const sequential = index === this.last + 1;
    this.last = index;
    const hit = this.cache.get(index);
    if (hit) {
      this.cache.delete(index);
      this.cache.set(index, hit);
      return hit;
    }
    const pending = this.ahead.get(index) ?? this.fetch(index);
    // Only the chunks just after this one stay requested: the rest were left behind by a jump.
    for (const i of this.ahead.keys()) if (i <= index || i > index + this.readAhead) this.ahead.delete(i);
    if (sequential) {
      const count = this.file.present.length;
      for (let i = index + 1; i <= index + this.readAhead && i < count; i++) {
        if (this.ahead.has(i) || this.cache.has(i)) continue;
        const p = this.fetch(i);
        // Its failure is the business of the call that asks for chunk i, if one does.
        p.catch(() => undefined);
        this.ahead.set(i, p);
      }
    }
    const bytes = await pending;
    if (this.cacheChunks > 0) {
      this.cache.set(index, bytes);
      while (this.cache.size > this.cacheChunks) this.cache.delete(this.cache.keys().next().value as number);
    }
    return bytes;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    if (offset < 0 || length < 0 || !Number.isInteger(offset) || !Number.isInteger(length)) {
      throw new AppError('BAD_ARGUMENT', `read(${offset}, ${length}) of ${this.file.path}: offset and length must be non-negative integers`);
    }
    const end = Math.min(this.size, offset + length);
    if (end <= offset) return new Uint8Array(0);
    const cs = this.file.chunkSize;
    const first = Math.floor(offset / cs);
    const last = Math.floor((end - 1) / cs);
    if (first === last) {
      // A copy, not a view: callers may transfer the result, which must not detach a cached chunk.
      const c = await this.chunk(first);
      return c.slice(offset - first * cs, end - first * cs);
    }
    const out = new Uint8Array(end - offset);
    for (let i = first; i <= last; i++) {
      const c = await this.chunk(i);
      const from = Math.max(offset, i * cs);
      const to = Math.min(end, (i + 1) * cs);
      out.set(c.subarray(from - i * cs, to - i * cs), from - offset);
    }
    return out;
  }
}

/** A `ByteSource` over a local File/Blob (a picked or dropped file); nothing is uploaded. */
export class BlobByteSource implements ByteSource {
  readonly size: number;
  constructor(private readonly blob: Blob) {
    this.size = blob.size;
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    return new Uint8Array(await this.blob.slice(offset, Math.min(this.size, offset + length)).arrayBuffer());
  }
}
