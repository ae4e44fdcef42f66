/**
 * Per-kernel GPU time of the native decode GEMVs at Phi-3 shapes, and the device's copy bandwidth
 * as the yardstick: a GEMV's effective bandwidth is (weight + scale bytes) / kernel time, and
 * issue 7 asks for ≥ 75% of the copy figure on a real GPU.
 *
 * Each GEMV runs as the engine runs it: q/k/v and gate/up joined along N (as uploaded), with the
 * same fusions (inputNorm on qkv, gate_up and lm_head; accumulate on o_proj; inputSiluMul +
 * accumulate on down_proj) and the tuning `matMulNBitsTuningFor` picks for the adapter, on random
 * int4 weights rotated through more memory than any GPU cache holds (ROTATION_BYTES).
 * `sweepGemvs` times other tunings on the same buffers, to choose an adapter's defaults.
 *
 * Timer: with `timestamp-query`, one compute pass of `reps` dispatches carries begin/end
 * timestamps; without it, the wall clock from submit to onSubmittedWorkDone around the same batch
 * (which includes submit overhead, so it understates bandwidth).
 * Copy yardstick: the larger of a buffer-to-buffer copy (wall clock, a batch of large copies) and
 * a vec4 copy kernel (timed like the GEMVs), counting bytes read + written; beside it, the
 * weight-read kernel (the decode profile's read floor) over the same buffers, counting reads.
 * Rule: runs on its own buffers; never on a loaded model (that would count the model's memory twice).
 */
import { createMatMulNBits, matMulNBitsPath, matMulNBitsTuningFor, type MatMulNBitsKernel, type MatMulNBitsTuning } from '../../src/engine/kernels/matmul-nbits';
import { packUniform } from '../../src/engine/gpu/buffers';
import { submitTimestamped } from '../../src/engine/gpu/timestamps';
import { createWeightRead } from '../../src/engine/kernels/weight-read';
import type { KernelReport, KernelTiming } from './report';

export interface GemvShape {
  name: string;
  K: number;
  N: number;
  /** the fusions the engine uses for this projection */
  fusion: 'norm' | 'accumulate' | 'silu-accumulate';
}

/** Phi-3 Mini's decode GEMVs as the engine runs them. */
export const PHI3_GEMVS: GemvShape[] = [
  { name: 'qkv_proj (q, k, v joined) + norm', K: 3072, N: 9216, fusion: 'norm' },
  { name: 'o_proj + residual', K: 3072, N: 3072, fusion: 'accumulate' },
  { name: 'gate_up_proj (joined) + norm', K: 3072, N: 16384, fusion: 'norm' },
  { name: 'down_proj + silu·up + residual', K: 8192, N: 3072, fusion: 'silu-accumulate' },
  { name: 'lm_head + final norm', K: 3072, N: 32064, fusion: 'norm' },
];

/**
 * Weight bytes each timed batch cycles through. A discrete GPU's L2 holds tens of MB (50 MB on an
 * H100), more than one 3072 × 3072 int4 matrix (4.7 MB): re-running one matrix would time the
 * cache, not memory. So a shape gets as many copies of its weights as fit in this many bytes
 * (at least one), and consecutive dispatches use different copies, as a decode step does.
 */
const ROTATION_BYTES = 384 * 2 ** 20;
const BLOCK = 32;
// A function: in Node, GPUBufferUsage exists only once nodeGPU() has put the globals in place.
const storage = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;

async function wallMs(device: GPUDevice, encode: (enc: GPUCommandEncoder) => void): Promise<number> {
  const enc = device.createCommandEncoder();
  encode(enc);
  const cmd = enc.finish();
  const t = performance.now();
  device.queue.submit([cmd]);
  await device.queue.onSubmittedWorkDone();
  return performance.now() - t;
}

/** Milliseconds per dispatch of `reps` dispatches in one compute pass (timestamps, else wall clock). */
async function passMs(device: GPUDevice, reps: number, encode: (pass: GPUComputePassEncoder, r: number) => void): Promise<number> {
  if (!device.features.has('timestamp-query')) {
    const ms = await wallMs(device, (enc) => {
      const pass = enc.beginComputePass();
      for (let r = 0; r < reps; r++) encode(pass, r);
      pass.end();
    });
    return ms / reps;
  }
  const [t0, t1] = await submitTimestamped(device, 2, 'passMs', (enc, querySet) => {
    const pass = enc.beginComputePass({ timestampWrites: { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } });
    for (let r = 0; r < reps; r++) encode(pass, r);
    pass.end();
  });
  return Number(t1 - t0) / 1e6 / reps;
}

