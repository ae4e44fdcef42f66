/**
 * int4 MatMulNBits on WebGPU: Y (M, N) = A (M, K) · Wᵀ with W in com.microsoft MatMulNBits layout
 * (see dequantize.ts, the ground truth). Five shaders share one bind group:
 *   - shaders/matmul_nbits.wgsl           decode GEMV (M = 1), "staged": the activation row in
 *                                         workgroup memory
 *   - shaders/matmul_nbits_direct.wgsl    decode GEMV, "direct": activations read per thread
 *                                         (tuning.gemv; needs K % 32 == 0)
 *   - shaders/matmul_nbits_dp4a.wgsl      decode GEMV, "dp4a": activations quantised to int8 per
 *                                         32 elements, integer dot products (tuning.gemv; opt-in,
 *                                         a different rounding contract: see its header)
 *   - shaders/matmul_nbits_gemm.wgsl      tiled GEMM for M > 1, and for M = 1 when a weight row
 *                                         is not a whole number of 16-byte words (kPadded % 32 ≠ 0)
 *   - shaders/matmul_nbits_gemm_wide.wgsl "wide" GEMM for M > 1 (tuning.gemm; needs kPadded % 32
 *                                         == 0): weights dequantised in registers, only A staged
 *   Both GEMMs get shaders/matmul_nbits_gemm_common.wgsl (bindings, fusions, the norm prologue).
 * The GEMVs are bodies behind one of two entry points (below): reducing row sums with
 * subgroupAdd where the device has `subgroups`, with a workgroup-memory tree otherwise (the staged
 * and dp4a bodies share that reduction, shaders/matmul_nbits_gemv_reduce.wgsl, and their weight
 * prefetch, matmul_nbits_prefetch.wgsl). All three get their overrides and weight and output
 * bindings from shaders/matmul_nbits_gemv_io.wgsl, and direct and dp4a their vec4 activations from
 * matmul_nbits_gemv_vec4.wgsl. All five get shaders/matmul_nbits_dequant.wgsl prepended: the
 * uniform, the block scale and zero-point reads, and int4 → f32 without int → float conversions
 * (see its header). The GEMVs also get
 * shaders/matmul_nbits_gemv_rows.wgsl (writing their output rows) and an epilogue:
 * shaders/matmul_nbits_rope.wgsl for `ropeAppend` (with the KV stores of precision-wgsl.ts, and a second
 * bind group), stubs otherwise (ROPE_OFF below), so the plain pipelines never declare group 1.
 * A plain decode GEMV set up with `warmNext` instead gets shaders/matmul_nbits_warm_next.wgsl (its
 * own group 1; WARM_OFF stubs it elsewhere) and a second layer of workgroups that read the next
 * matmul's rows into the cache (tuning.warmNext).
 *
 * Buffers as uploaded by the caller (WebGPU sizes are multiples of 4 bytes):
 *   weights     B's raw bytes [N, nBlocks, blockSize/2], zero-padded to a multiple of 4 bytes (the
 *               GEMV's vec4 loads need no more: it runs only when every row is a multiple of 16).
 *   scales      'f32': N·nBlocks f32; 'f16': the raw fp16 bits, N·nBlocks halves padded to 4 bytes.
 *   zeroPoints  the raw bytes [N, ceil(nBlocks/2)] padded to 4 bytes (only when hasZeroPoints).
 *   input       f32 (maxM, K), row stride K.   output  f32 (maxM, N), row stride N.
 * For M > 1 the GEMM also writes output rows M .. min(maxM, next multiple of its row tile, 32 by
 * default): treat rows ≥ M as scratch (except with `accumulate`, below).
 *
 * Optional fusions (independent; each absent means the plain kernel above, bit for bit):
 *   inputNorm     the input rows are RMS-normalised on the fly, a = x / sqrt(mean(x²) + eps) · weight
 *                 (rmsnorm.ts without the residual add); each workgroup computes the inverse RMS of
 *                 the rows it uses (the GEMVs sum x² from the loads they make anyway and scale
 *                 their row totals by it at the end). Replaces the rmsnorm dispatch in front of
 *                 q/k/v and gate/up.
 *   inputSiluMul  x = silu(gate) · up computed while staging (silu-mul.ts's layout): `input` is the
 *                 gate buffer, rows of gateStride from gateOffset; `up` rows of upStride from
 *                 upOffset (may be the same buffer). Replaces the silu·up dispatch before down_proj.
 *                 Combined with inputNorm, the norm applies to silu(gate) · up.
 *   accumulate    Y += A · Wᵀ (the residual add into o_proj / down_proj; `output` is the residual
 *                 stream, and must not be the input buffer). Needs `step`, the shared step uniform
 *                 (step.ts): the GEMM reads M from step.seqLen and then reads/writes only rows < M,
 *                 so `encode(pass, M)` must be called with M = the step's seqLen. (Chosen over a
 *                 per-call uniform because `encode` may not write buffers and the forward pass
 *                 already writes seqLen once per step.)
 *   ropeAppend    decode of a packed [q | k | v] row (the qkv projection): for M = 1 the GEMV also
 *                 applies the rotary to q and k, writes rotated q to `output` (where attention reads
 *                 it) and k and v straight into the KV caches at position step.pastLen (row
 *                 pastLen mod maxT: the ring of kv-append.ts), as kv-append.ts's `rotary` + `rotateQ` would after the plain GEMV, so that
 *                 dispatch disappears from decode (shaders/matmul_nbits_rope.wgsl). k and v rows of
 *                 `output` are left unwritten in decode. M > 1 runs the plain GEMM: prefill keeps its
 *                 kv-append dispatch. The caches and the rotary table (rotary.ts: cos and sin
 *                 interleaved into one binding, to stay within 10 storage buffers per stage)
 *                 live in a second bind group (one per LongRoPE rotary table, picked by `encode`'s
 *                 cacheIndex) under a pipeline layout of their own, so the GEMM and the plain GEMVs
 *                 never see them. Needs the GEMV for M = 1
 *                 (`matMulNBitsHasGemv`), an even number of rows per workgroup, `step`, and neither
 *                 `accumulate` nor `inputSiluMul`.
 *
 * Rule: `encode` only sets the pipeline and bind groups and dispatches; everything else, including
 * validation of the buffers against K, N and the block size, happens once in `createMatMulNBits`.
 * The ropeAppend pipeline must stay within ROPE_APPEND_STORAGE_BUFFERS (10) storage bindings per
 * stage: adding one to group 0 or group 1 takes the fusion away from Chromium's SwiftShader.
 * With `ropeAppend`, every GEMV tuning must keep rowGroups · rowsPerThread even (a rotary pair's
 * two rows share a workgroup); `matMulNBitsTuningFor` must not return an odd product.
 */
import gemvSource from '../../../shaders/matmul_nbits.wgsl?raw';
import gemmSource from '../../../shaders/matmul_nbits_gemm.wgsl?raw';
import gemmCommonSource from '../../../shaders/matmul_nbits_gemm_common.wgsl?raw';
import gemmWideSource from '../../../shaders/matmul_nbits_gemm_wide.wgsl?raw';
import gemvDirectBody from '../../../shaders/matmul_nbits_direct.wgsl?raw';
import gemvDp4aBody from '../../../shaders/matmul_nbits_dp4a.wgsl?raw';
import gemvReduceSource from '../../../shaders/matmul_nbits_gemv_reduce.wgsl?raw';
import gemvPrefetchSource from '../../../shaders/matmul_nbits_prefetch.wgsl?raw';
import gemvIoSource from '../../../shaders/matmul_nbits_gemv_io.wgsl?raw';
import gemvVec4Source from '../../../shaders/matmul_nbits_gemv_vec4.wgsl?raw';
import dequantSource from '../../../shaders/matmul_nbits_dequant.wgsl?raw';
import ropeSource from '../../../shaders/matmul_nbits_rope.wgsl?raw';
import rotaryTableSource from '../../../shaders/rotary_table.wgsl?raw';
import gemvRowsSource from '../../../shaders/matmul_nbits_gemv_rows.wgsl?raw';
import { AppError } from '../errors';
import { createUniformBuffer, packUniform } from '../gpu/buffers';
import { adapterText, hasWgslLanguageFeature, type AdapterNames } from '../gpu/device';
import { sourceId } from '../gpu/pipelines';
import { WARM_OFF, checkWarmShare, createWarm, warmNextSource, type WarmHost, type WarmRows } from './warm-next';
import { matMulNBitsShape, validateMatMulNBits } from './dequantize';
import { kvBytesPerElement, kvStoreSource, type Precision } from './precision-wgsl';
import type { RotaryTables } from './rotary';
import { STEP_WGSL } from './step';

