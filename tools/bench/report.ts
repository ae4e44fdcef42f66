/**
 * The benchmark report: its JSON shape, the statistics over rounds, and the native ÷ ort ratios.
 * Pure functions only (no GPU, no DOM, no Node APIs), shared by the browser page, the Node runner
 * and the Markdown/SVG renderers, and unit-tested.
 * Rule: every figure is a `Summary` over measured rounds or null with a reason — never a made-up
 * number; a ratio is null whenever either side is missing, and says why.
 */

/** Median and spread of one figure over rounds (values in measurement order). */
export interface Summary {
  median: number;
  min: number;
  max: number;
  n: number;
  values: number[];
}

/** A figure that could not be measured here, and why. */
export interface Missing {
  missing: string;
}

/** What one engine reported for one round (in the page or in Node). */
export interface RoundResult {
  /** ms from the files in memory to a ready engine */
  loadMs: number;
  /** ms from `step(16-token prompt)` to the first token id, right after load (pipelines cold) */
  firstTokenMs: number;
  /** context → decode tokens/s (median of the timed steps in this round) */
  decode: Record<string, number>;
  /** prompt length → prefill tokens/s */
  prefill: Record<string, number>;
  /** counted over the timed decode steps, per token */
  perToken: { dispatches: number; submits: number; readbackBytes: number };
  /** JS heap (CDP JSHeapUsedSize): before load and the peak sampled during load; null in Node */
  heap: { beforeBytes: number; peakBytes: number } | null;
  /**
   * GPU buffer bytes the engine created and had not destroyed (measure.ts): right after load, and
   * the most at once over the load and the round. Absent in reports from before 2026-12-06.
   */
  gpuBuffers?: { afterLoadBytes: number; peakBytes: number };
}

export interface EngineResult {
  engine: 'native' | 'ort';
  /** e.g. 'native WGSL kernels', 'onnxruntime-web 1.30 webgpu EP' */
  label: string;
  rounds: number;
  loadMs: Summary;
  firstTokenMs: Summary;
  decodeTokensPerSec: Record<string, Summary>;
  prefillTokensPerSec: Record<string, Summary>;
  perToken: { dispatches: Summary; submits: Summary; readbackBytes: Summary };
  peakJsHeapDuringLoadBytes: Summary | Missing;
  /** RoundResult.gpuBuffers over the rounds (absent in reports from before 2026-12-06) */
  gpuBufferBytes?: { afterLoad: Summary; peak: Summary } | Missing;
  /** how the runtime itself counts dispatches per decode (native only) */
  declaredDispatchesPerDecode: number | null;
}

export interface KernelTiming {
  name: string;
  /** (K → N) for a GEMV; free text for others */
  shape: string;
  ms: number;
  /** bytes the kernel must read (weights + scales) */
  bytes: number;
  gbPerSec: number;
  /** gbPerSec ÷ the measured copy bandwidth */
  fractionOfCopy: number | null;
}

export interface KernelReport {
  /** 'timestamp-query' or 'onSubmittedWorkDone' (wall clock around a batch of dispatches) */
  timer: string;
  /** readKernelGbPerSec: the weight-read kernel over the same bytes, read bytes only (absent in older reports) */
  copy: { bytes: number; ms: number; gbPerSec: number; readKernelGbPerSec?: number; note: string };
  /** µs per small dispatch chained through one buffer vs writing separate buffers (absent in older reports) */
  dispatch?: { dependentUs: number; independentUs: number; note: string };
  kernels: KernelTiming[];
}

/** One kernel of a profiled decode step or prefill chunk, as Phi3Runtime.profileDecode / profilePrefill report it. */
export interface ProfiledKernel {
  kind: string;
  weightBytes: number;
  ms: number;
  /** multiply-adds per row (K · N for a matmul, else 0) and rows run; absent in older reports */
  macsPerRow?: number;
  rows?: number;
}

/** ms per step of the decode kernels in one pass: all of them, and without each kind (profile.ts). */
export interface InStepTimes {
  stepMs: number;
  withoutMs: Record<string, number>;
  /** each weight matmul kind replaced by the weight-read kernel over its weights (absent in older reports) */
  readMs?: Record<string, number>;
  /** every weight matmul kind replaced at once */
  readAllMs?: number;
}

