import { describe, expect, it } from 'vitest';
import { generate, type TokenRuntime } from './generate';
import { DEFAULT_SAMPLING } from './types';
import { AppError } from './errors';

/** A CPU runtime with a deterministic rule (next = last + 1 mod 50) that records what it was fed. */
class CountingRuntime implements TokenRuntime {
  cachedIds: number[] = [];
  fed: number[][] = [];
  steps: number[] = [];
  constructor(readonly contextLimit = 100) {}
  truncate(length: number) {
    this.cachedIds.length = Math.min(length, this.cachedIds.length);
  }
  async step(ids: readonly number[], _sampling: unknown, stepIndex: number) {
    this.fed.push([...ids]);
    this.steps.push(stepIndex);
    this.cachedIds.push(...ids);
    return (this.cachedIds[this.cachedIds.length - 1] + 1) % 50;
  }
}

async function collect(gen: AsyncGenerator<number, unknown>) {
  const out: number[] = [];
  let r = await gen.next();
  while (!r.done) {
    out.push(r.value);
    r = await gen.next();
  }
  return { out, timings: r.value as Awaited<ReturnType<typeof generate>['return']> extends never ? never : Record<string, unknown> };
}

const req = (promptIds: number[], extra: Partial<Parameters<typeof generate>[1]> = {}) => ({
  promptIds,
  maxNewTokens: 5,
  eosTokenIds: new Set([49]),
  sampling: DEFAULT_SAMPLING,
  ...extra,
});