/**
 * Warm-up batches, then the best of `batches` timed batches. Three warm-ups: on an H100 the first
 * kernel timed after seconds of CPU-side buffer setup ran up to 4× slower than the same kernel
 * timed later (clocks ramping back up, we think), so one warm-up batch was not enough.
 */
async function bestMs(device: GPUDevice, reps: number, batches: number, encode: (pass: GPUComputePassEncoder, r: number) => void): Promise<number> {
  for (let i = 0; i < 3; i++) await passMs(device, reps, encode);
  const times: number[] = [];
  for (let i = 0; i < batches; i++) times.push(await passMs(device, reps, encode));
  return Math.min(...times);
}

const COPY_KERNEL = `
@group(0) @binding(0) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<u32>>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = id.x + id.y * groups.x * 256u;
  if (i < arrayLength(&src)) { dst[i] = src[i]; }
}`;

const TOUCH_KERNEL = `
@group(0) @binding(0) var<storage, read_write> buf: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  if (id.x < arrayLength(&buf)) { buf[id.x] = buf[id.x] * 0.5 + 1.0; }
}`;

/**
 * The fixed cost of one small dispatch (3072 floats, 48 workgroups) in a pass of `reps`:
 * `dependentUs` when every dispatch reads and writes the same buffer (as a decode step's chain of
 * kernels does, so the API orders them with a barrier each), `independentUs` when each writes its
 * own buffer (no barrier needed). Microseconds per dispatch, best of batches.
 */
export async function measureDispatchCost(device: GPUDevice, reps = 200): Promise<NonNullable<KernelReport['dispatch']>> {
  const module = device.createShaderModule({ label: 'bench.touch', code: TOUCH_KERNEL });
  const pipeline = device.createComputePipeline({ label: 'bench.touch', layout: 'auto', compute: { module, entryPoint: 'main' } });
  const buffers = Array.from({ length: reps }, () => device.createBuffer({ size: 3072 * 4, usage: storage() }));
  try {
    const groups = buffers.map((buffer) => device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer } }] }));
    const time = (pick: (r: number) => GPUBindGroup) =>
      bestMs(device, reps, 3, (pass, r) => {
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, pick(r));
        pass.dispatchWorkgroups(48);
      });
    const dependentUs = (await time(() => groups[0])) * 1000;
    const independentUs = (await time((r) => groups[r])) * 1000;
    return { dependentUs, independentUs, note: `${reps} dispatches of 48 workgroups × 64 threads in one pass, ${device.features.has('timestamp-query') ? 'timestamps' : 'wall clock'}, best of 3` };
  } finally {
    for (const b of buffers) b.destroy();
  }
}

