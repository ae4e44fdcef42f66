/**
 * Token generation on top of any forward-pass runtime, and KV-cache reuse across chat turns.
 *
 * `generate` is an async generator of token ids: it feeds the prompt (only the part not already in
 * the KV cache), then one token per step, and stops on an end-of-sequence id, the max-new-tokens
 * limit, the context limit, or the AbortSignal. The runtime owns the cache; the next request
 * keeps the longest common prefix of token ids (unless the runtime's `reusableFor` says the cache
 * must run again: Phi-3 128K across its LongRoPE switch, or a windowed model's ring truncated back
 * past keys it overwrote), so a follow-up message does not re-run the whole conversation.
 * Rule: this module never touches GPU objects; it only calls `TokenRuntime`.
 */
import { AppError } from './errors';
import type { PrefillReport, SamplingOptions, StopReason } from './types';

export interface TokenRuntime {
  /** Tokens the KV cache can hold. */
  readonly contextLimit: number;
  /** Tokens currently in the KV cache, in order. */
  readonly cachedIds: readonly number[];
  /** Drops cached tokens beyond `length` (no GPU work: later steps overwrite them). */
  truncate(length: number): void;
  /**
   * Runs `ids` through the model after the cached tokens, appends them to the cache, and returns
   * the next token chosen with `sampling` (temperature 0 → greedy). `stepIndex` seeds the RNG.
   * `feed` (a long prompt): a runtime that runs `ids` in chunks may report each chunk done and
   * stop between chunks once `feed.signal` aborts, rejecting with an AbortError; the cache then
   * holds the chunks that ran.
   */
  step(ids: readonly number[], sampling: SamplingOptions, stepIndex: number, feed?: PrefillFeed): Promise<number>;
  /**
   * How many of the cached tokens a step ending at `stepEnd` tokens can keep; the rest it runs
   * again (absent: all of them). Phi-3 128K rotates every key by the LongRoPE factors of the whole
   * sequence's length, so a cache written on one side of the switch is run again on the other.
   * `reach`: as PrefillFeed.reach, for the step it is asked about.
   */
  reusableFor?(stepEnd: number, reach?: number): number;
}

/** Whether a step ending at `stepEnd` runs the cached tokens again first (TokenRuntime.reusableFor). */
export function runsCacheAgain(runtime: TokenRuntime, stepEnd: number, reach?: number): boolean {
  return (runtime.reusableFor?.(stepEnd, reach) ?? Infinity) < runtime.cachedIds.length;
}

/** How a long prompt's prefill is followed and stopped (TokenRuntime.step). */
export interface PrefillFeed {
  signal?: AbortSignal;
  /** `done` of the step's ids have run on the GPU. */
  onPrefill?: (done: number) => void;
  /**
   * The length the sequence is known to grow to, beyond this step (the read-ahead's target): a
   * runtime free to pick length-dependent factors for it (the native Phi-3 128K's LongRoPE) rotates
   * this step's keys as for a step ending there, so the steps that follow up to it keep them.
   * A runtime that runs a fixed graph (onnxruntime) ignores it.
   */
  reach?: number;
}

export interface GenerateRequest {
  /** The whole conversation as token ids (prompt format already applied). */
  promptIds: readonly number[];
  maxNewTokens: number;
  eosTokenIds: ReadonlySet<number>;
  sampling: SamplingOptions;
  signal?: AbortSignal;
  /**
   * The RNG step of the first new token (default 0): the sampler's draw for a token depends only
   * on the seed and this index. A continued answer passes the number of answer tokens already in
   * the prompt, so stopping and continuing draws what one uninterrupted run would have drawn.
   */
  firstStep?: number;
  /**
   * Called as a long prompt runs: `done` of the `total` ids not in the cache have run; and with
   * `again` as a decode step runs the whole sequence again (`reusableFor`), `done` of all of it.
   */
  onPrefill?: PrefillReport;
}

