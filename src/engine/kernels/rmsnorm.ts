/**
 * RMSNorm kernel (shaders/rmsnorm.wgsl) and its plain TypeScript reference.
 * The pipeline and bind group are built once by `createRmsNorm`; `encode` only records a dispatch.
 */
import source from '../../../shaders/rmsnorm.wgsl?raw';
import { createUniformBuffer, packUniform } from '../gpu/buffers';
import { getComputePipeline } from '../gpu/pipelines';

/** Reference: optionally hidden += delta, then out = hidden / rms(hidden) * weight, per row. */
export function rmsNormReference(
  hidden: Float32Array,
  weight: Float32Array,
  eps: number,
  delta?: Float32Array,
): { out: Float32Array; hidden: Float32Array } {
  const n = weight.length;
  const rows = hidden.length / n;
  const h = hidden.slice();
  const out = new Float32Array(h.length);
  for (let r = 0; r < rows; r++) {
    let sumSq = 0;
    for (let i = 0; i < n; i++) {
      if (delta) h[r * n + i] = Math.fround(h[r * n + i] + delta[r * n + i]);
      sumSq += h[r * n + i] * h[r * n + i];
    }
    const scale = 1 / Math.sqrt(sumSq / n + eps);
    for (let i = 0; i < n; i++) out[r * n + i] = h[r * n + i] * scale * weight[i];
  }
  return { out, hidden: h };
}

export interface RmsNormBindings {
  rows: number;
  n: number;
  eps: number;
  hidden: GPUBuffer;
  /** When given, `hidden += delta` is fused in front of the norm. */
  delta?: GPUBuffer;
  weight: GPUBuffer;
  out: GPUBuffer;
}

const WG = 256;

/** `b.rows` is the capacity; `encode(pass, rows)` normalises the first `rows` rows. */
export function createRmsNorm(device: GPUDevice, b: RmsNormBindings): { encode(pass: GPUComputePassEncoder, rows?: number): void } {
  const pipeline = getComputePipeline(device, b.delta ? 'rmsnorm+residual' : 'rmsnorm', source, { WG, ADD_DELTA: b.delta ? 1 : 0 });
  const params = createUniformBuffer(device, packUniform([{ u32: b.rows }, { u32: b.n }, { f32: b.eps }]), 'rmsnorm.params');
  const entries: GPUBindGroupEntry[] = [
    { binding: 0, resource: { buffer: params } },
    { binding: 1, resource: { buffer: b.hidden } },
    { binding: 3, resource: { buffer: b.weight } },
    { binding: 4, resource: { buffer: b.out } },
  ];
  // `delta` is statically used by the shader, so the auto layout always has binding 2; the plain
  // norm binds a 4-byte placeholder that the ADD_DELTA=false specialisation never reads.
  const delta = b.delta ?? device.createBuffer({ label: 'rmsnorm.unusedDelta', size: 4, usage: GPUBufferUsage.STORAGE });
  entries.push({ binding: 2, resource: { buffer: delta } });
  const bindGroup = device.createBindGroup({ label: 'rmsnorm', layout: pipeline.getBindGroupLayout(0), entries });
  return {
    encode(pass, rows = b.rows) {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(rows);
    },
  };
}
