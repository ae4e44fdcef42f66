/**
 * The native decode step profiled in context: at each decode context, fill the cache, run a few
 * plain steps (clocks and caches warm, as in a real conversation), then `steps` steps through
 * Phi3Runtime.profileDecode, which times every kernel in a pass of its own. report.ts's
 * foldDecodeProfile turns the runs into per-kind figures once the copy bandwidth is known.
 * Rule: this is the one native-only measurement; measure.ts stays engine-agnostic.
 */
import type { Phi3Runtime } from '../../src/engine/phi3/model';
import { DEFAULT_SAMPLING } from '../../src/engine/types';
import { benchTokenIds, type Missing, type ProfiledKernel } from './report';

const GREEDY = { ...DEFAULT_SAMPLING, temperature: 0, repetitionPenalty: 1 };
const WARM_STEPS = 4;

export interface ProfileRuns {
  context: number;
  runs: ProfiledKernel[][];
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
    out.push({ context, runs });
  }
  runtime.truncate(0);
  return out;
}
