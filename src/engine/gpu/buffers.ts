/**
 * Small helpers for GPU buffers: create-with-data, read back, and uniform packing.
 * Read-back is for load-time checks, tests and the few bytes a step returns; never read logits
 * back on the hot path.
 */

export function createStorageBuffer(
  device: GPUDevice,
  data: ArrayBufferView | number,
  label: string,
  extraUsage: GPUBufferUsageFlags = 0,
): GPUBuffer {
  const size = typeof data === 'number' ? data : data.byteLength;
  const buffer = device.createBuffer({
    label,
    size: Math.max(4, Math.ceil(size / 4) * 4),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST | extraUsage,
  });
  if (typeof data !== 'number') writeBuffer(device, buffer, 0, data);
  return buffer;
}

/** writeBuffer needs a size that is a multiple of 4; pad the tail through a copy if needed. */
export function writeBuffer(device: GPUDevice, buffer: GPUBuffer, offset: number, data: ArrayBufferView): void {
  // Shared memory never reaches here; the cast only narrows ArrayBufferLike for the typings.
  const bytes = new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
  const aligned = bytes.byteLength & ~3;
  if (aligned > 0) device.queue.writeBuffer(buffer, offset, bytes, 0, aligned);
  if (aligned < bytes.byteLength) {
    const tail = new Uint8Array(4);
    tail.set(bytes.subarray(aligned));
    device.queue.writeBuffer(buffer, offset + aligned, tail);
  }
}

export function createUniformBuffer(device: GPUDevice, data: ArrayBuffer, label: string): GPUBuffer {
  const buffer = device.createBuffer({
    label,
    size: Math.max(16, Math.ceil(data.byteLength / 16) * 16),
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  device.queue.writeBuffer(buffer, 0, data);
  return buffer;
}

/** Packs a uniform struct of u32/f32 fields given in WGSL declaration order (all 4-byte fields). */
export function packUniform(fields: ReadonlyArray<{ u32: number } | { f32: number } | { i32: number }>): ArrayBuffer {
  const buf = new ArrayBuffer(Math.max(16, Math.ceil((fields.length * 4) / 16) * 16));
  const view = new DataView(buf);
  fields.forEach((f, i) => {
    if ('u32' in f) view.setUint32(i * 4, f.u32, true);
    else if ('i32' in f) view.setInt32(i * 4, f.i32, true);
    else view.setFloat32(i * 4, f.f32, true);
  });
  return buf;
}

export async function readBuffer(device: GPUDevice, buffer: GPUBuffer, size = buffer.size, offset = 0): Promise<ArrayBuffer> {
  const staging = device.createBuffer({ label: 'readback', size, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ });
  const encoder = device.createCommandEncoder({ label: 'readback' });
  encoder.copyBufferToBuffer(buffer, offset, staging, 0, size);
  device.queue.submit([encoder.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const copy = staging.getMappedRange().slice(0);
  staging.unmap();
  staging.destroy();
  return copy;
}

/**
 * A dispatch of `count` workgroups as a 2-D grid that respects the per-dimension limit
 * (65535 by default). Shaders recover the linear index as `wid.y * num_workgroups.x + wid.x`
 * and must ignore indices >= count (the grid may round up).
 */
export function workgroupGrid(count: number, maxPerDim = 65535): [number, number] {
  if (count <= maxPerDim) return [Math.max(1, count), 1];
  const y = Math.ceil(count / maxPerDim);
  return [Math.ceil(count / y), y];
}
