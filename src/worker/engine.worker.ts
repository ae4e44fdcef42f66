/**
 * The engine worker. This module runs in a Web Worker: it imports nothing from the UI or the
 * store, and it is the only place that calls `postMessage` back to the page. It owns the model
 * store (IndexedDB), the downloader and the engine; long requests register an AbortController
 * under their id so that `abort` can stop them.
 *
 * Engine rules: one engine at a time (native, or onnxruntime-web as `ort`), and engine requests (load, generate, count, unload) run one
 * after another through `engineQueue` — a load first stops a running answer. A `prepare` (reading
 * the open conversation into the KV cache ahead of its next message) queues each of its chunks as
 * a task of its own, so a count asked for meanwhile waits for one chunk at most, and a generate,
 * load, unload or newer prepare stops it. The GPU device is
 * acquired once and kept across loads; when it is lost, `deviceLost` is the one handler: it fails
 * the engine requests in flight with GPU_DEVICE_LOST, drops the engine and the device, and tells
 * the page (`device-lost`), which loads the model again from IndexedDB on a fresh device.
 * A native load on a hardware GPU also picks the MatMulNBits kernels' tuning (decode GEMV, prefill
 * GEMM): measured after the first load, in the background (`measureInBackground`: one measurement
 * per engine task, so the model answers with the defaults meanwhile and an answer waits for one
 * measurement at most; engine/phi3/autotune.ts), kept in the `phi3-kernel-tuning` database
 * (storage/tuning-store.ts), and built in by later loads from the start (`kernelTuning`). The
 * attention kernels' tuning is measured the same way after the first engine task that leaves a
 * chat of ATTENTION_TUNE_CONTEXT tokens or more, and again at 4× the context of the stored choice
 * (`attentionTuning`, `tuneAttentionWhenDue`): attention matters only in long chats, and it is
 * measured at the chat's own context, so nothing has to be prefilled for it.
 */
import { AppError, serializeError } from '../engine/errors';
import { acquireDevice, type GpuContext } from '../engine/gpu/device';
import { probeGpu } from '../engine/gpu/probe';
import { NativeEngine } from '../engine/native-engine';
import {
  ATTENTION_TUNE_CONTEXT,
  attentionAutotuneKey,
  attentionMeasurementCount,
  attentionTuneDue,
  autotuneAttention,
  autotuneKernels,
  autotuneKey,
  decodeTuningCandidates,
  f16GemmOffered,
  measurementCount,
  prefillTuningCandidates,
  softwareAdapter,
  type Schedule,
} from '../engine/phi3/autotune';
import type { Phi3Runtime } from '../engine/phi3/model';
import type { Phi3Config } from '../engine/phi3/plan';
import { OrtEngine, type OrtProvider } from '../engine/ort/ort-engine';
import type { ModelFiles } from '../engine/phi3/files';
import { GREEDY_SAMPLING } from '../engine/types';
import { CATALOG, entryFromParam } from '../storage/catalog';
import { downloadModel, type DownloadProgress, type DownloadStats } from '../storage/downloader';
import { importLocalFiles } from '../storage/local-import';
import { DB_NAME, ModelStore, READ_AHEAD, storageEstimate } from '../storage/model-store';
import { TUNING_DB_NAME, TuningStore, type StoredAttentionTuning, type StoredTuning } from '../storage/tuning-store';
import type { AttentionTuningInfo, AutotuneMode, KernelTuningInfo, PromptCount, WorkerRequest, WorkerResponse } from './protocol';

const scope = self as unknown as DedicatedWorkerGlobalScope;

/** Requests already answered (an engine request failed by a device loss); later replies are dropped. */
const settled = new Set<number>();

function reply(msg: WorkerResponse): void {
  if (msg.id !== 0 && settled.has(msg.id)) return;
  scope.postMessage(msg);
}

let dbName = DB_NAME;
let storePromise: Promise<ModelStore> | undefined;
/**
 * The model store, opened on first use. It is dropped (and opened again by the next request) when
 * its open fails or another tab's newer app version closes it: the next open then says what to do.
 */
