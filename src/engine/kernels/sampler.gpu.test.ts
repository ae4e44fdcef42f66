import { describe, expect, it } from 'vitest';
import {
  createSampler,
  sampleReference,
  validateSamplerParams,
  writeSamplerParams,
  writeSamplerStep,
  type SamplerParams,
} from './sampler';
import { AppError } from '../errors';
import { createStorageBuffer, readBuffer, writeBuffer } from '../gpu/buffers';
import { withErrorScopes } from '../gpu/device';
import { runtimeName, seededRandom, testGpu } from '../gpu/testing';

// Token ids must match the reference exactly (tolerance 0 mismatches).
interface SampleCase {
  logits: Float32Array;
  history: Uint32Array;
  params: SamplerParams;
  stepIndex: number;
}

const GREEDY: SamplerParams = { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, seed: 0 };

/** Runs every case through one sampler (one submit each, one read-back at the end). */
async function runCases(device: GPUDevice, vocab: number, cases: SampleCase[], logitsOffset = 0): Promise<number[]> {
  return withErrorScopes(device, async () => {
    const maxHistory = Math.max(1, ...cases.map((c) => c.history.length));
    const logits = createStorageBuffer(device, (logitsOffset + vocab) * 4, 'logits');
    const history = createStorageBuffer(device, maxHistory * 4, 'history');
    const out = createStorageBuffer(device, 4, 'token');
    const results = createStorageBuffer(device, cases.length * 4, 'results');
    const sampler = createSampler(device, { vocab, logitsOffset, logits, history, out });
    let lastParams = '';
    cases.forEach((c, i) => {
      writeBuffer(device, logits, logitsOffset * 4, c.logits);
      if (c.history.length) writeBuffer(device, history, 0, c.history);
      const key = JSON.stringify(c.params);
      if (key !== lastParams) writeSamplerParams(device, sampler, c.params);
      lastParams = key;
      writeSamplerStep(device, sampler, { historyLength: c.history.length, stepIndex: c.stepIndex });
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      sampler.encode(pass);
      pass.end();
      enc.copyBufferToBuffer(out, 0, results, i * 4, 4);
      device.queue.submit([enc.finish()]);
    });
    const got = Array.from(new Uint32Array(await readBuffer(device, results)));
    for (const b of [logits, history, out, results, sampler.paramsBuffer, sampler.stateBuffer]) b.destroy();
    return got;
  });
}

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** Logits in a realistic spread; `ties` quantises them so many values repeat. */
function makeLogits(vocab: number, seed: number, scale: number, ties = false): Float32Array {
  const x = seededRandom(vocab, seed, scale);
  if (ties) for (let i = 0; i < vocab; i++) x[i] = Math.round(x[i] * 2) / 2;
  return x;
}

function makeHistory(n: number, vocab: number, seed: number): Uint32Array {
  const r = seededRandom(n, seed, 1);
  return Uint32Array.from(r, (v) => Math.floor(((v + 1) / 2) * vocab) % vocab);
}

