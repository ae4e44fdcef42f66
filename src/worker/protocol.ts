/**
 * The typed messages between the UI's worker client and the engine worker.
 * Requests carry an `id`; every response and event names the request it belongs to. Add a message
 * by extending the unions here: both ends `switch` exhaustively, so the compiler finds every place
 * that must handle it. No `any`, no casts of payloads.
 *
 * Cancelling is explicit: `abort` names the request to stop (a download keeps the bytes it has
 * stored, so aborting is "pause"; the client's cancel is abort + delete-model). Binaries (local
 * model files) travel as `File` objects, which the structured clone shares without copying.
 */
import type { SerializedError } from '../engine/errors';
import type { GpuProbe } from '../engine/gpu/probe';
import type { PrepareResult } from '../engine/chat-engine';
import type { CandidateTiming } from '../engine/phi3/autotune';
import type { ChatMessage, EngineKind, GenerateOptions, GenerationStats, GpuMemoryInfo, ModelInfo, TokenEvent } from '../engine/types';
import type { CatalogEntry } from '../storage/catalog';
import type { DownloadProgress, DownloadStats } from '../storage/downloader';
import type { CachedModel, StorageEstimateResult } from '../storage/model-store';

export type { CachedModel, CatalogEntry, DownloadProgress, DownloadStats, PrepareResult, StorageEstimateResult };

/** Which model a download or load names. */
export type ModelRef =
  /** A catalog id, or a Hub repo id with an optional folder (`org/name[/folder]`), as `?model=` takes. */
  | { kind: 'hub'; model: string }
  /**
   * Files picked or dropped by the user; nothing is uploaded. Paths are relative to the picked
   * folder. `name` is the wanted name: the worker stores the import as `local:<name>`, or as
   * `local:<name> (n)` where another model has that name, and says which in its first progress
   * event (storage/local-import.ts).
   */
  | { kind: 'local'; name: string; files: Array<{ path: string; file: File }> };

/**
 * Whether a native load measures the decode GEMV and prefill GEMM on this GPU (engine/phi3/autotune.ts):
 * 'auto' (the app's) once per GPU, model shape and kernel version, kept in IndexedDB for later
 * loads, and never on a software adapter (SwiftShader: a CPU, where it would only take CPU time from the chat);
 * 'always' does the same on software adapters too (tests); 'never' keeps the adapter's defaults.
 */
export type AutotuneMode = 'auto' | 'always' | 'never';

/** One kernel family's choice: the candidate's name, and what each candidate measured (ms). */
export interface KernelChoice {
  /** decode: 'default', 'dp4a', 'direct', 'staged', 'warm-next'; prefill: 'default', 'tiled', 'wide'. */
  name: string;
  /** ms per decode step, or per 128-token prefill chunk; absent where nothing was measured. */
  timings?: CandidateTiming[];
}

/** Which MatMulNBits tuning a native load runs, and where that choice came from. */
export interface KernelTuningInfo {
  /**
   * 'measuring': this GPU has no stored choice, so it is being measured in the background while
   * the model already answers with the defaults (`progress`; the worker's `tuning` message says
   * when it is done); 'measured' when that finished, 'stored' from an earlier load, 'skipped'
   * (software adapter, 'never', or a measurement that stopped: `reason`).
   */
  source: 'measuring' | 'measured' | 'stored' | 'skipped';
  /** The decode GEMV's choice. */
  decode: KernelChoice;
  /** The prefill GEMM's choice, made on top of the decode one. */
  prefill: KernelChoice;
  /** 'measuring': measurements done of the total. */
  progress?: { done: number; total: number };
  /** 'skipped' after a measurement stopped: why (it is measured again at the next load). */
  reason?: string;
  /** The attention kernels' choice; absent where nothing is measured (software adapter, autotune 'never'). */
  attention?: AttentionTuningInfo;
}

/**
 * Which attention tuning a native load runs (engine/phi3/autotune.ts `autotuneAttention`). It is
 * measured once per GPU and model, at the first chat that is long enough for attention to matter.
 */