export { matMulNBitsReference } from './dequantize';

export interface MatMulNBitsBindings {
  K: number;
  N: number;
  blockSize: number;
  hasZeroPoints: boolean;
  scalesDtype: 'f32' | 'f16';
  /** uint8 B bytes [N, nBlocks, blockSize/2] as uploaded, padded to 4 bytes */
  weights: GPUBuffer;
  /** f32 (N·nBlocks) or raw fp16 bits (N·nBlocks halves) */
  scales: GPUBuffer;
  /** uint8 [N, ceil(nBlocks/2)] packed 4-bit, when hasZeroPoints */
  zeroPoints?: GPUBuffer;
  /** f32 (maxM, K) */
  input: GPUBuffer;
  /** f32 (maxM, N) */
  output: GPUBuffer;
  /** the largest M `encode` will be called with */
  maxM: number;
  /** Fusion: RMS-normalise each input row first (weight f32 (K,)). */
  inputNorm?: MatMulNBitsInputNorm;
  /** Fusion: the input is silu(gate) · up; `input` is then the gate buffer. */
  inputSiluMul?: MatMulNBitsInputSiluMul;
  /** Fusion: Y += A · Wᵀ instead of Y = A · Wᵀ; needs `step`. */
  accumulate?: boolean;
  /** Fusion (decode only): rotary of q and k, and the KV append, in the qkv GEMV. Needs `step`. */
  ropeAppend?: MatMulNBitsRopeAppend;
  /** The shared step uniform (step.ts, 16 bytes); required with `accumulate` (M = seqLen) and `ropeAppend` (pastLen). */
  step?: GPUBuffer;
  /** Tunables; each field left out comes from matMulNBitsTuningFor(device.adapterInfo). */
  tuning?: MatMulNBitsTuning;
  /**
   * 'sync' (default): pipelines are compiled before createMatMulNBits returns. 'async': new ones
   * are compiled by createComputePipelineAsync in the background (a model load keeps uploading
   * weights meanwhile); `matMulNBitsReady(device)` must resolve before the kernel is encoded.
   */
  compile?: 'sync' | 'async';
}

export interface MatMulNBitsInputNorm {
  /** f32 (K,) */
  weight: GPUBuffer;
  eps: number;
}

/** Element layout as silu-mul.ts (SiluMulLayout without `intermediate`, which is K here). */
export interface MatMulNBitsInputSiluMul {
  /** f32; up[m, k] = up[m·upStride + upOffset + k]. May be the `input` (gate) buffer itself. */
  up: GPUBuffer;
  gateStride: number;
  gateOffset: number;
  upStride: number;
  upOffset: number;
}

/**
 * The decode qkv GEMV's rotary + KV append (kv-append.ts semantics). `output` rows are
 * [q (heads·headDim) | k (kvHeads·headDim) | v (kvHeads·headDim)], so N = (heads + 2·kvHeads)·headDim.
 */
export interface MatMulNBitsRopeAppend {
  heads: number;
  kvHeads: number;
  /** even (a rotary pair must fall in one workgroup) */
  headDim: number;
  /** Cache capacity in positions; the token at pastLen goes to row pastLen mod maxT (a ring, as kv-append.ts). */
  maxT: number;
  /** [kvHeads, maxT, headDim] of f32, or of f16 (packed two per u32) when `precision` is 'f16'. */
  kCache: GPUBuffer;
  vCache: GPUBuffer;
  /** Element type of the caches (default 'f32'); either runs on every device (precision-wgsl.ts). */
  precision?: Precision;
  /** The model's rotary tables (rotary.ts), the same ones kv-append.ts reads. */
  rotary: RotaryTables;
}

/**
 * Storage buffers the ropeAppend GEMV binds in one stage: group 0's seven (weights, scales, zero
 * points, input, output, norm weight, up; shared with the plain GEMVs) and group 1's three (the
 * interleaved rotary table, kCache, vCache). WebGPU only guarantees 8 (Chromium's SwiftShader and
 * the lower limit classes offer 10), so callers check `matMulNBitsRopeAppendSupported` and otherwise
 * keep the separate kv-append dispatch in decode.
 */
export const ROPE_APPEND_STORAGE_BUFFERS = 10;

export function matMulNBitsRopeAppendSupported(device: GPUDevice): boolean {
  return device.limits.maxStorageBuffersPerShaderStage >= ROPE_APPEND_STORAGE_BUFFERS;
}

/**
 * Storage buffers a GEMV with `warmNext` binds in one stage: group 0's seven and group 1's two
 * (the next matmul's packed weights and the sums of what was read).
 */
export const WARM_NEXT_STORAGE_BUFFERS = 9;

/** Whether a decode GEMV can warm the next matmul's weights on this device (tuning.warmNext). */
export function matMulNBitsWarmNextSupported(device: GPUDevice): boolean {
  return device.limits.maxStorageBuffersPerShaderStage >= WARM_NEXT_STORAGE_BUFFERS;
}

/** The WGSL language feature the dp4a GEMV needs (dot4I8Packed, pack4xI8). */
const PACKED_DOT = 'packed_4x8_integer_dot_product';

/** Whether tuning.gemv 'dp4a' can run on this device (its other conditions depend on the shape). */
export function matMulNBitsDp4aSupported(device: GPUDevice): boolean {
  return hasWgslLanguageFeature(device, PACKED_DOT);
}

/** Whether M = 1 runs a GEMV for this K and block size (else the GEMM serves it; no `ropeAppend`). */
export function matMulNBitsHasGemv(K: number, blockSize: number): boolean {
  return matMulNBitsShape(K, 1, blockSize).kPadded % 32 === 0;
}

/**
 * GEMV work split (see shaders/matmul_nbits.wgsl): workgroups of threadsPerRow · rowGroups threads
 * computing rowGroups · rowsPerThread output rows. Pick per adapter: `matMulNBitsTuningFor`.
 */
