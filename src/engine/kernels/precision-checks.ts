/**
 * The GPU checks of both numeric paths (precision-wgsl.ts), as plain async functions: the vitest
 * GPU tests call them (attention.gpu.test.ts, kv-append.gpu.test.ts,
 * matmul-rope-append.gpu.test.ts, precision-checks.node-gpu.test.ts) and so does tools/device/checks.ts, which runs them on a
 * borrowed GPU machine without vitest. Both paths run on every device (the f16 cache is packed
 * into u32 words, no `shader-f16` needed), so SwiftShader runs the f16 checks too.
 *
 * Each check runs one kernel (or a whole model) and compares it with an independent TypeScript
 * reference (or onnxruntime's logits), returning the largest error and the tolerance it must stay
 * within. Tolerances, and why:
 *   - f32 path: as the kernels' own tests always had them: attention 1e-5 absolute (f32 sums over
 *     ≤ 3000 keys against a double-precision reference); the KV append is a copy (exact) or one f32
 *     rotation (2e-6).
 *   - f16 path, attention: the test rounds K and V to f16 itself and feeds the reference the same
 *     rounded values; the kernel converts them to f32 on load and does every product and sum in
 *     f32, so the same 1e-5 applies. The effect of the rounding itself (each value moves by at most
 *     2^-11 relative, 2^-12 absolute for |v| < 1) is printed beside it as a note.
 *   - f16 path, KV append: the GPU rounds the f32 result to f16 on store (`pack2x16float`). WGSL
 *     lets a conversion to f16 pick either neighbour of an unrepresentable value, so each cached
 *     value may differ from the reference rounded to nearest by one fp16 ulp (2^-10 relative),
 *     plus the f32 rotation's 2e-6 before rounding. The error is reported in units of that bound (tolerance 1).
 *   - Model: see `MODEL_TOLERANCE` in tools/device/checks-models.ts.
 * Rule: a check that cannot run on a device is reported as skipped with the reason, never as passed.
 */
import { createStorageBuffer, readBuffer } from '../gpu/buffers';
import { withErrorScopes, type GpuContext } from '../gpu/device';
import { maxAbsDiff, seededRandom } from '../gpu/testing';
import { loadModelFiles, type ModelFiles } from '../phi3/files';
import type { LoadOptions } from '../phi3/model';
import { attentionPartialsBytes, attentionReference, createAttention, type AttentionLayout, type AttentionTuning } from './attention';
import { float32ToFloat16Bits, quantizeActivationsQ8 } from './dequantize';
import { createKvAppend, kvAppendReference, type KvAppendLayout } from './kv-append';
import { createMatMulNBits, matMulNBitsPath, matMulNBitsReference, type MatMulNBitsTuning } from './matmul-nbits';
import { makeWeights, q8Allowance } from './matmul-testing';
import { rmsNormReference } from './rmsnorm';
import type { Precision } from './precision-wgsl';
import { buildRotaryCache, interleaveRotaryTable, rotaryReference } from './rotary';
import { createStepBuffer, writeStep } from './step';
import { float16ToFloat32 } from '../onnx/tensor-data';

export interface CheckResult {
  /** What was checked (kernel and case, or model). */
  name: string;
  precision: Precision;
  /** Largest error seen, in the unit `metric` names. NaN when skipped. */
  maxError: number;
  tolerance: number;
  metric: string;
  pass: boolean;
  /** Why the check did not run (a model variant whose kernels the device cannot run). */
  skipped?: string;
  /** Extra measurements (e.g. the f16 rounding's own effect). */
  note?: string;
}

export function skippedCheck(name: string, precision: Precision, metric: string, tolerance: number, reason: string): CheckResult {
  return { name, precision, maxError: NaN, tolerance, metric, pass: true, skipped: reason };
}

/** One line for logs: name, precision, max error, tolerance, PASS/FAIL/SKIPPED. */
export function formatCheck(r: CheckResult): string {
  const head = `${r.precision.padEnd(3)}  ${r.name}`;
  if (r.skipped) return `SKIPPED  ${head}: ${r.skipped}`;
  const err = Number.isFinite(r.maxError) ? r.maxError.toExponential(2) : String(r.maxError);
  return `${r.pass ? 'PASS   ' : 'FAIL   '}  ${head}: ${r.metric} = ${err} (tolerance ${r.tolerance})${r.note ? `; ${r.note}` : ''}`;
}

/** The spacing of fp16 values at `x` (one ulp): 2^(e-10) for normal values, 2^-24 below 2^-14. */
export function ulp16(x: number): number {
  const a = Math.abs(x);
  return a < 2 ** -14 ? 2 ** -24 : 2 ** (Math.floor(Math.log2(a)) - 10);
}

/**
 * Largest |got − want| in units of (one fp16 ulp of `want` + `slack`), with `want` already an
 * fp16 value; NaN anywhere counts as infinitely wrong. Also returns the largest absolute |Δ|.
 */
export function maxF16UlpError(got: ArrayLike<number>, want: ArrayLike<number>, slack: number): { ulps: number; abs: number } {
  if (got.length !== want.length) throw new Error(`length mismatch: ${got.length} vs ${want.length}`);
  let ulps = 0;
  let abs = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    const u = Number.isNaN(d) ? Infinity : d / (ulp16(want[i]) + slack);
    if (u > ulps) ulps = u;
    if (!(d <= abs)) abs = Number.isNaN(d) ? Infinity : d;
  }
  return { ulps, abs };
}

/** Values as the f16 path stores them: rounded to the nearest fp16 (bits, and back as f32). */
function toF16(values: Float32Array): { bits: Uint16Array; values: Float32Array } {
  const bits = float32ToFloat16Bits(values);
  return { bits, values: float16ToFloat32(bits) };
}

// ---------------------------------------------------------------------------------------------
// Attention

/** A layout and the AttentionTuning (kernel, keysPerSplit, prefill) to run it with. */
export interface AttentionCase extends AttentionTuning {
  name: string;
  l: AttentionLayout;
  qScale?: number;
  maxSplits?: number;
  /** Pass a caller-owned split-K scratch buffer (as a model shares one across layers). */
  sharedPartials?: boolean;
  expectPath: 'tiled' | 'split-k' | 'blocked';
}

export const ATTENTION_TOLERANCE = 1e-5;
const phi3Attention = { heads: 32, kvHeads: 32, headDim: 96, rowStride: 9216, qOffset: 0 };

