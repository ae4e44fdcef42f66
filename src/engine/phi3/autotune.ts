/**
 * Decode tuning measured on the user's own GPU. `matMulNBitsTuningFor` picks the decode GEMVs'
 * shape per vendor, but only NVIDIA's choice was ever measured (on an H100 and an H200); Apple,
 * Intel and AMD parts get a guess. `autotuneDecode` times real decode steps of the loaded model
 * with each candidate tuning (`decodeTuningCandidates`: the default, the other GEMV shaders, the
 * read-ahead of the next matmul's weights) and keeps the fastest. The worker runs it once per GPU,
 * model shape and kernel source, at the first load, and stores the choice (`autotuneKey`).
 *
 * How it measures: each candidate's kernels are built over the loaded weights (`Phi3Runtime.retune`,
 * pipelines compiled once), then decode steps run as an answer runs them (greedy, run ahead,
 * each token read back), appended after the cache and truncated away, so the KV cache a chat
 * holds is kept. Rounds go through the candidates in turn, each round in another order, and a
 * candidate's figure is its fastest round (noise only adds time); one a quarter slower than the
 * default after a round is not measured again. The default stays unless a candidate beats it by
 * `minGain` (3%): measurement noise alone must not flip the choice. Cost: rounds · candidates ·
 * (steps + 1) decode steps plus each candidate's pipeline compiles; with the defaults and four
 * candidates, at most 56 steps (about 0.2 s at an H200's 2–3 ms a step, 6 s at 100 ms a step).
 * Every candidate computes the same product up to rounding: the dp4a GEMV rounds activations to
 * int8 per 32 values (as onnxruntime's accuracy level 4 does), the others differ in summation
 * order only.
 * Rule: nothing here reads storage; the caller keeps the result.
 */
import { AppError } from '../errors';
import { adapterText, type AdapterNames } from '../gpu/device';
import { MATMUL_NBITS_GEMV_SOURCE_ID, matMulNBitsDp4aSupported, matMulNBitsTuningFor, matMulNBitsWarmNextSupported, type MatMulNBitsTuning } from '../kernels/matmul-nbits';
import { GREEDY_SAMPLING } from '../types';
import type { Phi3Runtime } from './model';
import type { Phi3Config } from './plan';

/** After the first round, candidates slower than this many times the default are not measured again. */
const PRUNE = 1.25;

export interface TuningCandidate {
  /** Short name for stats and the model panel: 'default', 'dp4a', 'direct', 'warm-next', … */
  name: string;
  /** Overrides on the adapter's defaults (as LoadOptions.matMulTuning); undefined: the defaults. */
  tuning: MatMulNBitsTuning | undefined;
}

export interface CandidateTiming {
  name: string;
  /** Fastest round's milliseconds per decode step; null where the candidate failed. */
  msPerStep: number | null;
  /** Why it failed (a pipeline that did not compile, …). */
  error?: string;
}

export interface AutotuneResult {
  /** The candidate the runtime now runs. */
  chosen: TuningCandidate;
  timings: CandidateTiming[];
  /** Wall time the tuning took, compiles included. */
  ms: number;
}

export interface AutotuneOptions {
  candidates?: readonly TuningCandidate[];
  /** Rounds over the candidates (default 2). */
  rounds?: number;
  /** Timed decode steps per candidate and round (default 6), after one untimed step. */
  steps?: number;
  /** Least speed-up over the default that replaces it, as a fraction (default 0.03). */
  minGain?: number;
  /** Called after each candidate's round: done and total measurements. */
  onProgress?: (done: number, total: number) => void;
}

/** A CPU standing in for a GPU (SwiftShader, llvmpipe, WARP): measuring kernels there only adds load time. */
export function softwareAdapter(adapter: AdapterNames): boolean {
  return /swiftshader|llvmpipe|lavapipe|microsoft basic render|\bwarp\b/.test(adapterText(adapter));
}

/** The candidates for this device: the adapter's defaults first, then what can differ from them. */
export function decodeTuningCandidates(device: GPUDevice, adapter: AdapterNames): TuningCandidate[] {
  const defaults = matMulNBitsTuningFor(adapter);
  const out: TuningCandidate[] = [{ name: 'default', tuning: undefined }];
  const gemv = defaults.gemv ?? 'staged';
  if (gemv !== 'dp4a' && matMulNBitsDp4aSupported(device)) out.push({ name: 'dp4a', tuning: { gemv: 'dp4a' } });
  if (gemv !== 'direct') out.push({ name: 'direct', tuning: { gemv: 'direct' } });
  if (gemv === 'dp4a') out.push({ name: 'staged', tuning: { gemv: 'staged' } });
  if (!defaults.warmNext && matMulNBitsWarmNextSupported(device)) out.push({ name: 'warm-next', tuning: { warmNext: 0.5 } });
  return out;
}

