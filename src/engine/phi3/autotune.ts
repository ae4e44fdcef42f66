/**
 * Kernel tuning measured on the user's own GPU. `matMulNBitsTuningFor` picks the decode GEMVs'
 * and prefill GEMMs' shapes per vendor, but only NVIDIA's choice was ever measured (on an H100
 * and an H200); Apple, Intel and AMD parts get a guess. `autotuneDecode` times real decode steps
 * of the loaded model with each candidate tuning (`decodeTuningCandidates`: the default, the other
 * GEMV shaders, the read-ahead of the next matmul's weights) and keeps the fastest;
 * `autotunePrefill` then times a 128-token prefill chunk with each GEMM shader on top of that
 * choice (`prefillTuningCandidates`). The worker runs both once per GPU, model shape and kernel
 * source, after the first load, in the background: each measurement one task of its engine queue
 * (`AutotuneOptions.schedule`), so the model answers meanwhile; it stores the choice (`autotuneKey`).
 *
 * How it measures: each candidate's kernels are built over the loaded weights (`Phi3Runtime.retune`,
 * pipelines compiled once), then decode steps run as an answer runs them (greedy, run ahead,
 * each token read back), or one prefill chunk after an untimed 16-token one, appended after the
 * cache and truncated away, so the KV cache a chat holds is kept. Rounds go through the candidates in turn, each round in another order, and a
 * candidate's figure is its fastest round (noise only adds time); one a quarter slower than the
 * default after a round is not measured again. The default stays unless a candidate beats it by
 * `minGain` (3%) over the rounds and again in one more measurement of each, back to back
 * (`confirm`): measurement noise alone must not flip the choice. On SwiftShader (`npm run
 * bench:autotune -- --null-runs 15`, the default against three copies of itself) noise kept a
 * copy in 9 of 15 decode autotunes without that second test, 2 of 15 with it. Cost: (rounds ·
 * candidates + 2) · (steps + 1) decode steps plus each candidate's pipeline compiles; with the
 * defaults and four candidates, at most 70 steps (about 0.2 s at an H200's 2–3 ms a step, 7 s at
 * 100 ms a step); prefill adds 2 rounds of 2 candidates and the pair, 6 chunks of 128 tokens and
 * 6 of 16 (about 0.4 s at an H200's 2,000 tok/s, 6 s at 150 tok/s), 8 of each where 'wide-f16'
 * is a third candidate.
 * Attention's tuning (`autotuneAttention`: the kernel, decode's split cap, then the prefill kernel;
 * `attentionTuningFor`'s defaults were timed on an H200 only) is measured the same way, but only
 * once a chat holds ATTENTION_TUNE_CONTEXT tokens: the decode steps and prefill chunk are appended
 * after that chat's own cache, so they attend as many keys as it does and nothing is prefilled
 * for the measurement. Each candidate builds only the attention kernels again
 * (`Phi3Runtime.retuneAttention`); the worker keeps the choice under `attentionAutotuneKey`.
 * Every candidate computes the same product up to rounding: the dp4a GEMV rounds activations to
 * int8 per 32 values (as onnxruntime's accuracy level 4 does), 'wide-f16' computes the prefill
 * GEMMs in f16 (as onnxruntime computes fp16 files), the others differ in summation order only.
 * Rule: nothing here reads storage; the caller keeps the result.
 */
import { AppError } from '../errors';
import { adapterText, type AdapterNames } from '../gpu/device';
import { ATTENTION_SOURCE_ID, attentionKernelsFor, attentionTuningFor, type AttentionTuning } from '../kernels/attention';
import { MATMUL_NBITS_SOURCE_ID, matMulNBitsDp4aSupported, matMulNBitsTuningFor, matMulNBitsWarmNextSupported, type MatMulNBitsTuning } from '../kernels/matmul-nbits';
import { GREEDY_SAMPLING } from '../types';
import type { Phi3Runtime } from './model';
import type { Phi3Config } from './plan';

/** After the first round, candidates slower than this many times the default are not measured again. */
const PRUNE = 1.25;
/** Rounds over the candidates unless AutotuneOptions.rounds says otherwise. */
const ROUNDS = 2;

