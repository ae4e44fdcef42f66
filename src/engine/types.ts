/**
 * The one interface both engines implement (the native WGSL engine and the onnxruntime-web
 * reference/fallback), and the plain records that cross the worker boundary with it.
 * Rule: nothing here may reference GPU, DOM or storage types — the UI imports these.
 */

export type EngineKind = 'native' | 'ort';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** Sampling settings. Defaults live in `DEFAULT_SAMPLING`; validation in the sampler. */
export interface SamplingOptions {
  /** 0 means greedy (argmax). */
  temperature: number;
  /** 0 disables top-k. */
  topK: number;
  /** 1 disables nucleus sampling. */
  topP: number;
  /** 1 disables the repetition penalty. */
  repetitionPenalty: number;
  seed: number;
}

export const DEFAULT_SAMPLING: SamplingOptions = {
  temperature: 0.7,
  topK: 40,
  topP: 0.9,
  repetitionPenalty: 1.1,
  seed: 42,
};

/** Argmax with nothing that reshapes the logits: for runs whose sampled id is not used (warm-up, reading ahead). */
export const GREEDY_SAMPLING: SamplingOptions = { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, seed: 0 };

export interface GenerateOptions {
  sampling: SamplingOptions;
  maxNewTokens: number;
}

export type StopReason = 'eos' | 'max-tokens' | 'aborted' | 'context-full';

export interface GenerationStats {
  promptTokens: number;
  /**
   * Prompt tokens the KV cache already held, so they were not run again (absent in answers saved
   * before it was recorded).
   */
  cachedTokens?: number;
  newTokens: number;
  /** Time from the request to the first generated token. */
  timeToFirstTokenMs: number;
  prefillTokensPerSec: number;
  decodeTokensPerSec: number;
  stopReason: StopReason;
}

/**
 * How far the model has read (prefill, native engine): `done` of `total` tokens have run. `again`:
 * a decode step runs the whole chat again mid-answer (Phi-3 128K crossing its LongRoPE switch),
 * not the prompt.
 */
export type PrefillReport = (done: number, total: number, again?: boolean) => void;

export interface TokenEvent {
  tokenId: number;
  /** Newly decoded text for this token (may be empty while a UTF-8 sequence is incomplete). */
  text: string;
}

/**
 * The GPU memory a native model holds at load (Phi3Runtime.gpuBytes): bytes asked of WebGPU, to
 * which drivers add their own padding. The context cache grows with the chat, up to
 * `kvCacheMaxBytes` (the whole context; for a model with an attention window, the window and a
 * prefill chunk: Phi-3 Mini 4K's 2,559 of 4,096 positions), and shrinks again for a short one.
 */
export interface GpuMemoryInfo {
  weightBytes: number;
  kvCacheBytes: number;
  kvCacheMaxBytes: number;
  /** Activations, logits, scratch and read-backs. */
  otherBytes: number;
}

export interface ModelInfo {
  /** Hyper-parameters read from the graph. */
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  vocab: number;
  maxPositions: number;
  /** Tokens the KV cache can hold on this device (≤ maxPositions). */
  contextLimit: number;
  /**
   * Keys each token attends, itself included (GroupQueryAttention's local_window_size), where
   * fewer than maxPositions: words further back than that no longer reach the answer directly.
   * Absent: every earlier token.
   */
  attentionWindow?: number;
  layout: string;
  precision: 'f32' | 'f16';
  /**
   * How a system prompt reaches the model: written by the chat template, or put before the first
   * user message because the template has no system role (Phi3Tokenizer.systemRole). Absent when
   * the model has no chat template.
   */
  systemRole?: 'template' | 'first-user-message';
}
