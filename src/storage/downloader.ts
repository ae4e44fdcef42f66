/**
 * The resumable, verified model downloader. Runs in the engine worker (it needs fetch, IndexedDB,
 * Web Locks and BroadcastChannel, all of which workers have).
 *
 * How: the revision is pinned to a commit, sizes and hashes come from the catalog or the tree API,
 * each file is fetched as fixed-size chunks with single `Range: bytes=a-b` GETs (a CORS-safelisted
 * header, so no preflight), a few in parallel. The first request of a file goes to the Hub's resolve
 * URL and follows its redirect; later ones reuse the CDN link until it expires (403/410), then the
 * resolve URL is asked again. Network errors, 5xx/429 and short bodies are retried with exponential
 * backoff. Every chunk lands in IndexedDB with its `present` bit, so a reload or a crash resumes
 * from what is stored. When a file is whole, its stored bytes are read back in order through an
 * incremental sha256 (hash-wasm); on a mismatch the file is discarded and fetched again.
 * One tab downloads a model at a time (Web Locks); the others relay its progress from a
 * BroadcastChannel and then find the model complete.
 *
 * Rules: never mark a file verified without hashing the bytes read back from the store; never
 * send headers other than Range (a preflight would double the requests and some CDNs refuse it).
 */
import { createSHA1, createSHA256, type IHasher } from 'hash-wasm';
import { AppError } from '../engine/errors';
import { discoverFiles, resolveUrl, revisionUrl, treeUrl, type CatalogEntry, type CatalogFile } from './catalog';
import { chunkCount, chunkLength, DEFAULT_CHUNK_SIZE, READ_AHEAD, quotaError, storageEstimate, storedBytes, type Manifest, type ManifestFile, type ModelStore } from './model-store';

export type DownloadPhase = 'resolve' | 'waiting' | 'download' | 'verify' | 'load' | 'compile' | 'done';

export interface FileProgress {
  path: string;
  size: number;
  /** Bytes stored so far. */
  doneBytes: number;
  verified: boolean;
}

export interface DownloadProgress {
  modelId: string;
  phase: DownloadPhase;
  files: FileProgress[];
  doneBytes: number;
  totalBytes: number;
  /** Bytes fetched from the network by this run (not counting what was already stored). */
  fetchedBytes: number;
  /** Moving average over the last few seconds, bytes per second. */
  bytesPerSec: number;
  /** Seconds left at the current speed; null while unknown. */
  etaSec: number | null;
  /** The file being verified and how far, during 'verify'. */
  verify?: { path: string; doneBytes: number; size: number };
  /** True when another tab is the one downloading and this tab relays its progress. */
  otherTab?: boolean;
}

export interface DownloadOptions {
  hub: string;
  chunkSize?: number;
  /** Chunks in flight at once. */
  parallel?: number;
  /** Retries per chunk after the first try. */
  maxRetries?: number;
  /** First backoff delay; doubles per retry, with jitter. */
  backoffMs?: number;
  signal?: AbortSignal;
  onProgress?: (p: DownloadProgress) => void;
  /** Coordinate with other tabs through Web Locks + BroadcastChannel (default true where available). */
  crossTab?: boolean;
  /** Checks `navigator.storage.estimate()` before fetching (default true). */
  checkQuota?: boolean;
}

export interface DownloadStats {
  requests: number;
  retries: number;
  reResolves: number;
  integrityFailures: number;
  fetchedBytes: number;
  downloadMs: number;
  verifyMs: number;
}