describe('sampler kernel [gpu]', () => {
  it('greedy equals argmax (ties to the lowest index) on 200 rows, vocab 32064 and odd sizes', async () => {
    const { device } = await testGpu();
    let mismatches = 0;
    let rows = 0;
    for (const [vocab, count, offset] of [
      [32064, 150, 0],
      [32064, 10, 3 * 32064],
      [1, 5, 0],
      [7, 10, 5],
      [256, 10, 0],
      [257, 10, 0],
      [1000, 5, 0],
    ] as const) {
      const cases: SampleCase[] = Array.from({ length: count }, (_, i) => ({
        logits: makeLogits(vocab, 1000 + vocab + i, 10, i % 3 === 0),
        history: new Uint32Array(0),
        params: GREEDY,
        stepIndex: i,
      }));
      const got = await runCases(device, vocab, cases, offset);
      cases.forEach((c, i) => {
        if (got[i] !== argmax(c.logits)) mismatches++;
      });
      rows += count;
    }
    console.log(`[${runtimeName()}] sampler greedy: ${mismatches} mismatches vs argmax over ${rows} rows (tolerance 0)`);
    expect(mismatches).toBe(0);
  });

  it('sampled tokens equal the reference exactly for many (logits, settings, seed, step) cases', async () => {
    const { device } = await testGpu();
    const settings: SamplerParams[] = [
      { temperature: 0.7, topK: 40, topP: 0.9, repetitionPenalty: 1.1, seed: 42 },
      { temperature: 1, topK: 0, topP: 1, repetitionPenalty: 1, seed: 7 },
      { temperature: 1.5, topK: 0, topP: 0.95, repetitionPenalty: 1.3, seed: 123456789 },
      { temperature: 0.3, topK: 5, topP: 1, repetitionPenalty: 1, seed: 4294967295 },
      { temperature: 1, topK: 1000, topP: 0.5, repetitionPenalty: 0.8, seed: 0 },
      { temperature: 2, topK: 256, topP: 1, repetitionPenalty: 1.05, seed: 99 },
    ];
    let total = 0;
    let mismatches = 0;
    let distinct = 0;
    for (const [vocab, perSetting] of [
      [32064, 6],
      [50, 10],
      [300, 6],
    ] as const) {
      const cases: SampleCase[] = [];
      settings.forEach((params, si) => {
        for (let k = 0; k < perSetting; k++) {
          const seed = 5000 + vocab * 7 + si * 100 + k;
          cases.push({
            logits: makeLogits(vocab, seed, vocab > 1000 ? 6 : 3, k % 4 === 3),
            history: makeHistory(k * 7, vocab, seed + 1),
            params,
            stepIndex: k * 13 + si,
          });
        }
      });
      const got = await runCases(device, vocab, cases);
      const want = cases.map((c) => sampleReference(c.logits, c.history, c.params, c.stepIndex));
      want.forEach((w, i) => {
        if (w !== got[i]) mismatches++;
        if (w !== argmax(cases[i].logits)) distinct++;
      });
      total += cases.length;
    }
    console.log(`[${runtimeName()}] sampler: ${mismatches} mismatches vs reference over ${total} sampled cases (${distinct} picked a non-argmax token; tolerance 0)`);
    expect(mismatches).toBe(0);
    expect(distinct).toBeGreaterThan(total / 4);
  });

  it('applies the repetition penalty (positive and negative logits), in greedy and sampling', async () => {
    const { device } = await testGpu();
    const vocab = 10;
    const logits = new Float32Array([1, 5, 4.5, -1, -1.2, 0, 0, 0, 0, 0]);
    // 5 / 1.2 = 4.17 < 4.5: token 1 loses to token 2. Negative: -1 · 1.2 = -1.2 ties token 4 at a lower index.
    const cases: SampleCase[] = [
      { logits, history: new Uint32Array([]), params: { ...GREEDY, repetitionPenalty: 1.2 }, stepIndex: 0 },
      { logits, history: new Uint32Array([1, 1, 1]), params: { ...GREEDY, repetitionPenalty: 1.2 }, stepIndex: 0 },
      { logits: new Float32Array([-1, -1.1, -5, -5, -5, -5, -5, -5, -5, -5]), history: new Uint32Array([0]), params: { ...GREEDY, repetitionPenalty: 1.2 }, stepIndex: 0 },
      { logits, history: new Uint32Array([1]), params: { temperature: 0.01, topK: 0, topP: 1, repetitionPenalty: 1.2, seed: 3 }, stepIndex: 5 },
    ];
    const got = await runCases(device, vocab, cases);
    const want = cases.map((c) => sampleReference(c.logits, c.history, c.params, c.stepIndex));
    console.log(`[${runtimeName()}] sampler penalty: got ${got.join(',')}, reference ${want.join(',')}`);
    expect(want).toEqual([1, 2, 1, 2]);
    expect(got).toEqual(want);
  });

  it('top-k 1 equals greedy', async () => {
    const { device } = await testGpu();
    const vocab = 32064;
    const cases: SampleCase[] = Array.from({ length: 10 }, (_, i) => ({
      logits: makeLogits(vocab, 77 + i, 4, i % 2 === 0),
      history: makeHistory(30, vocab, 88 + i),
      params: { temperature: 0.8, topK: 1, topP: 0.9, repetitionPenalty: 1.1, seed: i },
      stepIndex: i,
    }));
    const got = await runCases(device, vocab, cases);
    const greedy = await runCases(device, vocab, cases.map((c) => ({ ...c, params: { ...GREEDY, repetitionPenalty: 1.1 } })));
    expect(got).toEqual(greedy);
  });

  it('draws follow the softmax distribution over seeds and steps (loose chi-square)', async () => {
    const { device } = await testGpu();
    const logits = new Float32Array([2, 1.5, 1, 0.5, 0, -0.5, -1, -1.5]);
    const params = (seed: number): SamplerParams => ({ temperature: 1, topK: 0, topP: 1, repetitionPenalty: 1, seed });
    // 100 samplers (own params and state uniforms) per submit: seeds 1..10, steps 0..49, 500 draws.
    const seeds = 10;
    const perSubmit = 100;
    const submits = 5;
    const N = perSubmit * submits;
    const drawOf = (k: number): { seed: number; stepIndex: number } => ({ seed: 1 + (k % seeds), stepIndex: Math.floor(k / seeds) });
    const got = await withErrorScopes(device, async () => {
      const logitsBuf = createStorageBuffer(device, logits, 'logits');
      const history = createStorageBuffer(device, 4, 'history');
      const out = createStorageBuffer(device, 4, 'token');
      const results = createStorageBuffer(device, N * 4, 'results');
      const samplers = Array.from({ length: perSubmit }, () => createSampler(device, { vocab: logits.length, logitsOffset: 0, logits: logitsBuf, history, out }));
      samplers.forEach((s, i) => writeSamplerParams(device, s, params(drawOf(i).seed)));
      for (let b = 0; b < submits; b++) {
        const enc = device.createCommandEncoder();
        samplers.forEach((s, i) => {
          const k = b * perSubmit + i;
          writeSamplerStep(device, s, { historyLength: 0, stepIndex: drawOf(k).stepIndex });
          const pass = enc.beginComputePass();
          s.encode(pass);
          pass.end();
          enc.copyBufferToBuffer(out, 0, results, k * 4, 4);
        });
        device.queue.submit([enc.finish()]);
      }
      const r = Array.from(new Uint32Array(await readBuffer(device, results)));
      for (const x of [logitsBuf, history, out, results, ...samplers.flatMap((s) => [s.paramsBuffer, s.stateBuffer])]) x.destroy();
      return r;
    });
    // The GPU draws are the reference's draws.
    const want = got.map((_, k) => sampleReference(logits, [], params(drawOf(k).seed), drawOf(k).stepIndex));
    expect(got).toEqual(want);
    const z = logits.reduce((a, v) => a + Math.exp(v), 0);
    const counts = new Array<number>(logits.length).fill(0);
    for (const t of got) counts[t]++;
    let chi2 = 0;
    logits.forEach((v, i) => {
      const expected = (N * Math.exp(v)) / z;
      chi2 += (counts[i] - expected) ** 2 / expected;
    });
    // 7 degrees of freedom: P(chi2 > 24.3) = 0.001.
    console.log(`[${runtimeName()}] sampler distribution: counts ${counts.join(',')}, chi-square ${chi2.toFixed(2)} (bound 24.3)`);
    expect(chi2).toBeLessThan(24.3);
    // The same steps under another seed give another stream.
    const otherSeed = got.map((_, k) => sampleReference(logits, [], params(drawOf(k).seed + 100), drawOf(k).stepIndex));
    expect(otherSeed).not.toEqual(want);
  });

  it('rejects bad settings with messages quoting the value', () => {
    const ok: SamplerParams = { temperature: 0.7, topK: 40, topP: 0.9, repetitionPenalty: 1.1, seed: 1 };
    const bad: Array<[Partial<SamplerParams>, string]> = [
      [{ temperature: -0.1 }, 'got -0.1'],
      [{ temperature: NaN }, 'got NaN'],
      [{ topK: 2.5 }, 'got 2.5'],
      [{ topK: -1 }, 'got -1'],
      [{ topP: 0 }, 'got 0'],
      [{ topP: 1.5 }, 'got 1.5'],
      [{ repetitionPenalty: 0 }, 'got 0'],
      [{ seed: 1.5 }, 'got 1.5'],
      [{ seed: -3 }, 'got -3'],
    ];
    for (const [patch, text] of bad) {
      let err: unknown;
      try {
        validateSamplerParams({ ...ok, ...patch });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(AppError);
      expect((err as AppError).code).toBe('BAD_ARGUMENT');
      expect((err as AppError).message).toContain(text);
    }
    expect(() => validateSamplerParams(ok)).not.toThrow();
  });

  it('timing on this adapter at vocab 32064 (indicative)', async () => {
    const { device } = await testGpu();
    const vocab = 32064;
    for (const params of [GREEDY, { temperature: 0.7, topK: 40, topP: 0.9, repetitionPenalty: 1.1, seed: 42 }]) {
      const cases = Array.from({ length: 10 }, (_, i) => ({ logits: makeLogits(vocab, 900 + i, 6), history: makeHistory(500, vocab, i), params, stepIndex: i }));
      const t0 = performance.now();
      await runCases(device, vocab, cases);
      const ms = (performance.now() - t0) / cases.length;
      console.log(`[${runtimeName()}] sampler timing ${params.temperature === 0 ? 'greedy' : 'sampling (top-k 40, top-p 0.9, penalty over 500 ids)'}: ${ms.toFixed(2)} ms per token incl. upload`);
    }
  });
});