export interface AttentionTuningInfo {
  /**
   * 'waiting': defaults until a chat's context reaches `context` tokens, then measured in the
   * background; 'measuring' (`progress`), then 'measured'; 'stored' from an earlier load (measured
   * again, 'measuring', once a chat holds 4× its context); 'skipped' when a measurement stopped
   * (`reason`; not tried again before the next load).
   */
  source: 'waiting' | 'measuring' | 'measured' | 'stored' | 'skipped';
  /**
   * Decode's kernel and split cap: 'default', 'serial', 'lanes', 'splits-N'. While 'measuring'
   * and once 'skipped': what the chat runs meanwhile (the defaults, or a stored choice).
   */
  decode: KernelChoice;
  /** The prefill kernel, on top of the decode choice: 'default', 'blocked', 'per-query' (as `decode` while measuring). */
  prefill: KernelChoice;
  /** 'waiting': the context it waits for; otherwise the context it is or was measured at. */
  context: number;
  progress?: { done: number; total: number };
  reason?: string;
}

/** What a load answers: the model, where the time went, and the native engine's decode tuning and GPU memory. */
export type LoadedInfo = ModelInfo & { timings?: LoadTimings; tuning?: KernelTuningInfo; gpuMemory?: GpuMemoryInfo };

/** Downloader knobs; the defaults suit users, tests shrink the chunks. */
export interface DownloadTuning {
  chunkSize?: number;
  parallel?: number;
  maxRetries?: number;
  backoffMs?: number;
}

export type WorkerRequest =
  | { type: 'probe'; id: number }
  | { type: 'abort'; id: number; target: number }
  | { type: 'ping'; id: number }
  /** Optional first message: which IndexedDB database the store uses (tests isolate with it). */
  | { type: 'configure'; id: number; dbName?: string }
  | { type: 'catalog'; id: number }
  | { type: 'list-cached'; id: number }
  | { type: 'download'; id: number; model: ModelRef; hub: string; tuning?: DownloadTuning }
  | { type: 'delete-model'; id: number; modelId: string }
  | { type: 'delete-all'; id: number }
  | { type: 'estimate'; id: number }
  /** Loads a cached model from IndexedDB to the GPU (one engine at a time; a new load replaces the old). */
  | { type: 'load'; id: number; modelId: string; engine: EngineKind; autotune?: AutotuneMode }
  /**
   * Streams one answer; `abort` with this id stops it and it resolves with stopReason 'aborted'.
   * `messages` ending with an assistant message continue that message (ChatEngine.chat).
   */
  | { type: 'generate'; id: number; messages: ChatMessage[]; options: GenerateOptions }
  | { type: 'count-tokens'; id: number; messages: ChatMessage[] }
  /**
   * Reads the conversation `messages` (as the next request will send it, before the new message)
   * into the KV cache (ChatEngine.prepare). One at a time: a newer prepare, a generate, a load and
   * an unload stop it at its next chunk; it then answers `prepared` with `stopped`.
   */
  | { type: 'prepare'; id: number; messages: ChatMessage[] }
  | { type: 'unload'; id: number }
  /** Test hook: destroys the GPU device as a driver reset would, so recovery can be tested. */
  | { type: 'lose-device'; id: number };

/**
 * Where a load's time went, in ms: graph parse and planning (to the first weight upload), weight
 * upload, warm-up forward pass. (A first load's kernel measurement runs after it, in the
 * background: KernelTuningInfo 'measuring'.)
 */
export interface LoadTimings {
  prepareMs: number;
  uploadMs: number;
  compileMs: number;
}

/** What the chat store needs to fit a prompt into the context (see src/store/index.ts). */
export interface PromptCount {
  /** Tokens message i takes inside the chat template. */
  perMessage: number[];
  /** Tokens the template adds outside the messages: sum(perMessage) + overhead = prompt length. */
  overhead: number;
  contextLimit: number;
}

