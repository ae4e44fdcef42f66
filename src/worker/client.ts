/**
 * The UI's only way to reach the engine: a typed client over the engine worker.
 * Each call gets a request id and resolves with the matching response; events (download progress,
 * tokens) go to the callback given with the request; errors arrive as `{name, code, message}` and
 * are rethrown as `WorkerError` with the same code.
 *
 * Liveness: the client pings the worker every `heartbeatMs`; a worker `error` event or no pong
 * within `deadAfterMs` marks it dead — every pending call fails with `WORKER_DEAD`, `onDead`
 * listeners run, and `restart()` starts a fresh worker (which reloads from IndexedDB, no network).
 * A lost GPU device is not a dead worker: the worker answers `device-lost`, `onDeviceLost`
 * listeners run, and loading the model again (from IndexedDB) gets a fresh device.
 * A model store held open by another tab's older app version is not an error either: the worker
 * answers `storage-blocked` and `onStorageBlocked` listeners run while the request waits.
 * A context limit lowered by a KV cache out of GPU memory reaches `onContextLimit` listeners.
 * Rule: never resolve a request from an event; only the terminal response settles it.
 * One call runs on the page, not in the worker: `persist()` (windows only have the API).
 */
import type { SerializedError } from '../engine/errors';
import type { GpuProbe } from '../engine/gpu/probe';
import type { ChatMessage, EngineKind, GenerateOptions, GenerationStats, GpuMemoryInfo, PrefillReport, TokenEvent } from '../engine/types';
import { requestPersistence } from '../storage/model-store';
import {
  isEvent,
  type CachedModel,
  type CatalogEntry,
  type DownloadProgress,
  type DownloadStats,
  type DownloadTuning,
  type AutotuneMode,
  type KernelTuningInfo,
  type LoadedInfo,
  type ModelRef,
  type PrepareResult,
  type PromptCount,
  type StorageEstimateResult,
  type WorkerEvent,
  type WorkerRequest,
  type WorkerResponse,
} from './protocol';

export class WorkerError extends Error {
  override readonly name = 'WorkerError';
  constructor(readonly code: SerializedError['code'], message: string) {
    super(message);
  }
}

/** The loaded model's new context limit, and the native engine's GPU memory after the change. */
export type ContextLimitChange = { modelId: string; contextLimit: number; gpuMemory?: GpuMemoryInfo };
/** A native model's kernel tuning, measured in the background after its first load on a GPU (the worker's `tuning`). */
export type TuningChange = { modelId: string; tuning: KernelTuningInfo };

type Pending = { resolve: (msg: WorkerResponse) => void; reject: (err: WorkerError) => void; onEvent?: (ev: WorkerEvent) => void };

export interface DownloadHandle {
  id: number;
  done: Promise<{ model: CachedModel; stats: DownloadStats }>;
  /** Stops fetching; the stored bytes stay and a later download resumes from them. */
  pause(): void;
  /** Stops and deletes what was stored for the model. */
  cancel(modelId: string): Promise<void>;
}

export interface ClientOptions {
  heartbeatMs?: number;
  deadAfterMs?: number;
  /** IndexedDB database for the worker's store (tests isolate with it). */
  dbName?: string;
}

const LOAD_DEAD_AFTER_MS = 120_000;

const defaultFactory = () => new Worker(new URL('./engine.worker.ts', import.meta.url), { type: 'module' });

export class EngineClient {
  private worker!: Worker;
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private lastPong = 0;
  private timer: ReturnType<typeof setInterval> | undefined;
  private dead = false;
  private deadListeners = new Set<(err: WorkerError) => void>();
  private lostListeners = new Set<(modelId: string | null, err: WorkerError) => void>();
  private blockedListeners = new Set<() => void>();
  private limitListeners = new Set<(change: ContextLimitChange) => void>();
  private tuningListeners = new Set<(change: TuningChange) => void>();
  /** Loads in flight: a load may keep the worker's thread busy for seconds at a time. */
  private loading = 0;

