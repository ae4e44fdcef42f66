/**
 * GPU timing with `timestamp-query`, for benchmarks and profiling (never the token path: it
 * creates a query set and buffers per call).
 */
import { readBuffer } from './buffers';

/**
 * Lets `encode` record work that writes timestamps 0..count−1 of the query set it is given (compute
 * passes' `timestampWrites`), submits it, and returns the resolved timestamps in nanoseconds.
 * The device must have `timestamp-query`.
 */
export async function submitTimestamped(device: GPUDevice, count: number, label: string, encode: (encoder: GPUCommandEncoder, querySet: GPUQuerySet) => void): Promise<BigUint64Array> {
  const querySet = device.createQuerySet({ type: 'timestamp', count });
  const resolved = device.createBuffer({ label: `${label} timestamps`, size: count * 8, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
  try {
    const encoder = device.createCommandEncoder({ label });
    encode(encoder, querySet);
    encoder.resolveQuerySet(querySet, 0, count, resolved, 0);
    device.queue.submit([encoder.finish()]);
    return new BigUint64Array(await readBuffer(device, resolved, count * 8));
  } finally {
    querySet.destroy();
    resolved.destroy();
  }
}
