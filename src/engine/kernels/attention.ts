/**
 * Causal attention over the static KV cache (shaders/attention.wgsl or attention_lanes.wgsl, and
 * attention_blocked.wgsl for prefill when asked; each with attention_common.wgsl appended; split-K
 * adds attention_combine.wgsl) and its plain TypeScript reference.
 *
 * Two paths, chosen in `encode` from the lengths the caller passes (the same values it wrote to
 * the step uniform): one workgroup per (query, head) with a streaming softmax over key tiles; or,
 * for decode (seqLen = 1) once the context exceeds `keysPerSplit`, split-K ("flash decoding"):
 * several workgroups per head over key ranges, then a combine pass. Both shaders derive the split
 * count from step.totalLen with the formula in `splitCount`, so they and `encode` must stay in step.
 * A window (`window`, GroupQueryAttention's local_window_size) lets each query attend only its
 * last W keys: every kernel starts its keys there, and decode's splits cover just those W.
 * Position p of the cache is row p mod maxT, so a windowed model's cache can be a ring of
 * window + maxPrefill rows however long the chat (model.ts); AttentionLayout.maxT says what it
 * must hold.
 * The caches hold f32, or f16 with `precision: 'f16'` (packed two per u32 on every device;
 * precision-wgsl.ts): cached values are converted to f32 on load, and every product, sum and the
 * softmax stay f32 on both paths; the combine pass reads only f32 partials and has one
 * instantiation.
 * Two kernels implement that contract (`AttentionTuning.kernel`): 'serial' (attention.wgsl,
 * createAttention's default and SwiftShader's: a thread per key for the scores, a thread per head
 * dim looping over the keys for P·V) and 'lanes' (attention_lanes.wgsl: several lanes per key, and
 * P·V spread over (vec4 of dims, key group) lanes with independent vector loads; see its header).
 * Prefill (seqLen > 1) can instead run attention_blocked.wgsl (`AttentionTuning.prefill:
 * 'blocked'`): one workgroup per 16 queries of a head, so each K/V row is fetched once per block
 * rather than once per query. The model loads every real GPU with 'lanes', decode splits capped
 * at 24 and the blocked prefill (`attentionTuningFor`, timed on an H200).
 * With `warmNext`, decode dispatches also read the next matmul's (o_proj's) rows into the cache,
 * in a second layer of workgroups (warm-next.ts), as the decode GEMVs do for theirs.
 * Rule: `encode` never writes buffers; no workgroup array may be sized by maxT.
 */
import source from '../../../shaders/attention.wgsl?raw';
import combineSource from '../../../shaders/attention_combine.wgsl?raw';
import commonSource from '../../../shaders/attention_common.wgsl?raw';
import lanesSource from '../../../shaders/attention_lanes.wgsl?raw';
import blockedSource from '../../../shaders/attention_blocked.wgsl?raw';
import { AppError } from '../errors';
import { adapterText, type AdapterNames } from '../gpu/device';
import { createUniformBuffer, packUniform, workgroupGrid } from '../gpu/buffers';
import { getComputePipeline, sourceId } from '../gpu/pipelines';
import { withPrecision, type Precision } from './precision-wgsl';
import { STEP_WGSL } from './step';
import { WARM_OFF, checkWarmShare, createWarm, warmGroupsFor, warmNextSource, type WarmHost } from './warm-next';

export interface AttentionLayout {
  seqLen: number;
  pastLen: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** q rows: [heads, headDim] starts at `qOffset` inside each row of `rowStride` elements. */
  rowStride: number;
  qOffset: number;
  /**
   * Cache capacity: caches are [kvHeads, maxT, headDim], position p in row p mod maxT. A cache
   * that never wraps is the plain layout; one that does (a ring) must still hold every key each
   * query attends: its window and the step's own keys (the model keeps window + maxPrefill rows).
   */
  maxT: number;
  /** Defaults to 1/sqrt(headDim). */
  scale?: number;
  /**
   * Keys a query attends, itself included: its last `window` (GroupQueryAttention's
   * local_window_size, onnxruntime's rule). Absent or 0: every key up to its position.
   */
  window?: number;
}