const store = () => {
  if (storePromise) return storePromise;
  const opening = ModelStore.open(dbName, {
    blocked: () => reply({ type: 'storage-blocked', id: 0 }),
    closed: () => {
      if (storePromise === opening) storePromise = undefined;
    },
  });
  storePromise = opening;
  opening.catch(() => {
    if (storePromise === opening) storePromise = undefined;
  });
  return opening;
};
const running = new Map<number, AbortController>();

async function cachedModel(modelId: string) {
  const m = (await (await store()).list()).find((c) => c.modelId === modelId);
  if (!m) throw new AppError('MODEL_NOT_CACHED', `${modelId} is not in the store.`);
  return m;
}

// ---- Engine ----------------------------------------------------------------------------------

let gpu: Promise<GpuContext> | undefined;
/**
 * The loaded engine; `contextLimit` is the limit the page was last told (load-done, context-limit).
 * A native one also has its kernel tuning as the page was last told it (`tuning`; each `tuning`
 * message carries all of it) and what measures its attention (`attention`).
 */
let engine: { modelId: string; engine: NativeEngine | OrtEngine; contextLimit: number; tuning?: KernelTuningInfo; attention?: ReturnType<typeof attentionTuning> } | undefined;
/** The model being loaded or loaded last, so a device loss can name what to reload. */
let engineModelId: string | null = null;
/** Ids of engine requests in flight, failed at once when the device is lost. */
const engineRequests = new Set<number>();
let engineQueue: Promise<unknown> = Promise.resolve();

function deviceLost(message: string): void {
  gpu = undefined;
  // The device is gone, so its buffers are too; nothing to destroy.
  engine = undefined;
  const error = new AppError('GPU_DEVICE_LOST', `The GPU device was lost (${message}). The model is reloading from this device's storage.`).toJSON();
  for (const id of engineRequests) {
    running.get(id)?.abort();
    reply({ type: 'error', id, error });
    settled.add(id);
  }
  // Tasks stuck on the dead device must not hold up the reload that follows.
  engineQueue = Promise.resolve();
  reply({ type: 'device-lost', id: 0, modelId: engineModelId, error });
}

function gpuContext(): Promise<GpuContext> {
  const p = (gpu ??= acquireDevice(navigator.gpu, { onLost: (info) => deviceLost(info.message || info.reason) }));
  p.catch(() => {
    if (gpu === p) gpu = undefined;
  });
  return p;
}

/**
 * Runs an engine request after the ones before it; it is failed early if the device is lost
 * meanwhile. Id 0: the worker's own work (a background measurement), which no page request awaits.
 */
function engineTask<T>(id: number, task: () => Promise<T>): Promise<T> {
  if (id !== 0) engineRequests.add(id);
  const next = engineQueue.then(task).finally(() => {
    engineRequests.delete(id);
    reportContextLimit();
    tuneAttentionWhenDue();
  });
  engineQueue = next.catch(() => undefined);
  return next;
}

/**
 * Tells the page when the loaded model's context limit is no longer the one it was told: a native
 * KV cache that ran out of GPU memory growing lowered it (Phi3Runtime.fitCapacity). Runs after
 * every engine task, so the page hears it before the request that hit it fails.
 */
function reportContextLimit(): void {
  if (!engine) return;
  const { contextLimit } = engine.engine.runtime;
  if (contextLimit === engine.contextLimit) return;
  engine.contextLimit = contextLimit;
  const gpuMemory = engine.engine instanceof NativeEngine ? engine.engine.gpuMemory() : undefined;
  reply({ type: 'context-limit', id: 0, modelId: engine.modelId, contextLimit, ...(gpuMemory ? { gpuMemory } : {}) });
}

