/**
 * The per-step uniform shared by every kernel whose work depends on where we are in the sequence.
 * The forward pass writes it once per step (16 bytes); kernels bind it read-only and never own a
 * copy. WGSL side, declared identically in each shader that uses it:
 *
 *   struct Step {
 *     seqLen: u32,   // tokens processed in this step (1 for decode, S for prefill)
 *     pastLen: u32,  // tokens already in the KV cache before this step
 *     totalLen: u32, // pastLen + seqLen
 *     flags: u32,    // reserved (0)
 *   }
 *
 * Rule: a kernel must not keep per-step values in its own uniforms; bind groups are built once.
 */

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