interface TreeEntry {
  type: string;
  path: string;
  size?: number;
  oid?: string;
  lfs?: { oid: string; size: number };
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(abortError());
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(abortError());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

const abortError = () => new AppError('ABORTED', 'The download was paused or cancelled; the bytes already stored are kept.');

/** An error worth another try (network failure, 5xx, short body). */
class RetryableError extends Error {}

async function getJson<T>(url: string, signal?: AbortSignal, tries = 4): Promise<T | undefined> {
  return (await getJsonPage<T>(url, signal, tries))?.value;
}

/** getJson, and the URL of the next page where the answer names one (`Link: <url>; rel="next"`). */
async function getJsonPage<T>(url: string, signal?: AbortSignal, tries = 4): Promise<{ value: T; next?: string } | undefined> {
  for (let attempt = 1; ; attempt++) {
    let res: Response | undefined;
    let failure: string;
    try {
      res = await fetch(url, { signal, cache: 'no-store' });
      if (res.status === 404 || res.status === 401) return undefined;
      if (res.ok) {
        const next = /<([^>]+)>\s*;\s*rel="?next"?/.exec(res.headers.get('link') ?? '')?.[1];
        return { value: (await res.json()) as T, ...(next ? { next: new URL(next, url).href } : {}) };
      }
      failure = `answered ${res.status}`;
      if (res.status < 500 && res.status !== 429) throw new AppError('DOWNLOAD_FAILED', `${url} ${failure}`);
    } catch (err) {
      if (signal?.aborted) throw abortError();
      if (err instanceof AppError) throw err;
      failure = `could not be reached: ${err instanceof Error ? err.message : String(err)}`;
    }
    if (attempt >= tries) throw new AppError('DOWNLOAD_FAILED', `The Hub API ${url} ${failure} (${tries} tries). Check the connection or the Hub URL.`);
    await sleep(250 * 2 ** (attempt - 1), signal);
  }
}

/** Pages a tree listing may span before it is refused (the Hub pages 1,000 entries at a time). */
const MAX_TREE_PAGES = 100;

/**
 * A tree listing with every page: the Hub answers a long listing (a recursive one of a large
 * repo) a page at a time and names the next page in a `Link` header. Undefined where the first
 * page is not found.
 */
async function getTree(url: string, signal?: AbortSignal): Promise<TreeEntry[] | undefined> {
  const entries: TreeEntry[] = [];
  let next: string | undefined = url;
  for (let page = 0; next; page++) {
    if (page === MAX_TREE_PAGES) throw new AppError('DOWNLOAD_FAILED', `The Hub's file listing ${url} goes on past ${MAX_TREE_PAGES} pages; this is not one model's repository.`);
    const got: { value: TreeEntry[]; next?: string } | undefined = await getJsonPage<TreeEntry[]>(next, signal);
    if (!got) {
      if (page === 0) return undefined;
      throw new AppError('DOWNLOAD_FAILED', `The Hub's file listing ${url} ended at page ${page + 1}: its next page was not found. Try again.`);
    }
    entries.push(...got.value);
    next = got.next;
  }
  return entries;
}

/**
 * Builds the manifest for a model that is not stored yet: pins the commit and fills every file's
 * size and hashes from the catalog or the tree API (sizes from a 1-byte range when the Hub has no API).
 */
export async function planManifest(entry: CatalogEntry, opts: Pick<DownloadOptions, 'hub' | 'chunkSize' | 'signal'>): Promise<Manifest> {
  const { hub, signal } = opts;
  const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const rev = await getJson<{ sha?: string }>(revisionUrl(hub, entry.repo, entry.revision), signal);
  if (rev === undefined && !entry.files) {
    throw new AppError('MODEL_NOT_FOUND', `${entry.repo}@${entry.revision} was not found on ${hub}. Check the repo id (a private repo reads as not found too: this app downloads public models only), or that the Hub URL is right.`);
  }
  const commit = rev?.sha && /^[0-9a-f]{40}$/.test(rev.sha) ? rev.sha : entry.revision;

  let files: CatalogFile[] | undefined = entry.files;
  const tree = new Map<string, TreeEntry>();
  if (!files) {
    const listing = await getTree(treeUrl(hub, entry.repo, commit, '', true), signal);
    if (!listing) throw new AppError('MODEL_NOT_FOUND', `The Hub at ${hub} has no file listing for ${entry.repo}; a custom model needs the tree API.`);
    for (const e of listing) tree.set(e.path, e);
    try {
      files = discoverFiles(entry.folder, listing);
    } catch (err) {
      throw new AppError('MODEL_NOT_FOUND', `${entry.repo}: ${err instanceof Error ? err.message : String(err)}`);
    }
  } else if (files.some((f) => f.size === undefined || f.sha256 === undefined)) {
    const dirs = new Set(files.map((f) => (f.path.includes('/') ? f.path.slice(0, f.path.lastIndexOf('/')) : '')));
    for (const d of dirs) for (const e of (await getTree(treeUrl(hub, entry.repo, commit, d), signal)) ?? []) tree.set(e.path, e);
  }

  const out: ManifestFile[] = [];
  for (const f of files) {
    const t = tree.get(f.path);
    if (tree.size > 0 && !t && f.optional) continue;
    if (tree.size > 0 && !t) throw new AppError('MODEL_NOT_FOUND', `${entry.repo}@${commit.slice(0, 12)} has no file ${f.path}.`);
    let size = f.size ?? t?.lfs?.size ?? t?.size;
    if (f.size !== undefined && t?.size !== undefined && (t.lfs?.size ?? t.size) !== f.size) {
      throw new AppError('DOWNLOAD_INTEGRITY', `${f.path}: the catalog says ${f.size} bytes, the Hub lists ${t.lfs?.size ?? t.size}. The catalog revision is out of date.`);
    }
    if (size === undefined) size = await probeSize(resolveUrl(hub, entry.repo, commit, f.path), signal);
    const sha256 = f.sha256 ?? t?.lfs?.oid;
    const gitOid = !t?.lfs && t?.oid && /^[0-9a-f]{40}$/.test(t.oid) ? t.oid : undefined;
    out.push({ path: f.path, role: f.role, size, sha256, gitOid, chunkSize, present: new Array(chunkCount(size, chunkSize)).fill(0), verified: false });
  }
  const now = Date.now();
  return { modelId: entry.id, name: entry.name, source: 'hub', hub, repo: entry.repo, revision: entry.revision, commit, files: out, complete: false, createdAt: now, updatedAt: now };
}

async function probeSize(url: string, signal?: AbortSignal): Promise<number> {
  const res = await fetch(url, { headers: { Range: 'bytes=0-0' }, signal, cache: 'no-store' });
  await res.body?.cancel();
  const total = /\/(\d+)$/.exec(res.headers.get('content-range') ?? '')?.[1];
  if (res.status === 206 && total) return Number(total);
  const len = res.headers.get('content-length');
  if (res.status === 200 && len) return Number(len);
  throw new AppError('DOWNLOAD_FAILED', `Could not learn the size of ${url} (status ${res.status}).`);
}

/** Tracks speed over a sliding window and throttles progress events. */
class Meter {
  private samples: Array<[number, number]> = [];
  fetched = 0;
  push(bytes: number): void {
    const now = performance.now();
    this.fetched += bytes;
    this.samples.push([now, this.fetched]);
    while (this.samples.length > 2 && now - this.samples[0][0] > 5000) this.samples.shift();
  }
  get bytesPerSec(): number {
    if (this.samples.length < 2) return 0;
    const [t0, b0] = this.samples[0];
    const [t1, b1] = this.samples[this.samples.length - 1];
    return t1 > t0 ? ((b1 - b0) * 1000) / (t1 - t0) : 0;
  }
}

const CHANNEL = 'phi3-model-download';
const lockName = (modelId: string) => `phi3-model-download:${modelId}`;

/**
 * Downloads (or resumes, or just confirms) a model into the store and returns its complete
 * manifest. With `crossTab`, only one tab runs this per model; the others wait and relay progress.
 */
export async function downloadModel(store: ModelStore, entry: CatalogEntry, opts: DownloadOptions): Promise<{ manifest: Manifest; stats: DownloadStats }> {
  const locks = typeof navigator !== 'undefined' ? navigator.locks : undefined;
  if (opts.crossTab === false || !locks) return runDownload(store, entry, opts);

  const channel = typeof BroadcastChannel !== 'undefined' ? new BroadcastChannel(CHANNEL) : undefined;
  const broadcast = (p: DownloadProgress) => {
    opts.onProgress?.(p);
    channel?.postMessage(p);
  };
  const NOT_ACQUIRED = Symbol('not-acquired');
  try {
    const first = await locks.request(lockName(entry.id), { ifAvailable: true }, async (lock) =>
      lock ? runDownload(store, entry, { ...opts, onProgress: broadcast }) : NOT_ACQUIRED,
    );
    if (first !== NOT_ACQUIRED) return first;
    // Another tab holds the lock: relay its progress, then take the lock and find the model complete
    // (or resume what it left if that tab closed mid-way). The same bytes are never fetched twice.
    const relay = (ev: MessageEvent<DownloadProgress>) => {
      if (ev.data?.modelId === entry.id) opts.onProgress?.({ ...ev.data, otherTab: true });
    };
    opts.onProgress?.({ ...(await progressOf(store, entry.id)), phase: 'waiting', otherTab: true });
    channel?.addEventListener('message', relay);
    try {
      return await locks.request(lockName(entry.id), { signal: opts.signal }, () => runDownload(store, entry, { ...opts, onProgress: broadcast }));
    } catch (err) {
      if (opts.signal?.aborted) throw abortError();
      throw err;
    } finally {
      channel?.removeEventListener('message', relay);
    }
  } finally {
    channel?.close();
  }
}

async function progressOf(store: ModelStore, modelId: string): Promise<DownloadProgress> {
  const m = await store.getManifest(modelId);
  const files = (m?.files ?? []).map((f) => ({ path: f.path, size: f.size, doneBytes: storedBytes(f), verified: f.verified }));
  return {
    modelId,
    phase: m?.complete ? 'done' : 'waiting',
    files,
    doneBytes: files.reduce((n, f) => n + f.doneBytes, 0),
    totalBytes: files.reduce((n, f) => n + f.size, 0),
    fetchedBytes: 0,
    bytesPerSec: 0,
    etaSec: null,
  };
}

async function runDownload(store: ModelStore, entry: CatalogEntry, opts: DownloadOptions): Promise<{ manifest: Manifest; stats: DownloadStats }> {
  const { signal } = opts;
  const parallel = Math.max(1, opts.parallel ?? 4);
  const maxRetries = opts.maxRetries ?? 6;
  const backoffMs = opts.backoffMs ?? 500;
  const stats: DownloadStats = { requests: 0, retries: 0, reResolves: 0, integrityFailures: 0, fetchedBytes: 0, downloadMs: 0, verifyMs: 0 };
  const meter = new Meter();
  if (signal?.aborted) throw abortError();

  let manifest = await store.getManifest(entry.id);
  if (manifest?.complete) {
    opts.onProgress?.(await progressOf(store, entry.id));
    return { manifest, stats };
  }
  if (!manifest) {
    opts.onProgress?.({ modelId: entry.id, phase: 'resolve', files: [], doneBytes: 0, totalBytes: entry.approxBytes ?? 0, fetchedBytes: 0, bytesPerSec: 0, etaSec: null });
    manifest = await planManifest(entry, opts);
    await store.putManifest(manifest);
  }
  const m: Manifest = manifest;
  // The commit pins the bytes, so a resume may use another Hub or mirror than the one that started it.
  const hub = opts.hub || m.hub || '';
  const commit = m.commit ?? entry.revision;

  let phase: DownloadPhase = 'download';
  let verify: DownloadProgress['verify'];
  let lastEmit = 0;
  const emit = (force = false) => {
    const now = performance.now();
    if (!force && now - lastEmit < 100) return;
    lastEmit = now;
    const files = m.files.map((f) => ({ path: f.path, size: f.size, doneBytes: storedBytes(f), verified: f.verified }));
    const doneBytes = files.reduce((n, f) => n + f.doneBytes, 0);
    const totalBytes = files.reduce((n, f) => n + f.size, 0);
    const speed = meter.bytesPerSec;
    opts.onProgress?.({
      modelId: m.modelId,
      phase,
      files,
      doneBytes,
      totalBytes,
      fetchedBytes: meter.fetched,
      bytesPerSec: speed,
      etaSec: speed > 0 ? (totalBytes - doneBytes) / speed : null,
      verify,
    });
  };

  if (opts.checkQuota !== false) {
    const needed = m.files.reduce((n, f) => n + f.size - storedBytes(f), 0);
    let available = Infinity;
    try {
      available = (await storageEstimate()).available;
    } catch {
      // No estimate in this browser: rely on the quota error from IndexedDB.
    }
    if (needed > available) throw quotaError(needed, available);
  }

  const cdnLinks = new Map<string, string>();

  /** One ranged GET of chunk `index` of `f`, with retries; resolves with exactly the chunk's bytes. */
  async function fetchChunk(f: ManifestFile, index: number): Promise<Uint8Array> {
    const start = index * f.chunkSize;
    const len = chunkLength(f, index);
    const resolve = resolveUrl(hub, m.repo ?? entry.repo, commit, f.path);
    for (let attempt = 0; ; attempt++) {
      const cdn = cdnLinks.get(f.path);
      try {
        stats.requests++;
        let res: Response;
        try {
          res = await fetch(cdn ?? resolve, { headers: { Range: `bytes=${start}-${start + len - 1}` }, signal, cache: 'no-store' });
        } catch (err) {
          throw new RetryableError(`network error: ${err instanceof Error ? err.message : String(err)}`);
        }
        if (cdn && (res.status === 403 || res.status === 410 || res.status === 401)) {
          // The signed CDN link expired: go back to the resolve URL for a fresh one. Not a failure.
          await res.body?.cancel();
          cdnLinks.delete(f.path);
          stats.reResolves++;
          attempt--;
          continue;
        }
        if (res.redirected && (res.status === 403 || res.status === 410)) {
          // A fresh link that expired before it was followed (a slow hop): ask again, as a retry.
          await res.body?.cancel();
          stats.reResolves++;
          throw new RetryableError(`CDN link expired on arrival (HTTP ${res.status})`);
        }
        if (res.status >= 500 || res.status === 429 || res.status === 408) {
          await res.body?.cancel();
          throw new RetryableError(`HTTP ${res.status}`);
        }
        if (res.status === 404) throw new AppError('MODEL_NOT_FOUND', `${f.path} is not on ${hub} at ${commit.slice(0, 12)} (404).`);
        if (!cdn && !res.redirected && (res.status === 401 || res.status === 403)) {
          // The Hub itself refused: a gated or private repo asks for a login this app never has.
          await res.body?.cancel();
          throw new AppError(
            'MODEL_ACCESS_DENIED',
            `${m.repo ?? entry.repo} lets only signed-in users with access download its files (HTTP ${res.status}${res.headers.get('x-error-code') ? `, ${res.headers.get('x-error-code')}` : ''}): it is gated or private. This app downloads public models only. Download the files with your Hugging Face account and choose them here as a local folder.`,
          );
        }
        if (res.status !== 206 && !(res.status === 200 && start === 0 && len === f.size)) {
          await res.body?.cancel();
          throw new AppError('DOWNLOAD_FAILED', `${f.path}: expected a 206 partial response for bytes ${start}-${start + len - 1}, got ${res.status}. The server must support HTTP Range requests.`);
        }
        if (res.redirected && res.url) cdnLinks.set(f.path, res.url);
        const range = res.headers.get('content-range');
        if (range) {
          const rm = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(range);
          if (rm && Number(rm[1]) !== start) throw new RetryableError(`server answered range ${range} for start ${start}`);
          if (rm && rm[3] !== '*' && Number(rm[3]) !== f.size) {
            throw new AppError('DOWNLOAD_INTEGRITY', `${f.path} is ${rm[3]} bytes on the server, the manifest expects ${f.size}: the file changed.`);
          }
        }
        const buf = new Uint8Array(len);
        let got = 0;
        const reader = res.body!.getReader();
        try {
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            if (got + value.byteLength > len) throw new RetryableError(`server sent more than the ${len} bytes asked for`);
            buf.set(value, got);
            got += value.byteLength;
            meter.push(value.byteLength);
            stats.fetchedBytes += value.byteLength;
            emit();
          }
        } catch (err) {
          if (err instanceof RetryableError) throw err;
          throw new RetryableError(`connection lost after ${got} of ${len} bytes: ${err instanceof Error ? err.message : String(err)}`);
        }
        if (got !== len) throw new RetryableError(`short read: ${got} of ${len} bytes`);
        return buf;
      } catch (err) {
        if (signal?.aborted) throw abortError();
        if (!(err instanceof RetryableError)) throw err;
        if (attempt >= maxRetries) {
          throw new AppError('DOWNLOAD_FAILED', `${f.path} chunk ${index}: ${err.message}; gave up after ${attempt + 1} tries. Resume to continue from the stored bytes.`);
        }
        stats.retries++;
        // A failed CDN link may be the cause: ask the resolve URL again next time.
        cdnLinks.delete(f.path);
        await sleep(backoffMs * 2 ** attempt * (0.75 + Math.random() * 0.5), signal);
      }
    }
  }

