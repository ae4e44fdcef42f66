/**
 * Per-kernel GPU time of the native decode GEMVs at Phi-3 shapes (q/k/v and gate/up joined along N,
 * as the engine uploads them), each run in isolation on random int4 weights rotated through more
 * memory than any GPU cache holds, and the device's copy bandwidth (a large buffer-to-buffer copy) as the yardstick:
 * a GEMV's effective bandwidth is (weight + scale bytes) / kernel time, and issue 7 asks for
 * ≥ 75% of the copy figure on a real GPU.
 *
 * Timer: with `timestamp-query`, one compute pass of `reps` dispatches carries begin/end
 * timestamps; without it, the wall clock from submit to onSubmittedWorkDone around the same batch
 * (which includes submit overhead, so it understates bandwidth). Copies are always timed by the
 * wall clock (copies have no timestamp writes in WebGPU).
 * Rule: runs on its own buffers; never on a loaded model (that would count the model's memory twice).
 */
import { createMatMulNBits } from '../../src/engine/kernels/matmul-nbits';
import type { KernelReport, KernelTiming } from './report';

export interface GemvShape {
  name: string;
  K: number;
  N: number;
}

/** Phi-3 Mini's decode GEMVs (web2024 layout: separate q/k/v, gate/up). */
export const PHI3_GEMVS: GemvShape[] = [
  { name: 'qkv_proj (q, k, v joined)', K: 3072, N: 9216 },
  { name: 'o_proj', K: 3072, N: 3072 },
  { name: 'gate_up_proj (joined)', K: 3072, N: 16384 },
  { name: 'down_proj', K: 8192, N: 3072 },
  { name: 'lm_head', K: 3072, N: 32064 },
];

/**
 * Weight bytes each timed batch cycles through. A discrete GPU's L2 holds tens of MB (50 MB on an
 * H100), more than one 3072 × 3072 int4 matrix (4.7 MB): re-running one matrix would time the
 * cache, not memory. So a shape gets as many copies of its weights as fit in this many bytes
 * (at least one), and consecutive dispatches use different copies, as a decode step does.
 */
const ROTATION_BYTES = 384 * 2 ** 20;

const BLOCK = 32;

async function wallMs(device: GPUDevice, encode: (enc: GPUCommandEncoder) => void): Promise<number> {
  const enc = device.createCommandEncoder();
  encode(enc);
  const cmd = enc.finish();
  const t = performance.now();
  device.queue.submit([cmd]);
  await device.queue.onSubmittedWorkDone();
  return performance.now() - t;
}

/** Copy bandwidth in GB/s counting bytes read + bytes written (STREAM "copy" convention). */
export async function measureCopyBandwidth(device: GPUDevice, maxBytes = 256 * 2 ** 20, reps = 4): Promise<KernelReport['copy']> {
  const bytes = Math.min(maxBytes, Math.floor(device.limits.maxBufferSize / 2 / 256) * 256);
  const usage = GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST | GPUBufferUsage.STORAGE;
  const a = device.createBuffer({ size: bytes, usage });
  const b = device.createBuffer({ size: bytes, usage });
  try {
    await wallMs(device, (enc) => enc.copyBufferToBuffer(a, 0, b, 0, bytes)); // warm-up
    const times: number[] = [];
    for (let i = 0; i < 3; i++) times.push(await wallMs(device, (enc) => { for (let r = 0; r < reps; r++) enc.copyBufferToBuffer(r % 2 ? b : a, 0, r % 2 ? a : b, 0, bytes); }));
    const ms = Math.min(...times) / reps;
    return { bytes, ms, gbPerSec: (2 * bytes) / (ms * 1e6), note: `${(bytes / 2 ** 20).toFixed(0)} MiB copy, read + write bytes, best of 3 batches of ${reps}, wall clock` };
  } finally {
    a.destroy();
    b.destroy();
  }
}

function randomBytes(n: number, seed: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(Math.ceil(n / 4) * 4);
  const words = new Uint32Array(out.buffer);
  let s = seed >>> 0;
  for (let i = 0; i < words.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    words[i] = s >>> 0;
  }
  return out;
}