  constructor(
    private readonly factory: () => Worker = defaultFactory,
    private readonly opts: ClientOptions = {},
  ) {
    this.start();
  }

  private start(): void {
    this.dead = false;
    this.worker = this.factory();
    this.worker.onmessage = (ev: MessageEvent<WorkerResponse>) => this.dispatch(ev.data);
    this.worker.onerror = (ev) => this.markDead(`The engine worker crashed: ${ev.message || 'script error'}`);
    this.worker.onmessageerror = () => this.markDead('The engine worker sent a message that could not be read.');
    if (this.opts.dbName) void this.request((id) => ({ type: 'configure', id, dbName: this.opts.dbName }), 'configured').catch(() => undefined);
    this.lastPong = Date.now();
    const beat = this.opts.heartbeatMs ?? 2000;
    const deadAfter = this.opts.deadAfterMs ?? 4 * beat;
    // Dead = a ping unanswered for `deadAfter`, judged from when it was sent: a hidden tab's timers
    // may fire once a minute, which must not read as a silent worker.
    let pingSentAt: number | undefined;
    this.timer = setInterval(() => {
      const now = Date.now();
      if (pingSentAt !== undefined && this.lastPong < pingSentAt) {
        // Parsing and uploading a multi-GB model on a busy machine can hold the worker's thread past
        // the usual deadline, so a load gets a longer one; a worker hung in a load is still caught.
        const limit = this.loading > 0 ? Math.max(deadAfter, LOAD_DEAD_AFTER_MS) : deadAfter;
        if (now - pingSentAt > limit) return this.markDead(`The engine worker stopped answering (no heartbeat for ${limit} ms).`);
        return;
      }
      pingSentAt = now;
      this.worker.postMessage({ type: 'ping', id: 0 } satisfies WorkerRequest);
    }, beat);
  }

  private markDead(message: string): void {
    if (this.dead) return;
    this.dead = true;
    clearInterval(this.timer);
    const err = new WorkerError('WORKER_DEAD', `${message} Restart it to continue; cached models reload from this device.`);
    this.failAll(err);
    for (const l of this.deadListeners) l(err);
  }

  get alive(): boolean {
    return !this.dead;
  }

  /** Called once per death of the worker. Returns an unsubscribe function. */
  onDead(listener: (err: WorkerError) => void): () => void {
    this.deadListeners.add(listener);
    return () => this.deadListeners.delete(listener);
  }

  /** Called when the worker reports a lost GPU device, with the model that was loaded. */
  onDeviceLost(listener: (modelId: string | null, err: WorkerError) => void): () => void {
    this.lostListeners.add(listener);
    return () => this.lostListeners.delete(listener);
  }

  /**
   * Called when opening the model store waits on another tab that holds an older version of it
   * open (see model-store.ts); the waiting request goes on by itself once that tab lets go.
   */
  onStorageBlocked(listener: () => void): () => void {
    this.blockedListeners.add(listener);
    return () => this.blockedListeners.delete(listener);
  }

  /**
   * Called when the loaded model's context limit drops: its KV cache ran out of GPU memory growing
   * (the worker's `context-limit`), before the request that hit it fails.
   */
  onContextLimit(listener: (change: ContextLimitChange) => void): () => void {
    this.limitListeners.add(listener);
    return () => this.limitListeners.delete(listener);
  }

  /**
   * Called as a native model measures its kernels in the background (its load answered with
   * tuning source 'measuring'): each measurement's progress, then the choice it now runs, or why
   * the measurement stopped.
   */
  onTuning(listener: (change: TuningChange) => void): () => void {
    this.tuningListeners.add(listener);
    return () => this.tuningListeners.delete(listener);
  }

  /** Terminates the current worker (if any is left) and starts a fresh one. */
  restart(): void {
    clearInterval(this.timer);
    this.worker.terminate();
    this.failAll(new WorkerError('WORKER_DEAD', 'The engine worker was restarted.'));
    this.start();
  }