/** Copy bandwidth in GB/s counting bytes read + bytes written (STREAM "copy" convention). */
export async function measureCopyBandwidth(device: GPUDevice, maxBytes = 256 * 2 ** 20, reps = 8): Promise<KernelReport['copy']> {
  const bytes = Math.min(maxBytes, Math.floor(Math.min(device.limits.maxBufferSize / 2, device.limits.maxStorageBufferBindingSize) / 256) * 256);
  const a = device.createBuffer({ size: bytes, usage: storage() });
  const b = device.createBuffer({ size: bytes, usage: storage() });
  try {
    await wallMs(device, (enc) => enc.copyBufferToBuffer(a, 0, b, 0, bytes)); // warm-up
    const wall: number[] = [];
    for (let i = 0; i < 3; i++) wall.push(await wallMs(device, (enc) => { for (let r = 0; r < reps; r++) enc.copyBufferToBuffer(r % 2 ? b : a, 0, r % 2 ? a : b, 0, bytes); }));
    const copyMs = Math.min(...wall) / reps;

    const module = device.createShaderModule({ label: 'bench.copy', code: COPY_KERNEL });
    const pipeline = device.createComputePipeline({ label: 'bench.copy', layout: 'auto', compute: { module, entryPoint: 'main' } });
    const groups = [a, b].map((src, i) => device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: src } }, { binding: 1, resource: { buffer: i ? a : b } }] }));
    const wgs = Math.ceil(bytes / 16 / 256);
    const maxDim = device.limits.maxComputeWorkgroupsPerDimension;
    const gx = Math.min(wgs, maxDim);
    const kernelMs = await bestMs(device, reps, 2, (pass, r) => {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, groups[r % 2]);
      pass.dispatchWorkgroups(gx, Math.ceil(wgs / gx));
    });
    const copyGb = (2 * bytes) / (copyMs * 1e6);
    const kernelGb = (2 * bytes) / (kernelMs * 1e6);
    const best = kernelGb > copyGb ? { ms: kernelMs, gbPerSec: kernelGb, how: 'vec4 copy kernel' } : { ms: copyMs, gbPerSec: copyGb, how: 'copyBufferToBuffer' };
    // The decode profile's read floor kernel over the same 256 MiB (read bytes only): what it reaches
    // where size and place do not limit it, so a low floor in the step is not the kernel's own ceiling.
    const reads = [a, b].map((buffer, i) => createWeightRead(device, { weights: { buffer, bytes }, scales: { buffer: i ? a : b, bytes: 0 } }, 'bench.weightRead'));
    const readMs = await bestMs(device, reps, 2, (pass, r) => reads[r % 2].encode(pass));
    for (const k of reads) k.destroy();
    const readKernelGbPerSec = bytes / (readMs * 1e6);
    const mib = (bytes / 2 ** 20).toFixed(0);
    const timer = device.features.has('timestamp-query') ? 'timestamps' : 'wall clock';
    const note = `${mib} MiB, read + write bytes; the larger of copyBufferToBuffer ${copyGb.toFixed(0)} GB/s (wall clock, best of 3 batches of ${reps}) and a vec4 copy kernel ${kernelGb.toFixed(0)} GB/s (${timer}): ${best.how}. The weight-read kernel reads the ${mib} MiB at ${readKernelGbPerSec.toPrecision(3)} GB/s (read bytes only)`;
    return { bytes, ms: best.ms, gbPerSec: best.gbPerSec, readKernelGbPerSec, note };
  } finally {
    a.destroy();
    b.destroy();
  }
}

function randomBytes(n: number, seed: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(Math.ceil(n / 4) * 4);
  const words = new Uint32Array(out.buffer);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    words[i] = s >>> 0;
  }
  return out;
}

/** One shape's buffers (weights rotated over `copies`), reused by every tuning timed on it. */
interface GemvBench {
  shape: GemvShape;
  copies: number;
  bytes: number;
  kernel(tuning: MatMulNBitsTuning | undefined): { encode: (pass: GPUComputePassEncoder, r: number) => void; decodePath: string };
  destroy(): void;
}