/**
 * The native decode step in context: every kernel timed on the GPU in a pass of its own
 * (Phi3Runtime.profileDecode), folded per kind over the layers. Each kernel's time is its fastest
 * over the profiled steps; `totalMs` is the sum of those. Where the leave-one-out timings ran
 * (profile.ts `inStep`), `stepMs` is the step's kernels in one pass and each kind's `inStepMs`
 * is stepMs minus the step without that kind: its cost inside a step with no pass boundary of its
 * own (the per-pass figures carry one per kernel), and the figure the GEMV bandwidth target uses.
 * Where the weight-read timings ran, a matmul kind's `readFloorMs` is the step with the kind only
 * reading its weights minus the step without it: the least time those bytes take in the step.
 * `ofReadFloor` = readFloorMs ÷ inStepMs, the share of that floor the kernels reach, and
 * `readAllMs` the step with every weight matmul only reading.
 */
export interface DecodeProfile {
  context: number;
  steps: number;
  totalMs: number;
  stepMs?: number;
  readAllMs?: number;
  kinds: {
    kind: string;
    calls: number;
    ms: number;
    weightBytes: number;
    gbPerSec: number | null;
    fractionOfCopy: number | null;
    inStepMs?: number;
    inStepGbPerSec?: number | null;
    inStepFractionOfCopy?: number | null;
    readFloorMs?: number;
    readFloorGbPerSec?: number | null;
    readFloorFractionOfCopy?: number | null;
    ofReadFloor?: number | null;
  }[];
}

/**
 * A native prefill chunk of `tokens` tokens, every kernel timed in a pass of its own
 * (Phi3Runtime.profilePrefill), folded per kind over the layers: each kernel's fastest of `runs`
 * chunks, summed. A matmul kind's TFLOP/s is 2 · rows · K · N / ms: its arithmetic rate in context
 * (each figure carries one pass boundary, small next to a prefill matmul).
 */
export interface PrefillProfile {
  tokens: number;
  runs: number;
  totalMs: number;
  kinds: { kind: string; calls: number; ms: number; tflops: number | null }[];
}

export interface Ratios {
  /** context → native ÷ ort decode tok/s (medians) */
  decode: Record<string, number> | null;
  /** prompt length → native ÷ ort prefill tok/s */
  prefill: Record<string, number> | null;
  reason?: string;
}

export interface BenchReport {
  version: 1;
  createdAt: string;
  /** 'browser' (headless Chromium) or 'node' (the webgpu package) */
  host: 'browser' | 'node';
  /** `git describe --always --dirty` of the checkout whose engine ran (the engine changes under active work) */
  commit?: string;
  machine: {
    cpus: number;
    cpuModel: string;
    loadavgBefore: number[];
    loadavgAfter: number[];
    platform: string;
    node: string;
    browser: string | null;
    adapter: { vendor: string; architecture: string; device: string; description: string };
    features: string[];
  };
  model: { dir: string; onnxPath: string; layers: number; hidden: number; intermediate: number; vocab: number; dtype: string; bytes: number; generated: boolean };
  settings: { rounds: number; contexts: number[]; prefill: number[]; decodeSteps: number; loadFrom: string };
  engines: { native: EngineResult | Missing; ort: EngineResult | Missing };
  ratios: Ratios;
  kernels: KernelReport | Missing;
  /** native decode kernels profiled in context, per decode context (absent in older reports) */
  profile?: DecodeProfile[] | Missing;
  /** native prefill kernels profiled in context, per prompt length (absent in older reports) */
  prefillProfile?: PrefillProfile[] | Missing;
  notes: string[];
}

export function summarize(values: readonly number[]): Summary {
  if (values.length === 0) throw new Error('summarize: no values');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1], n: values.length, values: [...values] };
}

/** Tokens per second from per-step times (ms): `1000 / median(ms)`. */
export function tokensPerSec(stepMs: readonly number[], tokensPerStep = 1): number {
  return (tokensPerStep * 1000) / summarize(stepMs).median;
}