/** A stored model as `ModelFiles`: the graph from the manifest, external data beside it, JSON from the root. */
async function storedModelFiles(modelId: string): Promise<{ files: ModelFiles; graphBytes: number }> {
  const s = await store();
  const m = await s.getManifest(modelId);
  if (!m) throw new AppError('MODEL_NOT_CACHED', `${modelId} is not in the store; download it first.`);
  if (!m.complete) throw new AppError('MODEL_NOT_CACHED', `${modelId} is only partly downloaded; resume the download first.`);
  const graph = m.files.find((f) => f.role === 'graph');
  if (!graph) throw new AppError('MODEL_MISSING_WEIGHT', `${modelId} has no .onnx graph among its files (${m.files.map((f) => f.path).join(', ')}).`);
  const paths = new Set(m.files.map((f) => f.path));
  const graphBytes = m.files.filter((f) => f.role === 'graph' || f.role === 'weights').reduce((n, f) => n + f.size, 0);
  const files: ModelFiles = {
    onnxPath: graph.path,
    open: async (path) => {
      if (!paths.has(path)) throw new AppError('MODEL_MISSING_WEIGHT', `The graph needs "${path}", which ${modelId} does not include.`);
      return s.openFile(modelId, path, { readAhead: READ_AHEAD });
    },
    readJson: async (path) => {
      if (!paths.has(path)) return undefined;
      const src = await s.openFile(modelId, path, { readAhead: READ_AHEAD });
      // Root JSON files are small (tokenizer.json ~2 MB), so reading one whole is fine.
      return JSON.parse(new TextDecoder().decode(await src.read(0, src.size))) as unknown;
    },
  };
  return { files, graphBytes };
}

/**
 * onnxruntime-web's provider: its WebGPU EP on a hardware adapter, else its WASM EP. A software
 * adapter (SwiftShader) gets WASM: the WebGPU EP needs seconds per token there (see ort-engine.ts).
 */
async function ortProvider(): Promise<OrtProvider> {
  const adapter = await navigator.gpu?.requestAdapter().catch(() => null);
  if (!adapter) return 'wasm';
  const i = adapter.info;
  return /swiftshader/i.test(`${i.vendor} ${i.architecture} ${i.description}`) ? 'wasm' : 'webgpu';
}

async function loadOrt(req: Extract<WorkerRequest, { type: 'load' }>): Promise<void> {
  const { files } = await storedModelFiles(req.modelId);
  const t0 = performance.now();
  // onnxruntime-web takes each file whole (ort-engine.ts); it reports no upload progress.
  const loaded = await OrtEngine.load(files, { provider: await ortProvider() });
  engine = { modelId: req.modelId, engine: loaded, contextLimit: loaded.info.contextLimit };
  reply({ type: 'load-done', id: req.id, info: loaded.info, timings: { prepareMs: performance.now() - t0, uploadMs: 0, compileMs: 0 } });
}

async function load(req: Extract<WorkerRequest, { type: 'load' }>): Promise<void> {
  await engine?.engine.destroy();
  engine = undefined;
  engineModelId = req.modelId;
  if (req.engine === 'ort') return loadOrt(req);
  const { files, graphBytes } = await storedModelFiles(req.modelId);
  const ctx = await gpuContext();
  const t0 = performance.now();
  let lastEmit = 0;
  let firstUpload = 0;
  const progress = (phase: 'load' | 'compile', doneBytes: number, totalBytes: number) => {
    const bytesPerSec = doneBytes / Math.max(1e-3, (performance.now() - t0) / 1000);
    reply({
      type: 'load-progress',
      id: req.id,
      progress: { modelId: req.modelId, phase, files: [], doneBytes, totalBytes, fetchedBytes: 0, bytesPerSec, etaSec: bytesPerSec > 0 ? (totalBytes - doneBytes) / bytesPerSec : null },
    });
  };
  // The total shown is the graph + weight files' stored size (what streams out of IndexedDB), known
  // before the upload starts; uploaded bytes differ a little (fp16 norms widened, graph framing
  // skipped), so the total grows to the uploaded count if that passes it.
  const tuning = kernelTuning(ctx, req.autotune ?? 'auto');
  const attention = attentionTuning(ctx, req.autotune ?? 'auto');
  const options = {
    onProgress: (uploaded: number) => {
      const now = performance.now();
      firstUpload ||= now;
      if (now - lastEmit < 100) return;
      lastEmit = now;
      progress('load', uploaded, Math.max(graphBytes, uploaded));
    },
    resolveMatMulTuning: tuning.resolve,
    resolveAttentionTuning: attention.resolve,
  };
  let loaded: NativeEngine;
  for (;;) {
    try {
      loaded = await NativeEngine.load(ctx, files, options);
      break;
    } catch (err) {
      // A stored choice that no longer builds (a driver update, kernels changed under the same
      // key): drop it and load again without it; the autotune then measures against the defaults
      // again. Attention's goes first, then the kernels', so a good one is not lost with a bad one.
      if (!(err instanceof AppError && (err.code === 'GPU_VALIDATION' || err.code === 'BAD_ARGUMENT'))) throw err;
      if (attention.stored) await attention.drop();
      else if (tuning.stored) await tuning.drop();
      else throw err;
    }
  }
  // 'compile': one forward pass over the BOS token, so the driver compiles every pipeline now and
  // the first answer does not pay for it. Its KV entry stays valid (every prompt starts with BOS).
  const uploaded = performance.now();
  progress('compile', graphBytes, graphBytes);
  try {
    const warm = loaded.generateIds([1], { maxNewTokens: 1, sampling: GREEDY_SAMPLING });
    while (!(await warm.next()).done);
  } catch (err) {
    loaded.destroy();
    throw err;
  }
  if (!gpu || (await gpu) !== ctx) {
    // The device was lost while loading; `deviceLost` has answered this request already.
    loaded.destroy();
    throw new AppError('GPU_DEVICE_LOST', 'The GPU device was lost while the model was loading.');
  }
  const attentionNow = attention.info();
  const tuningNow: KernelTuningInfo = { ...tuning.info(), ...(attentionNow ? { attention: attentionNow } : {}) };
  engine = { modelId: req.modelId, engine: loaded, contextLimit: loaded.info.contextLimit, tuning: tuningNow, attention };
  const timings = { prepareMs: (firstUpload || uploaded) - t0, uploadMs: uploaded - (firstUpload || uploaded), compileMs: performance.now() - uploaded };
  reply({ type: 'load-done', id: req.id, info: loaded.info, timings, tuning: tuningNow, gpuMemory: loaded.gpuMemory() });
  if (tuningNow.source === 'measuring') void measureInBackground(loaded, tuning);
}