const SERIAL_ATTENTION_CASES: readonly AttentionCase[] = [
  { name: 'Phi-3 decode, pastLen 0', l: { ...phi3Attention, seqLen: 1, pastLen: 0, maxT: 8 }, expectPath: 'tiled' },
  { name: 'Phi-3 prefill 7 from packed qkv, pastLen 0', l: { ...phi3Attention, seqLen: 7, pastLen: 0, maxT: 16 }, expectPath: 'tiled' },
  { name: 'Phi-3 decode, pastLen 200, 256-key splits (tiled)', l: { ...phi3Attention, seqLen: 1, pastLen: 200, maxT: 256 }, keysPerSplit: 256, expectPath: 'tiled' },
  { name: 'Phi-3 decode, pastLen 200 (split-K, 4 splits of the default 64 keys, the last partial)', l: { ...phi3Attention, seqLen: 1, pastLen: 200, maxT: 256 }, expectPath: 'split-k' },
  { name: 'Phi-3 decode, pastLen 63 (64 keys: tiled, the largest single split)', l: { ...phi3Attention, seqLen: 1, pastLen: 63, maxT: 128 }, expectPath: 'tiled' },
  { name: 'Phi-3 decode, 3000 keys (split-K)', l: { ...phi3Attention, seqLen: 1, pastLen: 2999, maxT: 3072 }, expectPath: 'split-k' },
  { name: 'Phi-3 decode, 3000 keys forced tiled', l: { ...phi3Attention, seqLen: 1, pastLen: 2999, maxT: 3072 }, keysPerSplit: 4096, expectPath: 'tiled' },
  {
    name: 'GQA 8/2, D 64, prefill 5 at pastLen 9, peaked scores',
    l: { heads: 8, kvHeads: 2, headDim: 64, rowStride: 12 * 64, qOffset: 0, seqLen: 5, pastLen: 9, maxT: 20 },
    qScale: 4,
    expectPath: 'tiled',
  },
  {
    name: 'GQA 8/2, D 16, decode pastLen 40',
    l: { heads: 8, kvHeads: 2, headDim: 16, rowStride: 8 * 16, qOffset: 0, seqLen: 1, pastLen: 40, maxT: 48 },
    expectPath: 'tiled',
  },
  {
    name: 'GQA 8/2, D 32, prefill 33 at pastLen 70 (partial tiles), custom scale 0.3',
    l: { heads: 8, kvHeads: 2, headDim: 32, rowStride: 3 + 12 * 32, qOffset: 3, seqLen: 33, pastLen: 70, maxT: 110, scale: 0.3 },
    expectPath: 'tiled',
  },
  {
    name: 'GQA 8/2, D 64, decode 3000 keys (split-K)',
    l: { heads: 8, kvHeads: 2, headDim: 64, rowStride: 8 * 64, qOffset: 0, seqLen: 1, pastLen: 2999, maxT: 3000 },
    qScale: 3,
    expectPath: 'split-k',
  },
  {
    name: 'GQA 4/2, D 32, decode 1000 keys, splits clamped to 5 of 64 keys (uneven chunks), shared scratch',
    l: { heads: 4, kvHeads: 2, headDim: 32, rowStride: 4 * 32, qOffset: 0, seqLen: 1, pastLen: 999, maxT: 1024 },
    keysPerSplit: 64,
    maxSplits: 5,
    sharedPartials: true,
    expectPath: 'split-k',
  },
  {
    name: 'window 100: decode at pastLen 200 (split-K over the last 100 keys, 2 splits)',
    l: { ...phi3Attention, seqLen: 1, pastLen: 200, maxT: 256, window: 100 },
    qScale: 3,
    expectPath: 'split-k',
  },
  {
    name: 'window 50: decode at pastLen 200, 256-key splits (tiled from key 151)',
    l: { ...phi3Attention, seqLen: 1, pastLen: 200, maxT: 256, window: 50 },
    keysPerSplit: 256,
    qScale: 3,
    expectPath: 'tiled',
  },
  {
    name: 'window 60: decode at pastLen 50 (the window covers every key: tiled)',
    l: { heads: 4, kvHeads: 2, headDim: 32, rowStride: 4 * 32, qOffset: 0, seqLen: 1, pastLen: 50, maxT: 64, window: 60 },
    expectPath: 'tiled',
  },
  {
    name: 'window 2047: decode 3000 keys (split-K over 2047 keys, capped at 5 uneven splits)',
    l: { heads: 4, kvHeads: 2, headDim: 32, rowStride: 4 * 32, qOffset: 0, seqLen: 1, pastLen: 2999, maxT: 3072, window: 2047 },
    maxSplits: 5,
    qScale: 3,
    expectPath: 'split-k',
  },
  {
    name: 'window 40: prefill 33 at pastLen 70 (each query its own first key), GQA 8/2, D 32',
    l: { heads: 8, kvHeads: 2, headDim: 32, rowStride: 8 * 32, qOffset: 0, seqLen: 33, pastLen: 70, maxT: 110, window: 40 },
    qScale: 4,
    expectPath: 'tiled',
  },
  {
    name: 'window 7: prefill 40 at pastLen 0 (the window inside the prompt), Phi-3 heads',
    l: { ...phi3Attention, seqLen: 40, pastLen: 0, maxT: 48, window: 7 },
    qScale: 4,
    expectPath: 'tiled',
  },
  {
    name: 'window 1: prefill 5 at pastLen 3 (each query attends itself only)',
    l: { heads: 2, kvHeads: 1, headDim: 8, rowStride: 16, qOffset: 0, seqLen: 5, pastLen: 3, maxT: 8, window: 1 },
    expectPath: 'tiled',
  },
  // A windowed model's cache is a ring (position p in row p mod maxT; model.ts): the keys a query
  // attends wrap past the last row, within a tile and within a split.
  {
    name: 'ring of 128 rows, window 100: decode at pastLen 300 (split-K over keys 201–300, rows 73–127 then 0–44)',
    l: { ...phi3Attention, seqLen: 1, pastLen: 300, maxT: 128, window: 100 },
    qScale: 3,
    expectPath: 'split-k',
  },
  {
    name: 'ring of 64 rows, window 50: decode at pastLen 200, 256-key splits (tiled over rows 23–63 then 0–8)',
    l: { heads: 4, kvHeads: 2, headDim: 32, rowStride: 4 * 32, qOffset: 0, seqLen: 1, pastLen: 200, maxT: 64, window: 50 },
    keysPerSplit: 256,
    qScale: 3,
    expectPath: 'tiled',
  },
  {
    name: "ring of 2559 rows (Phi-3 Mini 4K's window 2047 + 512), decode at pastLen 4095, 5 splits",
    l: { heads: 4, kvHeads: 2, headDim: 32, rowStride: 4 * 32, qOffset: 0, seqLen: 1, pastLen: 4095, maxT: 2559, window: 2047 },
    maxSplits: 5,
    qScale: 3,
    expectPath: 'split-k',
  },
  {
    name: 'ring of 73 rows (window 40 + 33), prefill 33 at pastLen 150 (keys 111–182 in rows 38–72 then 0–36), GQA 8/2, D 32',
    l: { heads: 8, kvHeads: 2, headDim: 32, rowStride: 8 * 32, qOffset: 0, seqLen: 33, pastLen: 150, maxT: 73, window: 40 },
    qScale: 4,
    expectPath: 'tiled',
  },
  {
    name: 'split-K with more splits than keys per split (D 16, 70 keys, 8 per split)',
    l: { heads: 2, kvHeads: 1, headDim: 16, rowStride: 32, qOffset: 0, seqLen: 1, pastLen: 69, maxT: 80 },
    keysPerSplit: 8,
    maxSplits: 16,
    expectPath: 'split-k',
  },
];