export interface GenerationTimings {
  promptTokens: number;
  /** Tokens actually run through prefill (the prompt minus what the cache already held). */
  prefillTokens: number;
  prefillMs: number;
  decodeMs: number;
  newTokens: number;
  stopReason: StopReason;
}

/** How many ids `a` and `b` share from the start. */
export function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/**
 * Yields generated token ids (end-of-sequence ids are not yielded) and returns the timings.
 * Throws CONTEXT_OVERFLOW if the prompt alone does not fit.
 */
export async function* generate(runtime: TokenRuntime, req: GenerateRequest): AsyncGenerator<number, GenerationTimings, undefined> {
  const { promptIds, maxNewTokens } = req;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) {
    throw new AppError('BAD_ARGUMENT', `maxNewTokens must be a positive integer, got ${maxNewTokens}.`);
  }
  if (promptIds.length === 0) throw new AppError('BAD_ARGUMENT', 'The prompt is empty: there is nothing to continue.');
  if (promptIds.length >= runtime.contextLimit) {
    throw new AppError(
      'CONTEXT_OVERFLOW',
      `The conversation is ${promptIds.length} tokens but the context holds ${runtime.contextLimit}. Start a new conversation or drop older messages.`,
    );
  }
  // Keep the cached prefix, but always re-run at least the last prompt token to get fresh logits.
  let keep = Math.min(commonPrefix(runtime.cachedIds, promptIds), promptIds.length - 1);
  runtime.truncate(keep);
  // A cache that cannot go on from there (keys rotated across LongRoPE's switch, or a windowed
  // ring that overwrote keys the next token attends: reusableFor) runs the whole prompt.
  if (runsCacheAgain(runtime, promptIds.length)) {
    keep = 0;
    runtime.truncate(0);
  }
  const timings: GenerationTimings = { promptTokens: promptIds.length, prefillTokens: promptIds.length - keep, prefillMs: 0, decodeMs: 0, newTokens: 0, stopReason: 'max-tokens' };

  const aborted = () => req.signal?.aborted === true;
  if (aborted()) return { ...timings, stopReason: 'aborted' };
  let t0 = performance.now();
  const firstStep = req.firstStep ?? 0;
  const rest = promptIds.slice(keep);
  let next: number;
  try {
    next = await runtime.step(rest, req.sampling, firstStep, { signal: req.signal, onPrefill: req.onPrefill && ((done) => req.onPrefill!(done, rest.length)) });
  } catch (err) {
    // Stopped between two chunks of a long prompt: the cache holds the chunks that ran.
    if (aborted()) return { ...timings, prefillMs: performance.now() - t0, stopReason: 'aborted' };
    throw err;
  }
  timings.prefillMs = performance.now() - t0;
  t0 = performance.now();
  for (;;) {
    if (req.eosTokenIds.has(next)) {
      timings.stopReason = 'eos';
      break;
    }
    timings.newTokens++;
    yield next;
    if (timings.newTokens >= maxNewTokens) {
      timings.stopReason = 'max-tokens';
      break;
    }
    if (aborted()) {
      timings.stopReason = 'aborted';
      break;
    }
    if (runtime.cachedIds.length + 1 >= runtime.contextLimit) {
      timings.stopReason = 'context-full';
      break;
    }
    // A step that crosses Phi-3 128K's LongRoPE switch runs the whole sequence again: Stop is
    // heard between its prefill chunks.
    const total = runtime.cachedIds.length + 1;
    const feed = runsCacheAgain(runtime, total) ? { signal: req.signal, onPrefill: req.onPrefill && ((done: number) => req.onPrefill!(done, total, true)) } : undefined;
    try {
      next = await runtime.step([next], req.sampling, firstStep + timings.newTokens, feed);
    } catch (err) {
      if (!aborted()) throw err;
      timings.stopReason = 'aborted';
      break;
    }
  }
  timings.decodeMs = performance.now() - t0;
  return timings;
}