  /** Fetches every missing chunk of `f`, `parallel` at a time. On the first failure no new chunk starts, in-flight ones finish and are kept. */
  async function fetchMissing(f: ManifestFile): Promise<void> {
    const queue = f.present.map((p, i) => (p ? -1 : i)).filter((i) => i >= 0);
    let failure: unknown;
    const lane = async () => {
      while (queue.length && failure === undefined) {
        const index = queue.shift()!;
        try {
          const bytes = await fetchChunk(f, index);
          await store.putChunk(m.modelId, f.path, index, bytes);
          f.present[index] = 1;
          emit(true);
        } catch (err) {
          failure ??= err;
        }
      }
    };
    // Until a CDN link is known, one chunk goes alone: its redirect gives the link the others reuse,
    // so the resolve endpoint is asked once per file rather than once per lane.
    if (!cdnLinks.has(f.path) && queue.length > 1) {
      const index = queue.shift()!;
      const bytes = await fetchChunk(f, index);
      await store.putChunk(m.modelId, f.path, index, bytes);
      f.present[index] = 1;
      emit(true);
    }
    await Promise.all(Array.from({ length: Math.min(parallel, queue.length) }, lane));
    if (failure !== undefined) throw failure;
  }

  /** Reads the stored file back in order through the hasher; true when size and hash match. */
  async function verifyFile(f: ManifestFile): Promise<ManifestFile['verifiedBy'] | false> {
    // Read ahead: the next chunks come out of IndexedDB while this one is hashed.
    const src = await store.openFile(m.modelId, f.path, { allowUnverified: true, cacheChunks: 0, readAhead: READ_AHEAD });
    let hasher: IHasher | undefined;
    let kind: ManifestFile['verifiedBy'] = 'size';
    if (f.sha256) {
      hasher = await createSHA256();
      kind = 'sha256';
    } else if (f.gitOid) {
      hasher = await createSHA1();
      kind = 'git-oid';
    }
    hasher?.init();
    if (kind === 'git-oid') hasher?.update(`blob ${f.size}\0`);
    let n = 0;
    for (let i = 0; i < f.present.length; i++) {
      if (signal?.aborted) throw abortError();
      const c = await src.chunk(i);
      hasher?.update(c);
      n += c.byteLength;
      verify = { path: f.path, doneBytes: n, size: f.size };
      emit();
    }
    if (n !== f.size) return false;
    if (!hasher) return kind;
    const digest = hasher.digest('hex');
    return digest === (kind === 'sha256' ? f.sha256 : f.gitOid) ? kind : false;
  }