export interface MatMulNBitsTuning {
  /** threads sharing one row's K, a power of two 4..256 (default 32) */
  threadsPerRow?: number;
  /** row groups per workgroup (default 2); threadsPerRow · rowGroups ≤ 256 */
  rowGroups?: number;
  /** output rows per thread, 1..8 (default 4); with `ropeAppend`, rowGroups · rowsPerThread must be even */
  rowsPerThread?: number;
  /**
   * Output rows per thread wherever the staged GEMV runs, whether asked for or as the fallback of
   * 'dp4a' (default: rowsPerThread; the same rules). NVIDIA's default asks for dp4a at 4 rows and
   * keeps the staged GEMV at the 2 it was measured fastest with (4 was 27% slower there).
   */
  stagedRowsPerThread?: number;
  /** Use the subgroup GEMV when the device has `subgroups` (default true). */
  subgroups?: boolean;
  /**
   * GEMV shader: 'staged' (matmul_nbits.wgsl: the activation row in workgroup memory, shared by
   * the workgroup's rows) or 'direct' (matmul_nbits_direct.wgsl: activations read from the buffer
   * by each thread, no staging; needs K % 32 == 0 and 4-aligned input offsets, else 'staged' runs)
   * or 'dp4a' (matmul_nbits_dp4a.wgsl: the activation row quantised to int8 per 32 elements in
   * workgroup memory, weights dotted four at a time by dot4I8Packed; about a fifth of the staged
   * kernel's arithmetic per weight. It rounds activations as onnxruntime's accuracy level 4 and
   * llama.cpp's q8_1 do, each within 1/254 of its chunk's largest: NVIDIA's default since an
   * H200 measured it 31% faster per decode step (matMulNBitsTuningFor); opt-in elsewhere. Real
   * Phi-3 weights were never run through it here (none can be downloaded), only generated models,
   * within 0.3 of onnxruntime's logits. Needs what 'direct' needs, the WGSL language feature
   * packed_4x8_integer_dot_product (`matMulNBitsDp4aSupported`), and K/32 · (40 or 48) bytes of
   * workgroup memory; else 'staged' runs. `decodePath` says which ran).
   */
  gemv?: 'staged' | 'direct' | 'dp4a';
  /**
   * Staged and dp4a GEMVs: load each tile's weights (dp4a: the thread's whole share) into
   * registers before staging (quantising) the activations, so the weight loads overlap that work
   * (default false). Applies where that share is at most 16 vec4s (chunks per lane ·
   * rowsPerThread; Phi-3 on NVIDIA's default: 6–16), else the plain loop runs; `decodePrefetch`
   * says which. No default uses it: on an H200 it was slower every time, with the slots in a
   * private array (staged, decode 314 against 332 tok/s) and as named fields behind a switch
   * (shaders/matmul_nbits_prefetch.wgsl: staged step 2.79 against 2.65 ms; dp4a 2.01 against
   * 1.83 at 4 rows per thread, 2.07 against 2.05 at 2).
   */
  gemvPrefetch?: boolean;
  /**
   * Share of each packed weight row of the matmul that runs next in a decode step (0..1, default
   * 0: off) that this kernel's decode GEMV reads into the GPU's cache while it runs, in a second
   * layer of workgroups launched after its own (shaders/matmul_nbits_warm_next.wgsl), so that the
   * next GEMV finds those bytes in L2 instead of device memory. Set up by the caller with
   * `warmNext(next.gemvWeights, sums)` (Phi3Runtime: o_proj warms gate_up, gate_up warms down, down warms the
   * next layer's qkv or the lm_head, and attention, with the share of the qkv GEMV before it, warms
   * o_proj; warm-next.ts).
   * Results are bit for bit those without it. Unmeasured on a real GPU when written (2026-11-27,
   * no device that session): no default asks for it; `run.sh gemv` times it.
   */
  warmNext?: number;
  /** GEMM threads along N and M (each computes 4 × 4 outputs; default 8 × 8, a 32 × 32 tile) */
  gemmThreads?: readonly [number, number];
  /** GEMM K per workgroup-memory step, a multiple of 8 (default 32) */
  gemmStepK?: number;
  /**
   * GEMM rows (of M) per thread, 4 or 8 (default 4): 8 reuses each W value read from workgroup
   * memory for twice the rows (on an H100 it was 14% slower at M = 512; other GPUs may differ).
   */
  gemmRowsPerThread?: 4 | 8;
  /**
   * Tiled GEMM: pad each k row of the staged A tile by one vec4 (default true), so that staging
   * spreads 16 consecutive k over 8 banks instead of one (a 16-way workgroup-memory conflict at
   * every default tiling). On an H200: 512-token prefill 2393 against 2315 tok/s unpadded
   * (`run.sh next`); false restores the unpadded layout.
   */
  gemmPadA?: boolean;
  /**
   * Prefill GEMM shader: 'tiled' (matmul_nbits_gemm.wgsl; SwiftShader's default: A and dequantised W tiles
   * in workgroup memory, 4 × gemmRowsPerThread outputs per thread) or 'wide'
   * (matmul_nbits_gemm_wide.wgsl: each thread owns gemmWideCols columns of gemmWideRows rows and
   * dequantises its own weights in registers; only A is staged). 'wide' needs whole 16-byte weight
   * rows (K padded to blocks a multiple of 32), else 'tiled' runs; `prefillPath` says which.
   * Default 'wide' (2 columns, 1 where that launches under 256 workgroups: gemmWideMinGroups) on
   * every GPU but SwiftShader: on an H200, +19% at 512 tokens.
   */
  gemm?: 'tiled' | 'wide';
  /** Wide GEMM threads per workgroup, a power of two 32..256 (default 128). */
  gemmWideThreads?: number;
  /** Wide GEMM rows of M per workgroup: 4, 8, 16 or 32 (default 16). */
  gemmWideRows?: 4 | 8 | 16 | 32;
  /** Wide GEMM columns per thread, 1 or 2 (default 1; real GPUs' tuning asks for 2): 2 uses each A read for twice the FMAs. */
  gemmWideCols?: 1 | 2;
  /**
   * With gemmWideCols 2: a call whose 2-column dispatch would launch fewer workgroups than this
   * runs a 1-column pipeline of the same kernel instead (twice the workgroups, each half as wide).
   * Default 0 (never); real GPUs' tuning asks for 256. Why: on an H200 at 128 rows, o_proj and
   * down_proj (N = 3072: 96 workgroups with 2 columns) ran 6.85 / 18.7 ms per 32 layers with 1
   * column against 7.26 / 20.2 with 2, while qkv (288 workgroups) tied and gate_up (512) and every
   * shape at 512 rows (≥ 384) were faster with 2 (docs/h200/next-a1610e7, runs 6 and 7). Any
   * threshold from 97 to 288 fits those points; 256 is about two workgroups per SM there. Below
   * 128 rows (most follow-up turns) it is extrapolated, not measured.
   */
  gemmWideMinGroups?: number;
  /** Wide GEMM K per workgroup-memory step, a multiple of 32 (default 32). */
  gemmWideStepK?: number;
  /**
   * Wide GEMM in f16 arithmetic (default false; needs `shader-f16` on the device and tuning.gemm
   * 'wide'): activations staged as f16, each dequantised weight rounded to f16 once, each K step's
   * products summed in f16 and the steps in f32 (matmul_nbits_gemm_wide.wgsl's header). Where
   * rows are not whole 16-byte words the tiled GEMM runs in f32 as before (`prefillPath`).
   * Why: GPUs run f16 FMAs at twice the f32 rate or more and the A tile takes half the
   * workgroup memory, and prefill is the one compute-bound part of the engine. The rounding is an
   * fp16 model's own (onnxruntime computes q4f16 files in f16 throughout), so the native engine
   * offers it only on its f16 path, as an autotune candidate (`prefillTuningCandidates`), never
   * as a default: it was written without a GPU to time it on (2026-12-07), and is tested on
   * Mesa's lavapipe, a CPU Vulkan driver with `shader-f16`.
   */
  gemmF16?: boolean;
}

/**
 * Default tuning for an adapter (and, where measured, a GEMV shape).
 * - SwiftShader (the CPU emulator behind headless CI) pays per invocation and per workgroup-wide
 *   staging: 16-thread workgroups of 16 rows, about 6× faster there than the real-GPU split
 *   (3072×3072: ~150 ms against ~800 ms, noisy runs on a loaded 2-core machine). Its prefill keeps
 *   the tiled GEMM that the test suite's timings were taken with.
 * - NVIDIA: the dp4a GEMV (int8 activations) with 8 row groups of 4 rows, where the device has
 *   packed_4x8_integer_dot_product; measured on an H200 (docs/h200/gemv-7ec8a5e, `run.sh gemv` and
 *   a sweep of ten splits): the decode step profiled in one pass took 1.83 ms against the staged
 *   GEMV's 2.66 at context 0 (2.41 against 3.24 at 512), decode 528 against 362 tok/s; other dp4a
 *   splits 1.89–3.12 ms (32 × 8 × 6: 1.89, × 8: 1.98, 16 × 16 × 4: 2.08), prefetching its weights
 *   2.01. Per kind, 4 rows were the fastest for qkv, gate_up and down (in-step 0.41, 0.48–0.50,
 *   0.43 ms per token; 2 rows: 0.52, 0.58, 0.47), but o_proj (K = N = 3072: 96 workgroups at 4
 *   rows, fewer than the H200's 132 SMs) ran 0.220 and 0.239 ms at 2 rows (the second with its
 *   weights prefetched) against 0.247–0.253 in three runs at 4, so shapes up to 4096 × 4096 get 2
 *   rows: about 1.5% of the step, timed per kind, not yet as a whole (`run.sh gemv` has the A/B);
 *   down_proj (N = 3072 too, but K = 8192) did not gain from 2. Where dp4a cannot run, the
 *   staged GEMV keeps its own measured split (stagedRowsPerThread, next item).
 * - NVIDIA's staged GEMV, measured on an H100 (Vulkan, driver 580; docs/benchmarks.md): 8
 *   row groups of 2 rows for every shape. Chosen from the 32-layer decode step profiled in context
 *   under ten tunings (`run.sh tune`): per kernel kind it was the fastest or within 1% of it
 *   (qkv 0.98, o 0.52, gate_up 1.23, down 0.84, lm_head 0.066 ms per token), ahead of the direct
 *   GEMV's 64 × 2 × 8 that isolated timings had picked for N ≥ 16384 (gate_up 1.33 ms per token).
 *   Prefetching the GEMV's weights (gemvPrefetch) was slower on an H200: 314 against 332 tok/s at
 *   context 0, 232 with 4 rows per thread (`run.sh next`).
 *   Prefill: the wide GEMM with 2 columns per thread, measured on an H200 (`run.sh next`, one
 *   32-layer model, fresh processes): 512-token prefill 2851 tok/s against the tiled GEMM's 2386–2393
 *   (+19%), 128 tokens 1946 against 1432 (+36%); 1 column per thread gave 2385 and 1778, but
 *   was the faster for o_proj and down_proj at 128 rows, whose 2-column dispatches launch only 96
 *   workgroups: hence gemmWideMinGroups 256 (its doc has the figures). In the
 *   isolated sweep at M = 512 (tools/bench/sweep.ts) 128 × 16 × 2 with K steps of 32 was the
 *   fastest of 39 tilings on all four Phi-3 shapes (22–23.7 TFLOP/s against the tiled 8.2–21.3).
 *   The tiled GEMM (used where rows are not whole 16-byte words) stays on 32 × 8 threads with K
 *   steps of 16 (3–7× the 8 × 8 default at M = 512 on the H100), 4 rows per thread (8 was slower:
 *   512-token prefill 1877 against 2178 tok/s, run.sh tune), its A tile padded (`gemmPadA`: on the
 *   H200 2393 against 2315 tok/s unpadded).
 * - Other GPUs: 64-thread workgroups of 8 rows, 32 threads per row, and the wide GEMM with 2
 *   columns as on NVIDIA (neither measured on such hardware: the wide GEMM is the layout
 *   onnxruntime's WebGPU EP uses for prefill on every vendor, and it was the faster on the one GPU
 *   measured).
 */