/** Keys a query attends when its keys end at `totalLen` (`window` as AttentionLayout.window). */
export function keysSeen(totalLen: number, window: number | undefined): number {
  return window ? Math.min(totalLen, window) : totalLen;
}

/** Reference (double precision): out [seqLen, heads * headDim]. */
export function attentionReference(q: Float32Array, kCache: Float32Array, vCache: Float32Array, l: AttentionLayout): Float32Array {
  const D = l.headDim;
  const scale = l.scale ?? 1 / Math.sqrt(D);
  const group = l.heads / l.kvHeads;
  const out = new Float32Array(l.seqLen * l.heads * D);
  for (let t = 0; t < l.seqLen; t++) {
    const n = l.pastLen + t + 1;
    const first = n - keysSeen(n, l.window);
    for (let h = 0; h < l.heads; h++) {
      const g = Math.floor(h / group);
      const qb = t * l.rowStride + l.qOffset + h * D;
      const scores = new Float64Array(n);
      let mx = -Infinity;
      for (let j = first; j < n; j++) {
        const kb = (g * l.maxT + (j % l.maxT)) * D;
        let dot = 0;
        for (let d = 0; d < D; d++) dot += q[qb + d] * kCache[kb + d];
        scores[j] = dot * scale;
        mx = Math.max(mx, scores[j]);
      }
      let sum = 0;
      for (let j = first; j < n; j++) {
        scores[j] = Math.exp(scores[j] - mx);
        sum += scores[j];
      }
      const ob = (t * l.heads + h) * D;
      for (let d = 0; d < D; d++) {
        let a = 0;
        for (let j = first; j < n; j++) a += scores[j] * vCache[(g * l.maxT + (j % l.maxT)) * D + d];
        out[ob + d] = a / sum;
      }
    }
  }
  return out;
}

/** Attention kernel choices (LoadOptions.attention, bench:node --attention). */
export interface AttentionTuning {
  /** Which kernel runs both paths: 'serial' (default) or 'lanes'; see the module header. */
  kernel?: 'serial' | 'lanes';
  /**
   * Decode switches to split-K when totalLen > keysPerSplit (default DEFAULT_KEYS_PER_SPLIT, 64):
   * each workgroup of the split kernel streams keysPerSplit keys, so this sets decode's parallelism.
   */
  keysPerSplit?: number;
  /**
   * Upper bound on decode's splits per head (default 64; `splitSizes`): past keysPerSplit ·
   * maxSplits keys of context, each split streams ⌈totalLen / maxSplits⌉ keys instead, so the
   * combine pass stays this size.
   */
  maxSplits?: number;
  /** Prefill (seqLen > 1): 'kernel' (default: `kernel`'s per-query path) or 'blocked' (attention_blocked.wgsl; head dims up to 128). */
  prefill?: 'kernel' | 'blocked';
}

export interface AttentionBindings extends AttentionTuning {
  heads: number;
  kvHeads: number;
  headDim: number;
  rowStride: number;
  qOffset: number;
  maxT: number;
  /**
   * The cache capacity the split sizes are chosen for (default maxT). A cache that grows
   * (model.ts) passes its largest capacity, so that every size it grows through builds the same
   * pipelines: the split count follows the keys present, not the capacity, so results are the same.
   */
  splitCapacity?: number;
  scale?: number;
  /** As AttentionLayout.window: each query attends its last `window` keys (absent or 0: all). */
  window?: number;
  step: GPUBuffer;
  q: GPUBuffer;
  /** [kvHeads, maxT, headDim] of f32, or of f16 (packed two per u32) when `precision` is 'f16'. */
  kCache: GPUBuffer;
  vCache: GPUBuffer;
  /** Element type of the caches (default 'f32'); either runs on every device (precision-wgsl.ts). */
  precision?: Precision;
  /** [seqLen, heads * headDim] f32. */
  out: GPUBuffer;
  /**
   * Share of each row of the matmul after it (o_proj) its decode dispatches read into the cache
   * once `warmNext` sets them up (0..1, default 0; tuning.warmNext: attention has no MatMulNBits
   * tuning, so the model passes the one of the qkv GEMV before it).
   */
  warmNext?: number;
  /**
   * Split-K scratch, `attentionPartialsBytes(heads, headDim, maxSplits)` bytes. Layers run one
   * after another, so one buffer can serve every layer; allocated per kernel when omitted.
   */
  partials?: GPUBuffer;
}