/**
 * Every case on both kernels, and every prefill case (seqLen > 1) on the blocked prefill kernel:
 * each must meet the same contract and tolerance.
 */
export const ATTENTION_CASES: readonly AttentionCase[] = [
  ...SERIAL_ATTENTION_CASES,
  ...SERIAL_ATTENTION_CASES.map((c): AttentionCase => ({ ...c, name: `${c.name}, lanes kernel`, kernel: 'lanes' })),
  ...SERIAL_ATTENTION_CASES.filter((c) => c.l.seqLen > 1).map((c): AttentionCase => ({ ...c, name: `${c.name}, blocked prefill`, prefill: 'blocked', expectPath: 'blocked' })),
  {
    name: 'blocked prefill: Phi-3 heads, 40 queries at pastLen 100 (3 blocks, the last partial; 5 key tiles)',
    l: { ...phi3Attention, seqLen: 40, pastLen: 100, maxT: 160 },
    prefill: 'blocked',
    expectPath: 'blocked',
  },
  {
    name: 'blocked prefill: GQA 4/1, D 128, 17 queries at pastLen 0, peaked scores',
    l: { heads: 4, kvHeads: 1, headDim: 128, rowStride: 6 * 128, qOffset: 0, seqLen: 17, pastLen: 0, maxT: 24 },
    qScale: 4,
    prefill: 'blocked',
    expectPath: 'blocked',
  },
  {
    name: 'blocked prefill with the lanes kernel: D 8, decode then (seqLen 1) takes lanes split-K',
    l: { heads: 2, kvHeads: 1, headDim: 8, rowStride: 16, qOffset: 0, seqLen: 1, pastLen: 90, maxT: 96 },
    keysPerSplit: 32,
    kernel: 'lanes',
    prefill: 'blocked',
    expectPath: 'split-k',
  },
  {
    name: 'blocked prefill: D 8 (one vec4 per lane for 2 lanes), 5 queries at pastLen 33',
    l: { heads: 2, kvHeads: 1, headDim: 8, rowStride: 16, qOffset: 0, seqLen: 5, pastLen: 33, maxT: 40 },
    prefill: 'blocked',
    expectPath: 'blocked',
  },
  {
    name: 'lanes kernel: D 8 (fewer dims than lanes per key), prefill 3 at pastLen 130 (3 tiles)',
    l: { heads: 2, kvHeads: 1, headDim: 8, rowStride: 16, qOffset: 0, seqLen: 3, pastLen: 130, maxT: 140 },
    kernel: 'lanes',
    expectPath: 'tiled',
  },
  {
    name: 'lanes kernel: D 128, decode 700 keys, 100-key splits (two tiles per split, the last partial)',
    l: { heads: 4, kvHeads: 4, headDim: 128, rowStride: 512, qOffset: 0, seqLen: 1, pastLen: 699, maxT: 704 },
    keysPerSplit: 100,
    qScale: 2,
    kernel: 'lanes',
    expectPath: 'split-k',
  },
];

/** Runs attention on the GPU with caches given as f32 values or as fp16 bits (f16 path). */
async function runAttention(device: GPUDevice, c: AttentionCase, precision: Precision, q: Float32Array, k: ArrayBufferView, v: ArrayBufferView): Promise<{ out: Float32Array; path: string }> {
  const l = c.l;
  const step = createStepBuffer(device);
  writeStep(device, step, { seqLen: l.seqLen, pastLen: l.pastLen });
  const qBuf = createStorageBuffer(device, q, 'q');
  const kBuf = createStorageBuffer(device, k, 'kCache');
  const vBuf = createStorageBuffer(device, v, 'vCache');
  const out = createStorageBuffer(device, l.seqLen * l.heads * l.headDim * 4, 'out');
  const partials = c.sharedPartials && c.maxSplits ? device.createBuffer({ size: attentionPartialsBytes(l.heads, l.headDim, c.maxSplits), usage: GPUBufferUsage.STORAGE }) : undefined;
  try {
    const kernel = createAttention(device, { ...l, step, q: qBuf, kCache: kBuf, vCache: vBuf, out, precision, keysPerSplit: c.keysPerSplit, kernel: c.kernel, prefill: c.prefill, maxSplits: c.maxSplits, partials });
    if (kernel.kernel !== (c.kernel ?? 'serial')) throw new Error(`attention ran the ${kernel.kernel} kernel, the case asked for ${c.kernel ?? 'serial'}`);
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    kernel.encode(pass, l.seqLen, l.pastLen + l.seqLen);
    pass.end();
    device.queue.submit([enc.finish()]);
    return { out: new Float32Array(await readBuffer(device, out)), path: kernel.path(l.seqLen, l.pastLen + l.seqLen) };
  } finally {
    for (const b of [step, qBuf, kBuf, vBuf, out]) b.destroy();
    partials?.destroy();
  }
}

export async function checkAttention(ctx: GpuContext, c: AttentionCase, precision: Precision): Promise<CheckResult> {
  const name = `attention ${c.name} [${c.expectPath}]`;
  const { device } = ctx;
  const l = c.l;
  const q = seededRandom(l.seqLen * l.rowStride, 31, c.qScale ?? 1);
  const cacheSize = l.kvHeads * l.maxT * l.headDim;
  const k = seededRandom(cacheSize, 32, 1);
  const v = seededRandom(cacheSize, 33, 1);
  let got: { out: Float32Array; path: string };
  let want: Float32Array;
  let note: string | undefined;
  if (precision === 'f32') {
    want = attentionReference(q, k, v, l);
    got = await withErrorScopes(device, () => runAttention(device, c, precision, q, k, v));
  } else {
    const k16 = toF16(k);
    const v16 = toF16(v);
    want = attentionReference(q, k16.values, v16.values, l);
    got = await withErrorScopes(device, () => runAttention(device, c, precision, q, k16.bits, v16.bits));
    note = `f16 storage itself moves the output by ${maxAbsDiff(got.out, attentionReference(q, k, v, l)).toExponential(2)} vs f32 caches`;
  }
  const err = maxAbsDiff(got.out, want);
  const pathOk = got.path === c.expectPath;
  if (!pathOk) note = `took the ${got.path} path, expected ${c.expectPath}${note ? `; ${note}` : ''}`;
  // A window case proves something only where some query's window leaves keys out.
  let windowOk = true;
  if (l.window) {
    const unwindowed = maxAbsDiff(want, attentionReference(q, k, v, { ...l, window: undefined }));
    const leavesOut = l.pastLen + l.seqLen > l.window;
    windowOk = leavesOut === unwindowed > 100 * ATTENTION_TOLERANCE;
    note = `${note ? `${note}; ` : ''}the window moves the output by ${unwindowed.toExponential(2)}${windowOk ? '' : leavesOut ? ', too little to tell' : ' though it covers every key'}`;
  }
  return { name, precision, maxError: err, tolerance: ATTENTION_TOLERANCE, metric: 'max |Δ|', pass: pathOk && windowOk && err <= ATTENTION_TOLERANCE, note };
}