/** The prefill GEMM every real GPU gets (matMulNBitsTuningFor). */
const WIDE_PREFILL = { gemm: 'wide', gemmWideCols: 2, gemmWideMinGroups: 256 } as const;

/** Identifies the MatMulNBits WGSL, every GEMV and GEMM source (`sourceId`). */
export const MATMUL_NBITS_SOURCE_ID = sourceId([gemmSource, gemmCommonSource, gemmWideSource, gemvSource, gemvDirectBody, gemvDp4aBody, gemvReduceSource, gemvPrefetchSource, gemvIoSource, gemvVec4Source, dequantSource, ropeSource, rotaryTableSource, gemvRowsSource, warmNextSource, STEP_WGSL]);

export function matMulNBitsTuningFor(
  adapter: AdapterNames,
  shape?: { K: number; N: number },
): MatMulNBitsTuning {
  const text = adapterText(adapter);
  if (text.includes('swiftshader')) return { threadsPerRow: 8, rowGroups: 2, rowsPerThread: 8 };
  if (text.includes('nvidia')) {
    // o_proj's shape (and any as small): dp4a at 2 rows per thread (see the doc comment).
    const rowsPerThread = shape && shape.K <= 4096 && shape.N <= 4096 ? 2 : 4;
    return { gemv: 'dp4a', threadsPerRow: 32, rowGroups: 8, rowsPerThread, stagedRowsPerThread: 2, gemmThreads: [32, 8], gemmStepK: 16, ...WIDE_PREFILL };
  }
  return { threadsPerRow: 32, rowGroups: 2, rowsPerThread: 4, ...WIDE_PREFILL };
}
// Every tuning above has even rowGroups · rowsPerThread and · stagedRowsPerThread (16; 32 and 16; 8), as `ropeAppend` needs.

/**
 * As a WarmHost (tuning.warmNext): warmSumsBytes is 0 where tuning.warmNext is 0, without a plain
 * decode GEMV (ropeAppend, or unaligned rows), below WARM_NEXT_STORAGE_BUFFERS storage buffers per
 * stage, or for a null `next`; otherwise one u32 per invocation of the GEMV's grid. Its pipeline
 * compiles as this kernel's did (`compile: 'async'`: await matMulNBitsReady before encoding).
 */
export interface MatMulNBitsKernel extends WarmHost {
  /**
   * Records Y[0..M) = A[0..M) · Wᵀ (or += with `accumulate`, where M must equal the step's seqLen).
   * GEMV for M = 1 (when rows are 16-byte aligned), GEMM otherwise. With `ropeAppend`, M = 1 also
   * rotates and appends, with the rotary table `cacheIndex` (LongRoPE; default 0).
   */
  encode(pass: GPUComputePassEncoder, M: number, cacheIndex?: 0 | 1): void;
  /** Which shader serves M = 1. */
  readonly decodePath: 'gemv' | 'gemv-subgroup' | 'gemv-direct' | 'gemv-direct-subgroup' | 'gemv-dp4a' | 'gemv-dp4a-subgroup' | 'gemm';
  /** Whether the staged or dp4a GEMV prefetches its weights (tuning.gemvPrefetch, where they fit). */
  readonly decodePrefetch: boolean;
  /** Output rows per GEMV workgroup (rowGroups · rowsPerThread, or · stagedRowsPerThread where the staged GEMV runs). */
  readonly decodeRows: number;
  /** Which shader serves M > 1 ('gemm-wide' only with tuning.gemm 'wide' on aligned rows; '-f16' with tuning.gemmF16). */
  readonly prefillPath: 'gemm' | 'gemm-wide' | 'gemm-wide-f16';
  /** Columns per thread the wide GEMM runs for M rows (gemmWideCols, or 1 under gemmWideMinGroups); null without it. */
  prefillWideColumns(M: number): 1 | 2 | null;
  /** The packed weight rows as the GEMVs read them (16-byte words), or null where rows are not 16-byte aligned. */
  readonly gemvWeights: WarmRows | null;
  /** tuning.warmNext as this kernel runs it (0: off); attention warms o_proj with its qkv GEMV's. */
  readonly warmShare: number;
}

// The wide GEMM's arithmetic type (its header): `enable` must come first in a module.
const WIDE_F32 = 'alias AW = f32;\n';
const WIDE_F16 = 'enable f16;\nalias AW = f16;\n';

// Entry points of both GEMVs (shaders/matmul_nbits.wgsl and matmul_nbits_direct.wgsl are bodies,
// `gemv`): `enable` must come first in a module, and subgroup builtins can only be declared where
// the extension is on.
const ENABLE_SUBGROUPS = 'enable subgroups;\n';
// Workgroups of z = 1 exist only in a warmNext dispatch (matmul_nbits_warm_next.wgsl; every other
// pipeline gets warm-next.ts's WARM_OFF, where WARM is false and the branch dead code).
const GEMV_SUBGROUP_ENTRY_BODY = `@compute @workgroup_size(TPR * RG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_size) sgSize: u32, @builtin(subgroup_invocation_id) sgLane: u32) {
  if (WARM && wid.z != 0u) { warmRun(wid.x + wid.y * params.gridX, lid, TPR * RG); return; }
  gemv(wid, lid, sgSize, sgLane);
}
fn rowSum(v: f32) -> f32 { return subgroupAdd(v); }
`;
const GEMV_SUBGROUP_ENTRY = ENABLE_SUBGROUPS + GEMV_SUBGROUP_ENTRY_BODY;
// What the plain GEMVs get instead of shaders/matmul_nbits_rope.wgsl (ROPE_APPEND is off there).
const ROPE_OFF = `fn ropeRow(n: u32) -> u32 { return n; }
fn ropeAppend(row: u32, x: f32, partner: f32) {}
`;
const GEMV_PLAIN_ENTRY = `@compute @workgroup_size(TPR * RG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  if (WARM && wid.z != 0u) { warmRun(wid.x + wid.y * params.gridX, lid, TPR * RG); return; }
  gemv(wid, lid, 1u, 0u);
}
fn rowSum(v: f32) -> f32 { return v; }
`;

/** Activation tile cap (floats): 16 KiB keeps several workgroups resident per core. */
const GEMV_TILE_CAP = 4096;
/** Weight vec4s a staged-GEMV thread may prefetch per tile (the 16 slots of `Prefetched` in shaders/matmul_nbits.wgsl). */
const GEMV_PREFETCH_MAX = 16;