/** The adapter's default kernels, as KernelTuningInfo names them. */
const DEFAULT_TUNING = { decode: { name: 'default' }, prefill: { name: 'default' } } as const;

/** Thrown into a background measurement whose model was replaced or unloaded: it just stops. */
class Superseded extends Error {}

/**
 * Measures the kernels of a just loaded model (`tuning.measure`) while it is in use: each
 * measurement is one engine task (a request that arrives meanwhile runs after the one under way;
 * the runtime is back on the defaults between them), progress and the outcome go to the page as
 * `tuning` messages. A load, an unload or a lost device ends it without a word (the page hears of
 * those anyway); any other failure is reported as 'skipped' with its reason, nothing is stored,
 * and the next load measures again.
 */
async function measureInBackground(loaded: NativeEngine, tuning: ReturnType<typeof kernelTuning>): Promise<void> {
  const current = () => engine?.engine === loaded;
  // The kernels' part of what the page knows; attention's stays as it is.
  const send = (info: KernelTuningInfo) => sendTuning(loaded, (t) => ({ ...info, ...(t.attention ? { attention: t.attention } : {}) }));
  const schedule = backgroundSchedule(loaded);
  try {
    send(await tuning.measure(loaded.runtime, schedule, (done, total) => send({ ...DEFAULT_TUNING, source: 'measuring', progress: { done, total } })));
    // A chat that grew long while the kernels were measured: attention's turn now.
    tuneAttentionWhenDue();
  } catch (err) {
    if (err instanceof Superseded || !current()) return;
    send({ ...DEFAULT_TUNING, source: 'skipped', reason: err instanceof Error ? err.message : String(err) });
  }
}

/** Each unit of a background measurement of `loaded`, as an engine task of its own; one that finds another model loaded throws Superseded. */
function backgroundSchedule(loaded: NativeEngine): Schedule {
  return <T>(work: () => Promise<T>) =>
    engineTask(0, () => {
      if (engine?.engine !== loaded) throw new Superseded();
      return work();
    });
}

/** Tells the page the tuning of `loaded` with `change` applied, if it is still the loaded model. */
function sendTuning(loaded: NativeEngine, change: (t: KernelTuningInfo) => KernelTuningInfo): void {
  if (engine?.engine !== loaded || !engine.tuning) return;
  engine.tuning = change(engine.tuning);
  reply({ type: 'tuning', id: 0, modelId: engine.modelId, tuning: engine.tuning });
}