/**
 * Keys per split-K workgroup in decode. One workgroup per head (32 for Phi-3) left an H100's 132
 * cores mostly idle: with 256-key splits, attention took 55–62% of a decode step at 512–2048
 * tokens of context (profileDecode, docs/benchmarks.md); 64-key splits give 8–32 workgroups per
 * head there, at the price of the combine dispatch from 65 tokens on.
 */
export const DEFAULT_KEYS_PER_SPLIT = 64;

/**
 * Default attention tuning for an adapter (LoadOptions.attention overrides it field by field).
 * - SwiftShader (headless CI): 'serial', 64-key splits, up to 64 per head, as the test suite's
 *   timings were taken with.
 * - Every real GPU: 'lanes', 64-key splits, at most 24 per head (past 1536 keys each split
 *   stretches to ⌈totalLen / 24⌉ keys). Measured on an H200 (Vulkan; docs/h200/, `run.sh
 *   attention` and a call with split caps of 16, 24 and 32), the 32-layer decode step profiled in
 *   one pass with the dp4a GEMVs at contexts 512 / 1024 / 2048 / 3584: 2.36 / 2.62 / 2.98 / 3.34 ms
 *   against 'serial' uncapped 2.38 / 2.64 / 3.10 / 3.84 (−13% at 3584); cap 16: 2.37 / 2.71 /
 *   3.04 / 3.49; cap 32: 2.37 / 2.61 / 3.16 / 3.32; 128-key splits: 2.53 / 2.68 / 2.93 / 3.25.
 *   Identical settings differed by up to 4% between processes, so 24 is the cap that was never
 *   far from the best, not a sharp optimum. Other vendors are not measured: the lanes kernel's
 *   independent vector loads are what any GPU wants from a memory-bound loop (as the wide GEMM,
 *   also extrapolated there). Beyond 4K of context (the 128K model) the cap is extrapolated too.
 *   Prefill runs attention_blocked.wgsl: 512-token prefill 2902 tok/s against 'lanes' 2884–2898
 *   and 'serial' 2825–2828 (three and three processes). Head dims past what a kernel handles keep
 *   the one that does (Phi-3's 96 fits both).
 */
export function attentionTuningFor(adapter: AdapterNames, headDim: number): AttentionTuning {
  const text = adapterText(adapter);
  const handles = attentionKernelsFor(headDim);
  if (text.includes('swiftshader') || !handles.lanes) return {};
  return { kernel: 'lanes', maxSplits: 24, ...(handles.blocked ? { prefill: 'blocked' } : {}) };
}

/** Identifies the attention WGSL, every kernel's source (`sourceId`): a measured attention tuning is kept while it stays the same. */
export const ATTENTION_SOURCE_ID = sourceId([source, combineSource, commonSource, lanesSource, blockedSource, warmNextSource, STEP_WGSL]);

/** Which of the optional kernels handle a head dim: 'lanes' for decode and prefill, the blocked prefill. */
export function attentionKernelsFor(headDim: number): { lanes: boolean; blocked: boolean } {
  return { lanes: headDim <= LANES_MAX_HEAD_DIM, blocked: headDim <= BLOCKED_MAX_HEAD_DIM };
}

/**
 * The split sizes a kernel over `maxT` keys runs with, validated: keysPerSplit (default 64) and
 * the cap on splits per head (default 64), lowered to ⌈maxT / keysPerSplit⌉ where that is fewer
 * (a larger cap would only enlarge the partials). The model sizes its shared partials with it.
 */