  for (const f of m.files) {
    if (f.verified) continue;
    for (let round = 0; ; round++) {
      phase = 'download';
      emit(true);
      const t0 = performance.now();
      await fetchMissing(f);
      stats.downloadMs += performance.now() - t0;
      phase = 'verify';
      emit(true);
      const t1 = performance.now();
      const ok = await verifyFile(f);
      stats.verifyMs += performance.now() - t1;
      verify = undefined;
      if (ok) {
        const updated = await store.markVerified(m.modelId, f.path, ok);
        f.verified = true;
        m.complete = updated.complete;
        break;
      }
      stats.integrityFailures++;
      await store.discardFile(m.modelId, f.path);
      f.present = f.present.map(() => 0);
      if (round >= 1) {
        throw new AppError('DOWNLOAD_INTEGRITY', `${f.path} failed its ${f.sha256 ? 'sha256' : f.gitOid ? 'git oid' : 'size'} check twice; the bytes were discarded. The server may be serving a different file than the Hub lists.`);
      }
    }
  }
  phase = 'done';
  emit(true);
  const final = await store.getManifest(m.modelId);
  if (!final?.complete) throw new AppError('DOWNLOAD_INTEGRITY', `${m.modelId} is not complete after download.`);
  return { manifest: final, stats };
}