export function isMissing(x: unknown): x is Missing {
  return typeof x === 'object' && x !== null && 'missing' in x;
}

/** Folds the rounds of one engine into medians. Keys present in every round are kept. */
export function combineRounds(engine: 'native' | 'ort', label: string, rounds: readonly RoundResult[], declaredDispatchesPerDecode: number | null): EngineResult {
  if (rounds.length === 0) throw new Error(`combineRounds(${engine}): no rounds`);
  const keysOf = (pick: (r: RoundResult) => Record<string, number>) => Object.keys(pick(rounds[0])).filter((k) => rounds.every((r) => k in pick(r)));
  const table = (pick: (r: RoundResult) => Record<string, number>) => Object.fromEntries(keysOf(pick).map((k) => [k, summarize(rounds.map((r) => pick(r)[k]))]));
  const heaps = rounds.map((r) => r.heap).filter((h): h is NonNullable<RoundResult['heap']> => h !== null);
  const gpus = rounds.flatMap((r) => (r.gpuBuffers ? [r.gpuBuffers] : []));
  return {
    engine,
    label,
    rounds: rounds.length,
    loadMs: summarize(rounds.map((r) => r.loadMs)),
    firstTokenMs: summarize(rounds.map((r) => r.firstTokenMs)),
    decodeTokensPerSec: table((r) => r.decode),
    prefillTokensPerSec: table((r) => r.prefill),
    perToken: {
      dispatches: summarize(rounds.map((r) => r.perToken.dispatches)),
      submits: summarize(rounds.map((r) => r.perToken.submits)),
      readbackBytes: summarize(rounds.map((r) => r.perToken.readbackBytes)),
    },
    peakJsHeapDuringLoadBytes: heaps.length ? summarize(heaps.map((h) => h.peakBytes)) : { missing: 'JS heap is sampled through CDP in the browser only' },
    gpuBufferBytes: gpus.length === rounds.length ? { afterLoad: summarize(gpus.map((g) => g.afterLoadBytes)), peak: summarize(gpus.map((g) => g.peakBytes)) } : { missing: 'GPU buffers were not counted in every round' },
    declaredDispatchesPerDecode,
  };
}

function ratioTable(a: Record<string, Summary>, b: Record<string, Summary>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(a)) if (b[k] && b[k].median > 0) out[k] = a[k].median / b[k].median;
  return out;
}

/** native ÷ ort on medians; null with the reason when an engine is missing. */
export function computeRatios(native: EngineResult | Missing, ort: EngineResult | Missing): Ratios {
  if (isMissing(native) || isMissing(ort)) {
    const reason = [isMissing(native) ? `native: ${native.missing}` : '', isMissing(ort) ? `ort: ${ort.missing}` : ''].filter(Boolean).join('; ');
    return { decode: null, prefill: null, reason };
  }
  return { decode: ratioTable(native.decodeTokensPerSec, ort.decodeTokensPerSec), prefill: ratioTable(native.prefillTokensPerSec, ort.prefillTokensPerSec) };
}

/**
 * Folds profiled decode steps (each the same kernel list) into a DecodeProfile: per kernel the
 * fastest of the steps, then summed per kind in first-seen order. GB/s counts the weights read;
 * `copyGbPerSec` (null when unmeasured) gives the fraction of copy bandwidth.
 */