/**
 * Starts measuring the loaded native model's attention (`measureAttentionInBackground`) once its
 * chat is long enough (attentionTuneDue: with nothing stored, or 4× the context of what is), after
 * the kernels' measurement, if any, has finished. Runs after every engine task.
 */
function tuneAttentionWhenDue(): void {
  const e = engine;
  if (!e?.attention || !(e.engine instanceof NativeEngine) || e.tuning?.source === 'measuring') return;
  if (!e.attention.due(e.engine.runtime)) return;
  void measureAttentionInBackground(e.engine, e.attention);
}

/** As measureInBackground, for attention: progress and the outcome go to the page in `tuning` messages. */
async function measureAttentionInBackground(loaded: NativeEngine, attention: ReturnType<typeof attentionTuning>): Promise<void> {
  const send = (info: AttentionTuningInfo) => sendTuning(loaded, (t) => ({ ...t, attention: info }));
  // Between measurements the chat runs what it ran before: the stored choice, or the defaults.
  const running = attention.running();
  const context = loaded.runtime.cachedIds.length;
  const measuring = (done: number, total: number) => send({ ...running, source: 'measuring', context, progress: { done, total } });
  try {
    measuring(0, attention.total);
    send(await attention.measure(loaded.runtime, backgroundSchedule(loaded), measuring));
  } catch (err) {
    if (err instanceof Superseded || engine?.engine !== loaded) return;
    send({ ...running, source: 'skipped', context, reason: err instanceof Error ? err.message : String(err) });
  }
}

let tunings: TuningStore | undefined;

/** The tuning store, opened on first use, beside the model store (a test's own database has its own). */
function tuningStore(): TuningStore {
  return (tunings ??= new TuningStore(dbName === DB_NAME ? TUNING_DB_NAME : `${dbName}-tuning`));
}

/** Whether a load measures nothing: 'never', or 'auto' on a software adapter (its timings say nothing of a GPU). */
function tuningSkipped(ctx: GpuContext, mode: AutotuneMode): boolean {
  return mode === 'never' || (mode === 'auto' && softwareAdapter(ctx.adapterInfo));
}

/** What the load reports of a stored or just measured tuning. */
function tuningInfo(source: 'stored' | 'measured', t: Pick<StoredTuning, 'decode' | 'prefill'>): KernelTuningInfo {
  return { source, decode: { name: t.decode.chosen.name, timings: t.decode.timings }, prefill: { name: t.prefill.chosen.name, timings: t.prefill.timings } };
}

/**
 * The kernel tuning of one native load (engine/phi3/autotune.ts). `resolve` (the load's
 * resolveMatMulTuning) looks up the choice stored for this GPU, model shape and kernel version,
 * so the kernels are built and compiled with it once. `info`, once loaded, reports that choice,
 * or 'measuring' where there is none; `measure` then measures one (the decode GEMV, then the
 * prefill GEMM on top of its choice; a second or two on a real GPU, once, each measurement a
 * unit of `schedule`), switches the model to it and stores it. Skipped ('never', or 'auto' on a
 * software adapter), it resolves nothing and reports the defaults. The tuning store failing only
 * means measuring again next time.
 */