// ---------------------------------------------------------------------------------------------
// KV append (with the fused rotary of k, and of q in place)

/**
 * The two test pairs (a plain one, and a LongRoPE-like one with factors 4 and scale 1.19) as the
 * kernels' rotary tables (rotary.ts; fp16 when `f16`), and as the values the GPU then reads, for
 * the references.
 */
function testRotaryTables(maxPos: number, rotaryDim: number, f16: boolean): { tables: Uint8Array[]; pairs: { cos: Float32Array; sin: Float32Array }[] } {
  const built = [buildRotaryCache(maxPos, rotaryDim, 10000), buildRotaryCache(maxPos, rotaryDim, 10000, new Array<number>(rotaryDim / 2).fill(4), 1.19)];
  const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  if (!f16) return { tables: built.map((p) => interleaveRotaryTable(bytes(p.cos), bytes(p.sin), 'f32')), pairs: built };
  const bits = built.map((p) => ({ cos: float32ToFloat16Bits(p.cos), sin: float32ToFloat16Bits(p.sin) }));
  return {
    tables: bits.map((p) => interleaveRotaryTable(bytes(p.cos), bytes(p.sin), 'f16')),
    pairs: bits.map((p) => ({ cos: float16ToFloat32(p.cos), sin: float16ToFloat32(p.sin) })),
  };
}

export interface KvAppendCase {
  name: string;
  l: KvAppendLayout;
  separate: boolean;
  /** Fused rotary of k: rotaryDim, cache positions, and which of two (LongRoPE) pairs to use. */
  rotary?: { rotaryDim: number; maxPos: number; cacheIndex: 0 | 1; dtype?: 'f32' | 'f16' };
  /** Rotate q in place in the same dispatch: inside the packed kSrc row, or in its own buffer. */
  rotateQ?: { heads: number; rowStride: number; offset: number; packed: boolean };
}

/** f32 path: a copy is exact; one f32 rotation (two products and a sum, |x| ≤ 1, |cos|, |sin| ≤ 1.19) stays within 2e-6. */
export const KV_COPY_TOLERANCE = 0;
export const ROTARY_TOLERANCE = 2e-6;

export const KV_APPEND_CASES: readonly KvAppendCase[] = [
  {
    name: 'Phi-3 packed qkv, prefill 5 at pastLen 3',
    l: { seqLen: 5, pastLen: 3, kvHeads: 32, headDim: 96, rowStride: 9216, kOffset: 3072, vOffset: 6144, maxT: 16 },
    separate: false,
  },
  {
    name: 'Phi-3 decode into the last slot',
    l: { seqLen: 1, pastLen: 63, kvHeads: 32, headDim: 96, rowStride: 9216, kOffset: 3072, vOffset: 6144, maxT: 64 },
    separate: false,
  },
  {
    name: 'GQA 2 kv heads of 16, separate k and v buffers, positions 9 and 10 wrap to rows 0 and 1 (a ring of 9)',
    l: { seqLen: 4, pastLen: 7, kvHeads: 2, headDim: 16, rowStride: 32, kOffset: 0, vOffset: 0, maxT: 9 },
    separate: true,
  },
  {
    name: 'fused rotary, Phi-3 packed qkv, prefill 6 at pastLen 10',
    l: { seqLen: 6, pastLen: 10, kvHeads: 32, headDim: 96, rowStride: 9216, kOffset: 3072, vOffset: 6144, maxT: 16 },
    separate: false,
    rotary: { rotaryDim: 96, maxPos: 64, cacheIndex: 0 },
  },
  {
    name: 'fused rotary, LongRoPE long pair, GQA D 64 partial rotary 32, decode',
    l: { seqLen: 1, pastLen: 40, kvHeads: 2, headDim: 64, rowStride: 8 * 64 + 4 * 64, kOffset: 8 * 64, vOffset: 10 * 64, maxT: 48 },
    separate: false,
    rotary: { rotaryDim: 32, maxPos: 48, cacheIndex: 1 },
  },
  {
    name: 'fused rotary, fp16 caches (short pair), Phi-3 decode at pastLen 4095',
    l: { seqLen: 1, pastLen: 4095, kvHeads: 32, headDim: 96, rowStride: 9216, kOffset: 3072, vOffset: 6144, maxT: 4096 },
    separate: false,
    rotary: { rotaryDim: 96, maxPos: 4096, cacheIndex: 0, dtype: 'f16' },
  },
  {
    name: 'fused rotary + q in place, Phi-3 packed qkv, prefill 3 at pastLen 0',
    l: { seqLen: 3, pastLen: 0, kvHeads: 32, headDim: 96, rowStride: 9216, kOffset: 3072, vOffset: 6144, maxT: 16 },
    separate: false,
    rotary: { rotaryDim: 96, maxPos: 64, cacheIndex: 0 },
    rotateQ: { heads: 32, rowStride: 9216, offset: 0, packed: true },
  },
  {
    name: 'fused rotary + q in place, fp16 caches, Phi-3 packed qkv decode at pastLen 4095',
    l: { seqLen: 1, pastLen: 4095, kvHeads: 32, headDim: 96, rowStride: 9216, kOffset: 3072, vOffset: 6144, maxT: 4096 },
    separate: false,
    rotary: { rotaryDim: 96, maxPos: 4096, cacheIndex: 0, dtype: 'f16' },
    rotateQ: { heads: 32, rowStride: 9216, offset: 0, packed: true },
  },
  {
    name: 'fused rotary + q in place, separate q/k/v buffers, GQA 8/2, D 64 partial rotary 32, LongRoPE long pair, prefill 5 at pastLen 7 (positions 10 and 11 wrap to rows 0 and 1)',
    l: { seqLen: 5, pastLen: 7, kvHeads: 2, headDim: 64, rowStride: 2 * 64 + 3, kOffset: 3, vOffset: 0, maxT: 10 },
    separate: true,
    rotary: { rotaryDim: 32, maxPos: 48, cacheIndex: 1 },
    rotateQ: { heads: 8, rowStride: 8 * 64 + 5, offset: 5, packed: false },
  },
  {
    name: 'fused rotary + q in place, separate q, Phi-3 shape, LongRoPE long pair, fp16 caches, decode at pastLen 4095',
    l: { seqLen: 1, pastLen: 4095, kvHeads: 32, headDim: 96, rowStride: 3072, kOffset: 0, vOffset: 0, maxT: 4096 },
    separate: true,
    rotary: { rotaryDim: 96, maxPos: 4096, cacheIndex: 1, dtype: 'f16' },
    rotateQ: { heads: 32, rowStride: 3072, offset: 0, packed: false },
  },
  {
    name: 'fused rotary + q in place, separate q, 270000 tokens: more than 65535 workgroups (a 2-D grid)',
    l: { seqLen: 270000, pastLen: 0, kvHeads: 1, headDim: 16, rowStride: 16, kOffset: 0, vOffset: 0, maxT: 270000 },
    separate: true,
    rotary: { rotaryDim: 16, maxPos: 270000, cacheIndex: 0 },
    rotateQ: { heads: 1, rowStride: 16, offset: 0, packed: false },
  },
];

