/**
 * The Phi-3 forward pass on WebGPU: weights uploaded once, every kernel, buffer and bind group
 * built at load, and one step encoded into a single command buffer and submitted once. The KV
 * cache alone grows: it starts at `LoadOptions.kvInitialTokens` positions and doubles before a
 * step that needs more (`fitCapacity`: the cache kernels' bind groups are built again then).
 * A model with an attention window (Phi-3 Mini 4K: 2,047 keys of its 4,096) keeps at most
 * window + maxPrefill positions (`kvRingRows`): position p lives in row p mod capacity, a ring in
 * which every key a step's queries attend is still held (attention.ts); past that the cache stops
 * growing while the chat goes on to the model's whole context. Keys the ring overwrote are gone:
 * going back (truncate) further than the ring's slack allows runs the kept tokens again
 * (`reusableFor`), as LongRoPE's switch does.
 *
 *   embed → for each layer: [norm]q,k,v (or packed qkv) → rotary q,k + KV append → attention
 *         → o (+= residual) → [norm]gate,up (or gate_up) → down(silu(gate)·up) (+= residual)
 *   → last row → [final norm]lm_head → token selection on the GPU → 4-byte read-back
 * ([norm] = RMSNorm applied by the matmul while staging its input; the residual adds happen in
 * the o/down matmuls: no separate norm, add or activation dispatches.)
 * In decode (S = 1) the packed qkv GEMV also does "rotary q,k + KV append" (matmul-nbits.ts
 * `ropeAppend`), so a decode token is embed + 5 kernels per layer + lm_head + sampler
 * (163 dispatches for 32 layers; split-K attention adds a combine per layer past 64 tokens).
 * Prefill, separate q/k/v that cannot be joined, and devices with fewer than 10 storage buffers
 * per shader stage (matMulNBitsRopeAppendSupported; WebGPU guarantees only 8) keep the kv-append
 * dispatch. With `matMulTuning.warmNext` (off by default) each decode kernel before a matmul also
 * reads part of that matmul's weights into L2 in extra workgroups of its own dispatch (warm-next.ts).
 * `retune` builds the kernels the MatMulNBits tuning shapes again with another tuning over the same
 * weights and KV cache, and `retuneAttention` the attention kernels with another attention
 * tuning (autotune.ts measures candidates on the device with them).
 *
 * Decode runs ahead (`LoadOptions.runAhead`, default on): right after submitting step N, `step`
 * encodes step N+1, whose input token is copied on the GPU from step N's sampler output, writes its
 * uniforms and submits it too, and only then waits for step N's 4-byte read-back. The GPU thus
 * never idles while the token travels back to JavaScript, through the caller and into the next
 * call (a map round trip plus the app's per-token work). Queue order makes this exact: the
 * uniform writes for N+1 land after N's commands, and N+1 reads N's token on the GPU. When the
 * caller feeds back that token with the next step index and the same sampling, the step already
 * in flight is the answer; anything else (another token, truncate, logits, profileDecode,
 * profilePrefill, changed sampling or step index) drops it. A dropped step cost one step of GPU time and wrote
 * only past the cache (its KV entry, its history slot) and scratch, all of which the next step
 * overwrites, so it changes no result (in a ring its KV entry overwrote the oldest row, which
 * `writtenEnd` counts as written). Each generation ends with one such step (after its last
 * token, which the loop cannot know is last). With run-ahead off, step N+1 is still encoded while
 * N runs but submitted by the next call (`submitted: false`).
 *
 * Rule: nothing here may create GPU objects per token (a command encoder aside); `step` only
 * writes the ids (or uses the step encoded ahead) and the uniforms, encodes the prebuilt kernels
 * and the copy of the sampled id into one of two persistent read-back buffers (one per step in
 * flight), submits once, and maps those 4 bytes (`logits`, for tests, reads the row).
 * An op whose work decode does elsewhere is marked `prefillOnly`; `dispatchesPerDecode`,
 * `profileDecode` and the decode step encoded ahead encode only `decodeOps`, so keep that flag true
 * to the op's encode.
 */
import { AppError } from '../errors';
import type { GpuContext } from '../gpu/device';
import { readBuffer } from '../gpu/buffers';
import { submitTimestamped } from '../gpu/timestamps';
import { createStepBuffer, writeStep } from '../kernels/step';
import type { WarmHost, WarmRows } from '../kernels/warm-next';
import { createMatMulNBits, matMulNBitsHasGemv, matMulNBitsPath, matMulNBitsReady, matMulNBitsRopeAppendSupported, type MatMulNBitsKernel, type MatMulNBitsRopeAppend, type MatMulNBitsTuning } from '../kernels/matmul-nbits';
import { createEmbedding, planEmbeddingParts } from '../kernels/embedding';
import type { RotaryTables } from '../kernels/rotary';
import { createKvAppend } from '../kernels/kv-append';
import { attentionPartialsBytes, attentionTuningFor, createAttention, keysSeen, splitSizes, type AttentionBindings, type AttentionKernel, type AttentionTuning } from '../kernels/attention';
import { createSampler, writeSamplerParams, writeSamplerStep } from '../kernels/sampler';
import { createWeightRead, weightReadSumsBytes, type WeightReadKernel, type WeightReadParts } from '../kernels/weight-read';
import { choosePrecision, kvBytesPerElement, type Precision, type PrecisionOption } from '../kernels/precision-wgsl';
import type { SourceResolver } from '../onnx/tensor-data';
import { OnnxDataType, type OnnxTensorInfo } from '../onnx/types';
import { tensorByteLength } from '../onnx/tensor-data';
import type { PrefillFeed, TokenRuntime } from '../generate';
import type { SamplingOptions } from '../types';
import type { Phi3Config, Phi3Plan, QuantWeight } from './plan';
import { WeightUploader } from './upload';

export interface LoadOptions {
  /**
   * Tokens per prefill chunk (default 512); longer prompts run in several chunks. Larger chunks
   * fill the GPU better (at 128, a 3072-wide GEMM had 96 workgroups for an H100's 132 cores and
   * every chunk re-read the weights) at the cost of activation memory: about 130 KB per token for
   * Phi-3 Mini, 65 MB at 512. A windowed model's KV cache holds the window and one chunk
   * (`kvRingRows`), so this is also how far back a chat can go without running again.
   */
  maxPrefill?: number;
  /**
   * Upper bound on KV-cache bytes (all layers, K and V). Default: none. The cache grows with the
   * chat (kvInitialTokens), so the context is the model's own (bounded by the device's binding
   * size), as with onnxruntime; a GPU that runs out of memory growing it lowers the context to
   * what it holds (`contextLimit`). Until 2026-12-06 the default was 2 GiB, from when the whole
   * cache was allocated at load: 2,730 tokens of Phi-3 Mini on the f32 path, 5,461 on f16, which
   * left the 128K model a 5K one.
   */
  kvBudgetBytes?: number;
  /** Cap on the context, e.g. for tests. */
  maxContext?: number;
  /**
   * Tokens the KV cache holds at first (default 512, at most the context limit). It doubles when
   * a prompt or an answer needs more, up to the context limit or a windowed model's ring
   * (`Phi3Runtime.kvCapacity`, `kvMaxPositions`): a chat
   * of a few hundred tokens holds 200 MB of cache for Phi-3 Mini (400 MB on the f32 path), not the
   * 1.6 GB (3.2 GB) the full 4,096-token context takes.
   */
  kvInitialTokens?: number;
  /**
   * Numeric path: 'f16' stores the KV cache as f16, packed two per u32 word (any device), and a
   * q4 file's f32 scales, embedding and rotary caches as fp16 (`f16Weights`); 'f32' keeps all of
   * them f32 (more memory; for checks against an f32 reference). 'auto' (default) is 'f16'. See
   * precision-wgsl.ts.
   */
  precision?: PrecisionOption;
  /**
   * On the f16 path (ignored on f32): whether a q4 file's f32 block scales, embedding table and
   * rotary caches are kept on the GPU as fp16 (default true), packed while they load
   * (kernels/f16-pack.ts). For Phi-3 Mini 4K that is 430 MB less GPU memory, the same as the
   * q4f16 build takes, and 232 MB fewer scale bytes read per decode step; the 128K model's rotary
   * caches (up to 131,072 rows a pair) save up to 50 MB more. Each value moves by at most 2^-11
   * of itself (Microsoft's own q4f16 files round the same values the same way); where any value
   * is beyond fp16's range, the load builds again with them in f32. false keeps them f32 (for
   * comparing the two).
   */
  f16Weights?: boolean;
  /**
   * Overrides the adapter's default MatMulNBits tuning (matMulNBitsTuningFor) for every matmul,
   * field by field: for benchmarks that compare tunings in a real decode step (bench:node --tuning).
   */
  matMulTuning?: MatMulNBitsTuning;
  /**
   * Asked once the model's shapes and numeric path are known, before any kernel is built: a tuning
   * returned here replaces `matMulTuning`. The worker answers with the choice the autotune stored
   * for this GPU (autotune.ts), so a load builds and compiles its kernels once, not the defaults
   * and then the choice.
   */
  resolveMatMulTuning?: (config: Phi3Config, precision: Precision) => Promise<MatMulNBitsTuning | undefined>;
  /**
   * Attention kernel, decode split sizes and prefill kernel for every layer, field by field over
   * the adapter's defaults (`attentionTuningFor`: on real GPUs 'lanes', 64-key splits, at most 24
   * per head, the blocked prefill; on SwiftShader 'serial'): for benchmarks that compare them
   * (bench:node --attention); see attention.ts.
   */
  attention?: AttentionTuning;
  /**
   * As resolveMatMulTuning, for `attention`: a tuning returned here replaces it (the worker's
   * stored attention choice, measured once a chat was long; autotune.ts).
   */
  resolveAttentionTuning?: (config: Phi3Config, precision: Precision) => Promise<AttentionTuning | undefined>;
  /**
   * Submit decode step N+1 before reading back step N's token (default true), so the GPU has the
   * next step queued while the token makes its round trip through JavaScript; see the module
   * header. Off: the next step is encoded ahead but submitted only when it is asked for (for
   * benchmarks comparing the two, bench:node --no-run-ahead, and tests).
   */
  runAhead?: boolean;
  onProgress?: (bytesUploaded: number, bytesTotal: number) => void;
}