  private dispatch(msg: WorkerResponse): void {
    this.lastPong = Date.now();
    if (msg.type === 'pong' && msg.id === 0) return;
    if (msg.type === 'device-lost') {
      const err = new WorkerError(msg.error.code, msg.error.message);
      for (const l of this.lostListeners) l(msg.modelId, err);
      return;
    }
    if (msg.type === 'storage-blocked') {
      for (const l of this.blockedListeners) l();
      return;
    }
    if (msg.type === 'tuning') {
      for (const l of this.tuningListeners) l({ modelId: msg.modelId, tuning: msg.tuning });
      return;
    }
    if (msg.type === 'context-limit') {
      const change: ContextLimitChange = { modelId: msg.modelId, contextLimit: msg.contextLimit, ...(msg.gpuMemory ? { gpuMemory: msg.gpuMemory } : {}) };
      for (const l of this.limitListeners) l(change);
      return;
    }
    const p = this.pending.get(msg.id);
    if (!p) return;
    if (isEvent(msg)) {
      p.onEvent?.(msg);
      return;
    }
    this.pending.delete(msg.id);
    if (msg.type === 'error') p.reject(new WorkerError(msg.error.code, msg.error.message));
    else p.resolve(msg);
  }

  private failAll(err: WorkerError): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  private request<T extends WorkerResponse['type']>(
    build: (id: number) => WorkerRequest,
    expect: T,
    onEvent?: (ev: WorkerEvent) => void,
    transfer: Transferable[] = [],
  ): Promise<Extract<WorkerResponse, { type: T }>> & { id: number } {
    const id = this.nextId++;
    const promise = new Promise<Extract<WorkerResponse, { type: T }>>((resolve, reject) => {
      if (this.dead) return reject(new WorkerError('WORKER_DEAD', 'The engine worker is not running; restart it.'));
      this.pending.set(id, {
        resolve: (msg) => {
          if (msg.type === expect) resolve(msg as Extract<WorkerResponse, { type: T }>);
          else reject(new WorkerError('INTERNAL', `expected ${expect}, got ${msg.type}`));
        },
        reject,
        onEvent,
      });
      this.worker.postMessage(build(id), transfer);
    });
    return Object.assign(promise, { id });
  }

  /** Stops a running request by id (it then fails with code ABORTED). */
  abort(target: number): void {
    if (!this.dead) this.worker.postMessage({ type: 'abort', id: this.nextId++, target } satisfies WorkerRequest);
  }

  async probe(): Promise<GpuProbe> {
    return (await this.request((id) => ({ type: 'probe', id }), 'probe-result')).probe;
  }

  async ping(): Promise<void> {
    await this.request((id) => ({ type: 'ping', id }), 'pong');
  }

  async catalog(): Promise<CatalogEntry[]> {
    return (await this.request((id) => ({ type: 'catalog', id }), 'catalog-result')).entries;
  }

  async listCached(): Promise<CachedModel[]> {
    return (await this.request((id) => ({ type: 'list-cached', id }), 'cached-result')).models;
  }

  download(model: ModelRef, hub: string, opts: { tuning?: DownloadTuning; onProgress?: (p: DownloadProgress) => void } = {}): DownloadHandle {
    const req = this.request(
      (id) => ({ type: 'download', id, model, hub, tuning: opts.tuning }),
      'download-done',
      (ev) => {
        if (ev.type === 'download-progress') opts.onProgress?.(ev.progress);
      },
    );
    return {
      id: req.id,
      done: req.then(({ model: m, stats }) => ({ model: m, stats })),
      pause: () => this.abort(req.id),
      cancel: async (modelId: string) => {
        this.abort(req.id);
        await req.catch(() => undefined);
        await this.deleteModel(modelId);
      },
    };
  }

  async deleteModel(modelId: string): Promise<void> {
    await this.request((id) => ({ type: 'delete-model', id, modelId }), 'deleted');
  }

