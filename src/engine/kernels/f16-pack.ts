/**
 * Packing f32 weights into fp16 on the GPU while they load (shaders/f16_pack.wgsl): the f16 path
 * (precision-wgsl.ts) keeps a q4 file's f32 block scales, embedding table and rotary tables as
 * raw fp16 bits, the layout the kernels already read for q4f16 files, so both builds of a model
 * take the same GPU memory (for Phi-3 Mini 4K, 430 MB less for the q4 build) and a decode step
 * reads 232 MB fewer scale bytes.
 *
 * Why on the GPU: the conversion runs as one small dispatch per streamed chunk, so a load spends
 * no CPU time on it (converting 214 million values in JavaScript took 0.7–1 s on this
 * project's CI machine) and writes half the bytes. The shader rounds in integer arithmetic, to
 * nearest even with subnormals kept, so every GPU gives the bits `float32ToFloat16Bits`
 * (dequantize.ts) gives; the tests compare them exactly.
 *
 * Values outside fp16's finite range (|x| > 65504, infinities, NaNs) cannot be packed: the shader
 * raises a flag that `outOfRange` reads back once, after the whole upload, and the caller then
 * loads that data in f32 (Phi3Runtime.load builds again without packing). Real block scales and
 * embeddings are far inside the range (Microsoft's own web build stores both as fp16).
 *
 * Rule: `write` submits its own command buffer, so call it only while no pass is being recorded
 * (during a load); it may be called with any element offset, any number of times per buffer.
 */
import source from '../../../shaders/f16_pack.wgsl?raw';
import { AppError } from '../errors';
import { createUniformBuffer, packUniform, readBuffer, workgroupGrid, writeBuffer } from '../gpu/buffers';
import { getComputePipeline } from '../gpu/pipelines';

const WG = 256;

export interface F16Packer {
  /**
   * Packs the f32 values in `bytes` (a multiple of 4 bytes, at most `maxChunkBytes`) into `dst`
   * as fp16 elements from element `dstElem` on. `dst` must hold ceil((dstElem + n) / 2) words.
   */
  write(dst: GPUBuffer, dstElem: number, bytes: Uint8Array): void;
  /** Whether any value written so far was outside fp16's finite range (one read-back). */
  outOfRange(): Promise<boolean>;
  /** Frees the staging, flag and uniform buffers (the packed buffers stay the caller's). */
  destroy(): void;
  /** The largest chunk `write` takes. */
  readonly maxChunkBytes: number;
}

/** Bytes of a buffer holding `elements` fp16 values (two per word, a whole number of words). */
export function packedF16Bytes(elements: number): number {
  return Math.ceil(elements / 2) * 4;
}

export function createF16Packer(device: GPUDevice, maxChunkBytes: number): F16Packer {
  if (!Number.isSafeInteger(maxChunkBytes) || maxChunkBytes < 4 || maxChunkBytes % 4 !== 0) {
    throw new AppError('BAD_ARGUMENT', `createF16Packer: maxChunkBytes (${maxChunkBytes}) must be a positive multiple of 4.`);
  }
  const pipeline = getComputePipeline(device, 'f16_pack', source, { WG });
  const staging = device.createBuffer({ label: 'f16_pack.src', size: maxChunkBytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  const flag = device.createBuffer({ label: 'f16_pack.range', size: 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const params = createUniformBuffer(device, packUniform([{ u32: 0 }, { u32: 0 }]), 'f16_pack.params');
  const groups = new Map<GPUBuffer, GPUBindGroup>();
  const bindGroup = (dst: GPUBuffer) => {
    let g = groups.get(dst);
    if (!g) {
      g = device.createBindGroup({
        label: 'f16_pack',
        layout: pipeline.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: { buffer: params } },
          { binding: 1, resource: { buffer: staging } },
          { binding: 2, resource: { buffer: dst } },
          { binding: 3, resource: { buffer: flag } },
        ],
      });
      groups.set(dst, g);
    }
    return g;
  };
  return {
    maxChunkBytes,
    write(dst, dstElem, bytes) {
      const n = bytes.byteLength / 4;
      if (!Number.isInteger(n) || bytes.byteLength > maxChunkBytes) {
        throw new AppError('BAD_ARGUMENT', `F16Packer.write: ${bytes.byteLength} bytes must be a multiple of 4 and at most ${maxChunkBytes}.`);
      }
      if (!Number.isSafeInteger(dstElem) || dstElem < 0 || packedF16Bytes(dstElem + n) > dst.size) {
        throw new AppError('BAD_ARGUMENT', `F16Packer.write: elements ${dstElem}..${dstElem + n} do not fit ${dst.label || 'the buffer'} (${dst.size} bytes).`);
      }
      if (n === 0) return;
      writeBuffer(device, staging, 0, bytes);
      device.queue.writeBuffer(params, 0, packUniform([{ u32: n }, { u32: dstElem }]));
      const words = Math.floor((dstElem + n - 1) / 2) - Math.floor(dstElem / 2) + 1;
      const encoder = device.createCommandEncoder({ label: 'f16_pack' });
      const pass = encoder.beginComputePass({ label: 'f16_pack' });
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup(dst));
      const [x, y] = workgroupGrid(Math.ceil(words / WG), device.limits.maxComputeWorkgroupsPerDimension);
      pass.dispatchWorkgroups(x, y);
      pass.end();
      device.queue.submit([encoder.finish()]);
    },
    async outOfRange() {
      return new Uint32Array(await readBuffer(device, flag, 4))[0] !== 0;
    },
    destroy() {
      staging.destroy();
      flag.destroy();
      params.destroy();
      groups.clear();
    },
  };
}