export function splitSizes(t: Pick<AttentionTuning, 'keysPerSplit' | 'maxSplits'>, maxT: number): { keysPerSplit: number; maxSplits: number } {
  const keysPerSplit = t.keysPerSplit ?? DEFAULT_KEYS_PER_SPLIT;
  if (!Number.isInteger(keysPerSplit) || keysPerSplit < 1) throw new AppError('BAD_ARGUMENT', `attention: keysPerSplit ${keysPerSplit} must be a positive integer.`);
  const cap = t.maxSplits ?? 64;
  if (!Number.isInteger(cap) || cap < 1) throw new AppError('BAD_ARGUMENT', `attention: maxSplits ${cap} must be a positive integer.`);
  return { keysPerSplit, maxSplits: Math.min(cap, Math.max(1, Math.ceil(maxT / keysPerSplit))) };
}

export function attentionPartialsBytes(heads: number, headDim: number, maxSplits: number): number {
  return heads * maxSplits * (headDim + 2) * 4;
}

/**
 * As a WarmHost: every decode dispatch (seqLen = 1) also reads `warmNext` of each of the next
 * matmul's rows, in a second layer of workgroups sized to those bytes (one run of WG · 8 words
 * each), not to attention's own grid.
 */
export interface AttentionKernel extends WarmHost {
  /** `totalLen` = pastLen + seqLen, as written to the step uniform. */
  encode(pass: GPUComputePassEncoder, seqLen: number, totalLen: number): void;
  /** Which path `encode` takes for these lengths (for tests and stats). */
  path(seqLen: number, totalLen: number): 'tiled' | 'split-k' | 'blocked';
  /** Which kernel runs it. */
  readonly kernel: 'serial' | 'lanes';
}

const WG = 64;
/** attention_lanes.wgsl: threads per workgroup, keys per tile and lanes per key (its constants). */
const LANES_WG = 128;
const LANES_TILE = 64;
const LANES_PER_KEY = 4;
/** attention_blocked.wgsl: threads per workgroup, queries per workgroup, and the most vec4s of a head per lane. */
const BLOCKED_WG = 128;
const BLOCKED_QUERIES = 16;
const BLOCKED_MAX_DL = 4;
/** The largest head dims the 'lanes' kernel and the blocked prefill handle. */
const LANES_MAX_HEAD_DIM = 4 * LANES_WG;
const BLOCKED_MAX_HEAD_DIM = 4 * (BLOCKED_WG / BLOCKED_QUERIES) * BLOCKED_MAX_DL;

/** Split count for decode over `seen` keys (keysSeen); mirrored in both shaders. */
export function splitCount(seen: number, keysPerSplit: number, maxSplits: number): number {
  return Math.min(maxSplits, Math.ceil(seen / keysPerSplit));
}