export type WorkerResponse =
  | { type: 'probe-result'; id: number; probe: GpuProbe }
  | { type: 'pong'; id: number }
  | { type: 'configured'; id: number }
  | { type: 'catalog-result'; id: number; entries: CatalogEntry[] }
  | { type: 'cached-result'; id: number; models: CachedModel[] }
  /** Event: zero or more before `download-done`. */
  | { type: 'download-progress'; id: number; progress: DownloadProgress }
  | { type: 'download-done'; id: number; model: CachedModel; stats: DownloadStats }
  | { type: 'deleted'; id: number }
  | { type: 'estimate-result'; id: number; estimate: StorageEstimateResult }
  /** Event: load phases ('load' to GPU, 'compile' shaders) reuse the download progress record. */
  | { type: 'load-progress'; id: number; progress: DownloadProgress }
  /** `tuning`, `gpuMemory`: the native engine's kernel tuning and GPU memory (absent for onnxruntime-web). */
  | { type: 'load-done'; id: number; info: ModelInfo; timings: LoadTimings; tuning?: KernelTuningInfo; gpuMemory?: GpuMemoryInfo }
  /** Event: one per generated token, pushed as it is produced. */
  | { type: 'token'; id: number; token: TokenEvent }
  /**
   * Event: a long prompt's prefill, one per chunk run (native engine): `done` of `total` tokens;
   * `again`: a decode step running the whole chat again mid-answer (PrefillReport).
   */
  | { type: 'prefill-progress'; id: number; done: number; total: number; again?: true }
  | { type: 'generate-done'; id: number; stats: GenerationStats }
  | { type: 'token-count'; id: number; count: PromptCount }
  | { type: 'prepared'; id: number; result: PrepareResult }
  | { type: 'unloaded'; id: number }
  /**
   * Unsolicited (id 0): the GPU device was lost; the engine is gone and requests in flight failed
   * with GPU_DEVICE_LOST. `modelId` is what was loaded, so the client can load it again.
   */
  | { type: 'device-lost'; id: 0; modelId: string | null; error: SerializedError }
  /**
   * Unsolicited (id 0): opening the model store waits on another tab that holds an older version
   * of it open; the request goes on by itself once that tab closes or reloads.
   */
  | { type: 'storage-blocked'; id: 0 }
  /**
   * Unsolicited (id 0): the loaded model's context limit dropped to `contextLimit` (the native KV
   * cache ran out of GPU memory growing and keeps the size it got: Phi3Runtime.fitCapacity);
   * `gpuMemory` is the native engine's figures after it. Sent before the request that hit it fails.
   */
  | { type: 'context-limit'; id: 0; modelId: string; contextLimit: number; gpuMemory?: GpuMemoryInfo }
  /**
   * Unsolicited (id 0): the loaded native model's kernel tuning changed while it measured in the
   * background (KernelTuningInfo 'measuring'): each measurement's progress, then 'measured' (the
   * model now runs the choice) or 'skipped' with the reason it stopped.
   */
  | { type: 'tuning'; id: 0; modelId: string; tuning: KernelTuningInfo }
  | { type: 'error'; id: number; error: SerializedError };

export type RequestType = WorkerRequest['type'];

/** Responses that are events: they do not settle the request they name. */
export type WorkerEvent = Extract<WorkerResponse, { type: 'download-progress' | 'load-progress' | 'token' | 'prefill-progress' }>;

export function isEvent(msg: WorkerResponse): msg is WorkerEvent {
  switch (msg.type) {
    case 'download-progress':
    case 'load-progress':
    case 'token':
    case 'prefill-progress':
      return true;
    case 'probe-result':
    case 'pong':
    case 'configured':
    case 'catalog-result':
    case 'cached-result':
    case 'download-done':
    case 'deleted':
    case 'estimate-result':
    case 'load-done':
    case 'generate-done':
    case 'token-count':
    case 'prepared':
    case 'unloaded':
    case 'device-lost':
    case 'storage-blocked':
    case 'context-limit':
    case 'tuning':
    case 'error':
      return false;
    default: {
      const unreachable: never = msg;
      return unreachable;
    }
  }
}