/** A tuning to measure: of the MatMulNBits kernels (T, the default), or of attention (AttentionTuning). */
export interface TuningCandidate<T = MatMulNBitsTuning> {
  /** Short name for stats and the model panel: 'default', 'dp4a', 'direct', 'warm-next', 'lanes', … */
  name: string;
  /** Overrides on the adapter's defaults (as LoadOptions.matMulTuning or .attention); undefined: the defaults. */
  tuning: T | undefined;
}

export interface CandidateTiming {
  name: string;
  /** Fastest round's milliseconds per decode step or prefill chunk; null where the candidate failed. */
  ms: number | null;
  /** Why it failed (a pipeline that did not compile, …). */
  error?: string;
}

export interface AutotuneResult<T = MatMulNBitsTuning> {
  /** The candidate the runtime now runs. */
  chosen: TuningCandidate<T>;
  timings: CandidateTiming[];
  /** Wall time the tuning took, compiles included. */
  ms: number;
}

export interface AutotuneOptions<T = MatMulNBitsTuning> {
  candidates?: readonly TuningCandidate<T>[];
  /** Rounds over the candidates (default 2). */
  rounds?: number;
  /** autotuneDecode: timed decode steps per candidate and round (default 6), after one untimed step. */
  steps?: number;
  /** Least speed-up over the default that replaces it, as a fraction (default 0.03). */
  minGain?: number;
  /**
   * Whether a candidate that beats the default over the rounds must beat it again, by minGain, in
   * one more measurement of each, back to back (default true; 2 more measurements, in onProgress's
   * total whether or not they run).
   */
  confirm?: boolean;
  /** Called after each candidate's round: done and total measurements. */
  onProgress?: (done: number, total: number) => void;
  /**
   * Runs each unit of the tuning: every measurement, and the switch to the choice at the end. The
   * worker passes its engine queue, so that chat requests run between measurements while the
   * model is already in use. With it, each measurement leaves the runtime on the tuning it found
   * (whatever runs between units runs the tuning the runtime had before), and it checks that the
   * appended tokens still fit after whatever ran before it. Without it, the units run back to back.
   */
  schedule?: Schedule;
}

/** Runs one unit of work when its turn comes (AutotuneOptions.schedule). */
export type Schedule = <T>(work: () => Promise<T>) => Promise<T>;

/** A CPU standing in for a GPU (SwiftShader, llvmpipe, WARP): measuring kernels there only takes CPU time from the chat. */
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
 * Whether the prefill autotune also measures the wide GEMM in f16 arithmetic (tuning.gemmF16): on
 * the f16 path (`precision`), where the device has `shader-f16`. The f32 path keeps f32
 * arithmetic throughout; it is the one to check against a reference in f32.
 */
export function f16GemmOffered(precision: string, shaderF16: boolean): boolean {
  return precision === 'f16' && shaderF16;
}

/**
 * Prefill candidates on top of the decode choice `decode` (its tuning, or undefined for the
 * defaults): that choice first, then the other GEMM shader ('tiled' where the adapter's default is
 * 'wide', else 'wide' with the real GPUs' column split), then with `f16Gemm` (f16GemmOffered) the
 * wide GEMM in f16 arithmetic ('wide-f16'; the real GPUs' column split where the default is not
 * already wide).
 */
export function prefillTuningCandidates(adapter: AdapterNames, decode: MatMulNBitsTuning | undefined, f16Gemm = false): TuningCandidate[] {
  const wide = (decode?.gemm ?? matMulNBitsTuningFor(adapter).gemm) === 'wide';
  const wideSplit: MatMulNBitsTuning = { gemm: 'wide', gemmWideCols: 2, gemmWideMinGroups: 256 };
  const out: TuningCandidate[] = [
    { name: 'default', tuning: decode },
    { name: wide ? 'tiled' : 'wide', tuning: { ...decode, ...(wide ? { gemm: 'tiled' } : wideSplit) } },
  ];
  if (f16Gemm) out.push({ name: 'wide-f16', tuning: { ...decode, ...(wide ? { gemm: 'wide' } : wideSplit), gemmF16: true } });
  return out;
}

/**
 * Where a measured choice is kept: the adapter, the model's shapes and precision, the MatMulNBits
 * sources, the adapter's defaults and the candidates. A change to any of them measures again.
 */