function kernelTuning(ctx: GpuContext, mode: AutotuneMode) {
  const skip = tuningSkipped(ctx, mode);
  const candidates = decodeTuningCandidates(ctx.device, ctx.adapterInfo);
  const store = tuningStore();
  let key: string | undefined;
  let stored: StoredTuning | undefined;
  let f16Gemm = false;
  return {
    get stored() {
      return stored;
    },
    resolve: skip
      ? undefined
      : async (config: Phi3Config, precision: string) => {
          f16Gemm = f16GemmOffered(precision, ctx.features.shaderF16);
          key = autotuneKey(ctx.adapterInfo, config, precision, [...candidates, ...prefillTuningCandidates(ctx.adapterInfo, undefined, f16Gemm)]);
          stored = await store.get(key).catch(() => undefined);
          return stored?.prefill.chosen.tuning;
        },
    /** Deletes the stored choice (it did not build): the next resolve finds none. */
    async drop() {
      if (stored) await store.delete(stored.key).catch(() => undefined);
      stored = undefined;
    },
    info(): KernelTuningInfo {
      if (skip || key === undefined) return { source: 'skipped', ...DEFAULT_TUNING };
      if (stored) return tuningInfo('stored', stored);
      return { source: 'measuring', ...DEFAULT_TUNING, progress: { done: 0, total: measurementCount(candidates, ctx.adapterInfo, f16Gemm) } };
    },
    async measure(runtime: Phi3Runtime, schedule: Schedule, onProgress: (done: number, total: number) => void): Promise<KernelTuningInfo> {
      if (key === undefined) throw new AppError('BAD_ARGUMENT', 'kernelTuning.measure: nothing to measure (skipped, or not loaded).');
      const { decode, prefill } = await autotuneKernels(runtime, candidates, ctx.adapterInfo, onProgress, schedule);
      const record = { key, decode: { chosen: decode.chosen, timings: decode.timings }, prefill: { chosen: prefill.chosen, timings: prefill.timings }, measuredAt: Date.now() };
      await store.put(record).catch(() => undefined);
      return tuningInfo('measured', record);
    },
  };
}

/** What the page is told of a stored or just measured attention choice. */
function attentionInfo(source: 'stored' | 'measured', t: StoredAttentionTuning['attention']): AttentionTuningInfo {
  return { source, decode: { name: t.decode.chosen.name, timings: t.decode.timings }, prefill: { name: t.prefill.chosen.name, timings: t.prefill.timings }, context: t.context };
}

/**
 * The attention tuning of one native load, as kernelTuning is the MatMulNBits kernels': `resolve`
 * (the load's resolveAttentionTuning) finds the stored choice; with none, `info` says 'waiting'
 * and `due` says when a chat is long enough to `measure` one, or to measure a stored one again at
 * a longer context (attentionTuneDue). A measurement that stopped is not tried again before the
 * next load. Skipped as kernelTuning is.
 */
function attentionTuning(ctx: GpuContext, mode: AutotuneMode) {
  const skip = tuningSkipped(ctx, mode);
  const store = tuningStore();
  let key: string | undefined;
  let stored: StoredAttentionTuning | undefined;
  let headDim = 0;
  let busy = false;
  let failed = false;
  return {
    get stored() {
      return stored;
    },
    /** Measurements a `measure` makes at most. */
    get total() {
      return attentionMeasurementCount(ctx.adapterInfo, headDim);
    },
    resolve: skip
      ? undefined
      : async (config: Phi3Config, precision: string) => {
          headDim = config.headDim;
          key = attentionAutotuneKey(ctx.adapterInfo, config, precision);
          stored = await store.getAttention(key).catch(() => undefined);
          return stored?.attention.prefill.chosen.tuning;
        },
    async drop() {
      if (stored) await store.delete(stored.key).catch(() => undefined);
      stored = undefined;
    },
    info(): AttentionTuningInfo | undefined {
      if (skip || key === undefined) return undefined;
      if (stored) return attentionInfo('stored', stored.attention);
      return { source: 'waiting', ...DEFAULT_TUNING, context: ATTENTION_TUNE_CONTEXT };
    },
    due(runtime: Phi3Runtime): boolean {
      return key !== undefined && !busy && !failed && attentionTuneDue(runtime, stored?.attention.context);
    },
    /** What runs while it measures: the stored choice, or the defaults. */
    running(): Pick<AttentionTuningInfo, 'decode' | 'prefill'> {
      return stored ? { decode: { name: stored.attention.decode.chosen.name }, prefill: { name: stored.attention.prefill.chosen.name } } : DEFAULT_TUNING;
    },
    async measure(runtime: Phi3Runtime, schedule: Schedule, onProgress: (done: number, total: number) => void): Promise<AttentionTuningInfo> {
      if (key === undefined) throw new AppError('BAD_ARGUMENT', 'attentionTuning.measure: nothing to measure (skipped, or not loaded).');
      busy = true;
      try {
        const { decode, prefill, context } = await autotuneAttention(runtime, ctx.adapterInfo, { schedule, onProgress });
        const record: StoredAttentionTuning = { key, attention: { decode: { chosen: decode.chosen, timings: decode.timings }, prefill: { chosen: prefill.chosen, timings: prefill.timings }, context }, measuredAt: Date.now() };
        stored = record;
        await store.put(record).catch(() => undefined);
        return attentionInfo('measured', record.attention);
      } catch (err) {
        failed = true;
        throw err;
      } finally {
        busy = false;
      }
    },
  };
}