function compiled(slot: PipelineSlot): GPUComputePipeline {
  if (!slot.pipeline) throw new AppError('BAD_ARGUMENT', 'MatMulNBits: the kernel was created with compile: "async"; await matMulNBitsReady(device) before encoding it.');
  return slot.pipeline;
}

function badArg(message: string): never {
  throw new AppError('BAD_ARGUMENT', `MatMulNBits: ${message}`);
}

function checkBuffer(name: string, buffer: GPUBuffer | undefined, bytes: number, code: 'MODEL_BAD_WEIGHT' | 'BAD_ARGUMENT'): GPUBuffer {
  const need = Math.max(4, Math.ceil(bytes / 4) * 4);
  if (!buffer) throw new AppError(code, `MatMulNBits: ${name} buffer is missing.`);
  if (buffer.size < need) {
    throw new AppError(code, `MatMulNBits: ${name} buffer has ${buffer.size} bytes; it needs at least ${need}.`);
  }
  return buffer;
}

/**
 * One bind group layout per device and one pipeline per (shader, constants): Phi-3's 32 layers
 * share a handful of shapes, so loading compiles a few pipelines instead of hundreds.
 */
interface PipelineSlot {
  /** Set once compiled (at once for 'sync'). */
  pipeline?: GPUComputePipeline;
  /** While an async compile runs (it never rejects: a failure goes to the cache's `failures`). */
  pending?: Promise<void>;
}

interface PipelineCache {
  layout: GPUBindGroupLayout;
  /** Group 1 of the ROPE_APPEND GEMVs (matmul_nbits_rope.wgsl); created on first use, since it is
   * invalid on devices below ROPE_APPEND_STORAGE_BUFFERS and must not poison the plain kernels. */
  ropeLayout(): GPUBindGroupLayout;
  /** Group 1 of the warmNext GEMVs (matmul_nbits_warm_next.wgsl); created on first use, as ropeLayout. */
  warmLayout(): GPUBindGroupLayout;
  /** Bound where a fusion is off (never read): 16 bytes each. */
  unusedStorage: GPUBuffer;
  unusedUniform: GPUBuffer;
  /**
   * `group1`: the two-group layout of the ROPE_APPEND or the warmNext GEMVs (the label must say
   * so: it keys the module).
   */
  pipeline(label: string, code: string, constants: Record<string, number>, compile: 'sync' | 'async', group1?: 'rope' | 'warm'): PipelineSlot;
  slots: Map<string, PipelineSlot>;
  /**
   * Async compiles that failed since matMulNBitsReady last looked. A failed slot leaves `slots`,
   * so the next kernel asking for that key compiles it again, and one failed tuning (Phi3Runtime's
   * autotune trying a candidate) does not fail every later ready.
   */
  failures: AppError[];
}

const caches = new WeakMap<GPUDevice, PipelineCache>();

function pipelineCache(device: GPUDevice): PipelineCache {
  const cached = caches.get(device);
  if (cached) return cached;
  const entry = (binding: number, type: GPUBufferBindingType): GPUBindGroupLayoutEntry => ({ binding, visibility: GPUShaderStage.COMPUTE, buffer: { type } });
  const layout = device.createBindGroupLayout({
    label: 'matmulNBits',
    entries: [
      entry(0, 'uniform'),
      entry(1, 'read-only-storage'),
      entry(2, 'read-only-storage'),
      entry(3, 'read-only-storage'),
      entry(4, 'read-only-storage'),
      entry(5, 'storage'),
      entry(6, 'uniform'),
      entry(7, 'read-only-storage'),
      entry(8, 'read-only-storage'),
    ],
  });
  const pipelineLayout = device.createPipelineLayout({ label: 'matmulNBits', bindGroupLayouts: [layout] });
  type TwoGroups = { layout: GPUBindGroupLayout; pipelineLayout: GPUPipelineLayout };
  const group1Layouts = new Map<'rope' | 'warm', TwoGroups>();
  const group1Entries = { rope: [entry(0, 'uniform'), entry(1, 'read-only-storage'), entry(2, 'storage'), entry(3, 'storage')], warm: [entry(0, 'uniform'), entry(1, 'read-only-storage'), entry(2, 'storage')] };
  const twoGroups = (kind: 'rope' | 'warm'): TwoGroups => {
    let two = group1Layouts.get(kind);
    if (!two) {
      const label = `matmulNBits.${kind}`;
      const group1 = device.createBindGroupLayout({ label, entries: group1Entries[kind] });
      two = { layout: group1, pipelineLayout: device.createPipelineLayout({ label, bindGroupLayouts: [layout, group1] }) };
      group1Layouts.set(kind, two);
    }
    return two;
  };
  const modules = new Map<string, GPUShaderModule>();
  const slots = new Map<string, PipelineSlot>();
  const cache: PipelineCache = {
    layout,
    ropeLayout: () => twoGroups('rope').layout,
    warmLayout: () => twoGroups('warm').layout,
    slots,
    failures: [],
    unusedStorage: device.createBuffer({ label: 'matmulNBits.unused', size: 16, usage: GPUBufferUsage.STORAGE }),
    unusedUniform: device.createBuffer({ label: 'matmulNBits.unusedStep', size: 16, usage: GPUBufferUsage.UNIFORM }),
    pipeline(label, code, constants, compile, group1) {
      const key = `${label} ${JSON.stringify(constants)}`;
      let slot = slots.get(key);
      if (slot && (slot.pipeline || compile === 'async')) return slot;
      let module = modules.get(label);
      if (!module) {
        module = device.createShaderModule({ label, code });
        modules.set(label, module);
      }
      const descriptor: GPUComputePipelineDescriptor = { label: `matmulNBits ${key}`, layout: group1 ? twoGroups(group1).pipelineLayout : pipelineLayout, compute: { module, entryPoint: 'main', constants } };
      if (compile === 'sync') {
        // Also where an async compile of the same key is still running: this caller needs it now,
        // and kernels already holding the slot can use it too.
        slot ??= {};
        slot.pipeline = device.createComputePipeline(descriptor);
      } else {
        const s: PipelineSlot = {};
        s.pending = device.createComputePipelineAsync(descriptor).then(
          (p) => {
            s.pipeline ??= p;
            s.pending = undefined;
          },
          (err: unknown) => {
            s.pending = undefined;
            if (slots.get(key) === s) slots.delete(key);
            cache.failures.push(new AppError('GPU_VALIDATION', `Compiling the MatMulNBits pipeline "${key}" failed: ${err instanceof Error ? err.message : String(err)}`));
          },
        );
        slot = s;
      }
      slots.set(key, slot);
      return slot;
    },
  };
  caches.set(device, cache);
  return cache;
}

/** The shader a kernel runs for M rows, as tests and benchmarks name it: 'gemv-subgroup+prefetch', 'gemm-wide', … */
export function matMulNBitsPath(kernel: MatMulNBitsKernel, M: number): string {
  return M > 1 ? kernel.prefillPath : `${kernel.decodePath}${kernel.decodePrefetch ? '+prefetch' : ''}`;
}

/**
 * Resolves once every pipeline compiled with `compile: 'async'` on this device is ready; rejects
 * with the first compile that failed since the last call (each failure is reported once: the
 * kernels that asked for it are the caller's to drop).
 */
export async function matMulNBitsReady(device: GPUDevice): Promise<void> {
  const cache = caches.get(device);
  if (!cache) return;
  await Promise.all([...cache.slots.values()].map((s) => s.pending));
  const [failure] = cache.failures.splice(0);
  if (failure) throw failure;
}

