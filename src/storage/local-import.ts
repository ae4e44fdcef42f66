/**
 * Local files as a model source: a picked folder or dropped files are copied into the store in
 * the same chunk layout as a download (so loading, listing and deleting work the same), hashed on
 * the way. Nothing is uploaded. Where a catalog entry lists the same paths with a size or sha256,
 * the files are checked against it; otherwise the record says only the size was checked.
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
  opts: { chunkSize?: number; entry?: CatalogEntry; signal?: AbortSignal; onBytes?: (done: number, total: number) => void } = {},
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
  if (missing.length) throw new AppError('MODEL_NOT_FOUND', `The chosen folder lacks ${missing.map((m) => m.path).join(', ')}.`);

  const modelId = `local:${name}`;
  await store.delete(modelId);
  const now = Date.now();
  const manifest: Manifest = {
    modelId,
    name,
    source: 'local',
    files: wanted.map((w) => {
      const size = byPath.get(w.path)!.size;
      if (w.size !== undefined && w.size !== size) throw new AppError('DOWNLOAD_INTEGRITY', `${w.path} is ${size} bytes; the catalog expects ${w.size}.`);
      return { path: w.path, role: w.role, size, sha256: w.sha256, chunkSize, present: new Array(chunkCount(size, chunkSize)).fill(0), verified: false };
    }),
    complete: false,
    createdAt: now,
    updatedAt: now,
  };
  await store.putManifest(manifest);
  const total = manifest.files.reduce((n, f) => n + f.size, 0);
  let done = 0;
  for (const f of manifest.files) {
    const file = byPath.get(f.path)!;
    const hasher = await createSHA256();
    for (let i = 0; i < f.present.length; i++) {
      if (opts.signal?.aborted) throw new AppError('ABORTED', 'The import was cancelled.');
      const bytes = new Uint8Array(await file.slice(i * chunkSize, Math.min(f.size, (i + 1) * chunkSize)).arrayBuffer());
      hasher.update(bytes);
      await store.putChunk(modelId, f.path, i, bytes);
      done += bytes.byteLength;
      opts.onBytes?.(done, total);
    }
    const digest = hasher.digest('hex');
    if (f.sha256 && digest !== f.sha256) {
      await store.discardFile(modelId, f.path);
      throw new AppError('DOWNLOAD_INTEGRITY', `${f.path} does not match the catalog's sha256 (${digest.slice(0, 12)}… vs ${f.sha256.slice(0, 12)}…).`);
    }
    await store.markVerified(modelId, f.path, f.sha256 ? 'sha256' : 'size');
  }
  return (await store.getManifest(modelId))!;
}
