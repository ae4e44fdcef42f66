/**
 * Token selection on the GPU (shaders/sample.wgsl) and its plain TypeScript reference, which runs
 * the same algorithm with the same RNG and f32 rounding so GPU and reference pick the same token.
 *
 * Settings live in a params uniform written by `writeSamplerParams` when they change; per token
 * the caller writes 8 bytes with `writeSamplerStep` (history length and the RNG step index) and
 * reads back the 4-byte token id from `out`. Greedy is temperature 0 (or topK 1).
 * Documented cap: sampling considers at most the SAMPLER_CANDIDATE_CAP (256) highest logits after
 * the repetition penalty: topK 0 ("off") or topK > 256 act as 256, and top-p's softmax is taken
 * over those candidates (the mass beyond them is dropped).
 * Rule: `encode` never writes buffers; the RNG must stay identical in `pcgHash` and the shader.
 */
import source from '../../../shaders/sample.wgsl?raw';
import { AppError } from '../errors';
import { createUniformBuffer, packUniform } from '../gpu/buffers';
import { getComputePipeline } from '../gpu/pipelines';

export const SAMPLER_CANDIDATE_CAP = 256;

export interface SamplerParams {
  /** 0 = greedy. */
  temperature: number;
  /** 0 = off (the candidate cap still applies). */
  topK: number;
  /** 1 = off. */
  topP: number;
  /** 1 = off. */
  repetitionPenalty: number;
  seed: number;
}

export function validateSamplerParams(p: SamplerParams): void {
  const bad = (what: string, v: number): AppError => new AppError('BAD_ARGUMENT', `${what}; got ${String(v)}.`);
  if (!Number.isFinite(p.temperature) || p.temperature < 0) throw bad('Sampling temperature must be a number ≥ 0 (0 means greedy)', p.temperature);
  if (!Number.isInteger(p.topK) || p.topK < 0) throw bad('Top-k must be a whole number ≥ 0 (0 turns top-k off)', p.topK);
  if (!Number.isFinite(p.topP) || p.topP <= 0 || p.topP > 1) throw bad('Top-p must be a number above 0 and at most 1 (1 turns nucleus sampling off)', p.topP);
  if (!Number.isFinite(p.repetitionPenalty) || p.repetitionPenalty <= 0) throw bad('Repetition penalty must be a number > 0 (1 turns it off)', p.repetitionPenalty);
  if (!Number.isInteger(p.seed) || p.seed < 0 || p.seed > 0xffffffff) throw bad('Seed must be a whole number from 0 to 4294967295', p.seed);
}

/** PCG hash (the "pcg" of Jarzynski & Olano), mirrored in the shader. */
export function pcgHash(v: number): number {
  const s = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const w = Math.imul(((s >>> ((s >>> 28) + 4)) ^ s) >>> 0, 277803737) >>> 0;
  return ((w >>> 22) ^ w) >>> 0;
}

/** The uniform draw in [0, 1) for (seed, stepIndex): 24 bits, exact in f32. */
export function samplerUniform(seed: number, stepIndex: number): number {
  return (pcgHash((pcgHash(stepIndex) ^ seed) >>> 0) >>> 8) / 16777216;
}

const f32Bits = new Float32Array(1);
const u32Bits = new Uint32Array(f32Bits.buffer);
function sortKey(v: number): number {
  f32Bits[0] = v;
  const b = u32Bits[0];
  return (b & 0x80000000 ? ~b : b | 0x80000000) >>> 0;
}

function isGreedy(p: SamplerParams): boolean {
  return p.temperature === 0 || p.topK === 1;
}

