/**
 * Weight read (shaders/weight_read.wgsl): one dispatch that reads every word of a matmul's weights
 * once and nothing else, the memory floor a decode GEMV is measured against in benchmarks
 * (Phi3Runtime.timeDecodeWithout's `readInstead`). Its reference, `weightReadChecksum`, is the
 * wrapping sum the kernel's per-invocation sums must add up to.
 * Rule: a yardstick, never encoded in a forward pass; it writes only its `sums` buffer (the
 * matmul's input and output are bound for ordering and never touched).
 */
import source from '../../../shaders/weight_read.wgsl?raw';
import { createUniformBuffer, packUniform, workgroupGrid } from '../gpu/buffers';
import { getComputePipeline } from '../gpu/pipelines';

/** A buffer and how many of its bytes hold data (buffers may be padded past it). */
export interface WeightPart {
  buffer: GPUBuffer;
  bytes: number;
}

/**
 * A matmul's weight buffers. Packed rows are read in 16-byte words: a tail of under 16 bytes
 * (only where a row is not a whole number of 16-byte words, which the GEMVs never run) is not
 * read. Scales and zero points are read in 4-byte words, a partial last word included.
 */
export interface WeightReadParts {
  weights: WeightPart;
  scales: WeightPart;
  zeroPoints?: WeightPart;
  /**
   * The matmul's activation input and output: bound (never touched) so that the read is ordered
   * in a chain of dispatches exactly as the matmul is (shaders/weight_read.wgsl). They must be
   * other buffers than the weights'. Without them the read depends on nothing.
   */
  chain?: { input: GPUBuffer; output: GPUBuffer };
}

export interface WeightReadKernel {
  encode(pass: GPUComputePassEncoder): void;
  /** (workgroups · 256,) u32: each invocation's sum of the words it read */
  sums: GPUBuffer;
  destroy(): void;
}

const WG = 256;
const SPAN = WG * 8; // words per workgroup: WG invocations × weight_read.wgsl's UNROLL loads

/** The words the kernel reads of parts of these byte lengths (header of WeightReadParts). */
function words(weightBytes: number, scaleBytes: number, zeroPointBytes = 0): { weightWords: number; scaleWords: number; zeroPointWords: number } {
  return { weightWords: Math.floor(weightBytes / 16), scaleWords: Math.ceil(scaleBytes / 4), zeroPointWords: Math.ceil(zeroPointBytes / 4) };
}

/** Reference: the wrapping u32 sum of the words the kernel reads (little-endian, as the GPU reads them). */
export function weightReadChecksum(weights: Uint8Array, scales: Uint8Array, zeroPoints?: Uint8Array): number {
  const sum = (bytes: Uint8Array, count: number) => {
    const padded = new Uint8Array(count * 4);
    padded.set(bytes.subarray(0, Math.min(bytes.length, count * 4)));
    const view = new DataView(padded.buffer);
    let s = 0;
    for (let i = 0; i < count; i++) s = (s + view.getUint32(4 * i, true)) >>> 0;
    return s;
  };
  const n = words(weights.length, scales.length, zeroPoints?.length);
  return (sum(weights, 4 * n.weightWords) + sum(scales, n.scaleWords) + (zeroPoints ? sum(zeroPoints, n.zeroPointWords) : 0)) >>> 0;
}

/** The words the dispatch reads, its grid and the bytes of its `sums` (one word per invocation). */
function grid(device: GPUDevice, parts: WeightReadParts): { n: ReturnType<typeof words>; x: number; y: number; sumsBytes: number } {
  const n = words(parts.weights.bytes, parts.scales.bytes, parts.zeroPoints?.bytes);
  const groups = Math.ceil(n.weightWords / SPAN) + Math.ceil((n.scaleWords + n.zeroPointWords) / SPAN);
  const [x, y] = workgroupGrid(groups, device.limits.maxComputeWorkgroupsPerDimension);
  return { n, x, y, sumsBytes: x * y * WG * 4 };
}

/** Bytes a `sums` buffer shared by several weight reads needs (`createWeightRead`'s `sharedSums`). */
export function weightReadSumsBytes(device: GPUDevice, parts: WeightReadParts): number {
  return grid(device, parts).sumsBytes;
}

/**
 * `sharedSums`: a buffer of at least weightReadSumsBytes to write the sums into instead of one of
 * its own (a runtime with a read per matmul shares one; the kernel's `sums` is then that buffer,
 * and destroy() leaves it).
 */
export function createWeightRead(device: GPUDevice, parts: WeightReadParts, label = 'weightRead', sharedSums?: GPUBuffer): WeightReadKernel {
  const { n, x, y, sumsBytes } = grid(device, parts);
  for (const [name, p] of [['weights', parts.weights], ['scales', parts.scales], ['zeroPoints', parts.zeroPoints]] as const) {
    if (p && p.bytes > p.buffer.size) throw new RangeError(`${label}: ${name} claims ${p.bytes} bytes but its buffer holds ${p.buffer.size}.`);
  }
  if (n.weightWords === 0) throw new RangeError(`${label}: the packed weights (${parts.weights.bytes} bytes) hold no whole 16-byte word.`);
  if (sharedSums && sharedSums.size < sumsBytes) throw new RangeError(`${label}: the shared sums buffer holds ${sharedSums.size} bytes; this read writes ${sumsBytes}.`);
  const pipeline = getComputePipeline(device, 'weight_read', source, { WG });
  const params = createUniformBuffer(device, packUniform([{ u32: n.weightWords }, { u32: n.scaleWords }, { u32: n.zeroPointWords }, { u32: 0 }]), `${label}.params`);
  const sums = sharedSums ?? device.createBuffer({ label: `${label}.sums`, size: sumsBytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const unchained = parts.chain ? undefined : device.createBuffer({ label: `${label}.unchained`, size: 4, usage: GPUBufferUsage.STORAGE });
  const chain = parts.chain ?? { input: parts.weights.buffer, output: unchained! };
  const bindGroup = device.createBindGroup({
    label,
    layout: pipeline.getBindGroupLayout(0),
    entries: [params, parts.weights.buffer, parts.scales.buffer, (parts.zeroPoints ?? parts.scales).buffer, sums, chain.input, chain.output].map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  return {
    sums,
    encode(pass) {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(x, y);
    },
    destroy() {
      params.destroy();
      if (!sharedSums) sums.destroy();
      unchained?.destroy();
    },
  };
}