export function autotuneKey(adapter: AdapterNames, config: Phi3Config, precision: string, candidates: readonly TuningCandidate[]): string {
  const { vendor = '', architecture = '', device = '', description = '' } = adapter;
  const { hidden, intermediate, heads, kvHeads, headDim, vocab, layers } = config;
  return JSON.stringify({
    adapter: [vendor, architecture, device, description],
    model: [hidden, intermediate, heads, kvHeads, headDim, vocab, layers],
    precision,
    kernels: MATMUL_NBITS_SOURCE_ID,
    defaults: matMulNBitsTuningFor(adapter),
    candidates: candidates.map((c) => c.tuning ?? null),
  });
}

/** Measurements one autotune stage makes at most: `rounds` over the candidates, and with `confirm` the leader and the default once more. */
function autotuneMeasurements(candidates: number, rounds: number, confirm: boolean): number {
  return rounds * candidates + (confirm && candidates > 1 ? 2 : 0);
}

/** Times one use of the runtime as it is now (ms), leaving its cache as it found it. */
type Measure = (runtime: Phi3Runtime) => Promise<number>;

/**
 * Milliseconds per decode step of the runtime as it is now: `steps` (greedy, run ahead, each token
 * read back) timed after one untimed, appended after the cache and truncated away.
 */