/** Times one GEMV (M = 1) of `shape` with random int4 weights and f32 or f16 scales. */
export async function timeGemv(device: GPUDevice, shape: GemvShape, opts: { reps: number; scalesDtype: 'f32' | 'f16'; copyGbPerSec: number | null }): Promise<KernelTiming & { timer: string }> {
  const { K, N } = shape;
  const nBlocks = Math.ceil(K / BLOCK);
  const packedBytes = N * nBlocks * (BLOCK / 2);
  const scaleBytes = N * nBlocks * (opts.scalesDtype === 'f16' ? 2 : 4);
  const storage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  const mk = (size: number, label: string) => device.createBuffer({ label, size: Math.max(16, Math.ceil(size / 4) * 4), usage: storage });
  const copies = Math.max(1, Math.floor(ROTATION_BYTES / (packedBytes + scaleBytes)));
  const input = mk(K * 4, 'x');
  const output = mk(N * 4, 'y');
  const buffers = [input, output];
  try {
    // Scales: small positive floats (f32 0.01 or f16 0x2000 ≈ 0.0078) so outputs stay finite.
    const sc = opts.scalesDtype === 'f16' ? new Uint16Array(Math.ceil(scaleBytes / 4) * 2).fill(0x2000) : new Float32Array(scaleBytes / 4).fill(0.01);
    device.queue.writeBuffer(input, 0, new Float32Array(K).fill(0.5));
    const kernels = Array.from({ length: copies }, (_, c) => {
      const weights = mk(packedBytes, `${shape.name}.B#${c}`);
      const scales = mk(scaleBytes, `${shape.name}.scales#${c}`);
      buffers.push(weights, scales);
      device.queue.writeBuffer(weights, 0, randomBytes(packedBytes, 11 + c));
      device.queue.writeBuffer(scales, 0, sc);
      return createMatMulNBits(device, { K, N, blockSize: BLOCK, hasZeroPoints: false, scalesDtype: opts.scalesDtype, weights, scales, input, output, maxM: 1 });
    });
    const kernel = { encode: (pass: GPUComputePassEncoder, r: number) => kernels[r % copies].encode(pass, 1), decodePath: kernels[0].decodePath };
    const timestamps = device.features.has('timestamp-query');
    const batch = async (): Promise<number> => {
      if (!timestamps) {
        const ms = await wallMs(device, (enc) => {
          const pass = enc.beginComputePass();
          for (let r = 0; r < opts.reps; r++) kernel.encode(pass, r);
          pass.end();
        });
        return ms / opts.reps;
      }
      const qs = device.createQuerySet({ type: 'timestamp', count: 2 });
      const resolve = device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
      const read = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass({ timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } });
      for (let r = 0; r < opts.reps; r++) kernel.encode(pass, r);
      pass.end();
      enc.resolveQuerySet(qs, 0, 2, resolve, 0);
      enc.copyBufferToBuffer(resolve, 0, read, 0, 16);
      device.queue.submit([enc.finish()]);
      await read.mapAsync(GPUMapMode.READ);
      const [t0, t1] = new BigInt64Array(read.getMappedRange().slice(0));
      read.unmap();
      qs.destroy();
      resolve.destroy();
      read.destroy();
      return Number(t1 - t0) / 1e6 / opts.reps;
    };
    await batch(); // warm-up: pipeline compile, first touch
    const times = [await batch(), await batch()];
    const ms = Math.min(...times);
    const bytes = packedBytes + scaleBytes;
    const gbPerSec = bytes / (ms * 1e6);
    return {
      name: `${shape.name} (${kernel.decodePath}, ${copies} weight cop${copies === 1 ? 'y' : 'ies'})`,
      shape: `${K} → ${N}`,
      ms,
      bytes,
      gbPerSec,
      fractionOfCopy: opts.copyGbPerSec ? gbPerSec / opts.copyGbPerSec : null,
      timer: timestamps ? 'timestamp-query' : 'onSubmittedWorkDone',
    };
  } finally {
    for (const b of buffers) b.destroy();
  }
}

/** Copy bandwidth, then every shape. `reps` dispatches per timed batch. */
export async function kernelReport(device: GPUDevice, opts: { reps: number; scalesDtype: 'f32' | 'f16'; shapes?: GemvShape[]; log?: (s: string) => void }): Promise<KernelReport> {
  const log = opts.log ?? (() => {});
  const copy = await measureCopyBandwidth(device);
  log(`copy bandwidth ${copy.gbPerSec.toFixed(2)} GB/s (${copy.note})`);
  const kernels: KernelTiming[] = [];
  let timer = 'onSubmittedWorkDone';
  for (const shape of opts.shapes ?? PHI3_GEMVS) {
    const t = await timeGemv(device, shape, { reps: opts.reps, scalesDtype: opts.scalesDtype, copyGbPerSec: copy.gbPerSec });
    timer = t.timer;
    const { timer: _timer, ...timing } = t;
    kernels.push(timing);
    log(`${t.name} ${t.shape}: ${t.ms.toFixed(3)} ms, ${t.gbPerSec.toFixed(2)} GB/s (${((t.fractionOfCopy ?? 0) * 100).toFixed(1)}% of copy, ${t.timer})`);
  }
  return { timer, copy, kernels };
}
