/**
 * SiLU·up (shaders/silu_mul.wgsl) and its reference: out[t, i] = silu(gate[t, i]) · up[t, i].
 * gate and up are two buffers, or the two halves of one fused gate_up row (gate first):
 * `siluMulLayoutFused(I)` gives the strides and offsets. Rows = seqLen from the step uniform.
 * Rule: `encode` never writes buffers.
 */
import source from '../../../shaders/silu_mul.wgsl?raw';
import { STEP_WGSL } from './step';
import { createUniformBuffer, packUniform, workgroupGrid } from '../gpu/buffers';
import { getComputePipeline } from '../gpu/pipelines';

export interface SiluMulLayout {
  intermediate: number;
  gateStride: number;
  gateOffset: number;
  upStride: number;
  upOffset: number;
}

export function siluMulLayoutFused(intermediate: number): SiluMulLayout {
  return { intermediate, gateStride: 2 * intermediate, gateOffset: 0, upStride: 2 * intermediate, upOffset: intermediate };
}

export function siluMulLayoutSeparate(intermediate: number): SiluMulLayout {
  return { intermediate, gateStride: intermediate, gateOffset: 0, upStride: intermediate, upOffset: 0 };
}

/** Reference: out [seqLen, intermediate], as onnxruntime's Sigmoid → Mul(gate) → Mul(up). */
export function siluMulReference(gate: Float32Array, up: Float32Array, seqLen: number, l: SiluMulLayout): Float32Array {
  const n = l.intermediate;
  const out = new Float32Array(seqLen * n);
  for (let t = 0; t < seqLen; t++) {
    for (let i = 0; i < n; i++) {
      const g = gate[t * l.gateStride + l.gateOffset + i];
      out[t * n + i] = g * (1 / (1 + Math.exp(-g))) * up[t * l.upStride + l.upOffset + i];
    }
  }
  return out;
}

export interface SiluMulBindings extends SiluMulLayout {
  step: GPUBuffer;
  gate: GPUBuffer;
  /** May be the same buffer as `gate` (fused gate_up). */
  up: GPUBuffer;
  /** [seqLen, intermediate] f32. */
  out: GPUBuffer;
}

export interface SiluMulKernel {
  encode(pass: GPUComputePassEncoder, seqLen: number): void;
}

const WG = 256;

export function createSiluMul(device: GPUDevice, b: SiluMulBindings): SiluMulKernel {
  const pipeline = getComputePipeline(device, 'silu_mul', source + STEP_WGSL, { WG });
  const params = createUniformBuffer(
    device,
    packUniform([{ u32: b.intermediate }, { u32: b.gateStride }, { u32: b.gateOffset }, { u32: b.upStride }, { u32: b.upOffset }]),
    'silu_mul.params',
  );
  const bindGroup = device.createBindGroup({
    label: 'silu_mul',
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: params } },
      { binding: 1, resource: { buffer: b.step } },
      { binding: 2, resource: { buffer: b.gate } },
      { binding: 3, resource: { buffer: b.up } },
      { binding: 4, resource: { buffer: b.out } },
    ],
  });
  const maxDim = device.limits.maxComputeWorkgroupsPerDimension;
  return {
    encode(pass, seqLen) {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      const [x, y] = workgroupGrid(Math.ceil((seqLen * b.intermediate) / WG), maxDim);
      pass.dispatchWorkgroups(x, y);
    },
  };
}