/** `m` activation rows (1: the decode GEMV; more: the prefill GEMM). */
function gemvBench(device: GPUDevice, shape: GemvShape, scalesDtype: 'f32' | 'f16', m = 1): GemvBench {
  const { K, N } = shape;
  const nBlocks = Math.ceil(K / BLOCK);
  const packedBytes = N * nBlocks * (BLOCK / 2);
  const scaleBytes = N * nBlocks * (scalesDtype === 'f16' ? 2 : 4);
  const copies = Math.max(1, Math.floor(ROTATION_BYTES / (packedBytes + scaleBytes)));
  const made: GPUBuffer[] = [];
  const mk = (size: number, label: string, usage = storage()) => {
    const b = device.createBuffer({ label, size: Math.max(16, Math.ceil(size / 16) * 16), usage });
    made.push(b);
    return b;
  };
  const silu = shape.fusion === 'silu-accumulate';
  // The activation: x (K), or for silu the joined gate_up row (2K: gate, then up), values in [-1, 1).
  const rowLength = silu ? 2 * K : K;
  const inLength = m * rowLength;
  const input = mk(inLength * 4, 'x');
  const output = mk(m * N * 4, 'y');
  const normWeight = mk(K * 4, 'normWeight');
  const step = mk(16, 'step', GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
  const act = new Float32Array(inLength);
  const noise = new Uint32Array(randomBytes(inLength * 4, 7).buffer);
  for (let i = 0; i < inLength; i++) act[i] = noise[i] / 2 ** 31 - 1;
  device.queue.writeBuffer(input, 0, act);
  device.queue.writeBuffer(normWeight, 0, new Float32Array(K).fill(1));
  device.queue.writeBuffer(output, 0, new Float32Array(m * N));
  device.queue.writeBuffer(step, 0, packUniform([{ u32: m }, { u32: 0 }, { u32: m }, { u32: 0 }]));
  // Scales: small positive floats (f32 0.01 or f16 0x2000 ≈ 0.0078) so outputs stay finite.
  const sc = scalesDtype === 'f16' ? new Uint16Array(Math.ceil(scaleBytes / 4) * 2).fill(0x2000) : new Float32Array(scaleBytes / 4).fill(0.01);
  const weights = Array.from({ length: copies }, (_, c) => {
    const w = mk(packedBytes, `${shape.name}.B#${c}`);
    const s = mk(scaleBytes, `${shape.name}.scales#${c}`);
    device.queue.writeBuffer(w, 0, randomBytes(packedBytes, 11 + c));
    device.queue.writeBuffer(s, 0, sc);
    return { w, s };
  });
  return {
    shape,
    copies,
    bytes: packedBytes + scaleBytes,
    kernel(tuning) {
      const kernels: MatMulNBitsKernel[] = weights.map(({ w, s }) =>
        createMatMulNBits(device, {
          K, N, blockSize: BLOCK, hasZeroPoints: false, scalesDtype, weights: w, scales: s, input, output, maxM: m, tuning, step,
          inputNorm: shape.fusion === 'norm' ? { weight: normWeight, eps: 1e-5 } : undefined,
          accumulate: shape.fusion !== 'norm',
          inputSiluMul: silu ? { up: input, gateStride: rowLength, gateOffset: 0, upStride: rowLength, upOffset: K } : undefined,
        }),
      );
      return { encode: (pass, r) => kernels[r % copies].encode(pass, m), decodePath: matMulNBitsPath(kernels[0], m) };
    },
    destroy() {
      for (const b of made) b.destroy();
    },
  };
}

function timing(bench: GemvBench, ms: number, copyGbPerSec: number | null, label: string): KernelTiming {
  const gbPerSec = bench.bytes / (ms * 1e6);
  return {
    name: `${bench.shape.name} (${label}, ${bench.copies} weight cop${bench.copies === 1 ? 'y' : 'ies'})`,
    shape: `${bench.shape.K} → ${bench.shape.N}`,
    ms,
    bytes: bench.bytes,
    gbPerSec,
    fractionOfCopy: copyGbPerSec ? gbPerSec / copyGbPerSec : null,
  };
}

const pct = (t: KernelTiming) => `${((t.fractionOfCopy ?? 0) * 100).toFixed(1)}% of copy`;

/**
 * Copy bandwidth, then every shape with the adapter's tuning. `reps` dispatches per timed batch.
 * `copyOnly` measures the copy bandwidth alone (--no-kernels: the profile's % of copy still needs it).
 */
export async function kernelReport(device: GPUDevice, opts: { reps: number; scalesDtype: 'f32' | 'f16'; shapes?: GemvShape[]; copyOnly?: boolean; log?: (s: string) => void }): Promise<KernelReport> {
  const log = opts.log ?? (() => {});
  const timer = device.features.has('timestamp-query') ? 'timestamp-query' : 'onSubmittedWorkDone';
  const copy = await measureCopyBandwidth(device);
  log(`copy bandwidth ${copy.gbPerSec.toFixed(2)} GB/s (${copy.note})`);
  if (opts.copyOnly) return { timer, copy, kernels: [] };
  const dispatch = await measureDispatchCost(device);
  log(`dispatch cost ${dispatch.dependentUs.toFixed(2)} µs each in a dependent chain, ${dispatch.independentUs.toFixed(2)} µs independent (${dispatch.note})`);
  const kernels: KernelTiming[] = [];
  for (const shape of opts.shapes ?? PHI3_GEMVS) {
    const bench = gemvBench(device, shape, opts.scalesDtype);
    try {
      const k = bench.kernel(undefined);
      const t = timing(bench, await bestMs(device, opts.reps, 2, k.encode), copy.gbPerSec, k.decodePath);
      kernels.push(t);
      log(`${t.name} ${t.shape}: ${t.ms.toFixed(4)} ms, ${t.gbPerSec.toFixed(1)} GB/s (${pct(t)})`);
    } finally {
      bench.destroy();
    }
  }
  return { timer, copy, dispatch, kernels };
}

/** Tunings a sweep tries: the staged kernel's splits, without and with prefetch, and the direct kernel's. */
export function sweepTunings(): MatMulNBitsTuning[] {
  const staged: MatMulNBitsTuning[] = [
    { gemv: 'staged', threadsPerRow: 32, rowGroups: 2, rowsPerThread: 4 },
    { gemv: 'staged', threadsPerRow: 32, rowGroups: 4, rowsPerThread: 4 },
    { gemv: 'staged', threadsPerRow: 32, rowGroups: 8, rowsPerThread: 2 },
    { gemv: 'staged', threadsPerRow: 64, rowGroups: 4, rowsPerThread: 4 },
  ];
  const out: MatMulNBitsTuning[] = [
    ...staged,
    ...staged.map((t) => ({ ...t, gemvPrefetch: true })),
    { gemv: 'staged', threadsPerRow: 32, rowGroups: 8, rowsPerThread: 4, gemvPrefetch: true },
    { gemv: 'staged', threadsPerRow: 64, rowGroups: 4, rowsPerThread: 2, gemvPrefetch: true },
    { gemv: 'staged', threadsPerRow: 16, rowGroups: 16, rowsPerThread: 2, gemvPrefetch: true },
  ];
  for (const threadsPerRow of [16, 32, 64, 128]) {
    for (const rowGroups of [1, 2, 4, 8]) {
      if (threadsPerRow * rowGroups > 256 || threadsPerRow * rowGroups < 32) continue;
      for (const rowsPerThread of [1, 2, 4, 8]) out.push({ gemv: 'direct', threadsPerRow, rowGroups, rowsPerThread });
    }
  }
  return out;
}

export interface SweepResult {
  shape: string;
  /** the adapter's current default */
  current: KernelTiming & { tuning: MatMulNBitsTuning };
  best: KernelTiming & { tuning: MatMulNBitsTuning };
  all: Array<{ tuning: MatMulNBitsTuning; ms: number; gbPerSec: number; decodePath: string }>;
}

/** Times every tuning of `sweepTunings()` on every shape (same buffers per shape); logs the best. */
export async function sweepGemvs(device: GPUDevice, opts: { reps: number; scalesDtype: 'f32' | 'f16'; copyGbPerSec: number | null; shapes?: GemvShape[]; tunings?: MatMulNBitsTuning[]; log?: (s: string) => void }): Promise<SweepResult[]> {
  const log = opts.log ?? (() => {});
  const info = (device as { adapterInfo?: GPUAdapterInfo }).adapterInfo ?? {};
  const results: SweepResult[] = [];
  for (const shape of opts.shapes ?? PHI3_GEMVS) {
    const bench = gemvBench(device, shape, opts.scalesDtype);
    try {
      const all: SweepResult['all'] = [];
      const time = async (tuning: MatMulNBitsTuning | undefined) => {
        const k = bench.kernel(tuning);
        const ms = await bestMs(device, opts.reps, 2, k.encode);
        return { ms, decodePath: k.decodePath };
      };
      const cur = await time(undefined);
      const current = { ...timing(bench, cur.ms, opts.copyGbPerSec, cur.decodePath), tuning: matMulNBitsTuningFor(info, shape) };
      let best = current;
      for (const tuning of opts.tunings ?? sweepTunings()) {
        const r = await time(tuning);
        all.push({ tuning, ms: r.ms, gbPerSec: bench.bytes / (r.ms * 1e6), decodePath: r.decodePath });
        if (r.ms < best.ms) best = { ...timing(bench, r.ms, opts.copyGbPerSec, r.decodePath), tuning };
      }
      log(`sweep ${shape.name} ${shape.K}→${shape.N}: current ${current.ms.toFixed(4)} ms (${pct(current)}), best ${best.ms.toFixed(4)} ms (${pct(best)}) with ${JSON.stringify(best.tuning)}`);
      for (const a of [...all].sort((x, y) => x.ms - y.ms).slice(0, 5)) log(`  ${a.ms.toFixed(4)} ms ${a.gbPerSec.toFixed(0)} GB/s ${a.decodePath} ${JSON.stringify(a.tuning)}`);
      results.push({ shape: `${shape.name} ${shape.K}→${shape.N}`, current, best, all });
    } finally {
      bench.destroy();
    }
  }
  return results;
}

/**
 * GEMM tunings a prefill sweep tries: the tiled GEMM's tilings (threads along N × M, each 4 × 4
 * outputs; K per step), then the wide GEMM's (threads, rows, columns per thread, K per step), then
 * three of the wide GEMM's in f16 arithmetic.
 */
export function gemmTunings(): MatMulNBitsTuning[] {
  const out: MatMulNBitsTuning[] = [];
  for (const gemmThreads of [[8, 8], [16, 8], [8, 16], [16, 16], [16, 4], [32, 4], [32, 8]] as const) {
    for (const gemmStepK of [16, 32, 64]) out.push({ gemm: 'tiled', gemmThreads, gemmStepK });
  }
  for (const gemmWideThreads of [64, 128]) {
    for (const gemmWideRows of [16, 32] as const) {
      for (const gemmWideCols of [1, 2] as const) {
        for (const gemmWideStepK of [32, 64]) out.push({ gemm: 'wide', gemmWideThreads, gemmWideRows, gemmWideCols, gemmWideStepK });
      }
    }
  }
  out.push({ gemm: 'wide', gemmWideThreads: 256, gemmWideRows: 16 }, { gemm: 'wide', gemmWideThreads: 128, gemmWideRows: 8 });
  // In f16 arithmetic (tuning.gemmF16): skipped by the sweep where the device has no shader-f16.
  out.push({ gemm: 'wide', gemmF16: true }, { gemm: 'wide', gemmWideCols: 2, gemmF16: true }, { gemm: 'wide', gemmWideThreads: 64, gemmWideRows: 32, gemmWideCols: 2, gemmF16: true });
  return out;
}

/** Prefill GEMMs (M rows at once) per shape and tiling; logs TFLOP/s of the best five. */
export async function sweepGemms(device: GPUDevice, opts: { m: number; reps: number; scalesDtype: 'f32' | 'f16'; shapes?: GemvShape[]; log?: (s: string) => void }): Promise<Array<{ shape: string; m: number; all: Array<{ tuning: MatMulNBitsTuning; ms: number; tflops: number }> }>> {
  const log = opts.log ?? (() => {});
  const results = [];
  for (const shape of (opts.shapes ?? PHI3_GEMVS).filter((s) => !s.name.startsWith('lm_head'))) {
    const bench = gemvBench(device, shape, opts.scalesDtype, opts.m);
    try {
      const all: Array<{ tuning: MatMulNBitsTuning; ms: number; tflops: number }> = [];
      for (const tuning of [undefined, ...gemmTunings()]) {
        let k: ReturnType<GemvBench['kernel']>;
        try {
          k = bench.kernel(tuning);
        } catch {
          continue; // a tiling over this device's workgroup-memory limit (createMatMulNBits says so)
        }
        const ms = await bestMs(device, opts.reps, 2, k.encode);
        all.push({ tuning: tuning ?? { default: true } as MatMulNBitsTuning, ms, tflops: (2 * opts.m * shape.K * shape.N) / (ms * 1e9) });
      }
      const sorted = [...all].sort((a, b) => a.ms - b.ms);
      log(`gemm M=${opts.m} ${shape.name} ${shape.K}→${shape.N}: default ${all[0].ms.toFixed(3)} ms (${all[0].tflops.toFixed(2)} TFLOP/s); best ${sorted.slice(0, 5).map((a) => `${a.ms.toFixed(3)} ms ${a.tflops.toFixed(2)} TFLOP/s ${JSON.stringify(a.tuning)}`).join(' | ')}`);
      results.push({ shape: `${shape.name} ${shape.K}→${shape.N}`, m: opts.m, all });
    } finally {
      bench.destroy();
    }
  }
  return results;
}
