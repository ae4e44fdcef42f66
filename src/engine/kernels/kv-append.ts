/**
 * KV-cache append (shaders/kv_append.wgsl) and its reference: this step's k and v rows go to
 * positions pastLen..pastLen+seqLen-1 of the static caches [kvHeads, maxT, headDim] (f32).
 * k and v are read in place from their producer's rows (e.g. a packed qkv output) via
 * rowStride/offsets. Rule: the caller checks capacity (pastLen + seqLen <= maxT) before encoding;
 * the shader silently drops positions past maxT.
 */
import source from '../../../shaders/kv_append.wgsl?raw';
import { createUniformBuffer, packUniform, workgroupGrid } from '../gpu/buffers';
import { getComputePipeline } from '../gpu/pipelines';

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

/** Reference: updates copies of the caches and returns them. */
export function kvAppendReference(
  kSrc: Float32Array,
  vSrc: Float32Array,
  kCache: Float32Array,
  vCache: Float32Array,
  l: KvAppendLayout,
): { kCache: Float32Array; vCache: Float32Array } {
  const k = kCache.slice();
  const v = vCache.slice();
  for (let t = 0; t < l.seqLen; t++) {
    const pos = l.pastLen + t;
    if (pos >= l.maxT) continue;
    for (let g = 0; g < l.kvHeads; g++) {
      for (let d = 0; d < l.headDim; d++) {
        const src = t * l.rowStride + g * l.headDim + d;
        const dst = (g * l.maxT + pos) * l.headDim + d;
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
  /** [kvHeads, maxT, headDim] f32. */
  kCache: GPUBuffer;
  vCache: GPUBuffer;
}

export interface KvAppendKernel {
  encode(pass: GPUComputePassEncoder, seqLen: number): void;
}

const WG = 64;

export function createKvAppend(device: GPUDevice, b: KvAppendBindings): KvAppendKernel {
  const pipeline = getComputePipeline(device, 'kv_append', source, { WG });
  const params = createUniformBuffer(
    device,
    packUniform([{ u32: b.kvHeads }, { u32: b.headDim }, { u32: b.rowStride }, { u32: b.kOffset }, { u32: b.vOffset }, { u32: b.maxT }]),
    'kv_append.params',
  );
  const bindGroup = device.createBindGroup({
    label: 'kv_append',
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: params } },
      { binding: 1, resource: { buffer: b.step } },
      { binding: 2, resource: { buffer: b.kSrc } },
      { binding: 3, resource: { buffer: b.vSrc } },
      { binding: 4, resource: { buffer: b.kCache } },
      { binding: 5, resource: { buffer: b.vCache } },
    ],
  });
  const perToken = b.kvHeads * b.headDim;
  const maxDim = device.limits.maxComputeWorkgroupsPerDimension;
  return {
    encode(pass, seqLen) {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      const [x, y] = workgroupGrid(Math.ceil((seqLen * perToken) / WG), maxDim);
      pass.dispatchWorkgroups(x, y);
    },
  };
}