/**
 * Checks the KV append: the k/v caches (every position: written ones against the reference,
 * the others unchanged) and, with rotateQ, q rotated in place (f32 on both paths). Returns one
 * result for the caches and one for q.
 */
export async function checkKvAppend(ctx: GpuContext, c: KvAppendCase, precision: Precision): Promise<CheckResult[]> {
  const name = `kv append ${c.name}`;
  const f16Metric = '|Δ| / (1 fp16 ulp + 2e-6)';
  const cacheTolerance = precision === 'f16' ? 1 : c.rotary ? ROTARY_TOLERANCE : KV_COPY_TOLERANCE;
  const cacheMetric = precision === 'f16' ? `max ${f16Metric}` : 'max |Δ|';
  const { device } = ctx;
  const l = c.l;
  const kSrc = seededRandom(l.seqLen * l.rowStride, 21, 1);
  const vSrc = c.separate ? seededRandom(l.seqLen * l.rowStride, 22, 1) : kSrc;
  const cacheSize = l.kvHeads * l.maxT * l.headDim;
  // The caches' previous contents: what the f16 path would hold (f16 values) or plain f32.
  const k0 = precision === 'f16' ? toF16(seededRandom(cacheSize, 23, 1)) : { bits: undefined, values: seededRandom(cacheSize, 23, 1) };
  const v0 = precision === 'f16' ? toF16(seededRandom(cacheSize, 24, 1)) : { bits: undefined, values: seededRandom(cacheSize, 24, 1) };
  const rc = c.rotary;
  const rt = rc ? testRotaryTables(rc.maxPos, rc.rotaryDim, rc.dtype === 'f16') : undefined;
  const used = rc && rt ? { ...rt.pairs[rc.cacheIndex], rotaryDim: rc.rotaryDim } : undefined;
  const want = kvAppendReference(kSrc, vSrc, k0.values, v0.values, l, used);
  const rq = c.rotateQ;
  const q0 = rq && !rq.packed ? seededRandom(l.seqLen * rq.rowStride, 25, 1) : kSrc;
  // What the q buffer must hold afterwards (packed: the whole qkv rows, k and v unchanged).
  const wantQ = rq && used ? rotaryReference(q0, used.cos, used.sin, { seqLen: l.seqLen, pastLen: l.pastLen, heads: rq.heads, headDim: l.headDim, rotaryDim: used.rotaryDim, rowStride: rq.rowStride, offset: rq.offset }) : undefined;
  const got = await withErrorScopes(device, async () => {
    const step = createStepBuffer(device);
    writeStep(device, step, { seqLen: l.seqLen, pastLen: l.pastLen });
    const kBuf = createStorageBuffer(device, kSrc, 'kSrc');
    const vBuf = c.separate ? createStorageBuffer(device, vSrc, 'vSrc') : kBuf;
    const kCache = createStorageBuffer(device, k0.bits ?? k0.values, 'kCache');
    const vCache = createStorageBuffer(device, v0.bits ?? v0.values, 'vCache');
    const tables = (rt?.tables ?? []).map((t) => createStorageBuffer(device, t, 'rotary'));
    const rotary = rc ? { rotaryDim: rc.rotaryDim, maxPositions: rc.maxPos, dtype: rc.dtype ?? 'f32', tables: [tables[0], tables[1]] as const } : undefined;
    const qBuf = rq ? (rq.packed ? kBuf : createStorageBuffer(device, q0, 'q')) : undefined;
    const rotateQ = rq && qBuf ? { heads: rq.heads, qBuffer: qBuf, rowStride: rq.rowStride, offset: rq.offset } : undefined;
    try {
      const kernel = createKvAppend(device, { ...l, step, kSrc: kBuf, vSrc: vBuf, kCache, vCache, precision, rotary, rotateQ });
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      kernel.encode(pass, l.seqLen, rc?.cacheIndex);
      pass.end();
      device.queue.submit([enc.finish()]);
      const read = async (b: GPUBuffer) => (precision === 'f16' ? float16ToFloat32(new Uint16Array(await readBuffer(device, b), 0, cacheSize)) : new Float32Array(await readBuffer(device, b), 0, cacheSize));
      return { k: await read(kCache), v: await read(vCache), q: qBuf ? new Float32Array(await readBuffer(device, qBuf)) : undefined };
    } finally {
      for (const b of new Set([step, kBuf, vBuf, kCache, vCache, ...(qBuf ? [qBuf] : []), ...tables])) b.destroy();
    }
  });
  let cacheErr: number;
  let note: string | undefined;
  if (precision === 'f32') {
    cacheErr = Math.max(maxAbsDiff(got.k, want.kCache), maxAbsDiff(got.v, want.vCache));
  } else {
    // The reference rounded to nearest fp16; the GPU may pick the other neighbour (one ulp).
    const slack = rc ? ROTARY_TOLERANCE : 0;
    const ek = maxF16UlpError(got.k, toF16(want.kCache).values, slack);
    const ev = maxF16UlpError(got.v, toF16(want.vCache).values, slack);
    cacheErr = Math.max(ek.ulps, ev.ulps);
    note = `max |Δ| = ${Math.max(ek.abs, ev.abs).toExponential(2)} vs the reference rounded to fp16`;
  }
  const results: CheckResult[] = [{ name, precision, maxError: cacheErr, tolerance: cacheTolerance, metric: cacheMetric, pass: cacheErr <= cacheTolerance, note }];
  if (wantQ) {
    const qErr = got.q ? maxAbsDiff(got.q, wantQ) : Infinity;
    results.push({ name: `${name}: q`, precision, maxError: qErr, tolerance: ROTARY_TOLERANCE, metric: 'max |Δ|', pass: qErr <= ROTARY_TOLERANCE });
  }
  return results;
}

