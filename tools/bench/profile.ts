/**
 * The native decode step profiled in context: at each decode context, fill the cache, run a few
 * plain steps (clocks and caches warm, as in a real conversation), then `steps` steps through
 * Phi3Runtime.profileDecode, which times every kernel in a pass of its own, then the leave-one-out
 * timings (`inStep`): the whole step's kernels in one pass, and again without each kind in turn
 * (Phi3Runtime.timeDecodeWithout), so a kind's cost inside a step carries no pass boundary; and
 * with each weight matmul kind (and all at once) only reading its weights, the memory floor.
 * report.ts's foldDecodeProfile turns both into per-kind figures once the copy bandwidth is known.
 * Rule: this is the one native-only measurement; measure.ts stays engine-agnostic.
 */
import type { Phi3Runtime } from '../../src/engine/phi3/model';
import { DEFAULT_SAMPLING } from '../../src/engine/types';
import { benchTokenIds, type InStepTimes, type Missing, type ProfiledKernel } from './report';

const GREEDY = { ...DEFAULT_SAMPLING, temperature: 0, repetitionPenalty: 1 };
const WARM_STEPS = 4;
/** Steps per leave-one-out pass, and passes per figure (the fastest is kept). */
const IN_STEP_REPS = 4;
const IN_STEP_TRIES = 3;

export interface ProfileRuns {
  context: number;
  runs: ProfiledKernel[][];
  /** ms per step of the decode kernels in one pass: all of them, and without each kind */
  inStep?: InStepTimes;
}

/**
 * Leave-one-out step times at the runtime's current cache end (see Phi3Runtime.timeDecodeWithout),
 * then the weight-read floor: the step with each weight matmul kind, and with all of them at once,
 * replaced by a kernel that only reads its weights.
 */
async function inStepTimes(runtime: Phi3Runtime, kinds: readonly string[]): Promise<InStepTimes | null> {
  const time = async (skip: ReadonlySet<string>, readInstead: ReadonlySet<string> = new Set()) => {
    let best = Infinity;
    for (let i = 0; i < IN_STEP_TRIES; i++) {
      const ms = await runtime.timeDecodeWithout(skip, IN_STEP_REPS, readInstead);
      if (ms === null) return null;
      best = Math.min(best, ms);
    }
    return best;
  };
  const stepMs = await time(new Set());
  if (stepMs === null) return null;
  const withoutMs: Record<string, number> = {};
  for (const kind of kinds) withoutMs[kind] = (await time(new Set([kind])))!;
  const matmuls = runtime.weightMatmulKinds().filter((kind) => kinds.includes(kind));
  const readMs: Record<string, number> = {};
  for (const kind of matmuls) readMs[kind] = (await time(new Set(), new Set([kind])))!;
  const readAllMs = (await time(new Set(), new Set(matmuls)))!;
  return { stepMs, withoutMs, readMs, readAllMs };
}

export interface PrefillRuns {
  tokens: number;
  runs: ProfiledKernel[][];
}

/**
 * Prefill chunks profiled kernel by kernel (Phi3Runtime.profilePrefill): per prompt length (up to
 * maxPrefill, one chunk), one plain prefill to warm up, then `runs` profiled ones on an empty cache.
 */
export async function profilePrefillChunks(runtime: Phi3Runtime, lengths: readonly number[], runs: number, log: (line: string) => void): Promise<PrefillRuns[] | Missing> {
  const out: PrefillRuns[] = [];
  for (const tokens of lengths) {
    if (tokens < 2 || tokens > runtime.maxPrefill || tokens > runtime.contextLimit) {
      log(`prefill profile at ${tokens} tokens: skipped (one chunk is 2 to ${Math.min(runtime.maxPrefill, runtime.contextLimit)} tokens)`);
      continue;
    }
    const ids = benchTokenIds(tokens, 5);
    runtime.truncate(0);
    await runtime.logits(ids);
    const chunks: ProfiledKernel[][] = [];
    for (let i = 0; i < runs; i++) {
      runtime.truncate(0);
      const times = await runtime.profilePrefill(ids);
      if (!times) return { missing: 'the device has no timestamp-query' };
      chunks.push(times.map(({ kind, weightBytes, ms, macsPerRow, rows }) => ({ kind, weightBytes, ms, macsPerRow, rows })));
    }
    log(`prefill profile at ${tokens} tokens: ${chunks.map((r) => r.reduce((t, k) => t + k.ms, 0).toFixed(3)).join(', ')} ms per chunk (sum of kernels)`);
    out.push({ tokens, runs: chunks });
  }
  runtime.truncate(0);
  return out;
}

export async function profileDecodeSteps(runtime: Phi3Runtime, contexts: readonly number[], steps: number, log: (line: string) => void): Promise<ProfileRuns[] | Missing> {
  const out: ProfileRuns[] = [];
  for (const context of contexts) {
    if (context + WARM_STEPS + steps + 1 > runtime.contextLimit) {
      log(`profile at context ${context}: skipped (limit ${runtime.contextLimit})`);
      continue;
    }
    runtime.truncate(0);
    let token = await runtime.step(benchTokenIds(Math.max(1, context), 2), GREEDY, 0);
    for (let i = 0; i < WARM_STEPS; i++) token = await runtime.step([token], GREEDY, i + 1);
    const runs: ProfiledKernel[][] = [];
    for (let i = 0; i < steps; i++) {
      const times = await runtime.profileDecode(token);
      if (!times) return { missing: 'the device has no timestamp-query' };
      runs.push(times.map(({ kind, weightBytes, ms }) => ({ kind, weightBytes, ms })));
    }
    const total = (r: ProfiledKernel[]) => r.reduce((t, k) => t + k.ms, 0);
    log(`profile at context ${context}: ${runs.map((r) => total(r).toFixed(3)).join(', ')} ms per step (sum of kernels)`);
    const inStep = await inStepTimes(runtime, [...new Set(runs[0].map((k) => k.kind))]);
    if (inStep) {
      log(`profile at context ${context}: ${inStep.stepMs.toFixed(3)} ms per step in one pass; without ${Object.entries(inStep.withoutMs).map(([k, ms]) => `${k} ${ms.toFixed(3)}`).join(', ')} ms`);
      log(`profile at context ${context}: weights only read: ${Object.entries(inStep.readMs ?? {}).map(([k, ms]) => `${k} ${ms.toFixed(3)}`).join(', ')} ms per step; all matmuls at once ${inStep.readAllMs?.toFixed(3)} ms`);
    }
    out.push({ context, runs, ...(inStep ? { inStep } : {}) });
  }
  runtime.truncate(0);
  return out;
}