export function createAttention(device: GPUDevice, b: AttentionBindings): AttentionKernel {
  if (b.heads % b.kvHeads !== 0) {
    throw new AppError('BAD_ARGUMENT', `attention: heads ${b.heads} is not a multiple of kvHeads ${b.kvHeads}`);
  }
  if (b.headDim % 4 !== 0) {
    throw new AppError('BAD_ARGUMENT', `attention: headDim ${b.headDim} must be a multiple of 4 (keys are read as vec4)`);
  }
  const window = b.window ?? 0;
  if (!Number.isInteger(window) || window < 0) throw new AppError('BAD_ARGUMENT', `attention: window ${window} must be a non-negative integer (0: no window).`);
  const { keysPerSplit, maxSplits } = splitSizes(b, keysSeen(Math.max(b.maxT, b.splitCapacity ?? 0), window));
  const scale = b.scale ?? 1 / Math.sqrt(b.headDim);
  const precision = b.precision ?? 'f32';
  const kernel = b.kernel ?? 'serial';
  if (kernel !== 'serial' && kernel !== 'lanes') throw new AppError('BAD_ARGUMENT', `attention: kernel ${String(kernel)} must be 'serial' or 'lanes'.`);
  const d4 = b.headDim / 4;
  if (kernel === 'lanes' && b.headDim > LANES_MAX_HEAD_DIM) {
    throw new AppError('BAD_ARGUMENT', `attention: the 'lanes' kernel handles head dims up to ${LANES_MAX_HEAD_DIM}, got ${b.headDim}; use kernel 'serial'.`);
  }
  const prefill = b.prefill ?? 'kernel';
  if (prefill !== 'kernel' && prefill !== 'blocked') throw new AppError('BAD_ARGUMENT', `attention: prefill ${String(prefill)} must be 'kernel' or 'blocked'.`);
  const lanesPerQuery = BLOCKED_WG / BLOCKED_QUERIES;
  if (prefill === 'blocked' && b.headDim > BLOCKED_MAX_HEAD_DIM) {
    throw new AppError('BAD_ARGUMENT', `attention: prefill 'blocked' handles head dims up to ${BLOCKED_MAX_HEAD_DIM}, got ${b.headDim}; use prefill 'kernel'.`);
  }
  const constants = { WG, HEAD_DIM: b.headDim, KEYS_PER_SPLIT: keysPerSplit, MAX_SPLITS: maxSplits };
  // The decode kernels with the warm layer's reads (warmNext) or its stub.
  const kvCode = (warm: boolean) => withPrecision(`${kernel === 'lanes' ? lanesSource : source}\n${commonSource}\n${STEP_WGSL}\n${warm ? warmNextSource : WARM_OFF}`, precision);
  const kvSource = kvCode(false);
  const kq = Math.floor(LANES_WG / d4);
  const kernelConstants =
    kernel === 'lanes'
      ? { ...constants, WG: LANES_WG, KQ: kq, PV_ITERS: Math.ceil(LANES_TILE / kq), QK_PASSES: (LANES_TILE * LANES_PER_KEY) / LANES_WG }
      : constants;
  const tiled = getComputePipeline(device, `attention.${kernel}.${precision}`, kvSource, { ...kernelConstants, SPLIT: 0 });
  const split = getComputePipeline(device, `attention.${kernel}.${precision}.split`, kvSource, { ...kernelConstants, SPLIT: 1 });
  const combine = getComputePipeline(device, 'attention.combine', combineSource + STEP_WGSL, constants);
  const blocked =
    prefill === 'blocked'
      ? getComputePipeline(device, `attention.blocked.${precision}`, withPrecision(`${blockedSource}\n${commonSource}\n${STEP_WGSL}`, precision), {
          ...constants,
          WG: BLOCKED_WG,
          DL: Math.ceil(d4 / lanesPerQuery),
          SPLIT: 0,
        })
      : undefined;

  const params = createUniformBuffer(
    device,
    packUniform([{ u32: b.heads }, { u32: b.kvHeads }, { u32: b.rowStride }, { u32: b.qOffset }, { u32: b.maxT }, { f32: scale }, { u32: window }]),
    'attention.params',
  );
  const partialBytes = attentionPartialsBytes(b.heads, b.headDim, maxSplits);
  if (b.partials && b.partials.size < partialBytes) {
    throw new AppError('BAD_ARGUMENT', `attention: partials buffer holds ${b.partials.size} bytes, split-K needs ${partialBytes}`);
  }
  const partials = b.partials ?? device.createBuffer({ label: 'attention.partials', size: partialBytes, usage: GPUBufferUsage.STORAGE });
  const common = (p: GPUComputePipeline, out: GPUBuffer, label: string): GPUBindGroup =>
    device.createBindGroup({
      label,
      layout: p.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: params } },
        { binding: 1, resource: { buffer: b.step } },
        { binding: 2, resource: { buffer: b.q } },
        { binding: 3, resource: { buffer: b.kCache } },
        { binding: 4, resource: { buffer: b.vCache } },
        { binding: 5, resource: { buffer: out } },
      ],
    });
  const tiledGroup = common(tiled, b.out, 'attention');
  const blockedGroup = blocked && common(blocked, b.out, 'attention.blocked');
  const splitGroup = common(split, partials, 'attention.split');
  const combineGroup = device.createBindGroup({
    label: 'attention.combine',
    layout: combine.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: params } },
      { binding: 1, resource: { buffer: b.step } },
      { binding: 2, resource: { buffer: partials } },
      { binding: 3, resource: { buffer: b.out } },
    ],
  });
  const maxDim = device.limits.maxComputeWorkgroupsPerDimension;
  // warmNext: decode's two pipelines again with the warm layer, their groups 0 (auto layouts are
  // per pipeline) and 1, and the warm layer's workgroups.
  const threads = kernel === 'lanes' ? LANES_WG : WG;
  const share = checkWarmShare(b.warmNext ?? 0);
  let warm: { tiled: [GPUComputePipeline, GPUBindGroup, GPUBindGroup]; split: [GPUComputePipeline, GPUBindGroup, GPUBindGroup]; groups: number } | undefined;
  let warmAsked = false;
  // One decode dispatch: `count` workgroups of the kernel, and with warm the layer along z, both
  // over a grid of the larger count (workOf and warmRun leave the surplus of each idle).
  const dispatch = (pass: GPUComputePassEncoder, plain: [GPUComputePipeline, GPUBindGroup], warmed: [GPUComputePipeline, GPUBindGroup, GPUBindGroup] | undefined, count: number) => {
    if (warm && warmed) {
      pass.setPipeline(warmed[0]);
      pass.setBindGroup(0, warmed[1]);
      pass.setBindGroup(1, warmed[2]);
      const [x, y] = workgroupGrid(Math.max(count, warm.groups), maxDim);
      pass.dispatchWorkgroups(x, y, 2);
    } else {
      pass.setPipeline(plain[0]);
      pass.setBindGroup(0, plain[1]);
      const [x, y] = workgroupGrid(count, maxDim);
      pass.dispatchWorkgroups(x, y);
    }
  };
  // Decode's split count follows the keys its query attends (the window's, once the chat is longer).
  const splits = (totalLen: number) => splitCount(keysSeen(totalLen, window), keysPerSplit, maxSplits);
  const path = (seqLen: number, totalLen: number): 'tiled' | 'split-k' | 'blocked' =>
    seqLen > 1 && blocked ? 'blocked' : seqLen === 1 && splits(totalLen) > 1 ? 'split-k' : 'tiled';
  return {
    path,
    kernel,
    encode(pass, seqLen, totalLen) {
      const p = path(seqLen, totalLen);
      if (p === 'blocked' && blocked && blockedGroup) {
        pass.setPipeline(blocked);
        pass.setBindGroup(0, blockedGroup);
        const [x, y] = workgroupGrid(Math.ceil(seqLen / BLOCKED_QUERIES) * b.heads, maxDim);
        pass.dispatchWorkgroups(x, y);
      } else if (p === 'split-k') {
        dispatch(pass, [split, splitGroup], warm?.split, b.heads * splits(totalLen));
        pass.setPipeline(combine);
        pass.setBindGroup(0, combineGroup);
        pass.dispatchWorkgroups(b.heads);
      } else {
        dispatch(pass, [tiled, tiledGroup], seqLen === 1 ? warm?.tiled : undefined, seqLen * b.heads);
      }
    },
    warmSumsBytes: (next) => (share > 0 && next ? warmGroupsFor(next, share, threads) * threads * 4 : 0),
    warmNext(next, sums) {
      if (warmAsked) throw new AppError('BAD_ARGUMENT', 'attention: warmNext was already called for this kernel.');
      warmAsked = true;
      if (share === 0 || !next) return 0;
      const groups = warmGroupsFor(next, share, threads);
      const code = kvCode(true);
      let bytes = 0;
      const withWarm = (p: GPUComputePipeline, out: GPUBuffer, label: string): [GPUComputePipeline, GPUBindGroup, GPUBindGroup] => {
        const w = createWarm(device, p.getBindGroupLayout(1), next, share, groups, threads, sums, label);
        bytes = w.bytes;
        return [p, common(p, out, label), w.group];
      };
      const warmTiled = getComputePipeline(device, `attention.${kernel}.${precision}.warm`, code, { ...kernelConstants, SPLIT: 0 });
      const warmSplit = getComputePipeline(device, `attention.${kernel}.${precision}.split.warm`, code, { ...kernelConstants, SPLIT: 1 });
      warm = { tiled: withWarm(warmTiled, b.out, 'attention'), split: withWarm(warmSplit, partials, 'attention.split'), groups };
      return bytes;
    },
  };
}