export async function decodeStepMs(runtime: Phi3Runtime, steps: number): Promise<number> {
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

/** Milliseconds of one prefill chunk of `rows` tokens after an untimed one of 16, both appended and truncated away. */
export async function prefillChunkMs(runtime: Phi3Runtime, rows: number): Promise<number> {
  const start = runtime.cachedIds.length;
  const ids = Array.from({ length: rows }, (_, i) => 100 + ((i * 7919) % 20000));
  try {
    await runtime.logits(ids.slice(0, 16));
    runtime.truncate(start);
    const t0 = performance.now();
    await runtime.logits(ids);
    return performance.now() - t0;
  } finally {
    runtime.truncate(start);
  }
}

export interface KernelsResult {
  decode: AutotuneResult;
  /** Its chosen tuning includes the decode choice: the one the runtime now runs. */
  prefill: AutotuneResult;
}

/** How many measurements `autotuneKernels` makes at most with these decode candidates (its onProgress total). */
export function measurementCount(candidates: readonly TuningCandidate[], adapter: AdapterNames, f16Gemm = false): number {
  return autotuneMeasurements(candidates.length, ROUNDS, true) + autotuneMeasurements(prefillTuningCandidates(adapter, undefined, f16Gemm).length, ROUNDS, true);
}

/**
 * What the worker runs after a first load on a GPU, in the background: the decode GEMVs (`candidates`, from
 * `decodeTuningCandidates`), then the prefill GEMMs on top of their choice. `onProgress` counts
 * the measurements of both against one total.
 */
export async function autotuneKernels(runtime: Phi3Runtime, candidates: readonly TuningCandidate[], adapter: AdapterNames, onProgress?: (done: number, total: number) => void, schedule?: Schedule): Promise<KernelsResult> {
  const decodeRuns = autotuneMeasurements(candidates.length, ROUNDS, true);
  const f16Gemm = f16GemmOffered(runtime.precision, runtime.shaderF16);
  const total = measurementCount(candidates, adapter, f16Gemm);
  const decode = await autotuneDecode(runtime, { candidates, schedule, onProgress: (done) => onProgress?.(done, total) });
  const prefill = await autotunePrefill(runtime, { candidates: prefillTuningCandidates(adapter, decode.chosen.tuning, f16Gemm), schedule, onProgress: (done) => onProgress?.(decodeRuns + done, total) });
  return { decode, prefill };
}

/**
 * The context (cached tokens) from which the worker measures attention (`autotuneAttention`):
 * below it attention is a small part of a step (on the H200 the 32-layer step grows from 1.83 ms
 * at context 0 to 2.36 at 512), and the split caps measured differ only past cap · 64 keys
 * (1,536 for the real GPUs' 24).
 */
export const ATTENTION_TUNE_CONTEXT = 2048;

/**
 * A stored attention choice is measured again once a chat holds this many times the context it
 * was measured at (the 128K model: at 8K, 32K and 128K tokens at most), where each split streams
 * that many times the keys and another cap may win; the longest chat's choice is the one kept,
 * as attention matters most there.
 */
export const ATTENTION_RETUNE_FACTOR = 4;

/**
 * Attention's decode candidates: the adapter's defaults (attentionTuningFor), the other kernel
 * ('serial' or 'lanes', where the head dim allows it), and half and twice the split cap (fewer
 * splits suit a GPU with few cores, more a large one at long context).
 */
export function attentionDecodeCandidates(adapter: AdapterNames, headDim: number): TuningCandidate<AttentionTuning>[] {
  const defaults = attentionTuningFor(adapter, headDim);
  const cap = defaults.maxSplits ?? 64;
  const out: TuningCandidate<AttentionTuning>[] = [{ name: 'default', tuning: undefined }];
  if (attentionKernelsFor(headDim).lanes) {
    const other = (defaults.kernel ?? 'serial') === 'lanes' ? 'serial' : 'lanes';
    out.push({ name: other, tuning: { kernel: other } });
  }
  const fewer = Math.max(1, Math.floor(cap / 2));
  out.push({ name: `splits-${fewer}`, tuning: { maxSplits: fewer } }, { name: `splits-${cap * 2}`, tuning: { maxSplits: cap * 2 } });
  return out;
}

/**
 * Attention's prefill candidates on top of the decode choice `decode`: that choice, then the other
 * prefill kernel ('per-query' where the default is the blocked one, else 'blocked'), where the
 * head dim allows the blocked one.
 */
export function attentionPrefillCandidates(adapter: AdapterNames, headDim: number, decode: AttentionTuning | undefined): TuningCandidate<AttentionTuning>[] {
  const out: TuningCandidate<AttentionTuning>[] = [{ name: 'default', tuning: decode }];
  if (!attentionKernelsFor(headDim).blocked) return out;
  const blocked = (decode?.prefill ?? attentionTuningFor(adapter, headDim).prefill) === 'blocked';
  out.push(blocked ? { name: 'per-query', tuning: { ...decode, prefill: 'kernel' } } : { name: 'blocked', tuning: { ...decode, prefill: 'blocked' } });
  return out;
}

/** As autotuneKey, for the attention tuning: the adapter, the model, the attention sources, the adapter's defaults and the candidates. */
export function attentionAutotuneKey(adapter: AdapterNames, config: Phi3Config, precision: string): string {
  const { vendor = '', architecture = '', device = '', description = '' } = adapter;
  const { hidden, heads, kvHeads, headDim, layers, attentionWindow = 0 } = config;
  return JSON.stringify({
    tuning: 'attention',
    adapter: [vendor, architecture, device, description],
    model: [hidden, heads, kvHeads, headDim, layers, attentionWindow],
    precision,
    kernels: ATTENTION_SOURCE_ID,
    defaults: attentionTuningFor(adapter, headDim),
    candidates: [...attentionDecodeCandidates(adapter, headDim), ...attentionPrefillCandidates(adapter, headDim, undefined)].map((c) => c.tuning ?? null),
  });
}

/** Tokens `autotuneAttention` appends after the cache at most (a 128-token prefill chunk). */
const ATTENTION_TUNE_ROWS = 128;

/**
 * Whether the chat in `runtime` is long enough for `autotuneAttention`, with room after it for what
 * it appends: ATTENTION_TUNE_CONTEXT tokens, or ATTENTION_RETUNE_FACTOR times the context a stored
 * choice was measured at (`measuredAt`; 0: none stored).
 */
export function attentionTuneDue(runtime: Pick<Phi3Runtime, 'cachedIds' | 'contextLimit'>, measuredAt = 0): boolean {
  const n = runtime.cachedIds.length;
  return n >= Math.max(ATTENTION_TUNE_CONTEXT, ATTENTION_RETUNE_FACTOR * measuredAt) && n + ATTENTION_TUNE_ROWS <= runtime.contextLimit;
}

/** How many measurements `autotuneAttention` makes at most (its onProgress total). */
export function attentionMeasurementCount(adapter: AdapterNames, headDim: number, rounds = ROUNDS, confirm = true): number {
  return autotuneMeasurements(attentionDecodeCandidates(adapter, headDim).length, rounds, confirm) + autotuneMeasurements(attentionPrefillCandidates(adapter, headDim, undefined).length, rounds, confirm);
}

export interface AttentionResult {
  decode: AutotuneResult<AttentionTuning>;
  /** Its chosen tuning includes the decode choice: the one the runtime now runs. */
  prefill: AutotuneResult<AttentionTuning>;
  /** The context it was measured at (cached tokens). */
  context: number;
}

/**
 * What the worker runs once a chat's context reaches ATTENTION_TUNE_CONTEXT, in the background:
 * decode steps with each attention candidate (`attentionDecodeCandidates`), then a prefill chunk
 * of `rows` (default 128) with each prefill kernel on top of that choice, all appended after the
 * chat's own cache and truncated away, so they attend as many keys as the chat does. The
 * MatMulNBits kernels stay as they are; each candidate builds only the attention kernels again.
 * The choice then serves every context: at short ones attention is a small part of a step.
 */
export async function autotuneAttention(runtime: Phi3Runtime, adapter: AdapterNames, opts: Omit<AutotuneOptions<AttentionTuning>, 'candidates'> & { rows?: number } = {}): Promise<AttentionResult> {
  const { headDim } = runtime.plan.config;
  const context = runtime.cachedIds.length;
  const rounds = opts.rounds ?? ROUNDS;
  const confirm = opts.confirm ?? true;
  const decodeCandidates = attentionDecodeCandidates(adapter, headDim);
  const total = attentionMeasurementCount(adapter, headDim, rounds, confirm);
  const decodeRuns = autotuneMeasurements(decodeCandidates.length, rounds, confirm);
  const knob = attentionKnob(runtime);
  const prefillRun = prefillMeasure(runtime, { rows: opts.rows ?? ATTENTION_TUNE_ROWS });
  const decode = await autotune(runtime, knob, 'attention decode', ...decodeMeasure(opts), { ...opts, candidates: decodeCandidates, onProgress: (done) => opts.onProgress?.(done, total) });
  const prefillCandidates = attentionPrefillCandidates(adapter, headDim, decode.chosen.tuning);
  const prefill = await autotune(runtime, knob, 'attention prefill', ...prefillRun, { ...opts, candidates: prefillCandidates, onProgress: (done) => opts.onProgress?.(decodeRuns + done, total) });
  return { decode, prefill, context };
}

/**
 * Times decode steps with each candidate on `runtime` (see the module header) and leaves it
 * running the fastest. The runtime must not be used meanwhile. A candidate that fails is skipped;
 * if the first (the default) fails, the error is thrown (the runtime cannot run at all).
 */
export async function autotuneDecode(runtime: Phi3Runtime, opts: AutotuneOptions = {}): Promise<AutotuneResult> {
  return autotune(runtime, matMulKnob(runtime), 'decode', ...decodeMeasure(opts), opts);
}

/** autotuneDecode's measurement: tokens it appends, and how it times them. */
function decodeMeasure(opts: { steps?: number }): [number, Measure] {
  const steps = opts.steps ?? 6;
  if (!Number.isInteger(steps) || steps < 1) throw new AppError('BAD_ARGUMENT', `autotune: steps (${steps}) must be a positive integer.`);
  return [steps + 2, (r) => decodeStepMs(r, steps)];
}

/** autotunePrefill's measurement: tokens it appends, and how it times them. */
function prefillMeasure(runtime: Phi3Runtime, opts: { rows?: number }): [number, Measure] {
  const rows = opts.rows ?? 128;
  if (!Number.isInteger(rows) || rows < 16 || rows > runtime.maxPrefill) throw new AppError('BAD_ARGUMENT', `autotune: prefill rows (${rows}) must be an integer from 16 to ${runtime.maxPrefill} (maxPrefill).`);
  return [rows, (r) => prefillChunkMs(r, rows)];
}

/**
 * The same for prefill: times one chunk of `rows` tokens (default 128, a typical turn) with each
 * candidate. Its candidates are built on the decode choice (`prefillTuningCandidates`), so the
 * tuning it leaves running keeps that choice.
 */
export async function autotunePrefill(runtime: Phi3Runtime, opts: AutotuneOptions & { rows?: number } = {}): Promise<AutotuneResult> {
  return autotune(runtime, matMulKnob(runtime), 'prefill', ...prefillMeasure(runtime, opts), opts);
}

/** What a tuning run switches between candidates: `get` the tuning the runtime's kernels have, `set` builds them with another. */
interface Knob<T> {
  get(): T | undefined;
  set(tuning: T | undefined): Promise<void>;
}

const matMulKnob = (runtime: Phi3Runtime): Knob<MatMulNBitsTuning> => ({ get: () => runtime.matMulTuning, set: (t) => runtime.retune(t) });
const attentionKnob = (runtime: Phi3Runtime): Knob<AttentionTuning> => ({ get: () => runtime.attentionTuning, set: (t) => runtime.retuneAttention(t) });

async function autotune<T>(runtime: Phi3Runtime, knob: Knob<T>, what: string, tokens: number, measure: Measure, opts: AutotuneOptions<T>): Promise<AutotuneResult<T>> {
  const t0 = performance.now();
  const candidates = opts.candidates ?? [{ name: 'default', tuning: knob.get() }];
  const rounds = opts.rounds ?? ROUNDS;
  const minGain = opts.minGain ?? 0.03;
  if (candidates.length === 0) throw new AppError('BAD_ARGUMENT', `autotune (${what}): no candidates.`);
  if (!Number.isInteger(rounds) || rounds < 1) throw new AppError('BAD_ARGUMENT', `autotune (${what}): rounds (${rounds}) must be a positive integer.`);
  const fits = () => {
    if (runtime.cachedIds.length + tokens > runtime.contextLimit) throw new AppError('CONTEXT_OVERFLOW', `autotune (${what}): ${tokens} more tokens do not fit after the ${runtime.cachedIds.length} cached.`);
  };
  fits();
  const unit: Schedule = opts.schedule ?? ((work) => work());
  const restore = opts.schedule !== undefined;
  const best = new Map<TuningCandidate<T>, number>();
  const errors = new Map<TuningCandidate<T>, string>();
  const before = knob.get();
  // The candidate the runtime's kernels are built with now (undefined: none of them, or half built).
  let current = candidates.find((c) => c.tuning === before);
  const switchTo = async (c: TuningCandidate<T> | undefined, tuning: T | undefined) => {
    current = undefined;
    await knob.set(tuning);
    current = c;
  };
  const home = current;
  const confirm = (opts.confirm ?? true) && candidates.length > 1;
  const total = autotuneMeasurements(candidates.length, rounds, confirm);
  let done = 0;
  /** One measurement of `c` as a unit: its ms (also kept in `best`), or null where it failed (kept in `errors`). */
  const measureOnce = (c: TuningCandidate<T>) =>
    unit(async () => {
      if (restore) fits();
      try {
        if (current !== c) await switchTo(c, c.tuning);
        const ms = await measure(runtime);
        best.set(c, Math.min(ms, best.get(c) ?? Infinity));
        return ms;
      } catch (err) {
        if (err instanceof AppError && err.code === 'GPU_DEVICE_LOST') throw err;
        errors.set(c, err instanceof Error ? err.message : String(err));
        return null;
      } finally {
        // Scheduled: back to the tuning found, for whatever runs before the next unit.
        if (restore && current !== home) await switchTo(home, before);
      }
    });
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < candidates.length; i++) {
      const c = candidates[(i + r) % candidates.length];
      // A candidate a quarter slower than the default in a round is out: noise is not that large,
      // and on a slow GPU every step measured holds up a message sent meanwhile.
      const slow = r > 0 && best.has(candidates[0]) && best.get(c)! > best.get(candidates[0])! * PRUNE;
      if (!errors.has(c) && !slow) await measureOnce(c);
      opts.onProgress?.(++done, total);
    }
  }
  const fallback = candidates[0];
  if (!best.has(fallback)) throw new AppError('GPU_VALIDATION', `The GPU could not run the ${what} kernels: ${errors.get(fallback) ?? 'no measurement'}`);
  const baseline = best.get(fallback)!;
  let chosen = fallback;
  let chosenMs = baseline;
  for (const [c, ms] of best) {
    if (ms < baseline * (1 - minGain) && ms < chosenMs) [chosen, chosenMs] = [c, ms];
  }
  if (confirm) {
    // The leader against the default once more, back to back: a lead that noise made (a round
    // the default ran slow) rarely shows twice, so it must hold here too.
    if (chosen !== fallback) {
      const lead = await measureOnce(chosen);
      opts.onProgress?.(done + 1, total);
      const base = await measureOnce(fallback);
      opts.onProgress?.(done + 2, total);
      if (lead === null || base === null || !(lead < base * (1 - minGain))) chosen = fallback;
    } else {
      opts.onProgress?.(done + 1, total);
      opts.onProgress?.(done + 2, total);
    }
  }
  if (current !== chosen) await unit(() => switchTo(chosen, chosen.tuning));
  return {
    chosen,
    timings: candidates.map((c) => ({ name: c.name, ms: best.get(c) ?? null, ...(errors.has(c) ? { error: errors.get(c) } : {}) })),
    ms: performance.now() - t0,
  };
}
