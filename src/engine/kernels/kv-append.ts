/**
 * KV-cache append (shaders/kv_append.wgsl) and its reference: this step's k and v rows go to
 * positions pastLen..pastLen+seqLen-1 of the static caches [kvHeads, maxT, headDim] (position p
 * in row p mod maxT: a ring, as attention reads it; attention.ts), whose
 * elements are f32, or f16 with `precision: 'f16'` (packed two per u32, on every device; the
 * value, rotated in f32 first, is rounded once on store; see precision-wgsl.ts). Each invocation
 * writes whole storage words, so headDim must be even on the f16 path.
 * k and v are read in place from their producer's rows (e.g. a packed qkv output) via
 * rowStride/offsets. With `rotary` (the model's rotary tables, rotary.ts), k is rotated on the way
 * into the cache (the fused rotary + append; k in the source rows stays unrotated, which is fine
 * because attention reads k only from the cache) and `encode` takes the LongRoPE `cacheIndex`.
 * With `rotary` and `rotateQ`, q is also rotated in place in the same dispatch (same positions and
 * table), so the rotary needs no dispatch of its own. When q lives in the kSrc/vSrc buffer (a
 * packed qkv row) that buffer is bound once, read_write (entry point mainPackedQ), since WebGPU
 * forbids binding one buffer both read-only and read-write in a dispatch.
 * Rule: the caller sizes the cache: positions past maxT overwrite the oldest rows, which only a
 * ring that no longer needs them (model.ts: a windowed model's cache) may let happen.
 */
import kvAppendSource from '../../../shaders/kv_append.wgsl?raw';
import rotaryTableSource from '../../../shaders/rotary_table.wgsl?raw';
import { STEP_WGSL } from './step';
import { createUniformBuffer, packUniform, workgroupGrid } from '../gpu/buffers';
import { getComputePipeline } from '../gpu/pipelines';
import { AppError } from '../errors';
import { kvElementsPerWord, withPrecision, type Precision } from './precision-wgsl';
import { rotaryReference, type RotaryTables } from './rotary';

export interface KvAppendLayout {
  seqLen: number;
  pastLen: number;
  kvHeads: number;
  headDim: number;
  rowStride: number;
  kOffset: number;
  vOffset: number;
  maxT: number;
}

/** Reference: updates copies of the caches and returns them; `rotary` rotates k first. */
export function kvAppendReference(
  kSrc: Float32Array,
  vSrc: Float32Array,
  kCache: Float32Array,
  vCache: Float32Array,
  l: KvAppendLayout,
  rotary?: { cos: Float32Array; sin: Float32Array; rotaryDim: number },
): { kCache: Float32Array; vCache: Float32Array } {
  if (rotary) {
    const { cos, sin, rotaryDim } = rotary;
    kSrc = rotaryReference(kSrc, cos, sin, { seqLen: l.seqLen, pastLen: l.pastLen, heads: l.kvHeads, headDim: l.headDim, rotaryDim, rowStride: l.rowStride, offset: l.kOffset });
  }
  const k = kCache.slice();
  const v = vCache.slice();
  for (let t = 0; t < l.seqLen; t++) {
    const row = (l.pastLen + t) % l.maxT;
    for (let g = 0; g < l.kvHeads; g++) {
      for (let d = 0; d < l.headDim; d++) {
        const src = t * l.rowStride + g * l.headDim + d;
        const dst = (g * l.maxT + row) * l.headDim + d;
        k[dst] = kSrc[src + l.kOffset];
        v[dst] = vSrc[src + l.vOffset];
      }
    }
  }
  return { kCache: k, vCache: v };
}

export interface KvAppendBindings {
  kvHeads: number;
  headDim: number;
  rowStride: number;
  kOffset: number;
  vOffset: number;
  /** Cache capacity in positions. */
  maxT: number;
  step: GPUBuffer;
  /** Source rows holding k; `vSrc` may be the same buffer (packed qkv). */
  kSrc: GPUBuffer;
  vSrc: GPUBuffer;
  /** [kvHeads, maxT, headDim] of f32, or of f16 (packed two per u32) when `precision` is 'f16'. */
  kCache: GPUBuffer;
  vCache: GPUBuffer;
  /** Element type of the caches (default 'f32'); either runs on every device (precision-wgsl.ts). */
  precision?: Precision;
  /** Fuse the rotary of k into the append: the model's rotary tables (the decode qkv GEMV's too). */
  rotary?: RotaryTables;
  /**
   * Also rotate q [seqLen, heads, headDim] in place (rows of `rowStride` elements of `qBuffer`,
   * starting at `offset`), in the same dispatch; requires `rotary`. `qBuffer` is either a buffer
   * other than kSrc and vSrc, or the same buffer as both (packed qkv; q must not overlap k or v).
   */
  rotateQ?: { heads: number; qBuffer: GPUBuffer; rowStride: number; offset: number };
}

