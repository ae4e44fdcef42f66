/**
 * Options of the tiny-model generator, their defaults and validation.
 *
 * Rule: every constraint onnxruntime's CPU kernels impose (head_dim a multiple of 16 for
 * GroupQueryAttention, equal KV heads for MultiHeadAttention) is checked here with a message that
 * names the option, so a bad combination fails before any file is written.
 */

export type Layout = 'web2024' | 'gqa' | 'gqa-packed';
export type ContextVariant = '4k' | '128k';
export type WeightDtype = 'q4' | 'q4f16';

export interface TinyModelOptions {
  layout: Layout;
  context: ContextVariant;
  dtype: WeightDtype;
  blockSize: 16 | 32 | 64 | 128;
  zeroPoints: boolean;
  accuracyLevel: 0 | 4;
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  vocab: number;
  /** max_position_embeddings: rows of the (long) rotary cache. */
  maxPositions: number;
  /** original_max_position_embeddings: where LongRoPE switches caches (128k only). */
  originalMaxPositions: number;
  /**
   * config.json's sliding_window, written as GroupQueryAttention's `local_window_size` (what
   * onnxruntime-genai's builder does; Phi-3 Mini 128K's is 262144, 4K's 2047); -1: none.
   */
  slidingWindow: number;
  /**
   * Also GroupQueryAttention's `sliding_window_cache = 1`, as onnxruntime-genai's builder writes
   * beside a window for onnxruntime's CPU and CUDA providers: onnxruntime then takes cache buffers
   * of at least the window and evicts inside the node (the CPU kernel of 1.30 and 1.31 refuses a
   * cache that grows from 0). The math is the window's either way. Default false.
   */
  windowedCache: boolean;
  ropeTheta: number;
  rmsNormEps: number;
  seed: number;
  /** Inline (raw_data) weight bytes allowed in the .onnx before the rest goes external. */
  maxInlineBytes: number;
  /**
   * Every layer's projection weights are layer 0's values (each layer still has its own
   * initializers and bytes in the file). For speed benchmarks only: it makes a 32-layer model cost
   * one layer's quantisation, and values do not change how fast a kernel runs.
   */
  repeatLayerWeights: boolean;
}

export const DEFAULT_OPTIONS: TinyModelOptions = {
  layout: 'web2024',
  context: '4k',
  dtype: 'q4',
  blockSize: 32,
  zeroPoints: false,
  accuracyLevel: 0,
  layers: 2,
  hidden: 128,
  heads: 4,
  kvHeads: 4,
  intermediate: 256,
  vocab: 32064,
  maxPositions: 4096,
  originalMaxPositions: 4096,
  slidingWindow: -1,
  windowedCache: false,
  ropeTheta: 10000,
  rmsNormEps: 1e-5,
  seed: 1,
  maxInlineBytes: 1 << 30,
  repeatLayerWeights: false,
};

/** Fills defaults that depend on other options (128k sizes, kvHeads = heads) and validates. */
export function resolveOptions(partial: Partial<TinyModelOptions>): TinyModelOptions {
  const o: TinyModelOptions = { ...DEFAULT_OPTIONS, ...partial };
  if (partial.kvHeads === undefined) o.kvHeads = o.heads;
  if (o.context === '128k') {
    if (partial.maxPositions === undefined) o.maxPositions = 131072;
    if (partial.originalMaxPositions === undefined) o.originalMaxPositions = 4096;
  } else if (partial.originalMaxPositions === undefined) {
    o.originalMaxPositions = o.maxPositions;
  }
  validate(o);
  return o;
}

function bad(message: string): never {
  throw new Error(`tiny-model: ${message}`);
}

function validate(o: TinyModelOptions): void {
  const positive = ['layers', 'hidden', 'heads', 'kvHeads', 'intermediate', 'vocab', 'maxPositions', 'originalMaxPositions'] as const;
  const flag = (k: string): string => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  for (const k of positive) if (!Number.isInteger(o[k]) || o[k] < 1) bad(`${flag(k)} must be a positive integer, got ${o[k]}`);
  if (!['web2024', 'gqa', 'gqa-packed'].includes(o.layout)) bad(`--layout must be web2024, gqa or gqa-packed, got ${o.layout}`);
  if (!['4k', '128k'].includes(o.context)) bad(`--context must be 4k or 128k, got ${o.context}`);
  if (!['q4', 'q4f16'].includes(o.dtype)) bad(`--dtype must be q4 or q4f16, got ${o.dtype}`);
  if (![16, 32, 64, 128].includes(o.blockSize)) bad(`--block-size must be 16, 32, 64 or 128, got ${o.blockSize}`);
  if (o.accuracyLevel !== 0 && o.accuracyLevel !== 4) bad(`--accuracy-level must be 0 or 4, got ${o.accuracyLevel}`);
  if (o.hidden % o.heads !== 0) bad(`--hidden ${o.hidden} is not a multiple of --heads ${o.heads}`);
  const headDim = o.hidden / o.heads;
  if (headDim % 2 !== 0) bad(`head_dim ${headDim} (hidden/heads) must be even for rotary embedding`);
  if (o.heads % o.kvHeads !== 0) bad(`--heads ${o.heads} is not a multiple of --kv-heads ${o.kvHeads}`);
  if (o.layout === 'web2024' && o.kvHeads !== o.heads)
    bad(`layout web2024 uses MultiHeadAttention, which needs --kv-heads equal to --heads (${o.heads}), got ${o.kvHeads}`);
  if (o.layout !== 'web2024' && headDim % 16 !== 0)
    bad(`GroupQueryAttention on onnxruntime's CPU needs head_dim (hidden/heads = ${headDim}) to be a multiple of 16`);
  if (o.context === '128k' && o.originalMaxPositions >= o.maxPositions)
    bad(`--original-max-positions ${o.originalMaxPositions} must be below --max-positions ${o.maxPositions} for 128k`);
  if (!Number.isInteger(o.slidingWindow) || o.slidingWindow < -1) bad(`--sliding-window must be an integer ≥ -1, got ${o.slidingWindow}`);
  if (o.windowedCache && o.slidingWindow < 0) bad('windowedCache needs a sliding window (--sliding-window)');
  if (o.layout === 'web2024' && o.slidingWindow !== -1) bad('--sliding-window needs a GroupQueryAttention layout (gqa or gqa-packed): MultiHeadAttention has no window');
  if (!Number.isInteger(o.maxInlineBytes) || o.maxInlineBytes < 0) bad(`--max-inline-bytes must be a non-negative integer, got ${o.maxInlineBytes}`);
  if (typeof o.repeatLayerWeights !== 'boolean') bad(`repeatLayerWeights must be true or false, got ${String(o.repeatLayerWeights)}`);
  if (!Number.isInteger(o.seed)) bad(`--seed must be an integer, got ${o.seed}`);
}

export const headDimOf = (o: TinyModelOptions): number => o.hidden / o.heads;

/** File names as in the Hugging Face web repos: onnx/model_q4.onnx + onnx/model_q4.onnx_data. */
export function modelFileName(o: Pick<TinyModelOptions, 'dtype'>): string {
  return `model_${o.dtype}.onnx`;
}