/** Phi3Runtime.build met an f32 value beyond fp16's range while packing: `load` builds again without packing. */
class PackedOutOfRange extends Error {}

/** One recorded kernel dispatch: `S` rows this step, `totalLen` = cached + S, `cacheIndex` picks LongRoPE's caches. */
type Encode = (pass: GPUComputePassEncoder, S: number, totalLen: number, cacheIndex: 0 | 1) => void;

/**
 * A kernel of the forward pass: `kind` names it across layers ('qkv', 'attention', …);
 * `weightBytes` is what a matmul reads of its weights, scales and zero points, `macsPerRow` its
 * multiply-adds per activation row, K · N (both 0 for other kernels).
 */
interface Op {
  kind: string;
  layer: number | null;
  weightBytes: number;
  macsPerRow?: number;
  encode: Encode;
  /** A weight matmul's buffers: what `timeDecodeWithout`'s weight-read floor reads instead. */
  parts?: WeightReadParts;
  /** Encoded only when S > 1: decode (S = 1) does this op's work inside another kernel. */
  prefillOnly?: boolean;
}

/** GPU time of one kernel of a decode step or prefill chunk (`profileDecode`, `profilePrefill`). */
export interface KernelTime {
  kind: string;
  /** the layer, or null for kernels outside the layers (embedding, lm_head, sampling) */
  layer: number | null;
  weightBytes: number;
  /** multiply-adds per row the kernel ran (K · N for a matmul; 0 for other kernels) */
  macsPerRow: number;
  /** rows the kernel ran: the chunk's length, or 1 (decode, and the lm_head's last row) */
  rows: number;
  ms: number;
}

/**
 * A decode kernel that the MatMulNBits tuning shapes (each weight matmul, and attention, which
 * warms the o_proj after it), as `build` made it with a tuning: `share` is its tuning.warmNext
 * share, which attention takes from the matmul before it (its `share` argument).
 */
interface TunedKernel {
  host: WarmHost;
  rows: WarmRows | null;
  share: number;
  /** matMulNBitsPath for M = 1; null for attention. */
  path: string | null;
}
/** Builds (again) one kernel of the step that the tuning shapes, over the buffers it was given at load. */
type Tunable = (tuning: MatMulNBitsTuning | undefined, share: number) => TunedKernel;

/** A weight matmul: `parts` are its weight buffers (for the benchmarks' weight-read floor). */
type Matmul = { encode(pass: GPUComputePassEncoder, rows: number): void; weightBytes: number; macsPerRow: number; parts: WeightReadParts };
/** An op of S rows; a matmul (`Matmul`) carries its weight bytes, multiply-adds per row and buffers. */
const rowsOp = (kind: string, layer: number | null, k: { encode(pass: GPUComputePassEncoder, rows: number): void } | Matmul): Op => ({
  kind,
  layer,
  weightBytes: 'weightBytes' in k ? k.weightBytes : 0,
  macsPerRow: 'macsPerRow' in k ? k.macsPerRow : 0,
  ...('parts' in k ? { parts: k.parts } : {}),
  encode: (pass, S) => k.encode(pass, S),
});

/**
 * The most positions a windowed model's KV cache needs (Infinity without a window): the window's
 * keys before a prefill chunk and the chunk's own, so a ring of that many rows never overwrites a
 * key a query of the chunk attends (attention.ts). Phi-3 Mini 4K (window 2,047, chunks of 512):
 * 2,559 rows for its 4,096-token context, 1.0 GB of f16 cache instead of 1.61 GB.
 */
export function kvRingRows(c: Phi3Config, maxPrefill: number): number {
  return c.attentionWindow ? c.attentionWindow + maxPrefill : Infinity;
}

/**
 * The context (tokens) from the device's binding limit, the memory budget and the model's context
 * (its rotary caches' rows); `kvBytesPerElement` is 4 on the f32 path, 2 on the f16 path (twice
 * the tokens in the same bytes). The limits bound the cache's rows: where a window's ring
 * (`ringRows`, kvRingRows) fits them, the context is the model's whole, however few rows that is.
 */
export function contextLimitFor(c: Phi3Config, maxBinding: number, kvBudgetBytes: number, maxContext = Infinity, kvBytesPerElement: 2 | 4 = 4, ringRows = Infinity): number {
  const bytesPerTokenPerLayer = c.kvHeads * c.headDim * kvBytesPerElement;
  const byBinding = Math.floor(maxBinding / bytesPerTokenPerLayer);
  const byBudget = Math.floor(kvBudgetBytes / (bytesPerTokenPerLayer * 2 * c.layers));
  const context = Math.min(c.maxPositions, maxContext);
  const rows = Math.min(byBinding, byBudget);
  return Math.max(0, ringRows <= rows ? context : Math.min(context, rows));
}

export class Phi3Runtime implements TokenRuntime {
  readonly cachedIds: number[] = [];
  /** The context at load (contextLimitFor), lowered to what the cache holds if growing it ran out of GPU memory. */
  private limit: number;
  /** The numeric path this model runs on ('f16': f16 KV cache), decided at load. */
  readonly precision: Precision;
  /** Dispatches encoded for one decode step (reported by benchmarks). */
  dispatchesPerDecode = 0;
  /** The shaders the weight matmuls run in decode, e.g. ['gemv-subgroup'] (matMulNBitsPath; for tests and benchmarks). */
  decodeMatMulPaths: string[] = [];
  /** Bytes of weights the decode kernels (GEMVs, attention) read ahead for the next matmul per step (tuning.warmNext; 0: off). */
  decodeWarmBytes = 0;
  /** The MatMulNBits tuning the kernels were built with (LoadOptions.matMulTuning, then `retune`'s); undefined: the adapter's defaults. */
  matMulTuning: MatMulNBitsTuning | undefined;
  /** Every kernel the tuning shapes, in step order (`retune` builds them again). */
  private tunables: Tunable[] = [];
  /**
   * The attention tuning the kernels were built with, as overrides on the adapter's defaults
   * (LoadOptions.attention or resolveAttentionTuning's, then `retuneAttention`'s); undefined: the defaults.
   */
  attentionTuning: AttentionTuning | undefined;
  /** Points every layer's attention at a tuning (overrides on the defaults) for the next build; throws BAD_ARGUMENT on bad split sizes. */
  private setAttention: (overrides: AttentionTuning | undefined) => unknown = () => undefined;
  /** Each layer's KV cache (set by `load`; `fitCapacity` grows them). */
  private kvLayers: KvLayer[] = [];
  private capacity = 0;
  /** LoadOptions.kvInitialTokens as loaded: the smallest size `fitCapacity` gives the cache. */
  private initialCapacity = 0;
  /**
   * One past the furthest position written to the cache since it was last empty or resized, steps
   * encoded ahead and timing runs included: in a ring, the positions below writtenEnd − capacity
   * had their rows overwritten (`ringHolds`), and writtenEnd > capacity says it has wrapped.
   */
  private writtenEnd = 0;
  private samplerSettings = '';
  /** timeDecodeWithout's weight-read kernels, per matmul op (or the lm_head), built on first use. */
  private readonly weightReads = new Map<object, WeightReadKernel>();
  /** The next decode step, encoded (and with runAhead submitted) by `step`; used at most once. */
  private next: NextStep | null = null;
  /** Index into `readbacks` of the next step's token: steps alternate between the two. */
  private readbackTurn = 0;
  /** The LongRoPE caches every cached key was rotated with (`cacheIndex` of the steps that wrote them; see `forward`). */
  private rotation: 0 | 1 = 0;

  private constructor(
    private ctx: GpuContext,
    readonly plan: Phi3Plan,
    private uploader: WeightUploader,
    private buffers: Map<string, GPUBuffer>,
    private ops: Op[],
    /** `ops` without the prefillOnly ones: what a decode step encodes. */
    private decodeOps: Op[],
    private lmHead: Matmul,
    private sampler: ReturnType<typeof createSampler>,
    private stepUniform: GPUBuffer,
    readonly maxPrefill: number,
    contextLimit: number,
    precision: Precision,
    /** Two MAP_READ buffers of 4 bytes: the step being read back and the one submitted after it. */
    private readbacks: readonly [GPUBuffer, GPUBuffer],
    private runAhead: boolean,
  ) {
    this.limit = contextLimit;
    this.precision = precision;
  }