// ---------------------------------------------------------------------------------------------
// The decode qkv GEMV with the rotary and KV append fused (matmul-nbits.ts `ropeAppend`)
//
// Against the composition of the plain references it replaces: rmsNormReference →
// matMulNBitsReference (the qkv row y), then rotaryReference on q and kvAppendReference (rotary of
// k, k and v into the caches). Tolerance: the GEMV alone is held to the matmul tests'
// |Δ| ≤ 1e-4 · (1 + |y|); a rotated value x·c ∓ p·s (|c|, |s| ≤ 1.19 with LongRoPE's scale) then
// carries at most 1.19 · 1e-4 · (2 + |x| + |p|) ≤ 2.4e-4 · (1 + |x| + |p|), plus the f32 rotation's
// rounding: every q, k and v value must satisfy |Δ| ≤ 2.5e-4 · (1 + |x| + |p|) (x, p: the reference's
// unrotated pair; p = 0 for v and dims ≥ rotaryDim). f16 caches: plus one fp16 ulp (the GPU may
// round to either neighbour). What the kernel must not touch (the caches' other rows, the k and v
// rows of the output) must come back bit for bit. The token's row is pastLen mod maxT (a ring).

export const MATMUL_ROPE_TOLERANCE = 2.5e-4;
const EPS = 1e-5;


export interface MatMulRopeCase {
  name: string;
  heads: number;
  kvHeads: number;
  headDim: number;
  rotaryDim: number;
  K: number;
  blockSize: number;
  zp: boolean;
  f16Scales: boolean;
  norm: boolean;
  pastLen: number;
  maxT: number;
  /** rows of the cos/sin tables */
  maxPos: number;
  cacheIndex: 0 | 1;
  rotaryF16: boolean;
  tuning?: MatMulNBitsTuning;
}

const small = { heads: 4, kvHeads: 2, headDim: 16, rotaryDim: 8, K: 128, blockSize: 32, zp: true, f16Scales: false, norm: true, maxPos: 16 };
const phi3 = { heads: 32, kvHeads: 32, headDim: 96, rotaryDim: 96, K: 3072, blockSize: 32, zp: false, f16Scales: true, norm: true, maxPos: 64 };

export const MATMUL_ROPE_CASES: readonly MatMulRopeCase[] = [
  { ...small, name: 'GQA 4/2, D 16, partial rotary 8, staged, f32 tables', pastLen: 5, maxT: 8, cacheIndex: 0, rotaryF16: false, tuning: { gemv: 'staged' } },
  { ...small, name: 'GQA 4/2, D 16, partial rotary 8, staged without subgroups, LongRoPE long pair, fp16 tables', pastLen: 3, maxT: 8, cacheIndex: 1, rotaryF16: true, tuning: { gemv: 'staged', subgroups: false } },
  { ...small, name: 'GQA 4/2, direct without subgroups, 4×3 threads of 2 rows, LongRoPE long pair, fp16 tables', pastLen: 7, maxT: 8, cacheIndex: 1, rotaryF16: true, tuning: { gemv: 'direct', subgroups: false, threadsPerRow: 4, rowGroups: 3, rowsPerThread: 2 } },
  { ...small, name: 'GQA 4/2, direct, short pair, no norm', norm: false, pastLen: 0, maxT: 8, cacheIndex: 0, rotaryF16: false, tuning: { gemv: 'direct' } },
  { ...small, name: 'position 9 of a ring of 8: k/v to row 1 (staged, 6 rows per workgroup, partial last workgroup)', pastLen: 9, maxT: 8, cacheIndex: 0, rotaryF16: false, tuning: { gemv: 'staged', subgroups: false, threadsPerRow: 8, rowGroups: 1, rowsPerThread: 6 } },
  { ...small, name: 'position 12 of a ring of 8: row 4 (direct)', pastLen: 12, maxT: 8, cacheIndex: 1, rotaryF16: true, tuning: { gemv: 'direct' } },
  { name: 'MHA 2/2, D 32, full rotary, block 16, f16 scales, direct', heads: 2, kvHeads: 2, headDim: 32, rotaryDim: 32, K: 96, blockSize: 16, zp: false, f16Scales: true, norm: true, maxPos: 40, pastLen: 33, maxT: 40, cacheIndex: 1, rotaryF16: false, tuning: { gemv: 'direct', threadsPerRow: 8, rowGroups: 2, rowsPerThread: 8 } },
  { ...small, name: 'GQA 4/2, staged with weights prefetched (gemvPrefetch), LongRoPE long pair', pastLen: 4, maxT: 8, cacheIndex: 1, rotaryF16: false, tuning: { gemv: 'staged', gemvPrefetch: true, threadsPerRow: 4, rowGroups: 2, rowsPerThread: 2 } },
  { ...phi3, name: 'Phi-3 full width, staged with weights prefetched on NVIDIA\'s 32 × 8 × 2 split, fp16 tables', pastLen: 20, maxT: 64, cacheIndex: 0, rotaryF16: true, tuning: { gemv: 'staged', gemvPrefetch: true, threadsPerRow: 32, rowGroups: 8, rowsPerThread: 2 } },
  { ...phi3, name: 'Phi-3 full width (32 heads of 96, hidden 3072), staged, fp16 tables', pastLen: 40, maxT: 64, cacheIndex: 0, rotaryF16: true, tuning: { gemv: 'staged' } },
  { ...phi3, name: 'Phi-3 full width, direct without subgroups, LongRoPE long pair, f32 tables, last slot', pastLen: 63, maxT: 64, cacheIndex: 1, rotaryF16: false, tuning: { gemv: 'direct', subgroups: false, threadsPerRow: 32, rowGroups: 2, rowsPerThread: 8 } },
  // dp4a: against the product of the int8-rounded activations (quantizeActivationsQ8).
  { ...small, name: 'GQA 4/2, dp4a without subgroups, 4×3 threads of 2 rows, LongRoPE long pair, fp16 tables', pastLen: 6, maxT: 8, cacheIndex: 1, rotaryF16: true, tuning: { gemv: 'dp4a', subgroups: false, threadsPerRow: 4, rowGroups: 3, rowsPerThread: 2 } },
  { ...phi3, name: 'Phi-3 full width, dp4a on NVIDIA\'s 32 × 8 × 2 split, fp16 tables', pastLen: 30, maxT: 64, cacheIndex: 0, rotaryF16: true, tuning: { gemv: 'dp4a', threadsPerRow: 32, rowGroups: 8, rowsPerThread: 2 } },
  { ...phi3, name: 'Phi-3 full width, dp4a with weights prefetched, 32 × 8 × 2, LongRoPE long pair, f32 tables', pastLen: 50, maxT: 64, cacheIndex: 1, rotaryF16: false, tuning: { gemv: 'dp4a', gemvPrefetch: true, threadsPerRow: 32, rowGroups: 8, rowsPerThread: 2 } },
];

/** Count of positions where a and b differ bit for bit (NaN-safe). */
function changed(a: ArrayLike<number>, b: ArrayLike<number>, skip: (i: number) => boolean): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (!skip(i) && !Object.is(a[i], b[i])) n++;
  return n;
}