describe('generate', () => {
  it('stops at max tokens and at end-of-sequence', async () => {
    const rt = new CountingRuntime();
    expect((await collect(generate(rt, req([1, 2, 3])))).out).toEqual([4, 5, 6, 7, 8]);
    const rt2 = new CountingRuntime();
    const r = await collect(generate(rt2, req([45], { maxNewTokens: 10 })));
    expect(r.out).toEqual([46, 47, 48]);
    expect(r.timings.stopReason).toBe('eos');
  });

  it('numbers the RNG steps from firstStep, so a continued answer draws where it left off', async () => {
    const rt = new CountingRuntime();
    await collect(generate(rt, req([1, 2, 3])));
    expect(rt.steps).toEqual([0, 1, 2, 3, 4]);
    const rt2 = new CountingRuntime();
    await collect(generate(rt2, req([1, 2, 3, 4, 5], { firstStep: 2, maxNewTokens: 3 })));
    expect(rt2.steps).toEqual([2, 3, 4]);
  });

  it('reuses the KV cache: a follow-up feeds only the new tokens', async () => {
    const rt = new CountingRuntime();
    const first = await collect(generate(rt, req([1, 2, 3])));
    const followUp = [1, 2, 3, ...first.out, 20, 21];
    rt.fed = [];
    const second = await collect(generate(rt, req(followUp)));
    // Everything up to the last generated token that was fed back is kept; only 8 (never fed), 20, 21 run.
    expect(rt.fed[0]).toEqual([8, 20, 21]);
    expect(second.timings.prefillTokens).toBe(3);
    expect(second.out).toEqual([22, 23, 24, 25, 26]);
  });

  it('an edited history truncates the cache to the common prefix', async () => {
    const rt = new CountingRuntime();
    await collect(generate(rt, req([1, 2, 3, 4])));
    rt.fed = [];
    await collect(generate(rt, req([1, 2, 9, 9])));
    expect(rt.fed[0]).toEqual([9, 9]);
  });

  it('throws CONTEXT_OVERFLOW when the prompt does not fit, and stops when the context fills', async () => {
    const rt = new CountingRuntime(10);
    await expect(collect(generate(rt, req(Array.from({ length: 10 }, () => 1))))).rejects.toMatchObject({ code: 'CONTEXT_OVERFLOW' });
    const r = await collect(generate(rt, req([1, 2, 3, 4, 5, 6], { maxNewTokens: 50, eosTokenIds: new Set() })));
    expect(r.timings.stopReason).toBe('context-full');
    expect(rt.cachedIds.length).toBeLessThan(10);
  });

  it('honours an AbortSignal between tokens', async () => {
    const rt = new CountingRuntime();
    const ctrl = new AbortController();
    const gen = generate(rt, req([1], { maxNewTokens: 40, eosTokenIds: new Set(), signal: ctrl.signal }));
    const got: number[] = [];
    for await (const t of gen) {
      got.push(t);
      if (got.length === 3) ctrl.abort();
    }
    expect(got).toEqual([2, 3, 4]);
  });

  it('rejects a bad maxNewTokens with a typed error', async () => {
    await expect(collect(generate(new CountingRuntime(), req([1], { maxNewTokens: 0 })))).rejects.toBeInstanceOf(AppError);
  });

  it('a runtime that cannot reuse its cache across a switch (Phi-3 128K LongRoPE) gets the whole prompt, and Stop is heard in a decode step that runs it again', async () => {
    /** CountingRuntime whose keys change past 10 tokens: a step across runs everything again (and hears feed.signal). */
    class SwitchingRuntime extends CountingRuntime {
      long = false;
      feeds: Array<{ signal?: AbortSignal } | undefined> = [];
      /** Called as a step starts to run the sequence again (the user pressing Stop then). */
      onRerun = () => {};
      reusableFor(stepEnd: number) {
        return stepEnd > 10 === this.long ? this.cachedIds.length : 0;
      }
      override async step(ids: readonly number[], sampling: unknown, stepIndex: number, feed?: { signal?: AbortSignal; onPrefill?: (done: number) => void }) {
        this.feeds.push(feed);
        if (this.reusableFor(this.cachedIds.length + ids.length) < this.cachedIds.length) {
          ids = [...this.cachedIds, ...ids];
          this.cachedIds.length = 0;
          feed?.onPrefill?.(4);
          this.onRerun();
          if (feed?.signal?.aborted) throw new DOMException('stopped between chunks', 'AbortError');
        }
        this.long = this.cachedIds.length + ids.length > 10;
        return super.step(ids, sampling, stepIndex);
      }
    }
    const rt = new SwitchingRuntime();
    const reports: Array<[number, number, boolean | undefined]> = [];
    const first = await collect(generate(rt, req([1, 2, 3, 4, 5, 6, 7, 8], { maxNewTokens: 4, onPrefill: (done, total, again) => reports.push([done, total, again]) })));
    expect(first.out).toEqual([9, 10, 11, 12]);
    // Token 10 is fed at 9 cached (10 in all); token 11 at 10 cached crosses: that step runs all 11.
    expect(rt.fed.map((f) => f.length)).toEqual([8, 1, 1, 11]);
    expect(rt.feeds.map((f) => f !== undefined)).toEqual([true, false, false, true]);
    // Its chunks are reported as the whole sequence read again.
    expect(reports).toEqual([[4, 11, true]]);

    // A prompt that starts with the 11 cached but ends below the switch keeps none of them.
    rt.truncate(9);
    const below = await collect(generate(rt, req([1, 2, 3, 4, 5, 6, 7, 8, 9, 20], { maxNewTokens: 1 })));
    expect(below.timings).toMatchObject({ promptTokens: 10, prefillTokens: 10 });

    // Stopped while a decode step runs the sequence again (at 10 cached, 11 in all): the answer
    // ends as stopped there instead of after the whole rerun and another token.
    const ctrl = new AbortController();
    rt.onRerun = () => ctrl.abort();
    const stopped = await collect(generate(rt, req([1, 2, 3, 4, 5, 6, 7, 8, 9], { maxNewTokens: 5, signal: ctrl.signal })));
    expect(stopped.out).toEqual([10, 11]);
    expect(stopped.timings).toMatchObject({ stopReason: 'aborted', newTokens: 2 });
  });
  it('a runtime that cannot go on from the common prefix (a windowed ring that overwrote its keys) runs the whole prompt, and says so in the timings', async () => {
    /** CountingRuntime that can resume only within 3 tokens of the furthest position it wrote (a ring's slack). */
    class RingRuntime extends CountingRuntime {
      writtenEnd = 0;
      reusableFor() {
        return this.cachedIds.length + 3 >= this.writtenEnd ? this.cachedIds.length : 0;
      }
      override truncate(length: number) {
        super.truncate(length);
        if (this.cachedIds.length === 0) this.writtenEnd = 0;
      }
      override async step(ids: readonly number[], sampling: unknown, stepIndex: number) {
        if (this.reusableFor() < this.cachedIds.length) throw new Error('fed after a truncation the ring cannot resume from');
        const id = await super.step(ids, sampling, stepIndex);
        this.writtenEnd = Math.max(this.writtenEnd, this.cachedIds.length);
        return id;
      }
    }
    const rt = new RingRuntime();
    await collect(generate(rt, req([1, 2, 3, 4, 5, 6, 7, 8], { maxNewTokens: 5 })));
    // Cached: 8 prompt ids and 4 of the 5 answer ids (the last is never fed back); written to 12.
    expect(rt.cachedIds).toHaveLength(12);
    // Regenerating the answer goes back 4 tokens (to 8 of 12 written): past the slack of 3.
    const again = await collect(generate(rt, req([1, 2, 3, 4, 5, 6, 7, 8], { maxNewTokens: 2 })));
    expect(again.out).toEqual([9, 10]);
    expect(again.timings).toMatchObject({ promptTokens: 8, prefillTokens: 8 });
    expect(rt.fed.at(-2)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    // A follow-up within the slack keeps the cache: only the new ids run.
    const follow = await collect(generate(rt, req([1, 2, 3, 4, 5, 6, 7, 8, 9, 30], { maxNewTokens: 1 })));
    expect(follow.timings).toMatchObject({ promptTokens: 10, prefillTokens: 1 });
  });
});