/** Reference: the token id the shader picks for this logits row. */
export function sampleReference(logits: Float32Array, history: ArrayLike<number>, params: SamplerParams, stepIndex: number): number {
  validateSamplerParams(params);
  const f = Math.fround;
  const V = logits.length;
  const work = Float32Array.from(logits);
  if (params.repetitionPenalty !== 1) {
    const pen = f(params.repetitionPenalty);
    const inv = f(1 / params.repetitionPenalty);
    for (let h = 0; h < history.length; h++) {
      const id = history[h];
      if (id < V) {
        const x = logits[id];
        work[id] = x < 0 ? f(x * pen) : f(x * inv);
      }
    }
  }
  if (isGreedy(params)) {
    let best = 0;
    for (let i = 1; i < V; i++) if (work[i] > work[best]) best = i;
    return best;
  }
  const K = Math.min(params.topK === 0 ? SAMPLER_CANDIDATE_CAP : Math.min(params.topK, SAMPLER_CANDIDATE_CAP), V);
  const keys = new Uint32Array(V);
  for (let i = 0; i < V; i++) keys[i] = sortKey(work[i]);
  const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => (keys[a] !== keys[b] ? keys[b] - keys[a] : a - b));
  const invT = f(1 / params.temperature);
  const s0 = f(work[order[0]] * invT);
  const probs = new Float32Array(K);
  let z = 0;
  for (let r = 0; r < K; r++) {
    probs[r] = f(Math.exp(f(f(work[order[r]] * invT) - s0)));
    z = f(z + probs[r]);
  }
  let n = K;
  let total = z;
  const topP = f(params.topP);
  if (topP < 1) {
    const limit = f(topP * z);
    let cum = 0;
    n = 0;
    for (let r = 0; r < K; r++) {
      if (r > 0 && cum >= limit) break;
      cum = f(cum + probs[r]);
      n = r + 1;
    }
    total = cum;
  }
  const target = f(samplerUniform(params.seed, stepIndex) * total);
  let run = 0;
  for (let r = 0; r < n; r++) {
    run = f(run + probs[r]);
    if (run > target) return order[r];
  }
  return order[n - 1];
}

export interface SamplerBindings {
  vocab: number;
  /** Element offset of the row in `logits` (e.g. (seqLen − 1)·vocab for a full prefill output). */
  logitsOffset: number;
  logits: GPUBuffer;
  /** u32 token ids; the first `historyLength` entries are penalised. */
  history: GPUBuffer;
  /** 4 bytes: the chosen token id (u32). */
  out: GPUBuffer;
  /** Accepted for symmetry with the other kernels; the sampler reads no per-step value from it. */
  step?: GPUBuffer;
}

export interface Sampler {
  encode(pass: GPUComputePassEncoder): void;
  /** Written by `writeSamplerParams` / `writeSamplerStep`; exposed for those helpers only. */
  readonly paramsBuffer: GPUBuffer;
  readonly stateBuffer: GPUBuffer;
  readonly vocab: number;
  readonly logitsOffset: number;
}

const WG = SAMPLER_CANDIDATE_CAP;

function packParams(vocab: number, logitsOffset: number, p: SamplerParams): ArrayBuffer {
  return packUniform([
    { u32: vocab },
    { u32: logitsOffset },
    { f32: p.temperature === 0 ? 0 : 1 / p.temperature },
    { u32: p.topK },
    { f32: p.topP },
    { f32: p.repetitionPenalty },
    { f32: 1 / p.repetitionPenalty },
    { u32: p.seed >>> 0 },
    { u32: isGreedy(p) ? 1 : 0 },
  ]);
}

/** Created greedy with no penalty; call `writeSamplerParams` to change the settings. */
export function createSampler(device: GPUDevice, b: SamplerBindings): Sampler {
  const pipeline = getComputePipeline(device, 'sample', source, { WG });
  const greedy: SamplerParams = { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, seed: 0 };
  const paramsBuffer = createUniformBuffer(device, packParams(b.vocab, b.logitsOffset, greedy), 'sampler.params');
  const stateBuffer = createUniformBuffer(device, new ArrayBuffer(16), 'sampler.state');
  const work = device.createBuffer({ label: 'sampler.work', size: Math.max(4, b.vocab * 4), usage: GPUBufferUsage.STORAGE });
  const bindGroup = device.createBindGroup({
    label: 'sample',
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: paramsBuffer } },
      { binding: 1, resource: { buffer: stateBuffer } },
      { binding: 2, resource: { buffer: b.logits } },
      { binding: 3, resource: { buffer: b.history } },
      { binding: 4, resource: { buffer: work } },
      { binding: 5, resource: { buffer: b.out } },
    ],
  });
  return {
    paramsBuffer,
    stateBuffer,
    vocab: b.vocab,
    logitsOffset: b.logitsOffset,
    encode(pass) {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(1);
    },
  };
}

/** Validates and uploads the settings (when they change, not per token). */
export function writeSamplerParams(device: GPUDevice, sampler: Sampler, p: SamplerParams): void {
  validateSamplerParams(p);
  device.queue.writeBuffer(sampler.paramsBuffer, 0, packParams(sampler.vocab, sampler.logitsOffset, p));
}

/** Per token, 8 bytes: how many history ids to penalise and the RNG step index. */
export function writeSamplerStep(device: GPUDevice, sampler: Sampler, s: { historyLength: number; stepIndex: number }): void {
  device.queue.writeBuffer(sampler.stateBuffer, 0, new Uint32Array([s.historyLength, s.stepIndex >>> 0]));
}