  /** Tokens the context holds: see `limit`. */
  get contextLimit(): number {
    return this.limit;
  }

  /** Whether the device was created with `shader-f16` (kernels that compute in f16 need it). */
  get shaderF16(): boolean {
    return this.ctx.features.shaderF16;
  }

  /**
   * Uploads the weights and builds every kernel. On the f16 path a q4 file's f32 scales,
   * embedding and rotary caches are packed to fp16 (LoadOptions.f16Weights); if a value does not
   * fit fp16, the uploaded buffers are freed and the model loads again with them in f32 (progress
   * starts over).
   */
  static async load(ctx: GpuContext, plan: Phi3Plan, resolve: SourceResolver, opts: LoadOptions = {}): Promise<Phi3Runtime> {
    const precision = choosePrecision(opts.precision);
    const packF16 = precision === 'f16' && (opts.f16Weights ?? true);
    try {
      return await Phi3Runtime.build(ctx, plan, resolve, opts, precision, packF16);
    } catch (err) {
      if (!(err instanceof PackedOutOfRange)) throw err;
      return Phi3Runtime.build(ctx, plan, resolve, opts, precision, false);
    }
  }

  /** load's work; throws PackedOutOfRange (everything freed) when `packF16` met a value beyond fp16's range. */
  private static async build(ctx: GpuContext, plan: Phi3Plan, resolve: SourceResolver, opts: LoadOptions, precision: Precision, packF16: boolean): Promise<Phi3Runtime> {
    const { device } = ctx;
    const c = plan.config;
    const maxPrefill = opts.maxPrefill ?? 512;
    const kvBytes = kvBytesPerElement(precision);
    const matMulTuning = (await opts.resolveMatMulTuning?.(c, precision)) ?? opts.matMulTuning;
    const ring = kvRingRows(c, maxPrefill);
    const contextLimit = contextLimitFor(c, ctx.limits.maxStorageBufferBindingSize, opts.kvBudgetBytes ?? Infinity, opts.maxContext, kvBytes, ring);
    if (contextLimit < 16) {
      throw new AppError('GPU_OUT_OF_MEMORY', `This GPU's limits leave room for only ${contextLimit} tokens of context; the model needs a larger storage-buffer binding size.`);
    }
    const capacity = Math.min(contextLimit, ring, Math.max(16, Math.floor(opts.kvInitialTokens ?? 512)));
    const total = estimateUploadBytes(plan);
    const uploader = new WeightUploader(device, resolve, (done) => opts.onProgress?.(done, total));
    const buffers = new Map<string, GPUBuffer>();
    const act = (name: string, floats: number, usage = 0) => {
      const b = device.createBuffer({ label: name, size: Math.max(16, floats * 4), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST | usage });
      buffers.set(name, b);
      return b;
    };
    const step = createStepBuffer(device);
    try {
      const M = maxPrefill;
      const { hidden: H, heads, kvHeads, headDim: D, intermediate: I, vocab: V } = c;
      const qDim = heads * D;
      const kvDim = kvHeads * D;

      // Activations: (M, ·) f32.
      const ids = act('ids', M);
      const hidden = act('hidden', M * H); // residual stream
      const attnOut = act('attnOut', M * qDim);
      // The adapter's attention defaults, overridden field by field by LoadOptions.attention (or
      // what resolveAttentionTuning returned); every layer's attention kernel is built from its
      // entry in `attentionLayers`, which `setAttention` points at another tuning.
      const attentionLayers: AttentionBindings[] = [];
      const setAttention = (overrides: AttentionTuning | undefined) => {
        const full: AttentionTuning = { ...attentionTuningFor(ctx.adapterInfo, D), ...overrides };
        const sizes = splitSizes(full, keysSeen(contextLimit, c.attentionWindow));
        // One split-K scratch serves every layer (they run one after another); it only grows.
        let partials = buffers.get('attention.partials');
        const bytes = attentionPartialsBytes(heads, D, sizes.maxSplits);
        if (!partials || partials.size < bytes) {
          partials?.destroy();
          partials = device.createBuffer({ label: 'attention.partials', size: bytes, usage: GPUBufferUsage.STORAGE });
          buffers.set('attention.partials', partials);
        }
        for (const a of attentionLayers) Object.assign(a, { kernel: full.kernel, prefill: full.prefill, ...sizes, partials });
        return { kernel: full.kernel, prefill: full.prefill, ...sizes, partials };
      };
      const attentionOverrides = (await opts.resolveAttentionTuning?.(c, precision)) ?? opts.attention;
      const attentionTuning = setAttention(attentionOverrides);
      const lmIn = act('lmIn', H);
      const logits = act('logits', V);

      interface Fusions {
        inputNorm?: GPUBuffer;
        siluUp?: { up: GPUBuffer; gateStride: number; gateOffset: number; upStride: number; upOffset: number };
        accumulate?: boolean;
        ropeAppend?: MatMulNBitsRopeAppend;
      }
      /**
       * The decode kernels the tuning shapes, in the order they run (each matmul and attention):
       * how to build each again (`retune`), and each as built now. Each warms the matmul right
       * after it under tuning.warmNext (warm-next.ts).
       */
      const tunables: Tunable[] = [];
      const tuned: TunedKernel[] = [];
      /** Each layer's KV cache and how to point its kernels at a grown one (`fitCapacity`). */
      const kvLayers: KvLayer[] = [];
      /** One matmul over several projections joined along N (their rows simply concatenate). */
      const quantKernel = async (wIn: QuantWeight | readonly QuantWeight[], input: GPUBuffer, output: GPUBuffer, label: string, f: Fusions = {}, maxM = M) => {
        const ws = Array.isArray(wIn) ? (wIn as readonly QuantWeight[]) : [wIn as QuantWeight];
        const w = { ...ws[0], N: ws.reduce((n, x) => n + x.N, 0) };
        const join = (pick: (x: QuantWeight) => OnnxTensorInfo, what: string, packed = false) =>
          ws.length === 1 && !packed ? uploader.raw(pick(ws[0]), `${label}.${what}`) : uploader.concat(ws.map(pick), `${label}.${what}`, packed);
        // f32 scales on the f16 path: packed to fp16 as they load (LoadOptions.f16Weights).
        const packScales = packF16 && ws.every((x) => x.scales.dataType === OnnxDataType.FLOAT);
        const scalesDtype = packScales || w.scales.dataType === OnnxDataType.FLOAT16 ? 'f16' : 'f32';
        const bytesOf = (pick: (x: QuantWeight) => OnnxTensorInfo) => ws.reduce((n, x) => n + (tensorByteLength(pick(x).dataType, pick(x).dims) ?? 0), 0);
        const parts: WeightReadParts = {
          weights: { buffer: await join((x) => x.packed, 'B'), bytes: bytesOf((x) => x.packed) },
          scales: { buffer: await join((x) => x.scales, 'scales', packScales), bytes: bytesOf((x) => x.scales) / (packScales ? 2 : 1) },
          zeroPoints: w.zeroPoints ? { buffer: await join((x) => x.zeroPoints!, 'zp'), bytes: bytesOf((x) => x.zeroPoints!) } : undefined,
          chain: { input, output },
        };
        const weightBytes = parts.weights.bytes + parts.scales.bytes + (parts.zeroPoints?.bytes ?? 0);
        const make = (tuning: MatMulNBitsTuning | undefined) => createMatMulNBits(device, {
          K: w.K,
          N: w.N,
          blockSize: w.blockSize,
          hasZeroPoints: !!w.zeroPoints,
          scalesDtype,
          weights: parts.weights.buffer,
          scales: parts.scales.buffer,
          zeroPoints: parts.zeroPoints?.buffer,
          input,
          output,
          maxM,
          compile: 'async',
          inputNorm: f.inputNorm ? { weight: f.inputNorm, eps: c.rmsNormEps } : undefined,
          inputSiluMul: f.siluUp,
          accumulate: f.accumulate,
          ropeAppend: f.ropeAppend,
          step,
          tuning,
        });
        let kernel: MatMulNBitsKernel;
        const build: Tunable = (tuning) => {
          kernel = make(tuning);
          return { host: kernel, rows: kernel.gemvWeights, share: kernel.warmShare, path: matMulNBitsPath(kernel, 1) };
        };
        tuned.push(build(matMulTuning, 0));
        tunables.push(build);
        return { encode: (pass: GPUComputePassEncoder, rows: number, cacheIndex?: 0 | 1) => kernel.encode(pass, rows, cacheIndex), weightBytes, macsPerRow: w.K * w.N, parts };
      };

      // Embedding, split under the binding limit.
      const emb = plan.embedding;
      // An f32 table on the f16 path is packed to fp16 as it loads (LoadOptions.f16Weights).
      const packEmb = packF16 && emb.dataType === OnnxDataType.FLOAT;
      const embF16 = packEmb || emb.dataType === OnnxDataType.FLOAT16;
      const parts = planEmbeddingParts(emb.dims[0], H, embF16 ? 2 : 4, ctx.limits.maxStorageBufferBindingSize);
      const partBuffers = [];
      for (const [i, p] of parts.entries()) partBuffers.push({ buffer: await uploader.rows(emb, p.firstRow, p.rows, `embedding.part${i}`, packEmb), firstRow: p.firstRow, rows: p.rows });
      const ops: Op[] = [rowsOp('embedding', null, createEmbedding(device, { parts: partBuffers, hidden: H, dtype: embF16 ? 'f16' : 'f32', ids, out: hidden, step }))];

      // Rotary tables: [short] or [short, long], each of the file's cos/sin pairs interleaved into
      // one buffer (rotary.ts), which the prefill kv-append and the fused decode qkv GEMV both read.
      // f32 caches on the f16 path are packed to fp16 as they load (LoadOptions.f16Weights).
      const { short, long } = plan.rotary;
      const packRotary = packF16 && short.cos.dataType === OnnxDataType.FLOAT;
      const shortTable = await uploader.rotaryTable(short.cos, short.sin, 'rotary.short.table', packRotary);
      const tables = long ? ([shortTable, await uploader.rotaryTable(long.cos, long.sin, 'rotary.long.table', packRotary)] as const) : ([shortTable] as const);
      // LongRoPE's short caches may cover only the original context; they are used only while the total
      // length is at or below the switch, so the clamp follows the (longer) long caches.
      const maxPositions = Math.max(short.cos.dims[0], long?.cos.dims[0] ?? 0);
      const rotary: RotaryTables = { rotaryDim: c.rotaryDim, maxPositions, dtype: packRotary || short.cos.dataType === OnnxDataType.FLOAT16 ? 'f16' : 'f32', tables };

      // Separate q/k/v (and gate/up) projections with the same K, block size and scale/zero-point
      // format are joined along N at upload, so every layout runs as one qkv and one gate_up matmul.
      const packedAttention = plan.layers.every((l) => l.attention.kind === 'packed' || joinable([l.attention.q, l.attention.k, l.attention.v]));
      const qkvStride = qDim + 2 * kvDim;
      const qkv = packedAttention ? act('qkv', M * qkvStride) : undefined;
      const q = packedAttention ? undefined : act('q', M * qDim);
      const k = packedAttention ? undefined : act('k', M * kvDim);
      const v = packedAttention ? undefined : act('v', M * kvDim);
      const fusedMlp = plan.layers.every((l) => l.mlp.kind === 'fused' || joinable([l.mlp.gate, l.mlp.up]));
      const gateUp = fusedMlp ? act('gateUp', M * 2 * I) : undefined;
      const gate = fusedMlp ? undefined : act('gate', M * I);
      const up = fusedMlp ? undefined : act('up', M * I);

      // Fused layer: the residual stream `hidden` is normalised inside the matmuls that read it
      // (inputNorm), o_proj and down_proj add into it (accumulate), and down_proj computes
      // silu(gate)·up while staging its input. No separate norm, add or activation dispatch remains.
      for (const [li, layer] of plan.layers.entries()) {
        const L = `layer${li}`;
        const push = (kind: string, k: Matmul) => ops.push(rowsOp(kind, li, k));
        const withCache = (kind: string, k: { encode(pass: GPUComputePassEncoder, rows: number, cacheIndex?: 0 | 1): void }) => ops.push({ kind, layer: li, weightBytes: 0, encode: (pass, S, _t, cacheIndex) => k.encode(pass, S, cacheIndex) });
        const inputNorm = await uploader.f32(layer.inputNorm, `${L}.inputNorm`);
        // KV cache (kvHeads, capacity, D) of f32 or f16 (precision); it grows (fitCapacity).
        const kCache = kvCacheBuffer(device, `${L}.kCache`, kvHeads * D * kvBytes, capacity);
        const vCache = kvCacheBuffer(device, `${L}.vCache`, kvHeads * D * kvBytes, capacity);
        buffers.set(`${L}.kCache`, kCache);
        buffers.set(`${L}.vCache`, vCache);
        // The kernels that read or write the cache, and how each is pointed at a grown one.
        const rebinds: ((k: GPUBuffer, v: GPUBuffer, maxT: number) => void)[] = [];
        kvLayers.push({ name: L, k: kCache, v: vCache, capacity, rebind: (k, v, maxT) => rebinds.forEach((r) => r(k, v, maxT)) });
        let qSrc: { buffer: GPUBuffer; rowStride: number; offset: number };
        if (qkv) {
          const projections = layer.attention.kind === 'packed' ? layer.attention.qkv : [layer.attention.q, layer.attention.k, layer.attention.v];
          const first = Array.isArray(projections) ? (projections as readonly QuantWeight[])[0] : (projections as QuantWeight);
          // Decode: the qkv GEMV itself rotates q (in place in qkv) and k and appends k and v.
          // Prefill: the GEMM writes plain rows and one kv-append dispatch does the rest.
          // (Devices below 10 storage buffers per stage keep the kv-append dispatch in decode.)
          const fuseDecode = matMulNBitsHasGemv(first.K, first.blockSize) && D % 2 === 0 && matMulNBitsRopeAppendSupported(device);
          const ropeAppend = fuseDecode ? { heads, kvHeads, headDim: D, maxT: capacity, kCache, vCache, precision, rotary } : undefined;
          // Read when the qkv kernel is built again (the tunables, below).
          if (ropeAppend) rebinds.push((k, v, maxT) => Object.assign(ropeAppend, { kCache: k, vCache: v, maxT }));
          const qkvKernel = await quantKernel(projections, hidden, qkv, `${L}.qkv`, { inputNorm, ropeAppend });
          ops.push({ kind: 'qkv', layer: li, weightBytes: qkvKernel.weightBytes, macsPerRow: qkvKernel.macsPerRow, parts: qkvKernel.parts, encode: (pass, S, _t, cacheIndex) => qkvKernel.encode(pass, S, cacheIndex) });
          // One dispatch rotates q in place and appends rotated k and v to the cache.
          const kvAppendFor = (k: GPUBuffer, v: GPUBuffer, maxT: number) =>
            createKvAppend(device, { kvHeads, headDim: D, rowStride: qkvStride, kOffset: qDim, vOffset: qDim + kvDim, maxT, step, kSrc: qkv, vSrc: qkv, kCache: k, vCache: v, precision, rotary, rotateQ: { heads, qBuffer: qkv, rowStride: qkvStride, offset: 0 } });
          let kvAppend = kvAppendFor(kCache, vCache, capacity);
          rebinds.push((k, v, maxT) => (kvAppend = kvAppendFor(k, v, maxT)));
          ops.push({ kind: 'kvAppend', layer: li, weightBytes: 0, prefillOnly: fuseDecode, encode: (pass, S, _t, cacheIndex) => kvAppend.encode(pass, S, cacheIndex) });
          qSrc = { buffer: qkv, rowStride: qkvStride, offset: 0 };
        } else {
          if (!q || !k || !v || layer.attention.kind === 'packed') throw new AppError('MODEL_UNSUPPORTED_GRAPH', `Layer ${li} mixes packed and separate q/k/v projections.`);
          push('q', await quantKernel(layer.attention.q, hidden, q, `${L}.q`, { inputNorm }));
          push('k', await quantKernel(layer.attention.k, hidden, k, `${L}.k`, { inputNorm }));
          push('v', await quantKernel(layer.attention.v, hidden, v, `${L}.v`, { inputNorm }));
          // One dispatch rotates q in place and appends rotated k and v to the cache.
          const kvAppendFor = (kc: GPUBuffer, vc: GPUBuffer, maxT: number) =>
            createKvAppend(device, { kvHeads, headDim: D, rowStride: kvDim, kOffset: 0, vOffset: 0, maxT, step, kSrc: k, vSrc: v, kCache: kc, vCache: vc, precision, rotary, rotateQ: { heads, qBuffer: q, rowStride: qDim, offset: 0 } });
          let kvAppend = kvAppendFor(kCache, vCache, capacity);
          rebinds.push((kc, vc, maxT) => (kvAppend = kvAppendFor(kc, vc, maxT)));
          withCache('kvAppend', { encode: (pass, rows, cacheIndex) => kvAppend.encode(pass, rows, cacheIndex) });
          qSrc = { buffer: q, rowStride: qDim, offset: 0 };
        }
        // Attention has no MatMulNBits tuning: it warms o_proj with the share of the matmul before it.
        let attention: AttentionKernel;
        const attentionFrom: AttentionBindings = { heads, kvHeads, headDim: D, maxT: capacity, splitCapacity: contextLimit, scale: c.attentionScale, window: c.attentionWindow, step, q: qSrc.buffer, rowStride: qSrc.rowStride, qOffset: qSrc.offset, kCache, vCache, precision, out: attnOut, ...attentionTuning };
        attentionLayers.push(attentionFrom);
        // Read when attention is built again (the tunables).
        rebinds.push((k, v, maxT) => Object.assign(attentionFrom, { kCache: k, vCache: v, maxT }));
        const buildAttention: Tunable = (_tuning, share) => {
          attention = createAttention(device, { ...attentionFrom, warmNext: share });
          return { host: attention, rows: null, share, path: null };
        };
        tuned.push(buildAttention(undefined, tuned.at(-1)?.share ?? 0));
        tunables.push(buildAttention);
        ops.push({ kind: 'attention', layer: li, weightBytes: 0, encode: (pass, S, totalLen) => attention.encode(pass, S, totalLen) });
        push('o', await quantKernel(layer.o, attnOut, hidden, `${L}.o`, { accumulate: true }));
        const postNorm = await uploader.f32(layer.postAttentionNorm, `${L}.postAttentionNorm`);
        if (gateUp) {
          const projections = layer.mlp.kind === 'fused' ? layer.mlp.gateUp : [layer.mlp.gate, layer.mlp.up];
          push('gateUp', await quantKernel(projections, hidden, gateUp, `${L}.gateUp`, { inputNorm: postNorm }));
          push('down', await quantKernel(layer.down, gateUp, hidden, `${L}.down`, { accumulate: true, siluUp: { up: gateUp, gateStride: 2 * I, gateOffset: 0, upStride: 2 * I, upOffset: I } }));
        } else {
          if (!gate || !up || layer.mlp.kind === 'fused') throw new AppError('MODEL_UNSUPPORTED_GRAPH', `Layer ${li} mixes fused and separate gate/up projections.`);
          push('gate', await quantKernel(layer.mlp.gate, hidden, gate, `${L}.gate`, { inputNorm: postNorm }));
          push('up', await quantKernel(layer.mlp.up, hidden, up, `${L}.up`, { inputNorm: postNorm }));
          push('down', await quantKernel(layer.down, gate, hidden, `${L}.down`, { accumulate: true, siluUp: { up, gateStride: I, gateOffset: 0, upStride: I, upOffset: 0 } }));
        }
      }
      // Only the last row reaches lm_head, which applies the final norm itself.
      const finalNormWeight = await uploader.f32(plan.finalNorm, 'finalNorm');
      const lmHead = await quantKernel(plan.lmHead, lmIn, logits, 'lmHead', { inputNorm: finalNormWeight }, 1);
      // A packed value beyond fp16: freed below, and `load` builds again with them in f32.
      if (await uploader.packedOutOfRange()) throw new PackedOutOfRange();
      const history = device.createBuffer({ label: 'history', size: Math.max(16, contextLimit * 4), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
      buffers.set('history', history);
      const token = act('token', 4);
      // The sampled id's read-back target, reused every step: the copy rides in the step's own
      // command buffer, so a decode token is one submit and no buffer is created per token.
      for (const i of [0, 1]) buffers.set(`tokenReadback${i}`, device.createBuffer({ label: `tokenReadback${i}`, size: 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }));
      const readbacks = [buffers.get('tokenReadback0')!, buffers.get('tokenReadback1')!] as const;
      const sampler = createSampler(device, { vocab: V, logits, logitsOffset: 0, history, step, out: token });
      const decodeOps = ops.filter((op) => !op.prefillOnly);
      const runtime = new Phi3Runtime(ctx, plan, uploader, buffers, ops, decodeOps, lmHead, sampler, step, maxPrefill, contextLimit, precision, readbacks, opts.runAhead ?? true);
      runtime.kvLayers = kvLayers;
      runtime.capacity = capacity;
      runtime.initialCapacity = capacity;
      // Below split-K attention (≤ 64 tokens of context); + lm_head and sampler.
      runtime.dispatchesPerDecode = decodeOps.length + 2;
      runtime.tunables = tunables;
      runtime.matMulTuning = matMulTuning;
      runtime.attentionTuning = attentionOverrides;
      runtime.setAttention = setAttention;
      runtime.wireTuned(tuned);
      // The MatMulNBits pipelines compiled in the background while the weights streamed in.
      await matMulNBitsReady(device);
      await device.queue.onSubmittedWorkDone();
      return runtime;
    } catch (err) {
      // A model that fails half-way (bad weights, out of memory) must not leak GPU memory.
      uploader.destroyAll();
      for (const b of buffers.values()) b.destroy();
      step.destroy();
      throw err;
    }
  }

  /**
   * Builds every kernel the MatMulNBits tuning shapes again with `tuning` (as LoadOptions.matMulTuning;
   * undefined: the adapter's defaults), over the same weights, cache and buffers, and waits for
   * their pipelines (pipelines compiled before are reused). The KV cache and `cachedIds` are kept:
   * the kernels differ in how they compute, not in what they read or write. On a failed compile
   * the kernels stay half built: retune again (to the tuning before) before the next step.
   * For Phi3's autotune (autotune.ts) and benchmarks.
   */
  async retune(tuning: MatMulNBitsTuning | undefined): Promise<void> {
    this.next = null;
    // A step run ahead may still use the old warm buffer.
    await this.ctx.device.queue.onSubmittedWorkDone();
    await this.buildTunables(tuning);
  }

  /**
   * As `retune`, for the attention kernels: builds every layer's attention again with `tuning`
   * (as LoadOptions.attention; undefined: the adapter's defaults), over the same cache, and the
   * matmuls with the MatMulNBits tuning they have. A larger split cap grows the shared split-K
   * scratch. On a failed build the kernels stay half built, as with `retune`.
   */
  async retuneAttention(tuning: AttentionTuning | undefined): Promise<void> {
    this.next = null;
    // A step run ahead may still use the old split-K scratch.
    await this.ctx.device.queue.onSubmittedWorkDone();
    this.setAttention(tuning);
    this.attentionTuning = tuning;
    await this.buildTunables(this.matMulTuning);
  }

  /** Builds every kernel the tuning shapes again with `tuning` (retune's, and fitCapacity's after the caches moved) and waits for their pipelines. */
  private async buildTunables(tuning: MatMulNBitsTuning | undefined): Promise<void> {
    const tuned: TunedKernel[] = [];
    for (const build of this.tunables) tuned.push(build(tuning, tuned.at(-1)?.share ?? 0));
    this.matMulTuning = tuning;
    this.wireTuned(tuned);
    await matMulNBitsReady(this.ctx.device);
  }

  /**
   * Positions the KV cache holds now (LoadOptions.kvInitialTokens at load); `fitCapacity` doubles
   * it, up to `kvMaxPositions`, before a step that needs more, and gives it back when a step needs
   * a quarter of it or less.
   */
  get kvCapacity(): number {
    return this.capacity;
  }

  /**
   * Rows a windowed model's cache stops growing at, a ring (kvRingRows; Infinity: no window, or a
   * context no longer than it).
   */
  get ringRows(): number {
    const ring = kvRingRows(this.plan.config, this.maxPrefill);
    return ring < this.limit ? ring : Infinity;
  }

  /** The most positions the KV cache grows to: the context, or a windowed model's ring (`ringRows`). */
  get kvMaxPositions(): number {
    return Math.min(this.limit, this.ringRows);
  }

  /**
   * Whether the cache still holds every key the next position attends: always, unless a ring has
   * overwritten rows (writtenEnd past ringRows) that a chat truncated back far enough still needs.
   */
  private ringHolds(): boolean {
    const lost = this.writtenEnd - this.ringRows; // positions below it were overwritten
    if (lost <= 0) return true;
    const next = this.cachedIds.length;
    return lost <= next - (this.plan.config.attentionWindow ?? Infinity) + 1;
  }

  /** Bytes one position takes in the KV cache, K and V over every layer. */
  get kvBytesPerPosition(): number {
    const { layers, kvHeads, headDim } = this.plan.config;
    return layers * 2 * kvHeads * headDim * kvBytesPerElement(this.precision);
  }

  /**
   * Sizes the KV cache for a step that ends at `positions` (callers check the context limit).
   * The sizes are the initial capacity doubled (at most `kvMaxPositions`): the cache grows to the
   * first that holds `positions` (a ring: all its rows, past them), and shrinks to it when the
   * cache is 4× that size or more (a new chat after a long one: truncate() left few positions, so
   * a 2,048-token cache goes back to 512 instead of holding 1.6 GB for a short chat; the factor
   * keeps a chat near a size from going back and forth). A ring that has wrapped keeps its size
   * until it is emptied: its rows are no longer in position order.
   *
   * It grows one doubling at a time, so a GPU that runs out of memory on the way (an
   * `out-of-memory` error scope per layer) keeps the largest size every layer got: the layers
   * that reached the next size go back to it, the context limit becomes it (the chat is fitted to
   * it from then on), and the step fails with GPU_OUT_OF_MEMORY. A prompt of 100K tokens on a GPU
   * with room for 20K so leaves a 16K context, not the 512 it started with. While shrinking, out
   * of memory keeps the larger cache.
   *
   * The step encoded ahead is dropped (it was encoded with the old caches), and every kernel that
   * binds a cache is built again, as `retune` does (same pipelines: the capacity is a uniform,
   * and attention's split sizes follow the context limit at load).
   */
  private async fitCapacity(positions: number): Promise<void> {
    const most = this.kvMaxPositions;
    const rows = Math.min(positions, most);
    let fit = Math.min(this.initialCapacity, most);
    while (fit < rows && fit < most) fit = Math.min(fit * 2, most);
    const grow = rows > this.capacity;
    if (!grow && (this.capacity < 4 * fit || this.writtenEnd > this.capacity)) return;
    this.next = null;
    // Steps submitted before may still use the warm buffer that rebuilding replaces.
    await this.ctx.device.queue.onSubmittedWorkDone();
    let failure: GPUError | null = null;
    if (!grow) await this.resizeLayers(fit);
    else {
      for (let size = this.capacity; size < fit && !failure; ) {
        const held = size;
        size = Math.min(size * 2, fit);
        failure = await this.resizeLayers(size);
        if (failure) {
          // The layers that got the next size give it back, for the other tabs and apps on this GPU.
          await this.resizeLayers(held);
          this.limit = held;
        }
      }
    }
    await this.buildTunables(this.matMulTuning);
    if (failure) {
      throw new AppError(
        'GPU_OUT_OF_MEMORY',
        `The GPU ran out of memory growing the context cache to ${fit} tokens (${failure.message}). The chat so far is kept, and the context on this GPU is now ${this.limit} tokens: the next answer leaves out the oldest messages to fit. To get more back, close other tabs and apps that use the GPU and load the model again.`,
      );
    }
  }

  /**
   * Gives every layer's cache `size` positions, one layer at a time: a cache of the new size, the
   * positions held so far copied in head by head (the layout is [kvHeads, capacity, headDim], so
   * each head's block moves), the old one destroyed, so at most one layer's cache exists twice.
   * The copies run in queue order after every step submitted before, so they carry what those
   * steps wrote. Stops at the first layer the GPU has no memory for and returns that error (the
   * layers before it keep the new size); null when every layer has it.
   */
  private async resizeLayers(size: number): Promise<GPUError | null> {
    const { device } = this.ctx;
    const { kvHeads, headDim } = this.plan.config;
    const headBytes = (positions: number) => headDim * kvBytesPerElement(this.precision) * positions;
    let failure: GPUError | null = null;
    for (const layer of this.kvLayers) {
      if (layer.capacity === size) continue;
      device.pushErrorScope('out-of-memory');
      const sized = [layer.k, layer.v].map((old) => kvCacheBuffer(device, old.label, kvHeads * headBytes(1), size));
      failure = await device.popErrorScope();
      if (failure) {
        sized.forEach((b) => b.destroy());
        break;
      }
      const held = Math.min(this.cachedIds.length, layer.capacity, size);
      if (held > 0) {
        const encoder = device.createCommandEncoder({ label: `${layer.name}.kvResize` });
        for (const [i, old] of [layer.k, layer.v].entries()) {
          for (let h = 0; h < kvHeads; h++) encoder.copyBufferToBuffer(old, h * headBytes(layer.capacity), sized[i], h * headBytes(size), headBytes(held));
        }
        device.queue.submit([encoder.finish()]);
      }
      // Freed once the copies (and any step still reading it) are done.
      layer.k.destroy();
      layer.v.destroy();
      [layer.k, layer.v] = sized;
      this.buffers.set(layer.k.label, layer.k);
      this.buffers.set(layer.v.label, layer.v);
      layer.capacity = size;
      layer.rebind(layer.k, layer.v, size);
    }
    // The runtime holds what every layer holds (each layer's kernels know their own capacity).
    this.capacity = Math.min(...this.kvLayers.map((l) => l.capacity));
    // The new caches hold the cached positions and nothing past them (a resized cache had never
    // wrapped: fitCapacity), so a stale write from before no longer counts.
    this.writtenEnd = Math.min(this.writtenEnd, this.cachedIds.length);
    return failure;
  }

  /**
   * Records the tuned kernels' decode paths and sets up tuning.warmNext: each host reads ahead into
   * the next matmul's rows (attention into o_proj's, o_proj into gate_up's, gate_up into down's,
   * down into the next qkv's or the lm_head's; the fused qkv GEMV cannot host, and needs none:
   * attention follows it). One sums buffer serves them all.
   */
  private wireTuned(tuned: readonly TunedKernel[]): void {
    this.decodeMatMulPaths = [...new Set(tuned.flatMap((t) => (t.path ? [t.path] : [])))].sort();
    this.buffers.get('warmSums')?.destroy();
    this.buffers.delete('warmSums');
    this.decodeWarmBytes = 0;
    const pairs = tuned.slice(0, -1).map(({ host }, i) => ({ host, next: tuned[i + 1].rows }));
    const warmSumsBytes = pairs.reduce((n, p) => Math.max(n, p.host.warmSumsBytes(p.next)), 0);
    if (warmSumsBytes > 0) {
      const warmSums = this.ctx.device.createBuffer({ label: 'warmSums', size: warmSumsBytes, usage: GPUBufferUsage.STORAGE });
      this.buffers.set('warmSums', warmSums);
      for (const { host, next } of pairs) this.decodeWarmBytes += host.warmNext(next, warmSums);
    }
  }

  /**
   * Bytes of the GPU buffers this model holds now: its weights (as uploaded: int4 blocks, scales,
   * embedding, rotary tables, norms), its KV cache (at its current capacity), and the rest the
   * runtime owns (activations, logits, scratch, read-backs). Kernels' own uniform buffers, a few
   * hundred bytes each, are left out. What was asked of WebGPU; drivers add their own padding.
   */
  gpuBytes(): { weights: number; kvCache: number; other: number } {
    const sum = (bs: Iterable<GPUBuffer>) => [...bs].reduce((n, b) => n + b.size, 0);
    const kvCache = this.kvLayers.reduce((n, l) => n + l.k.size + l.v.size, 0);
    return { weights: sum(this.uploader.buffers), kvCache, other: sum(this.buffers.values()) - kvCache + this.stepUniform.size };
  }

  truncate(length: number): void {
    this.next = null;
    if (length < this.cachedIds.length) this.cachedIds.length = length;
    // Empty, the cache holds nothing a later step reads before writing it.
    if (this.cachedIds.length === 0) this.writtenEnd = 0;
  }

  /** Which rotary cache pair the reference would use for a step ending at `totalLen` tokens. */
  private cacheIndex(totalLen: number): 0 | 1 {
    const long = this.plan.rotary.long;
    return long && totalLen > long.switchAbove ? 1 : 0;
  }

  /**
   * TokenRuntime.reusableFor: the whole cache, unless its keys were rotated with the other LongRoPE
   * caches than a step ending at `stepEnd` (or at `reach`, where further: PrefillFeed.reach) takes,
   * or a ring overwrote keys the next position attends (the chat was truncated back further than
   * the ring's slack, maxPrefill positions past the window): then none of it.
   */
  reusableFor(stepEnd: number, reach = 0): number {
    return this.ringHolds() && this.cacheIndex(Math.max(stepEnd, reach)) === this.rotation ? this.cachedIds.length : 0;
  }

  /**
   * Runs `ids` (one chunk, ≤ maxPrefill) and leaves the last row's logits in the logits buffer:
   * writes the chunk's inputs (step uniform, ids, history), encodes its passes, and appends the ids
   * to the cache. `stepEnd`: where the step this chunk belongs to ends, which picks LongRoPE's
   * caches for every chunk of it (onnxruntime runs a prompt at once: one that crosses the switch
   * rotates all of its keys with the long factors, and chunks that picked by their own end rotated
   * the first 4,096 with the short ones).
   */
  private encodeChunk(encoder: GPUCommandEncoder, ids: readonly number[], timestamps?: GPUQuerySet, stepEnd = this.cachedIds.length + ids.length): void {
    const { device } = this.ctx;
    const pastLen = this.cachedIds.length;
    writeStep(device, this.stepUniform, { seqLen: ids.length, pastLen });
    device.queue.writeBuffer(this.buffers.get('ids')!, 0, new Uint32Array(ids));
    // The history buffer mirrors cachedIds for the repetition penalty.
    device.queue.writeBuffer(this.buffers.get('history')!, pastLen * 4, new Uint32Array(ids));
    this.rotation = this.cacheIndex(stepEnd);
    this.encodePasses(encoder, ids.length, pastLen, timestamps, this.rotation);
    this.cachedIds.push(...ids);
  }

  /**
   * The forward passes for S rows after pastLen cached tokens (`decodeOps` for S = 1, else every
   * op); writes nothing. With `timestamps`, every kernel gets a compute pass of its own that writes
   * begin/end timestamps at 2i, 2i + 1 (i = its index among the ops encoded, then the lm_head) —
   * for `profileDecode` and `profilePrefill` only.
   */
  private encodePasses(encoder: GPUCommandEncoder, S: number, pastLen: number, timestamps: GPUQuerySet | undefined, cacheIndex: 0 | 1): void {
    // The passes write the KV rows of positions pastLen .. pastLen + S − 1 (a step encoded ahead
    // and dropped included).
    this.writtenEnd = Math.max(this.writtenEnd, pastLen + S);
    const ops = S === 1 ? this.decodeOps : this.ops;
    const timed = (i: number, label: string): GPUComputePassDescriptor => ({ label, timestampWrites: timestamps && { querySet: timestamps, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } });
    if (timestamps) {
      for (const [i, op] of ops.entries()) {
        const pass = encoder.beginComputePass(timed(i, op.kind));
        op.encode(pass, S, pastLen + S, cacheIndex);
        pass.end();
      }
    } else {
      const pass = encoder.beginComputePass({ label: `forward S=${S}` });
      for (const op of ops) op.encode(pass, S, pastLen + S, cacheIndex);
      pass.end();
    }
    const H = this.plan.config.hidden;
    encoder.copyBufferToBuffer(this.buffers.get('hidden')!, (S - 1) * H * 4, this.buffers.get('lmIn')!, 0, H * 4);
    const head = encoder.beginComputePass(timed(ops.length, 'lm_head'));
    this.lmHead.encode(head, 1);
    head.end();
  }

  /** Token selection on the GPU and the copy of its 4-byte id into `readback`. */
  private encodeSampling(encoder: GPUCommandEncoder, readback: GPUBuffer): void {
    const pass = encoder.beginComputePass({ label: 'sample' });
    this.sampler.encode(pass);
    pass.end();
    encoder.copyBufferToBuffer(this.buffers.get('token')!, 0, readback, 0, 4);
  }

  /**
   * Encodes the decode step that follows the one just submitted, while the GPU runs that one: its
   * input is the sampled token itself, copied on the GPU from `token` into `ids` and `history`, and
   * its own token goes to `readbacks[readbackTurn]` (the buffer the submitted step does not use).
   * With runAhead it writes the step's uniforms and submits it at once (see the
   * module header); otherwise `step` does both when the step is asked for.
   */
  private encodeNext(samplingKey: string, stepIndex: number): NextStep | null {
    const pastLen = this.cachedIds.length;
    // Past the cache's capacity the step is encoded when asked for, after the cache has grown; one
    // that crosses LongRoPE's switch runs the whole sequence again (`forward`).
    if (Math.min(pastLen + 1, this.ringRows) > this.kvCapacity || this.cacheIndex(pastLen + 1) !== this.rotation) return null;
    const { device } = this.ctx;
    const encoder = device.createCommandEncoder({ label: 'step (encoded ahead)' });
    const token = this.buffers.get('token')!;
    encoder.copyBufferToBuffer(token, 0, this.buffers.get('ids')!, 0, 4);
    encoder.copyBufferToBuffer(token, 0, this.buffers.get('history')!, pastLen * 4, 4);
    this.encodePasses(encoder, 1, pastLen, undefined, this.rotation);
    this.encodeSampling(encoder, this.readbacks[this.readbackTurn]);
    const next: NextStep = { encoder, pastLen, samplingKey, stepIndex, token: -1, submitted: false };
    if (this.runAhead) this.submitDecode(next);
    return next;
  }

  /** Writes a step-encoded-ahead's uniforms (its cache ends with the token it copies) and submits it. */
  private submitDecode(next: NextStep): void {
    const { device } = this.ctx;
    writeStep(device, this.stepUniform, { seqLen: 1, pastLen: next.pastLen });
    writeSamplerStep(device, this.sampler, { historyLength: next.pastLen + 1, stepIndex: next.stepIndex });
    device.queue.submit([next.encoder.finish()]);
    next.submitted = true;
  }

  /**
   * GPU time of every kernel of one decode step that feeds `id` after the cache (and appends it, as
   * `step` does; no token is sampled). Each kernel runs in a compute pass of its own with timestamp
   * writes, so the figures include a pass boundary each: their sum is above a normal step's time,
   * and the split between kernels is what this is for. Null where the device lacks
   * `timestamp-query`. For benchmarks.
   */
  async profileDecode(id: number): Promise<KernelTime[] | null> {
    return this.profileChunk([id], 'profileDecode');
  }

  /**
   * profileDecode for a prefill chunk: every kernel of feeding `ids` (2 ..= maxPrefill tokens, one
   * chunk) after the cache, each in a timestamped pass of its own, and `ids` appended, as `logits`
   * would (the lm_head runs on the last row only). For benchmarks: where prefill time goes, and a
   * matmul's TFLOP/s in context (2 · rows · macsPerRow / ms).
   */
  async profilePrefill(ids: readonly number[]): Promise<KernelTime[] | null> {
    if (ids.length < 2 || ids.length > this.maxPrefill) throw new AppError('BAD_ARGUMENT', `profilePrefill: ${ids.length} tokens; a prefill chunk is 2 to ${this.maxPrefill} (maxPrefill).`);
    return this.profileChunk(ids, 'profilePrefill');
  }

  private async profileChunk(ids: readonly number[], label: string): Promise<KernelTime[] | null> {
    const { device } = this.ctx;
    if (!device.features.has('timestamp-query')) return null;
    if (this.cachedIds.length + ids.length > this.contextLimit) throw new AppError('CONTEXT_OVERFLOW', `${label}: ${ids.length} more tokens do not fit in the ${this.contextLimit}-token context.`);
    await this.fitCapacity(this.cachedIds.length + ids.length);
    this.next = null;
    const ops = ids.length === 1 ? this.decodeOps : this.ops;
    const ns = await submitTimestamped(device, 2 * (ops.length + 1), label, (encoder, querySet) => this.encodeChunk(encoder, ids, querySet));
    const ms = (i: number) => Number(ns[2 * i + 1] - ns[2 * i]) / 1e6;
    const times: KernelTime[] = ops.map((op, i) => ({ kind: op.kind, layer: op.layer, weightBytes: op.weightBytes, macsPerRow: op.macsPerRow ?? 0, rows: ids.length, ms: ms(i) }));
    times.push({ kind: 'lm_head', layer: null, weightBytes: this.lmHead.weightBytes, macsPerRow: this.lmHead.macsPerRow, rows: 1, ms: ms(ops.length) });
    return times;
  }

  /**
   * GPU time of one decode step's forward kernels (the decode ops and lm_head; no sampling) with
   * every kernel whose kind is in `skip` left out: `reps` steps encoded back to back in ONE compute
   * pass, timestamped at its start and end, divided by `reps`. The difference from the same call
   * with nothing skipped is what a kind costs inside a real step, its barrier included and no pass
   * boundary (profileDecode's pass per kernel adds one to each). Runs at the current end of the
   * cache without appending: the KV entry it writes lies past the cache, as a dropped run-ahead
   * step's does, and everything else it writes is scratch; it reads whatever ids and lm_head input
   * the buffers hold (timing does not depend on the values). Null where the device lacks
   * `timestamp-query`. For benchmarks (tools/bench/profile.ts).
   * Kinds in `readInstead` (weight matmuls only: `weightMatmulKinds`) run the weight-read kernel
   * over their own weight buffers in their place (kernels/weight-read.ts): that minus the step
   * without them is the least time reading those bytes takes in the step, the floor their kernels'
   * in-step time is held against. The kernels after them then read stale inputs (timing only).
   */
  async timeDecodeWithout(skip: ReadonlySet<string>, reps: number, readInstead: ReadonlySet<string> = new Set()): Promise<number | null> {
    const { device } = this.ctx;
    if (!device.features.has('timestamp-query')) return null;
    if (!Number.isInteger(reps) || reps < 1) throw new AppError('BAD_ARGUMENT', `timeDecodeWithout: reps must be a positive integer, got ${reps}.`);
    const pastLen = this.cachedIds.length;
    if (pastLen + 1 > this.contextLimit) throw new AppError('CONTEXT_OVERFLOW', `timeDecodeWithout: the ${this.contextLimit}-token context is full.`);
    await this.fitCapacity(pastLen + 1);
    const matmuls = this.weightMatmulKinds();
    for (const kind of readInstead) {
      if (!matmuls.includes(kind)) throw new AppError('BAD_ARGUMENT', `timeDecodeWithout: readInstead names '${kind}', which is not a weight matmul of the decode step (${matmuls.join(', ')}).`);
    }
    this.next = null;
    writeStep(device, this.stepUniform, { seqLen: 1, pastLen });
    this.writtenEnd = Math.max(this.writtenEnd, pastLen + 1);
    const cacheIndex = this.cacheIndex(pastLen + 1);
    const read = (key: object, parts: WeightReadParts, label: string) => {
      let k = this.weightReads.get(key);
      if (!k) this.weightReads.set(key, (k = createWeightRead(device, parts, `weightRead.${label}`, this.weightReadSums())));
      return k;
    };
    const ns = await submitTimestamped(device, 2, 'timeDecodeWithout', (encoder, querySet) => {
      const pass = encoder.beginComputePass({ label: 'decode steps', timestampWrites: { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } });
      for (let r = 0; r < reps; r++) {
        for (const op of this.decodeOps) {
          if (skip.has(op.kind)) continue;
          if (readInstead.has(op.kind)) read(op, op.parts!, `${op.kind}${op.layer ?? ''}`).encode(pass);
          else op.encode(pass, 1, pastLen + 1, cacheIndex);
        }
        if (skip.has('lm_head')) continue;
        if (readInstead.has('lm_head')) read(this.lmHead, this.lmHead.parts, 'lm_head').encode(pass);
        else this.lmHead.encode(pass, 1);
      }
      pass.end();
    });
    return Number(ns[1] - ns[0]) / 1e6 / reps;
  }

  /** One `sums` buffer for every weight read (the largest read's size), made on first use. */
  private weightReadSums(): GPUBuffer {
    let sums = this.buffers.get('weightReadSums');
    if (!sums) {
      const all = [...this.decodeOps.flatMap((op) => (op.parts ? [op.parts] : [])), this.lmHead.parts];
      const bytes = Math.max(...all.map((parts) => weightReadSumsBytes(this.ctx.device, parts)));
      sums = this.ctx.device.createBuffer({ label: 'weightReadSums', size: bytes, usage: GPUBufferUsage.STORAGE });
      this.buffers.set('weightReadSums', sums);
    }
    return sums;
  }

  /** The kinds of the decode step's weight matmuls, lm_head last (what `readInstead` accepts). */
  weightMatmulKinds(): string[] {
    return [...new Set(this.decodeOps.filter((op) => op.parts).map((op) => op.kind)), 'lm_head'];
  }

  /**
   * Feeds `ids` after the cache, in chunks of maxPrefill, through every layer, and returns the last
   * chunk's encoder for the caller to finish. A step that ends on the other side of LongRoPE's
   * switch from the cached keys' rotation, or after a ring lost keys it needs, feeds the cached ids
   * again before `ids` (`reusableFor`; progress then counts them too). With `feed`, a prompt of several chunks keeps at most
   * two of them submitted and not done, so each chunk's end is reported as the GPU gets there and
   * an abort is heard between chunks (the GPU meanwhile runs the next one: no gap); it then rejects
   * with an AbortError, and the cache holds the chunks submitted.
   */
  private async forward(ids: readonly number[], feed?: PrefillFeed): Promise<GPUCommandEncoder> {
    if (this.cachedIds.length + ids.length > this.contextLimit) {
      throw new AppError('CONTEXT_OVERFLOW', `${this.cachedIds.length + ids.length} tokens do not fit in the ${this.contextLimit}-token context. Start a new conversation or shorten it.`);
    }
    // LongRoPE's caches are picked for where the step ends, or where the caller says the sequence
    // goes on to (feed.reach: the read-ahead's chunks then rotate as one step to its target would).
    const stepEnd = this.cachedIds.length + ids.length;
    const rotateFor = Math.max(stepEnd, feed?.reach ?? 0);
    if (this.reusableFor(rotateFor) < this.cachedIds.length) {
      // The cache was written on the other side of LongRoPE's switch, or its ring lost keys the
      // step attends: run the whole sequence again.
      ids = [...this.cachedIds, ...ids];
      this.truncate(0);
    }
    await this.fitCapacity(stepEnd);
    const { device } = this.ctx;
    let previous: Promise<void> | undefined;
    for (let at = 0; at < ids.length; at += this.maxPrefill) {
      const chunk = ids.slice(at, at + this.maxPrefill);
      const encoder = device.createCommandEncoder({ label: 'step' });
      this.encodeChunk(encoder, chunk, undefined, rotateFor);
      if (at + this.maxPrefill >= ids.length) return encoder; // the caller adds sampling and submits
      device.queue.submit([encoder.finish()]);
      if (!feed) continue;
      const done = at + chunk.length;
      const settled = device.queue.onSubmittedWorkDone().then(() => feed.onPrefill?.(done));
      await previous;
      previous = settled;
      if (feed.signal?.aborted) {
        await settled;
        throw new DOMException('The prompt was stopped between two prefill chunks.', 'AbortError');
      }
    }
    throw new AppError('BAD_ARGUMENT', 'forward() needs at least one token.');
  }

  async step(ids: readonly number[], sampling: SamplingOptions, stepIndex: number, feed?: PrefillFeed): Promise<number> {
    const { device } = this.ctx;
    const key = JSON.stringify(sampling);
    const n = this.next;
    this.next = null;
    // This step's token goes to readbacks[turn]: the step encoded ahead was encoded so.
    const turn = this.readbackTurn;
    // The usual decode step: the step encoded ahead reads this token on the GPU. One already
    // submitted also fixed its step index (the RNG seed) when it was submitted.
    if (n && ids.length === 1 && ids[0] === n.token && n.pastLen === this.cachedIds.length && n.samplingKey === key && (!n.submitted || n.stepIndex === stepIndex)) {
      this.cachedIds.push(ids[0]);
      if (!n.submitted) {
        n.stepIndex = stepIndex;
        this.submitDecode(n);
      }
    } else {
      // Anything else (a prompt, another token, …) is encoded on the spot. A dropped step that was
      // submitted wrote only past the cache; see the module header.
      if (key !== this.samplerSettings) {
        writeSamplerParams(device, this.sampler, sampling);
        this.samplerSettings = key;
      }
      const encoder = await this.forward(ids, feed);
      this.encodeSampling(encoder, this.readbacks[turn]);
      writeSamplerStep(device, this.sampler, { historyLength: this.cachedIds.length, stepIndex });
      device.queue.submit([encoder.finish()]);
    }
    this.readbackTurn = 1 - turn;
    const next = this.encodeNext(key, stepIndex + 1);
    this.next = next;
    const readback = this.readbacks[turn];
    await readback.mapAsync(GPUMapMode.READ);
    const id = new Uint32Array(readback.getMappedRange())[0];
    readback.unmap();
    // The step encoded ahead is only valid for the caller feeding back exactly this token.
    if (next) next.token = id;
    return id;
  }

  /** Runs `ids` and returns the last position's logits (tests and the reference comparison). */
  async logits(ids: readonly number[]): Promise<Float32Array> {
    this.next = null;
    const encoder = await this.forward(ids);
    this.ctx.device.queue.submit([encoder.finish()]);
    return new Float32Array(await readBuffer(this.ctx.device, this.buffers.get('logits')!, this.plan.config.vocab * 4));
  }

  destroy(): void {
    this.next = null;
    for (const k of this.weightReads.values()) k.destroy();
    this.weightReads.clear();
    this.uploader.destroyAll();
    for (const b of this.buffers.values()) b.destroy();
    this.stepUniform.destroy();
  }
}

/**
 * A decode step encoded ahead: it feeds the token `token` (set once read back; −1 until then) at
 * position `pastLen`, with sampling `samplingKey` and RNG step `stepIndex`, and copies its own
 * token into the read-back buffer of `readbackTurn` when it was encoded. `submitted`: already on
 * the queue (runAhead).
 */
interface NextStep {
  encoder: GPUCommandEncoder;
  pastLen: number;
  samplingKey: string;
  stepIndex: number;
  token: number;
  submitted: boolean;
}

/** One layer's KV cache and how to point the kernels that use it at a grown one. */
interface KvLayer {
  name: string;
  k: GPUBuffer;
  v: GPUBuffer;
  /** Positions `k` and `v` hold (all layers hold the same unless growing ran out of memory half-way). */
  capacity: number;
  /** Points the layer's cache kernels at `k`, `v` of `maxT` positions (the kv append at once; qkv and attention when the tunables are built again). */
  rebind(k: GPUBuffer, v: GPUBuffer, maxT: number): void;
}

/** A KV cache buffer [kvHeads, positions, headDim]: `bytesPerPosition` = kvHeads · headDim · element bytes. */
function kvCacheBuffer(device: GPUDevice, label: string, bytesPerPosition: number, positions: number): GPUBuffer {
  return device.createBuffer({ label, size: Math.max(16, bytesPerPosition * positions), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
}

/** Whether projections can run as one matmul: same K, block size and scale/zero-point formats. */
function joinable(ws: readonly QuantWeight[]): boolean {
  const a = ws[0];
  return ws.every((w) => w.K === a.K && w.blockSize === a.blockSize && w.bits === a.bits && w.scales.dataType === a.scales.dataType && !w.zeroPoints === !a.zeroPoints);
}

/** Bytes the uploader will write: every tensor the plan places (progress total). */
function estimateUploadBytes(plan: Phi3Plan): number {
  const tensors: OnnxTensorInfo[] = [plan.embedding, plan.finalNorm, plan.rotary.short.cos, plan.rotary.short.sin];
  if (plan.rotary.long) tensors.push(plan.rotary.long.cos, plan.rotary.long.sin);
  const quant = (w: QuantWeight) => tensors.push(w.packed, w.scales, ...(w.zeroPoints ? [w.zeroPoints] : []));
  quant(plan.lmHead);
  for (const l of plan.layers) {
    tensors.push(l.inputNorm, l.postAttentionNorm);
    if (l.attention.kind === 'packed') quant(l.attention.qkv);
    else [l.attention.q, l.attention.k, l.attention.v].forEach(quant);
    quant(l.o);
    if (l.mlp.kind === 'fused') quant(l.mlp.gateUp);
    else [l.mlp.gate, l.mlp.up].forEach(quant);
    quant(l.down);
  }
  // Norm weights are uploaded as f32 even when stored as fp16; the difference is a few KB.
  return tensors.reduce((n, t) => n + (tensorByteLength(t.dataType, t.dims) ?? 0), 0);
}