/**
 * Where a measured choice is kept: the adapter, the model's shapes and precision, the GEMV
 * sources, the adapter's defaults and the candidates. A change to any of them measures again.
 */
export function autotuneKey(adapter: AdapterNames, config: Phi3Config, precision: string, candidates: readonly TuningCandidate[]): string {
  const { vendor = '', architecture = '', device = '', description = '' } = adapter;
  const { hidden, intermediate, heads, kvHeads, headDim, vocab, layers } = config;
  return JSON.stringify({
    adapter: [vendor, architecture, device, description],
    model: [hidden, intermediate, heads, kvHeads, headDim, vocab, layers],
    precision,
    gemv: MATMUL_NBITS_GEMV_SOURCE_ID,
    defaults: matMulNBitsTuningFor(adapter),
    candidates: candidates.map((c) => c.tuning ?? null),
  });
}

/** Milliseconds per decode step of the runtime as it is now: `steps` timed after one untimed. */
async function timeSteps(runtime: Phi3Runtime, steps: number): Promise<number> {
  const start = runtime.cachedIds.length;
  try {
    let token = await runtime.step([runtime.cachedIds.at(-1) ?? 1], GREEDY_SAMPLING, 0);
    const t0 = performance.now();
    for (let i = 1; i <= steps; i++) token = await runtime.step([token], GREEDY_SAMPLING, i);
    return (performance.now() - t0) / steps;
  } finally {
    runtime.truncate(start);
  }
}

/**
 * Times each candidate on `runtime` (see the module header) and leaves it running the fastest.
 * The runtime must not be used meanwhile. A candidate that fails is skipped; if the default
 * itself fails, the error is thrown (the runtime cannot run at all).
 */
export async function autotuneDecode(runtime: Phi3Runtime, opts: AutotuneOptions = {}): Promise<AutotuneResult> {
  const t0 = performance.now();
  const candidates = opts.candidates ?? [{ name: 'default', tuning: undefined }];
  const rounds = opts.rounds ?? 2;
  const steps = opts.steps ?? 6;
  const minGain = opts.minGain ?? 0.03;
  if (candidates.length === 0) throw new AppError('BAD_ARGUMENT', 'autotuneDecode: no candidates.');
  if (!Number.isInteger(rounds) || rounds < 1 || !Number.isInteger(steps) || steps < 1) throw new AppError('BAD_ARGUMENT', `autotuneDecode: rounds (${rounds}) and steps (${steps}) must be positive integers.`);
  if (runtime.cachedIds.length + steps + 2 > runtime.contextLimit) throw new AppError('CONTEXT_OVERFLOW', `autotuneDecode: ${steps + 2} decode steps do not fit after the ${runtime.cachedIds.length} cached tokens.`);
  const best = new Map<TuningCandidate, number>();
  const errors = new Map<TuningCandidate, string>();
  const before = runtime.matMulTuning;
  let current = candidates.find((c) => c.tuning === before);
  let done = 0;
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < candidates.length; i++) {
      const c = candidates[(i + r) % candidates.length];
      // A candidate a quarter slower than the default in a round is out: noise is not that large,
      // and on a slow GPU every step measured is a wait at the first load.
      const slow = r > 0 && best.has(candidates[0]) && best.get(c)! > best.get(candidates[0])! * PRUNE;
      if (errors.has(c) || slow) {
        opts.onProgress?.(++done, rounds * candidates.length);
        continue;
      }
      try {
        if (current !== c) {
          current = undefined;
          await runtime.retune(c.tuning);
          current = c;
        }
        const ms = await timeSteps(runtime, steps);
        best.set(c, Math.min(ms, best.get(c) ?? Infinity));
      } catch (err) {
        if (err instanceof AppError && err.code === 'GPU_DEVICE_LOST') throw err;
        errors.set(c, err instanceof Error ? err.message : String(err));
      }
      opts.onProgress?.(++done, rounds * candidates.length);
    }
  }
  const fallback = candidates[0];
  if (!best.has(fallback)) throw new AppError('GPU_VALIDATION', `The GPU could not run the decode kernels: ${errors.get(fallback) ?? 'no measurement'}`);
  const baseline = best.get(fallback)!;
  let chosen = fallback;
  let chosenMs = baseline;
  for (const [c, ms] of best) {
    if (ms < baseline * (1 - minGain) && ms < chosenMs) [chosen, chosenMs] = [c, ms];
  }
  if (current !== chosen) await runtime.retune(chosen.tuning);
  return {
    chosen,
    timings: candidates.map((c) => ({ name: c.name, msPerStep: best.get(c) ?? null, ...(errors.has(c) ? { error: errors.get(c) } : {}) })),
    ms: performance.now() - t0,
  };
}