export function createMatMulNBits(device: GPUDevice, b: MatMulNBitsBindings): MatMulNBitsKernel {
  const { K, N, blockSize, maxM } = b;
  const shape = matMulNBitsShape(K, N, blockSize);
  validateMatMulNBits({ K, N, blockSize, bits: 4, packedBytes: shape.packedBytes, scaleCount: shape.scaleCount });
  if (!Number.isSafeInteger(maxM) || maxM < 1) badArg(`maxM = ${maxM} must be a positive integer.`);
  const scaleBytes = shape.scaleCount * (b.scalesDtype === 'f16' ? 2 : 4);
  const weights = checkBuffer('weights', b.weights, shape.packedBytes, 'MODEL_BAD_WEIGHT');
  const scales = checkBuffer('scales', b.scales, scaleBytes, 'MODEL_BAD_WEIGHT');
  const zeroPoints = b.hasZeroPoints
    ? checkBuffer('zeroPoints', b.zeroPoints, shape.zeroPointBytes, 'MODEL_BAD_WEIGHT')
    : device.createBuffer({ label: 'matmulNBits.noZeroPoints', size: 4, usage: GPUBufferUsage.STORAGE });
  const silu = b.inputSiluMul;
  const norm = b.inputNorm;
  const accumulate = b.accumulate ?? false;
  if (silu) {
    for (const key of ['gateStride', 'gateOffset', 'upStride', 'upOffset'] as const) {
      if (!Number.isSafeInteger(silu[key]) || silu[key] < 0) badArg(`inputSiluMul.${key} = ${silu[key]} must be a non-negative integer.`);
    }
  }
  const inStride = silu ? silu.gateStride : K;
  const inOffset = silu ? silu.gateOffset : 0;
  const input = checkBuffer(silu ? 'input (gate)' : 'input', b.input, ((maxM - 1) * inStride + inOffset + K) * 4, 'BAD_ARGUMENT');
  const output = checkBuffer('output', b.output, maxM * N * 4, 'BAD_ARGUMENT');
  const up = silu ? checkBuffer('inputSiluMul.up', silu.up, ((maxM - 1) * silu.upStride + silu.upOffset + K) * 4, 'BAD_ARGUMENT') : undefined;
  const normWeight = norm ? checkBuffer('inputNorm.weight', norm.weight, K * 4, 'BAD_ARGUMENT') : undefined;
  if (norm && !(Number.isFinite(norm.eps) && norm.eps >= 0)) badArg(`inputNorm.eps = ${norm.eps} must be a finite number ≥ 0.`);
  if (accumulate && !b.step) badArg('accumulate needs the shared step uniform (`step`): the GEMM reads M from its seqLen.');
  const step = b.step ? checkBuffer('step', b.step, 16, 'BAD_ARGUMENT') : undefined;
  if (input === output) badArg('input and output must be different buffers.');
  const rope = b.ropeAppend;
  const ropePrecision = rope?.precision ?? 'f32';
  if (rope) {
    if (!step) badArg('ropeAppend needs the shared step uniform (`step`): the position is its pastLen.');
    if (accumulate || silu) badArg('ropeAppend cannot be combined with accumulate or inputSiluMul (it writes a fresh qkv row).');
    if (!matMulNBitsRopeAppendSupported(device)) {
      badArg(`ropeAppend binds ${ROPE_APPEND_STORAGE_BUFFERS} storage buffers in one stage; this device allows ${device.limits.maxStorageBuffersPerShaderStage}. Check matMulNBitsRopeAppendSupported and use a separate kv append instead.`);
    }
    if (!matMulNBitsHasGemv(K, blockSize)) badArg(`ropeAppend needs the decode GEMV, which K = ${K} with block size ${blockSize} does not allow (K padded to blocks must be a multiple of 32).`);
    for (const key of ['heads', 'kvHeads', 'headDim', 'maxT'] as const) {
      if (!Number.isSafeInteger(rope[key]) || rope[key] < 1) badArg(`ropeAppend.${key} = ${rope[key]} must be a positive integer.`);
    }
    const { heads, kvHeads, headDim, maxT } = rope;
    const { rotaryDim, maxPositions, tables } = rope.rotary;
    if (headDim % 2 !== 0) badArg(`ropeAppend.headDim = ${headDim} must be even (a rotary pair must fall in one workgroup).`);
    if (!Number.isInteger(rotaryDim) || rotaryDim < 2 || rotaryDim % 2 !== 0 || rotaryDim > headDim) badArg(`ropeAppend.rotary.rotaryDim = ${rotaryDim} must be even, ≥ 2 and ≤ headDim (${headDim}).`);
    if (!Number.isSafeInteger(maxPositions) || maxPositions < 1) badArg(`ropeAppend.rotary.maxPositions = ${maxPositions} must be a positive integer.`);
    if (N !== (heads + 2 * kvHeads) * headDim) badArg(`ropeAppend: N = ${N} must be (heads + 2·kvHeads)·headDim = ${(heads + 2 * kvHeads) * headDim} (output rows [q | k | v]).`);
    const cacheBytes = kvHeads * maxT * headDim * kvBytesPerElement(ropePrecision);
    checkBuffer('ropeAppend.kCache', rope.kCache, cacheBytes, 'BAD_ARGUMENT');
    checkBuffer('ropeAppend.vCache', rope.vCache, cacheBytes, 'BAD_ARGUMENT');
    // At least one row each: LongRoPE's short pair may cover only the original context (maxPositions
    // follows the long pair), and the runtime picks it only for positions it covers, as in kv-append.ts.
    const tableBytes = rotaryDim * (rope.rotary.dtype === 'f16' ? 2 : 4); // one row of (cos, sin) pairs
    for (const [i, table] of tables.entries()) checkBuffer(`ropeAppend.rotary.tables[${i}]`, table, tableBytes, 'BAD_ARGUMENT');
  }

  const maxDim = device.limits.maxComputeWorkgroupsPerDimension;
  // device.adapterInfo is recent (Chrome 132); older implementations get the real-GPU defaults.
  const info = (device as { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  const tuning = { ...matMulNBitsTuningFor(info ?? {}, { K, N }), ...b.tuning };
  const tpr = tuning.threadsPerRow ?? 32;
  const rowGroups = tuning.rowGroups ?? 2;
  if (!Number.isInteger(tpr) || tpr < 4 || tpr > 256 || (tpr & (tpr - 1)) !== 0) {
    badArg(`tuning.threadsPerRow = ${tpr} must be a power of two from 4 to 256.`);
  }
  if (!Number.isInteger(rowGroups) || rowGroups < 1 || tpr * rowGroups > 256) {
    badArg(`tuning.rowGroups = ${rowGroups} must be ≥ 1 with threadsPerRow · rowGroups ≤ 256.`);
  }
  const checkRows = (field: 'rowsPerThread' | 'stagedRowsPerThread', n: number): number => {
    if (!Number.isInteger(n) || n < 1 || n > 8) badArg(`tuning.${field} = ${n} must be 1..8.`);
    if (rope && (rowGroups * n) % 2 !== 0) {
      badArg(`ropeAppend needs an even number of rows per workgroup (a rotary pair shares one); tuning.rowGroups · ${field} = ${rowGroups} · ${n} = ${rowGroups * n}.`);
    }
    return n;
  };
  const askedRows = checkRows('rowsPerThread', tuning.rowsPerThread ?? 4);
  const stagedRows = tuning.stagedRowsPerThread === undefined ? askedRows : checkRows('stagedRowsPerThread', tuning.stagedRowsPerThread);
  const useSubgroups = (tuning.subgroups ?? true) && device.features.has('subgroups');

  // GEMV: rows must start on 16-byte boundaries for vec4<u32> loads.
  const gemvOk = shape.kPadded % 32 === 0;
  if (tuning.gemv !== undefined && !['staged', 'direct', 'dp4a'].includes(tuning.gemv)) badArg(`tuning.gemv = ${String(tuning.gemv)} must be 'staged', 'direct' or 'dp4a'.`);
  // The direct and dp4a GEMVs read activations as vec4s of whole 32-element chunks.
  const vec4Input = gemvOk && K % 32 === 0 && inOffset % 4 === 0 && (!silu || silu.upOffset % 4 === 0);
  const direct = vec4Input && tuning.gemv === 'direct';
  // Workgroup memory of the reduction: partial (with the Σx² rows) and pairTotals.
  const reductionBytesFor = (rowsPerThread: number) => (rowGroups * rowsPerThread + rowGroups) * tpr * 4 + rowGroups * rowsPerThread * 4;
  // dp4a: the quantised row (2 vec4<u32> + 1 or 2 vec2<f32> per chunk) and the reduction in workgroup memory.
  const split = blockSize === 16 ? 2 : 1;
  const dp4aBytes = (K / 32) * (32 + 8 * split) + reductionBytesFor(askedRows);
  const dp4a = vec4Input && tuning.gemv === 'dp4a' && dp4aBytes <= device.limits.maxComputeWorkgroupStorageSize && matMulNBitsDp4aSupported(device);
  // tuning.stagedRowsPerThread applies where the staged GEMV runs, asked for or as dp4a's fallback.
  const rowsPerThread = direct || dp4a ? askedRows : stagedRows;
  const rows = rowGroups * rowsPerThread;
  const gemvGroups = Math.ceil(N / rows);
  const gemvGridX = Math.min(gemvGroups, maxDim);
  const gemvGridY = Math.ceil(gemvGroups / gemvGridX);
  const reductionBytes = reductionBytesFor(rowsPerThread);
  const tileCap = Math.min(GEMV_TILE_CAP, Math.floor((device.limits.maxComputeWorkgroupStorageSize - reductionBytes) / 4 / 32) * 32);
  const tiles = Math.ceil(shape.kPadded / tileCap);
  const tileK = Math.ceil(shape.kPadded / tiles / 32) * 32;
  // Staged GEMV prefetch: a lane's chunks per full tile; its vec4s must fit the shader's registers.
  const prefetchIters = Math.ceil(tileK / 32 / tpr);

  // The wide GEMM reads weight rows as vec4<u32>, like the GEMVs: it needs the same alignment.
  const needGemm = maxM > 1 || !gemvOk;
  const wide = tuning.gemm === 'wide' && gemvOk;
  const [gemmWgX, gemmWgY] = tuning.gemmThreads ?? [8, 8];
  const gemmTK = tuning.gemmStepK ?? 32;
  const gemmTM = tuning.gemmRowsPerThread ?? 4;
  if (gemmTM !== 4 && gemmTM !== 8) badArg(`tuning.gemmRowsPerThread = ${String(gemmTM)} must be 4 or 8.`);
  if (![gemmWgX, gemmWgY].every((t) => Number.isInteger(t) && t >= 1) || gemmWgX * gemmWgY > 256) {
    badArg(`tuning.gemmThreads = ${gemmWgX}×${gemmWgY} must be positive integers with a product ≤ 256.`);
  }
  if (!Number.isInteger(gemmTK) || gemmTK < 8 || gemmTK % 8 !== 0) badArg(`tuning.gemmStepK = ${gemmTK} must be a positive multiple of 8.`);
  const gemmPad = (tuning.gemmPadA ?? true) ? 1 : 0;
  const gemmWorkgroupBytes = 16 * gemmTK * gemmWgX + 4 * gemmTK * gemmTM * gemmWgY + 16 * gemmTK * gemmPad + (norm ? 4 * gemmTM * gemmWgX * gemmWgY : 4);
  if (needGemm && !wide && gemmWorkgroupBytes > device.limits.maxComputeWorkgroupStorageSize) {
    badArg(`tuning.gemmThreads ${gemmWgX}×${gemmWgY} with gemmStepK ${gemmTK} and ${gemmTM} rows per thread needs ${gemmWorkgroupBytes} bytes of workgroup memory; this device allows ${device.limits.maxComputeWorkgroupStorageSize}. Use fewer threads or a smaller K step.`);
  }
  if (tuning.gemm !== undefined && tuning.gemm !== 'tiled' && tuning.gemm !== 'wide') badArg(`tuning.gemm = ${String(tuning.gemm)} must be 'tiled' or 'wide'.`);
  const wideThreads = tuning.gemmWideThreads ?? 128;
  const wideRows = tuning.gemmWideRows ?? 16;
  const wideCols = tuning.gemmWideCols ?? 1;
  const wideStepK = tuning.gemmWideStepK ?? 32;
  const wideMinGroups = tuning.gemmWideMinGroups ?? 0;
  const wideF16 = tuning.gemmF16 ?? false;
  if (wideF16 && tuning.gemm !== 'wide') badArg(`tuning.gemmF16 needs tuning.gemm 'wide' (got ${String(tuning.gemm ?? 'the default')}).`);
  if (wideF16 && !device.features.has('shader-f16')) {
    badArg('tuning.gemmF16 needs the shader-f16 feature, which this device does not have (or was not created with). Leave gemmF16 out to run the GEMM in f32.');
  }
  if (tuning.gemm === 'wide') {
    if (![32, 64, 128, 256].includes(wideThreads)) badArg(`tuning.gemmWideThreads = ${wideThreads} must be 32, 64, 128 or 256.`);
    if (![4, 8, 16, 32].includes(wideRows)) badArg(`tuning.gemmWideRows = ${String(wideRows)} must be 4, 8, 16 or 32.`);
    if (wideCols !== 1 && wideCols !== 2) badArg(`tuning.gemmWideCols = ${String(wideCols)} must be 1 or 2.`);
    if (!Number.isInteger(wideStepK) || wideStepK < 32 || wideStepK % 32 !== 0) badArg(`tuning.gemmWideStepK = ${wideStepK} must be a positive multiple of 32.`);
    if (!Number.isInteger(wideMinGroups) || wideMinGroups < 0) badArg(`tuning.gemmWideMinGroups = ${String(wideMinGroups)} must be a non-negative integer.`);
  }
  // NORM lanes per row in the wide GEMM's prologue (its header): every thread has a row.
  const wideLanes = wideThreads / Math.min(wideRows, wideThreads);
  const wideWorkgroupBytes = 4 * wideRows * wideStepK + (norm ? 4 * wideRows * wideLanes : 4);
  if (needGemm && wide && wideWorkgroupBytes > device.limits.maxComputeWorkgroupStorageSize) {
    badArg(`tuning.gemmWideRows ${wideRows} with gemmWideStepK ${wideStepK} needs ${wideWorkgroupBytes} bytes of workgroup memory; this device allows ${device.limits.maxComputeWorkgroupStorageSize}. Use fewer rows or a smaller K step.`);
  }
  const gemmTileN = wide ? wideThreads * wideCols : 4 * gemmWgX;
  const gemmTileM = wide ? wideRows : gemmTM * gemmWgY;
  const gemmGridX = Math.ceil(N / gemmTileN);
  if (gemmGridX > maxDim) badArg(`N = ${N} needs ${gemmGridX} workgroups along x (limit ${maxDim}).`);
  if (Math.ceil(maxM / gemmTileM) > maxDim) badArg(`maxM = ${maxM} is too large for one dispatch.`);

  const params = createUniformBuffer(
    device,
    packUniform([
      { u32: K },
      { u32: N },
      { u32: shape.nBlocks },
      { u32: shape.kPadded },
      { u32: Math.ceil(shape.nBlocks / 2) },
      { u32: maxM },
      { u32: gemvGridX },
      { u32: inStride },
      { u32: inOffset },
      { u32: silu?.upStride ?? 0 },
      { u32: silu?.upOffset ?? 0 },
      { f32: norm?.eps ?? 0 },
    ]),
    'matmulNBits.params',
  );
  const { layout, ropeLayout, pipeline, unusedStorage, unusedUniform } = pipelineCache(device);
  const bindGroup = device.createBindGroup({
    label: 'matmulNBits',
    layout,
    entries: [params, weights, scales, zeroPoints, input, output, step ?? unusedUniform, normWeight ?? unusedStorage, up ?? unusedStorage].map(
      (buffer, binding) => ({ binding, resource: { buffer } }),
    ),
  });
  // Fusion switches only when on, so the plain kernels keep their pipelines (and cache keys).
  const fusions: Record<string, number> = {};
  if (norm) fusions.NORM = 1;
  if (silu) fusions.SILU = 1;
  if (accumulate) fusions.ACCUMULATE = 1;
  const common = { BLOCK: blockSize, HAS_ZP: b.hasZeroPoints ? 1 : 0, SCALES_F16: b.scalesDtype === 'f16' ? 1 : 0, ...fusions };
  // The GEMM also serves M = 1 when rows are not 16-byte aligned; a kernel only ever called with
  // M = 1 (the lm_head) needs no GEMM otherwise.
  const compile = b.compile ?? 'sync';
  const gemmPrelude = dequantSource + gemmCommonSource + STEP_WGSL;
  const widePipeline = (cols: 1 | 2) =>
    pipeline(wideF16 ? 'matmul_nbits_gemm_wide_f16' : 'matmul_nbits_gemm_wide', (wideF16 ? WIDE_F16 : WIDE_F32) + gemmPrelude + gemmWideSource, {
      ...common,
      WW: wideThreads,
      COLS: cols,
      TMW: wideRows,
      CHUNKS: wideStepK / 32,
      ...(norm ? { NORM_SLOTS: wideRows * wideLanes } : {}),
    }, compile);
  // gemmWideMinGroups: the 1-column pipeline for calls too short to fill the GPU with 2 columns.
  const narrowGemm = needGemm && wide && wideCols === 2 && wideMinGroups > 0 ? widePipeline(1) : undefined;
  const narrowGridX = Math.ceil(N / wideThreads);
  if (narrowGemm && narrowGridX > maxDim) badArg(`N = ${N} needs ${narrowGridX} workgroups along x with 1 column per thread (limit ${maxDim}).`);
  const narrowFor = (M: number) => narrowGemm !== undefined && gemmGridX * Math.ceil(M / gemmTileM) < wideMinGroups;
  const gemm = !needGemm
    ? undefined
    : wide
      ? widePipeline(wideCols)
      : pipeline('matmul_nbits_gemm', gemmPrelude + gemmSource, {
          ...common,
          WG_X: gemmWgX,
          WG_Y: gemmWgY,
          TK: gemmTK,
          TM: gemmTM,
          A_PAD: gemmPad,
          ...(norm ? { NORM_SLOTS: gemmTM * gemmWgX * gemmWgY } : {}),
        }, compile);
  // A thread's weight vec4s held by the prefetch: a staged tile's, or (dp4a) the whole row's share.
  const prefetchSlots = (dp4a ? Math.ceil(K / 32 / tpr) : prefetchIters) * rowsPerThread;
  const prefetch = (tuning.gemvPrefetch ?? false) && gemvOk && !direct && prefetchSlots <= GEMV_PREFETCH_MAX;
  const staged = { TILE_K: tileK, ...(prefetch ? { PF_ITERS: prefetchIters } : {}) };
  // The decode GEMV: its body (with the reduction it shares, if any), label stem and size constants.
  const gemvKind = direct
    ? { stem: 'matmul_nbits_direct', body: gemvIoSource + gemvVec4Source + gemvDirectBody, sizing: { CHUNKS: K / 32 } as Record<string, number> }
    : dp4a
      ? { stem: 'matmul_nbits_dp4a', body: gemvIoSource + gemvVec4Source + gemvDp4aBody + gemvPrefetchSource + gemvReduceSource, sizing: { CHUNKS: K / 32, SPLIT: split, ...(prefetch ? { PREFETCH: 1 } : {}) } }
      : { stem: 'matmul_nbits', body: gemvIoSource + gemvSource + gemvPrefetchSource + gemvReduceSource, sizing: staged };
  const gemvConstants = { ...common, TPR: tpr, RG: rowGroups, ROWS: rowsPerThread, ...gemvKind.sizing };
  // With ropeAppend, M = 1 runs only the fused pipeline (below).
  // warm: the same GEMV with shaders/matmul_nbits_warm_next.wgsl instead of its stub (warmNext).
  const gemvPipeline = (warm: boolean) => {
    const stem = `${gemvKind.stem}${useSubgroups ? '_subgroup' : ''}${warm ? '_warm' : ''}`;
    const code = (useSubgroups ? GEMV_SUBGROUP_ENTRY : GEMV_PLAIN_ENTRY) + dequantSource + gemvKind.body + gemvRowsSource + ROPE_OFF + (warm ? warmNextSource : WARM_OFF);
    return pipeline(stem, code, gemvConstants, compile, warm ? 'warm' : undefined);
  };
  const gemv = !gemvOk || rope ? undefined : gemvPipeline(false);
  const gemvName = `gemv${direct ? '-direct' : dp4a ? '-dp4a' : ''}${useSubgroups ? '-subgroup' : ''}` as const;

  // ROPE_APPEND: the same GEMV body with the epilogue file and the KV stores of the cache's
  // precision, on the two-group layout; one group-1 bind group per rotary table.
  let ropeGemv: PipelineSlot | undefined;
  let ropeGroups: GPUBindGroup[] = [];
  if (rope) {
    const entry = useSubgroups ? GEMV_SUBGROUP_ENTRY_BODY : GEMV_PLAIN_ENTRY;
    const code = (useSubgroups ? ENABLE_SUBGROUPS : '') + entry + dequantSource + gemvKind.body + gemvRowsSource + ropeSource + rotaryTableSource + STEP_WGSL + kvStoreSource(ropePrecision) + WARM_OFF;
    const label = `${gemvKind.stem}${useSubgroups ? '_subgroup' : ''}_rope_${ropePrecision}`;
    ropeGemv = pipeline(label, code, { ...gemvConstants, ROPE_APPEND: 1, ROTARY_F16: rope.rotary.dtype === 'f16' ? 1 : 0 }, compile, 'rope');
    const r = rope.rotary;
    const ropeParams = createUniformBuffer(
      device,
      packUniform([
        { u32: rope.heads },
        { u32: rope.kvHeads },
        { u32: rope.headDim },
        { u32: r.rotaryDim },
        { u32: r.maxPositions },
        { u32: rope.maxT },
        { u32: rope.heads * rope.headDim },
        { u32: (rope.heads + rope.kvHeads) * rope.headDim },
      ]),
      'matmulNBits.rope.params',
    );
    ropeGroups = r.tables.map((table, i) =>
      device.createBindGroup({
        label: `matmulNBits.rope.cache${i}`,
        layout: ropeLayout(),
        entries: [ropeParams, table, rope.kCache, rope.vCache].map((buffer, binding) => ({ binding, resource: { buffer } })),
      }),
    );
  }

  // warmNext: the tuning's share, and (once set up) the pipeline and group 1 of the warming GEMV.
  const warmShare = checkWarmShare(tuning.warmNext ?? 0);
  const canWarm = gemv !== undefined && warmShare > 0 && matMulNBitsWarmNextSupported(device);
  let warm: { slot: PipelineSlot; group: GPUBindGroup } | undefined;
  let warmAsked = false;
  const gemvWeights = gemvOk ? { buffer: weights, rows: N, rowWords: shape.kPadded / 32 } : null;

  return {
    decodePath: gemv || rope ? gemvName : 'gemm',
    gemvWeights,
    warmShare,
    warmSumsBytes: (next) => (canWarm && next ? gemvGridX * gemvGridY * tpr * rowGroups * 4 : 0),
    warmNext(next, sums) {
      if (warmAsked) badArg('warmNext was already called for this kernel.');
      warmAsked = true;
      if (!canWarm || !next) return 0;
      const w = createWarm(device, pipelineCache(device).warmLayout(), next, warmShare, gemvGridX * gemvGridY, tpr * rowGroups, sums, 'MatMulNBits');
      warm = { slot: gemvPipeline(true), group: w.group };
      return w.bytes;
    },
    prefillPath: wide ? (wideF16 ? 'gemm-wide-f16' : 'gemm-wide') : 'gemm',
    decodePrefetch: prefetch,
    decodeRows: rows,
    encode(pass, M, cacheIndex = 0) {
      if (!Number.isInteger(M) || M < 1 || M > maxM) badArg(`M = ${M} must be an integer in 1..maxM (${maxM}).`);
      pass.setBindGroup(0, bindGroup);
      if (M === 1 && ropeGemv) {
        const group = ropeGroups[cacheIndex];
        if (!group) badArg(`cacheIndex ${cacheIndex} but only ${ropeGroups.length} rotary table(s) bound.`);
        pass.setPipeline(compiled(ropeGemv));
        pass.setBindGroup(1, group);
        pass.dispatchWorkgroups(gemvGridX, gemvGridY);
      } else if (M === 1 && warm) {
        pass.setPipeline(compiled(warm.slot));
        pass.setBindGroup(1, warm.group);
        pass.dispatchWorkgroups(gemvGridX, gemvGridY, 2);
      } else if (M === 1 && gemv) {
        pass.setPipeline(compiled(gemv));
        pass.dispatchWorkgroups(gemvGridX, gemvGridY);
      } else if (narrowGemm && narrowFor(M)) {
        pass.setPipeline(compiled(narrowGemm));
        pass.dispatchWorkgroups(narrowGridX, Math.ceil(M / gemmTileM));
      } else if (gemm) {
        pass.setPipeline(compiled(gemm));
        pass.dispatchWorkgroups(gemmGridX, Math.ceil(M / gemmTileM));
      }
    },
    prefillWideColumns(M) {
      if (!needGemm || !wide) return null;
      return narrowFor(M) ? 1 : wideCols;
    },
  };
}