export function foldDecodeProfile(context: number, steps: readonly (readonly ProfiledKernel[])[], copyGbPerSec: number | null, inStep?: InStepTimes): DecodeProfile {
  const byKind = foldKinds(steps, 'foldDecodeProfile', 'steps');
  const rate = (bytes: number, ms: number) => (bytes > 0 && ms > 0 ? bytes / (ms * 1e6) : null);
  const ofCopy = (gbPerSec: number | null) => (gbPerSec !== null && copyGbPerSec ? gbPerSec / copyGbPerSec : null);
  const kinds = [...byKind].map(([kind, { calls, ms, weightBytes }]) => {
    const gbPerSec = rate(weightBytes, ms);
    const out: DecodeProfile['kinds'][number] = { kind, calls, ms, weightBytes, gbPerSec, fractionOfCopy: ofCopy(gbPerSec) };
    const without = inStep?.withoutMs[kind];
    if (inStep && without !== undefined) {
      // Noise can make a tiny kind's step-without slower than the step: clamp at 0.
      out.inStepMs = Math.max(0, inStep.stepMs - without);
      out.inStepGbPerSec = rate(weightBytes, out.inStepMs);
      out.inStepFractionOfCopy = ofCopy(out.inStepGbPerSec);
      const read = inStep.readMs?.[kind];
      if (read !== undefined) {
        out.readFloorMs = Math.max(0, read - without);
        out.readFloorGbPerSec = rate(weightBytes, out.readFloorMs);
        out.readFloorFractionOfCopy = ofCopy(out.readFloorGbPerSec);
        out.ofReadFloor = out.inStepMs > 0 ? out.readFloorMs / out.inStepMs : null;
      }
    }
    return out;
  });
  return {
    context,
    steps: steps.length,
    totalMs: kinds.reduce((t, k) => t + k.ms, 0),
    ...(inStep ? { stepMs: inStep.stepMs } : {}),
    ...(inStep?.readAllMs !== undefined ? { readAllMs: inStep.readAllMs } : {}),
    kinds,
  };
}

/** Folds profiled prefill chunks (each the same kernel list) into a PrefillProfile, as foldDecodeProfile does. */
export function foldPrefillProfile(tokens: number, runs: readonly (readonly ProfiledKernel[])[]): PrefillProfile {
  const byKind = foldKinds(runs, 'foldPrefillProfile', 'chunks');
  const kinds = [...byKind].map(([kind, { calls, ms, macs }]) => ({ kind, calls, ms, tflops: macs > 0 && ms > 0 ? (2 * macs) / (ms * 1e9) : null }));
  return { tokens, runs: runs.length, totalMs: kinds.reduce((t, k) => t + k.ms, 0), kinds };
}

/**
 * Profiled runs (each the same kernel list) folded per kind in first-seen order: each kernel's
 * fastest run, summed, with the kind's weight bytes and multiply-adds (rows · K · N).
 */
function foldKinds(runs: readonly (readonly ProfiledKernel[])[], fn: string, what: string): Map<string, { calls: number; ms: number; weightBytes: number; macs: number }> {
  if (runs.length === 0) throw new Error(`${fn}: no profiled ${what}`);
  const n = runs[0].length;
  if (runs.some((r) => r.length !== n || r.some((k, i) => k.kind !== runs[0][i].kind))) throw new Error(`${fn}: the profiled ${what} ran different kernels`);
  const byKind = new Map<string, { calls: number; ms: number; weightBytes: number; macs: number }>();
  for (let i = 0; i < n; i++) {
    const k = runs[0][i];
    const ms = Math.min(...runs.map((r) => r[i].ms));
    const e = byKind.get(k.kind) ?? { calls: 0, ms: 0, weightBytes: 0, macs: 0 };
    byKind.set(k.kind, { calls: e.calls + 1, ms: e.ms + ms, weightBytes: e.weightBytes + k.weightBytes, macs: e.macs + (k.macsPerRow ?? 0) * (k.rows ?? 0) });
  }
  return byKind;
}

/** Deterministic token ids in [3, 32000) for prompts (mulberry32; no special ids). */
export function benchTokenIds(n: number, seed = 7): number[] {
  let s = seed >>> 0;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out.push(3 + (((t ^ (t >>> 14)) >>> 0) % 31997));
  }
  return out;
}

/** Parses '0,512,2048' into sorted unique non-negative integers, or throws naming the bad part. */
export function parseIntList(flag: string, text: string): number[] {
  const parts = text.split(',').map((s) => s.trim()).filter(Boolean);
  const out = parts.map((p) => {
    const n = Number(p);
    if (!Number.isInteger(n) || n < 0) throw new Error(`${flag}: "${p}" is not a non-negative integer (got "${text}").`);
    return n;
  });
  if (out.length === 0) throw new Error(`${flag}: empty list.`);
  return [...new Set(out)].sort((a, b) => a - b);
}
