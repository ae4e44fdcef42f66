/**
 * The per-step uniform shared by every kernel whose work depends on where we are in the sequence.
 * The forward pass writes it once per step (16 bytes); kernels bind it read-only and never own a
 * copy. WGSL side: `struct Step` in shaders/step.wgsl (seqLen, pastLen, totalLen = pastLen +
 * seqLen, flags = 0), which every shader that binds the uniform gets by appending STEP_WGSL to its
 * source, so the layout below and the struct are each written once.
 *
 * Rule: a kernel must not keep per-step values in its own uniforms; bind groups are built once.
 */
import stepSource from '../../../shaders/step.wgsl?raw';

/** The WGSL declaration of `struct Step`, for the kernels that bind the step uniform. */
export const STEP_WGSL: string = stepSource;

export const STEP_UNIFORM_BYTES = 16;

export interface StepValues {
  seqLen: number;
  pastLen: number;
}

export function createStepBuffer(device: GPUDevice): GPUBuffer {
  return device.createBuffer({ label: 'step', size: STEP_UNIFORM_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
}

export function writeStep(device: GPUDevice, buffer: GPUBuffer, s: StepValues): void {
  device.queue.writeBuffer(buffer, 0, new Uint32Array([s.seqLen, s.pastLen, s.pastLen + s.seqLen, 0]));
}