  async deleteAll(): Promise<void> {
    await this.request((id) => ({ type: 'delete-all', id }), 'deleted');
  }

  async estimate(): Promise<StorageEstimateResult> {
    return (await this.request((id) => ({ type: 'estimate', id }), 'estimate-result')).estimate;
  }

  /**
   * Asks the browser to keep the model store, from the page: `navigator.storage.persist()` is
   * exposed to windows only, so the worker, which asked before, always got "not persisted" and
   * the browser was never asked.
   */
  persist(): Promise<{ persisted: boolean; wasPersisted: boolean }> {
    return requestPersistence();
  }

  /**
   * Loads a cached model to the GPU; progress arrives in phases 'load' and 'compile'. A native
   * model's first load on a GPU then measures its kernels in the background (`onTuning`).
   */
  async load(modelId: string, engine: EngineKind, onProgress?: (p: DownloadProgress) => void, autotune?: AutotuneMode): Promise<LoadedInfo> {
    this.loading++;
    try {
      const r = await this.request(
        (id) => ({ type: 'load', id, modelId, engine, ...(autotune ? { autotune } : {}) }),
        'load-done',
        (ev) => {
          if (ev.type === 'load-progress') onProgress?.(ev.progress);
        },
      );
      return { ...r.info, timings: r.timings, ...(r.tuning ? { tuning: r.tuning } : {}), ...(r.gpuMemory ? { gpuMemory: r.gpuMemory } : {}) };
    } finally {
      this.loading--;
    }
  }

  async unload(): Promise<void> {
    await this.request((id) => ({ type: 'unload', id }), 'unloaded');
  }

  async countTokens(messages: ChatMessage[]): Promise<PromptCount> {
    return (await this.request((id) => ({ type: 'count-tokens', id, messages }), 'token-count')).count;
  }

  /**
   * Reads a conversation into the loaded model's KV cache before its next message
   * (ChatEngine.prepare). When `signal` aborts, the worker stops at its next chunk and this
   * resolves with `stopped`.
   */
  async prepare(messages: ChatMessage[], signal?: AbortSignal): Promise<PrepareResult> {
    const req = this.request((id) => ({ type: 'prepare', id, messages }), 'prepared');
    const stop = () => this.abort(req.id);
    if (signal?.aborted) stop();
    else signal?.addEventListener('abort', stop, { once: true });
    try {
      return (await req).result;
    } finally {
      signal?.removeEventListener('abort', stop);
    }
  }

  /**
   * Streams an answer through `onToken`; when `signal` aborts, the worker stops at the next token
   * (or, in a long prompt, the next prefill chunk) and this resolves with stopReason 'aborted'.
   * `onPrefill` follows a long prompt: `done` of `total` tokens have run (PrefillReport).
   */
  async generate(messages: ChatMessage[], options: GenerateOptions, onToken: (e: TokenEvent) => void, signal?: AbortSignal, onPrefill?: PrefillReport): Promise<GenerationStats> {
    if (signal?.aborted) throw new WorkerError('ABORTED', 'The answer was stopped before it started.');
    const req = this.request(
      (id) => ({ type: 'generate', id, messages, options }),
      'generate-done',
      (ev) => {
        if (ev.type === 'token') onToken(ev.token);
        else if (ev.type === 'prefill-progress') onPrefill?.(ev.done, ev.total, ev.again);
      },
    );
    const stop = () => this.abort(req.id);
    signal?.addEventListener('abort', stop, { once: true });
    try {
      return (await req).stats;
    } finally {
      signal?.removeEventListener('abort', stop);
    }
  }

  /** Test hook: makes the worker destroy its GPU device, as a driver reset would. */
  async loseDevice(): Promise<void> {
    await this.request((id) => ({ type: 'lose-device', id }), 'unloaded');
  }

  terminate(): void {
    clearInterval(this.timer);
    this.dead = true;
    this.worker.terminate();
    this.failAll(new WorkerError('ABORTED', 'The engine worker was stopped.'));
  }
}