/**
 * Runs the decode qkv GEMV with `ropeAppend` once and compares it with the composed references;
 * returns one result for q, one for the caches (f16: in units of one fp16 ulp + the bound) and one
 * counting values that had to stay bit for bit but changed.
 */
export async function checkMatMulRopeAppend(ctx: GpuContext, c: MatMulRopeCase, precision: Precision): Promise<CheckResult[]> {
  const name = `matmulNBits ropeAppend ${c.name}`;
  const cacheMetric = precision === 'f16' ? 'max |Δ| / (1 fp16 ulp + bound)' : 'max |Δ| / bound';
  const { device } = ctx;
  const { heads, kvHeads, headDim: D, rotaryDim: R, K } = c;
  const qDim = heads * D;
  const kvDim = kvHeads * D;
  const N = qDim + 2 * kvDim;
  const half = R / 2;
  const { params, scaleBytes } = makeWeights({ K, N, blockSize: c.blockSize, zp: c.zp, f16: c.f16Scales }, 4000 + N + c.pastLen);
  const x = seededRandom(K, 41, 2);
  const normWeight = seededRandom(K, 42, 0.5).map((v) => v + 1);
  const a = c.norm ? rmsNormReference(x, normWeight, EPS).out : x;
  const dp4a = c.tuning?.gemv === 'dp4a';
  const y = matMulNBitsReference(dp4a ? quantizeActivationsQ8(a, K) : a, 1, params);
  // dp4a: an activation next to a rounding tie may round either way on a GPU (q8Allowance).
  const slack = dp4a ? q8Allowance(a, params.scales) : 0;

  const rt = testRotaryTables(c.maxPos, R, c.rotaryF16);
  const used = rt.pairs[c.cacheIndex];
  const wantQ = rotaryReference(y, used.cos, used.sin, { seqLen: 1, pastLen: c.pastLen, heads, headDim: D, rotaryDim: R, rowStride: N, offset: 0 });
  const cacheSize = kvHeads * c.maxT * D;
  const k0 = toF16(seededRandom(cacheSize, 43, 1));
  const v0 = toF16(seededRandom(cacheSize, 44, 1));
  const init = precision === 'f16' ? { k: k0.values, v: v0.values } : { k: seededRandom(cacheSize, 43, 1), v: seededRandom(cacheSize, 44, 1) };
  const want = kvAppendReference(y, y, init.k, init.v, { seqLen: 1, pastLen: c.pastLen, kvHeads, headDim: D, rowStride: N, kOffset: qDim, vOffset: qDim + kvDim, maxT: c.maxT }, { ...used, rotaryDim: R });
  const y0 = seededRandom(N, 45, 3);

  /** The error bound's scale of qkv row n: 1 + |x| + |partner| (partner only for rotated dims). */
  const scaleOf = (n: number) => {
    const inQk = n < qDim + kvDim;
    const e = n % D;
    const p = inQk && e < R ? (e < half ? n + half : n - half) : -1;
    // (dp4a: the rotation mixes two rows, each off by up to `slack`, with factors up to 1.19.)
    return 1 + Math.abs(y[n]) + (p >= 0 ? Math.abs(y[p]) : 0) + (3 * slack) / MATMUL_ROPE_TOLERANCE;
  };

  const got = await withErrorScopes(device, async () => {
    const made: GPUBuffer[] = [];
    const buf = (data: ArrayBufferView | number, name: string) => {
      made.push(createStorageBuffer(device, data, name));
      return made[made.length - 1];
    };
    const step = createStepBuffer(device);
    made.push(step);
    writeStep(device, step, { seqLen: 1, pastLen: c.pastLen });
    const output = buf(y0, 'qkv');
    const kCache = buf(precision === 'f16' ? k0.bits : init.k, 'kCache');
    const vCache = buf(precision === 'f16' ? v0.bits : init.v, 'vCache');
    const tables = rt.tables.map((t) => buf(t, 'rotary'));
    const kernel = createMatMulNBits(device, {
      K,
      N,
      blockSize: c.blockSize,
      hasZeroPoints: c.zp,
      scalesDtype: c.f16Scales ? 'f16' : 'f32',
      weights: buf(params.packed, 'weights'),
      scales: buf(scaleBytes, 'scales'),
      zeroPoints: params.zeroPoints ? buf(params.zeroPoints, 'zeroPoints') : undefined,
      input: buf(x, 'hidden'),
      output,
      maxM: 1,
      tuning: c.tuning,
      inputNorm: c.norm ? { weight: buf(normWeight, 'normWeight'), eps: EPS } : undefined,
      ropeAppend: { heads, kvHeads, headDim: D, maxT: c.maxT, kCache, vCache, precision, rotary: { rotaryDim: R, maxPositions: c.maxPos, dtype: c.rotaryF16 ? 'f16' : 'f32', tables: [tables[0], tables[1]] } },
      step,
    });
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    kernel.encode(pass, 1, c.cacheIndex);
    pass.end();
    device.queue.submit([enc.finish()]);
    const readCache = async (b: GPUBuffer) => (precision === 'f16' ? float16ToFloat32(new Uint16Array(await readBuffer(device, b), 0, cacheSize)) : new Float32Array(await readBuffer(device, b), 0, cacheSize));
    const result = { out: new Float32Array(await readBuffer(device, output)), k: await readCache(kCache), v: await readCache(vCache), path: matMulNBitsPath(kernel, 1) };
    for (const m of made) m.destroy();
    return result;
  });

  // q: rotated, in the output's q rows.
  let q = 0;
  for (let n = 0; n < qDim; n++) q = Math.max(q, Math.abs(got.out[n] - wantQ[n]) / scaleOf(n));
  // Caches at the token's row, in units of the bound (f16: one ulp added).
  const row = c.pastLen % c.maxT;
  let cache = 0;
  const atRow = (i: number) => Math.floor(i / D) % c.maxT === row;
  for (let g = 0; g < kvHeads; g++) {
    for (let d = 0; d < D; d++) {
      const i = (g * c.maxT + row) * D + d;
      for (const [gotC, wantC, n] of [
        [got.k, want.kCache, qDim + g * D + d],
        [got.v, want.vCache, qDim + kvDim + g * D + d],
      ] as const) {
        const bound = MATMUL_ROPE_TOLERANCE * scaleOf(n);
        if (precision === 'f16') {
          const w16 = toF16(new Float32Array([wantC[i]])).values;
          cache = Math.max(cache, maxF16UlpError([gotC[i]], w16, bound).ulps);
        } else {
          cache = Math.max(cache, Math.abs(gotC[i] - wantC[i]) / bound);
        }
      }
    }
  }
  // Untouched: the caches' other rows and the output's k and v rows.
  const untouched = changed(got.k, init.k, atRow) + changed(got.v, init.v, atRow) + changed(got.out.slice(qDim), y0.slice(qDim), () => false);
  const wantPath = `gemv${c.tuning?.gemv === 'direct' || dp4a ? `-${c.tuning?.gemv}` : ''}${(c.tuning?.subgroups ?? true) && ctx.features.subgroups ? '-subgroup' : ''}${c.tuning?.gemvPrefetch ? '+prefetch' : ''}`;
  const pathNote = got.path === wantPath ? `(${got.path})` : `took ${got.path}, expected ${wantPath}`;
  return [
    { name: `${name}: q`, precision, maxError: q, tolerance: MATMUL_ROPE_TOLERANCE, metric: 'max |Δ|/(1+|x|+|p|)', pass: q <= MATMUL_ROPE_TOLERANCE && got.path === wantPath, note: pathNote },
    { name: `${name}: caches`, precision, maxError: cache, tolerance: 1, metric: `${cacheMetric}, bound ${MATMUL_ROPE_TOLERANCE}·(1+|x|+|p|)`, pass: cache <= 1 },
    { name: `${name}: untouched`, precision, maxError: untouched, tolerance: 0, metric: 'values that must not change but did', pass: untouched === 0 },
  ];
}