function loadedEngine(): NativeEngine | OrtEngine {
  if (!engine) throw new AppError('MODEL_NOT_CACHED', 'No model is loaded: download or load one in the model panel first.');
  return engine.engine;
}

async function generate(req: Extract<WorkerRequest, { type: 'generate' }>, signal: AbortSignal): Promise<void> {
  const gen = loadedEngine().chat(req.messages, req.options, signal, (done, total, again) => reply({ type: 'prefill-progress', id: req.id, done, total, ...(again ? { again } : {}) }));
  for (;;) {
    const r = await gen.next();
    if (r.done) return reply({ type: 'generate-done', id: req.id, stats: r.value });
    reply({ type: 'token', id: req.id, token: r.value });
  }
}

/** The running prepare's controller: the next engine request that needs the cache stops it. */
let preparing: AbortController | undefined;

function stopPreparing(): void {
  preparing?.abort();
  preparing = undefined;
}

/**
 * ChatEngine.prepare, one chunk per engine task; the engine is the one loaded when its first chunk
 * runs (after any load queued before it).
 */
async function prepare(req: Extract<WorkerRequest, { type: 'prepare' }>, signal: AbortSignal): Promise<void> {
  let gen: ReturnType<NativeEngine['prepare']> | undefined;
  for (;;) {
    const r = await engineTask(req.id, () => (gen ??= loadedEngine().prepare(req.messages, signal)).next());
    if (r.done) return reply({ type: 'prepared', id: req.id, result: r.value });
  }
}

/** What each message adds to the prompt (ChatEngine.countMessages: linear, its total exact). */
function countTokens(messages: Extract<WorkerRequest, { type: 'count-tokens' }>['messages']): PromptCount {
  const e = loadedEngine();
  // The runtime's limit, not the load's: a native cache that ran out of GPU memory lowered it.
  return { ...e.countMessages(messages), contextLimit: e.runtime.contextLimit };
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
        // The first call names the id the import is stored under (local-import.ts), which the UI selects.
        onBytes: (doneBytes, totalBytes, modelId) => onProgress({ modelId, phase: 'download', files: [], doneBytes, totalBytes, fetchedBytes: 0, bytesPerSec: 0, etaSec: null }),
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
        tunings = undefined;
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
    case 'load':
      // A new model replaces the old one: stop the answer being generated first.
      stopPreparing();
      for (const id of engineRequests) running.get(id)?.abort();
      return engineTask(req.id, () => load(req));
    case 'generate': {
      stopPreparing();
      const ctrl = new AbortController();
      running.set(req.id, ctrl);
      try {
        await engineTask(req.id, () => generate(req, ctrl.signal));
      } finally {
        running.delete(req.id);
      }
      return;
    }
    case 'prepare': {
      stopPreparing();
      const ctrl = new AbortController();
      preparing = ctrl;
      running.set(req.id, ctrl);
      try {
        await prepare(req, ctrl.signal);
      } finally {
        running.delete(req.id);
        if (preparing === ctrl) preparing = undefined;
      }
      return;
    }
    case 'count-tokens':
      return engineTask(req.id, async () => reply({ type: 'token-count', id: req.id, count: countTokens(req.messages) }));
    case 'unload':
      stopPreparing();
      return engineTask(req.id, async () => {
        await engine?.engine.destroy();
        engine = undefined;
        engineModelId = null;
        reply({ type: 'unloaded', id: req.id });
      });
    case 'lose-device': {
      const ctx = gpu && (await gpu);
      if (!ctx) throw new AppError('BAD_ARGUMENT', 'There is no GPU device to lose: load a model first.');
      // destroy() is reported as reason 'destroyed', which acquireDevice does not treat as a loss.
      ctx.device.destroy();
      deviceLost('destroyed by the test hook');
      reply({ type: 'unloaded', id: req.id });
      return;
    }
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
