/**
 * Local files as a model source: a picked folder or dropped files are copied into the store in
 * the same chunk layout as a download (so loading, listing and deleting work the same), hashed on
 * the way. Nothing is uploaded. Where a catalog entry lists the same paths with a size or sha256,
 * the files are checked against it; otherwise the record says only the size was checked.
 *
 * Names: an import is stored as `local:<name>`. Where a model of that name is stored already with
 * the same files (paths and sizes: the same folder picked again) the import replaces it; where
 * its files differ, that model is kept and the import takes the first free `<name> (n)`, so a
 * pick never deletes another model. The id is reported before any chunk is copied.
 *
 * An import that stops (cancelled, paused, a bad file, a full disk) deletes what it stored: the
 * files are on the user's disk, and a partial copy could not be resumed from anywhere.
 *
 * Rule: read files by `slice`, one chunk at a time — never `arrayBuffer()` on a whole model file.
 */
import { createSHA256 } from 'hash-wasm';
import { AppError } from '../engine/errors';
import { discoverFiles, type CatalogEntry } from './catalog';
import { chunkCount, DEFAULT_CHUNK_SIZE, type Manifest, type ModelStore } from './model-store';

export async function importLocalFiles(
  store: ModelStore,
  name: string,
  input: Array<{ path: string; file: File }>,
  opts: {
    chunkSize?: number;
    entry?: CatalogEntry;
    signal?: AbortSignal;
    /** Bytes copied so far, of all; first called with 0 once the import's id is chosen. */
    onBytes?: (done: number, total: number, modelId: string) => void;
  } = {},
): Promise<Manifest> {
  const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const byPath = new Map(input.map((f) => [f.path, f.file]));
  let wanted: Array<{ path: string; role: 'graph' | 'weights' | 'config' | 'tokenizer'; size?: number; sha256?: string }>;
  try {
    wanted = opts.entry?.files ?? discoverFiles('', input.map((f) => ({ type: 'file', path: f.path })));
  } catch (err) {
    throw new AppError('MODEL_NOT_FOUND', `The chosen files hold no model: ${err instanceof Error ? err.message : String(err)}`);
  }
  const missing = wanted.filter((w) => !byPath.has(w.path));
  if (missing.length) throw new AppError('MODEL_NOT_FOUND', `The chosen folder or files lack ${missing.map((m) => m.path).join(', ')}.`);

  const sizes = wanted.map((w) => {
    const size = byPath.get(w.path)!.size;
    if (w.size !== undefined && w.size !== size) throw new AppError('DOWNLOAD_INTEGRITY', `${w.path} is ${size} bytes; the catalog expects ${w.size}.`);
    return { path: w.path, size };
  });
  const modelId = await importId(store, name, sizes);
  await store.delete(modelId);
  const now = Date.now();
  const manifest: Manifest = {
    modelId,
    name: modelId.slice('local:'.length),
    source: 'local',
    files: wanted.map((w, i) => {
      const { size } = sizes[i];
      return { path: w.path, role: w.role, size, sha256: w.sha256, chunkSize, present: new Array(chunkCount(size, chunkSize)).fill(0), verified: false };
    }),
    complete: false,
    createdAt: now,
    updatedAt: now,
  };
  await store.putManifest(manifest);
  const total = manifest.files.reduce((n, f) => n + f.size, 0);
  opts.onBytes?.(0, total, modelId);
  try {
    await copyFiles(store, manifest, byPath, total, opts);
  } catch (err) {
    await store.delete(modelId).catch(() => undefined);
    throw err;
  }
  return (await store.getManifest(modelId))!;
}

/** The id for importing `files` as `name` (see the module comment). */
async function importId(store: ModelStore, name: string, files: Array<{ path: string; size: number }>): Promise<string> {
  const key = (fs: Array<{ path: string; size: number }>) => JSON.stringify(fs.map((f) => [f.path, f.size]).sort());
  for (let n = 1; ; n++) {
    const id = `local:${n === 1 ? name : `${name} (${n})`}`;
    const stored = await store.getManifest(id);
    if (!stored || key(stored.files) === key(files)) return id;
  }
}

async function copyFiles(store: ModelStore, manifest: Manifest, byPath: Map<string, File>, total: number, opts: { signal?: AbortSignal; onBytes?: (done: number, total: number, modelId: string) => void }) {
  const { modelId } = manifest;
  let done = 0;
  for (const f of manifest.files) {
    const file = byPath.get(f.path)!;
    const hasher = await createSHA256();
    for (let i = 0; i < f.present.length; i++) {
      if (opts.signal?.aborted) throw new AppError('ABORTED', 'The import was cancelled.');
      const bytes = new Uint8Array(await file.slice(i * f.chunkSize, Math.min(f.size, (i + 1) * f.chunkSize)).arrayBuffer());
      hasher.update(bytes);
      await store.putChunk(modelId, f.path, i, bytes);
      done += bytes.byteLength;
      opts.onBytes?.(done, total, modelId);
    }
    const digest = hasher.digest('hex');
    if (f.sha256 && digest !== f.sha256) {
      throw new AppError('DOWNLOAD_INTEGRITY', `${f.path} does not match the catalog's sha256 (${digest.slice(0, 12)}… vs ${f.sha256.slice(0, 12)}…).`);
    }
    await store.markVerified(modelId, f.path, f.sha256 ? 'sha256' : 'size');
  }
}