export interface KvAppendKernel {
  /** `cacheIndex` picks the rotary table (LongRoPE); ignored without `rotary`. */
  encode(pass: GPUComputePassEncoder, seqLen: number, cacheIndex?: 0 | 1): void;
}

const WG = 64;

/** The ROTARY=false specialisation never reads the table, but the auto layout still has it. */
function placeholderTable(device: GPUDevice): GPUBuffer {
  return device.createBuffer({ label: 'kv_append.noRotary', size: 4, usage: GPUBufferUsage.STORAGE });
}

export function createKvAppend(device: GPUDevice, b: KvAppendBindings): KvAppendKernel {
  const r = b.rotary;
  if (r && (r.rotaryDim % 2 !== 0 || r.rotaryDim > b.headDim)) {
    throw new AppError('BAD_ARGUMENT', `kv append: rotaryDim ${r.rotaryDim} must be even and <= headDim ${b.headDim}`);
  }
  const q = b.rotateQ;
  if (q && !r) throw new AppError('BAD_ARGUMENT', 'kv append: rotateQ needs rotary');
  const packed = q !== undefined && q.qBuffer === b.kSrc && q.qBuffer === b.vSrc;
  if (q && !packed && (q.qBuffer === b.kSrc || q.qBuffer === b.vSrc)) {
    throw new AppError('BAD_ARGUMENT', 'kv append: rotateQ.qBuffer must be both kSrc and vSrc (packed qkv) or neither');
  }
  const precision = b.precision ?? 'f32';
  const perWord = kvElementsPerWord(precision);
  if (b.headDim % perWord !== 0) throw new AppError('BAD_ARGUMENT', `kv append: headDim ${b.headDim} must be even for an f16 cache (two elements per storage word)`);
  const entryPoint = q ? (packed ? 'mainPackedQ' : 'mainSeparateQ') : 'main';
  const label = `kv_append.${precision}${r ? '+rotary' : ''}${q ? (packed ? '+q packed' : '+q') : ''}`;
  const pipeline = getComputePipeline(device, label, withPrecision(kvAppendSource + rotaryTableSource + STEP_WGSL, precision), { WG, ROTARY: r ? 1 : 0, ROTARY_F16: r?.dtype === 'f16' ? 1 : 0 }, entryPoint);
  const params = createUniformBuffer(
    device,
    packUniform([
      { u32: b.kvHeads },
      { u32: b.headDim },
      { u32: b.rowStride },
      { u32: b.kOffset },
      { u32: b.vOffset },
      { u32: b.maxT },
      { u32: r?.rotaryDim ?? 0 },
      { u32: r?.maxPositions ?? 1 },
      { u32: q?.heads ?? 0 },
      { u32: q?.rowStride ?? 0 },
      { u32: q?.offset ?? 0 },
      { u32: 0 },
    ]),
    'kv_append.params',
  );
  const tables: readonly GPUBuffer[] = r ? r.tables : [placeholderTable(device)];
  const bindGroups = tables.map((table, i) =>
    device.createBindGroup({
      label: `kv_append.cache${i}`,
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: params } },
        { binding: 1, resource: { buffer: b.step } },
        ...(packed
          ? [{ binding: 9, resource: { buffer: b.kSrc } }]
          : [
              { binding: 2, resource: { buffer: b.kSrc } },
              { binding: 3, resource: { buffer: b.vSrc } },
            ]),
        ...(q && !packed ? [{ binding: 8, resource: { buffer: q.qBuffer } }] : []),
        { binding: 4, resource: { buffer: b.kCache } },
        { binding: 5, resource: { buffer: b.vCache } },
        { binding: 6, resource: { buffer: table } },
      ],
    }),
  );
  // Invocations per token: one per storage word of k and v, then (rotateQ) one per rotate-half pair of q.
  const perToken = (b.kvHeads * b.headDim) / perWord + (q && r ? q.heads * (r.rotaryDim / 2) : 0);
  const maxDim = device.limits.maxComputeWorkgroupsPerDimension;
  return {
    encode(pass, seqLen, cacheIndex = 0) {
      const bindGroup = bindGroups[r ? cacheIndex : 0];
      if (!bindGroup) throw new AppError('BAD_ARGUMENT', `kv append: cacheIndex ${cacheIndex} but only ${bindGroups.length} rotary table(s) bound`);
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      const [x, y] = workgroupGrid(Math.ceil((seqLen * perToken) / WG), maxDim);
      pass.dispatchWorkgroups(x, y);
    },
  };
}