/** A check that threw (e.g. a shader that does not compile) as a failed result with the message. */
export async function guardedCheck(name: string, precision: Precision, metric: string, tolerance: number, run: () => Promise<CheckResult[]>): Promise<CheckResult[]> {
  try {
    return await run();
  } catch (err) {
    const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    return [{ name, precision, maxError: NaN, tolerance, metric, pass: false, note: `threw ${message}` }];
  }
}

/**
 * Every kernel check of both paths (f16 ones skipped with the reason where the device lacks it).
 * A check that throws is recorded as failed and the others still run, so one run on a borrowed
 * machine reports everything.
 */
export async function runKernelChecks(ctx: GpuContext, onResult?: (r: CheckResult) => void): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const add = (rs: CheckResult[]) => {
    for (const r of rs) {
      results.push(r);
      onResult?.(r);
    }
  };
  for (const precision of ['f32', 'f16'] as const) {
    for (const c of ATTENTION_CASES) add(await guardedCheck(`attention ${c.name} [${c.expectPath}]`, precision, 'max |Δ|', ATTENTION_TOLERANCE, async () => [await checkAttention(ctx, c, precision)]));
    for (const c of KV_APPEND_CASES) add(await guardedCheck(`kv append ${c.name}`, precision, 'max error', precision === 'f16' ? 1 : ROTARY_TOLERANCE, () => checkKvAppend(ctx, c, precision)));
    for (const c of MATMUL_ROPE_CASES) add(await guardedCheck(`matmulNBits ropeAppend ${c.name}`, precision, 'max error', 1, () => checkMatMulRopeAppend(ctx, c, precision)));
  }
  return results;
}

// ---------------------------------------------------------------------------------------------
// Whole model against reference logits (onnxruntime-node's, computed live or shipped)

export interface ModelReference {
  /** The prompt fed first; then each reference token in turn. */
  prompt: number[];
  /** Greedy tokens of the reference: tokens[i] = argmax(logits[i]). */
  tokens: number[];
  /** Last-position logits for each step (vocab each). */
  logits: Float32Array[];
}

function argmaxOf(v: Float32Array): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

/** A model check under other kernels than the defaults (checks-models.ts MODEL_VARIANTS). */
export interface ModelCheckVariant {
  /** Load options the model is loaded with (a MatMulNBits tuning, say). */
  load?: Omit<LoadOptions, 'precision'>;
  /** Share of steps whose greedy token must be the reference's (default 1: all). */
  minAgree?: number;
  /** The decode matmuls must all run this shader (a prefix of `decodeMatMulPaths`), else the check is skipped naming what ran. */
  decodePath?: string;
  /** The numeric path it runs on (default 'f32': the path every device runs as the reference does). */
  precision?: Precision;
}

/**
 * Loads `files` with `precision`, feeds the reference's prompt and then its greedy tokens (so both
 * see the same sequence), and compares the last-position logits of every step. Passes when
 * max |Δlogit| ≤ tolerance and every step's greedy token is the reference's (or `minAgree` of them).
 */
export async function checkModel(ctx: GpuContext, files: ModelFiles, ref: ModelReference, precision: Precision, tolerance: number, name: string, variant: ModelCheckVariant = {}): Promise<CheckResult> {
  const metric = 'max |Δlogit|';
  // A tuning whose kernels compute in f16 cannot load without shader-f16: reported skipped, with the reason.
  if (variant.load?.matMulTuning?.gemmF16 && !ctx.features.shaderF16) return skippedCheck(name, precision, metric, tolerance, 'the device has no shader-f16, which its f16 kernels (gemmF16) need');
  const { runtime } = await loadModelFiles(ctx, files, { ...variant.load, precision });
  try {
    if (runtime.precision !== precision) throw new Error(`${name}: loaded with precision ${runtime.precision}, asked for ${precision}`);
    const paths = runtime.decodeMatMulPaths;
    if (variant.decodePath && !paths.every((p) => p.startsWith(variant.decodePath!))) {
      return skippedCheck(name, precision, metric, tolerance, `the decode matmuls ran ${paths.join(', ')}, not ${variant.decodePath} (the device lacks what it needs)`);
    }
    let worst = 0;
    let agree = 0;
    let firstMismatch = '';
    let logits = await runtime.logits(ref.prompt);
    for (let s = 0; s < ref.tokens.length; s++) {
      worst = Math.max(worst, maxAbsDiff(logits, ref.logits[s]));
      const token = argmaxOf(logits);
      if (token === ref.tokens[s]) agree++;
      else if (!firstMismatch) {
        // How close the reference itself was to choosing our token (a near tie, or a real error).
        const margin = ref.logits[s][ref.tokens[s]] - ref.logits[s][token];
        firstMismatch = `; first mismatch at step ${s}: ${token} instead of ${ref.tokens[s]} (reference margin ${margin.toExponential(2)})`;
      }
      if (s + 1 < ref.tokens.length) logits = await runtime.logits([ref.tokens[s]]);
    }
    const steps = ref.tokens.length;
    const total = ref.prompt.length + steps - 1;
    const needed = Math.ceil((variant.minAgree ?? 1) * steps);
    return {
      name,
      precision,
      maxError: worst,
      tolerance,
      metric,
      pass: worst <= tolerance && agree >= needed,
      note: `greedy tokens identical ${agree}/${steps}${needed < steps ? ` (${needed} required)` : ''}; ${total} positions, context limit ${runtime.contextLimit}; decode matmuls on ${paths.join(', ')}${runtime.decodeWarmBytes ? `; ${runtime.decodeWarmBytes} bytes read ahead per step (warmNext)` : ''}${firstMismatch}`,
    };
  } finally {
    runtime.destroy();
  }
}
