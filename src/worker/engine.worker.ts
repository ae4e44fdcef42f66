/**
 * The engine worker. This module runs in a Web Worker: it imports nothing from the UI or the
 * store, and it is the only place that calls `postMessage` back to the page. It owns the model
 * store (IndexedDB), the downloader and, later, the engine; long requests register an
 * AbortController under their id so that `abort` can stop them.
 */
import { AppError, serializeError } from '../engine/errors';
import { probeGpu } from '../engine/gpu/probe';
import { CATALOG, entryFromParam } from '../storage/catalog';
import { downloadModel, type DownloadProgress, type DownloadStats } from '../storage/downloader';
import { importLocalFiles } from '../storage/local-import';
import { DB_NAME, ModelStore, requestPersistence, storageEstimate } from '../storage/model-store';
import type { WorkerRequest, WorkerResponse } from './protocol';

const scope = self as unknown as DedicatedWorkerGlobalScope;

function reply(msg: WorkerResponse): void {
  scope.postMessage(msg);
}

let dbName = DB_NAME;
let storePromise: Promise<ModelStore> | undefined;
const store = () => (storePromise ??= ModelStore.open(dbName));
const running = new Map<number, AbortController>();

async function cachedModel(modelId: string) {
  const m = (await (await store()).list()).find((c) => c.modelId === modelId);
  if (!m) throw new AppError('MODEL_NOT_CACHED', `${modelId} is not in the store.`);
  return m;
}

async function download(req: Extract<WorkerRequest, { type: 'download' }>, signal: AbortSignal): Promise<void> {
  const s = await store();
  const onProgress = (progress: DownloadProgress) => reply({ type: 'download-progress', id: req.id, progress });
  const model = req.model;
  switch (model.kind) {
    case 'hub': {
      const entry = entryFromParam(model.model);
      if (!entry) throw new AppError('MODEL_NOT_FOUND', `"${model.model}" is neither a catalog id (${CATALOG.map((e) => e.id).join(', ')}) nor a Hub repo id (org/name).`);
      const { manifest, stats } = await downloadModel(s, entry, { hub: req.hub, ...req.tuning, signal, onProgress });
      reply({ type: 'download-done', id: req.id, model: await cachedModel(manifest.modelId), stats });
      return;
    }
    case 'local': {
      const t0 = performance.now();
      const manifest = await importLocalFiles(s, model.name, model.files, {
        chunkSize: req.tuning?.chunkSize,
        signal,
        onBytes: (doneBytes, totalBytes) =>
          onProgress({ modelId: `local:${model.name}`, phase: 'download', files: [], doneBytes, totalBytes, fetchedBytes: 0, bytesPerSec: 0, etaSec: null }),
      });
      const stats: DownloadStats = { requests: 0, retries: 0, reResolves: 0, integrityFailures: 0, fetchedBytes: 0, downloadMs: performance.now() - t0, verifyMs: 0 };
      reply({ type: 'download-done', id: req.id, model: await cachedModel(manifest.modelId), stats });
      return;
    }
    default: {
      const unreachable: never = model;
      throw new Error(`unknown model source ${JSON.stringify(unreachable)}`);
    }
  }
}

async function handle(req: WorkerRequest): Promise<void> {
  switch (req.type) {
    case 'probe':
      reply({ type: 'probe-result', id: req.id, probe: await probeGpu(navigator.gpu) });
      return;
    case 'abort':
      running.get(req.target)?.abort();
      return;
    case 'ping':
      reply({ type: 'pong', id: req.id });
      return;
    case 'configure':
      if (req.dbName && req.dbName !== dbName) {
        (await storePromise)?.close();
        storePromise = undefined;
        dbName = req.dbName;
      }
      reply({ type: 'configured', id: req.id });
      return;
    case 'catalog':
      reply({ type: 'catalog-result', id: req.id, entries: [...CATALOG] });
      return;
    case 'list-cached':
      reply({ type: 'cached-result', id: req.id, models: await (await store()).list() });
      return;
    case 'download': {
      const ctrl = new AbortController();
      running.set(req.id, ctrl);
      try {
        await download(req, ctrl.signal);
      } finally {
        running.delete(req.id);
      }
      return;
    }
    case 'delete-model':
      await (await store()).delete(req.modelId);
      reply({ type: 'deleted', id: req.id });
      return;
    case 'delete-all':
      await (await store()).deleteAll();
      reply({ type: 'deleted', id: req.id });
      return;
    case 'estimate':
      reply({ type: 'estimate-result', id: req.id, estimate: await storageEstimate() });
      return;
    case 'persist':
      reply({ type: 'persist-result', id: req.id, ...(await requestPersistence()) });
      return;
    case 'load':
    case 'generate':
      // The engine is wired here later: open each file with `store.openFile` (a ByteSource over the
      // verified chunks) and stream it through the ONNX reader into GPU buffers.
      throw new AppError('NOT_IMPLEMENTED', `"${req.type}" is not available yet: no engine is wired into the worker.`);
    default: {
      const unreachable: never = req;
      throw new Error(`unknown request ${JSON.stringify(unreachable)}`);
    }
  }
}

scope.onmessage = (ev: MessageEvent<WorkerRequest>) => {
  const req = ev.data;
  handle(req).catch((err: unknown) => reply({ type: 'error', id: req.id, error: serializeError(err) }));
};
