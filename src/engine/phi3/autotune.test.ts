import { afterEach, describe, expect, it, vi } from 'vitest';
import type { MatMulNBitsTuning } from '../kernels/matmul-nbits';
import { attentionAutotuneKey, attentionDecodeCandidates, attentionMeasurementCount, attentionPrefillCandidates, attentionTuneDue, autotuneDecode, autotuneKey } from './autotune';
import type { Phi3Runtime } from './model';
import type { Phi3Config } from './plan';

// Which attention tunings a device measures (autotune.ts): the candidates follow the adapter's
// defaults (attentionTuningFor) and what the head dim allows.
const h200 = { vendor: 'nvidia', architecture: '', device: 'nvidia-h200', description: 'NVIDIA: 580.159.04' };
const swiftshader = { vendor: 'google', architecture: 'swiftshader', description: 'SwiftShader driver 5.0.0' };

describe('attention tuning candidates', () => {
  it('decode: the defaults, the other kernel, half and twice the split cap', () => {
    expect(attentionDecodeCandidates(h200, 96)).toEqual([
      { name: 'default', tuning: undefined },
      { name: 'serial', tuning: { kernel: 'serial' } },
      { name: 'splits-12', tuning: { maxSplits: 12 } },
      { name: 'splits-48', tuning: { maxSplits: 48 } },
    ]);
    expect(attentionDecodeCandidates(swiftshader, 96)).toEqual([
      { name: 'default', tuning: undefined },
      { name: 'lanes', tuning: { kernel: 'lanes' } },
      { name: 'splits-32', tuning: { maxSplits: 32 } },
      { name: 'splits-128', tuning: { maxSplits: 128 } },
    ]);
    // A head dim past the lanes kernel: only the split caps differ.
    expect(attentionDecodeCandidates(h200, 1024).map((c) => c.name)).toEqual(['default', 'splits-32', 'splits-128']);
  });

  it('prefill: on top of the decode choice, the other prefill kernel where the head dim allows the blocked one', () => {
    expect(attentionPrefillCandidates(h200, 96, undefined)).toEqual([
      { name: 'default', tuning: undefined },
      { name: 'per-query', tuning: { prefill: 'kernel' } },
    ]);
    const decode = { kernel: 'lanes' as const };
    expect(attentionPrefillCandidates(swiftshader, 96, decode)).toEqual([
      { name: 'default', tuning: decode },
      { name: 'blocked', tuning: { kernel: 'lanes', prefill: 'blocked' } },
    ]);
    // A decode choice that already names the prefill kernel is what "default" keeps.
    expect(attentionPrefillCandidates(h200, 96, { prefill: 'kernel' })[1]).toEqual({ name: 'blocked', tuning: { prefill: 'blocked' } });
    expect(attentionPrefillCandidates(h200, 256, undefined)).toEqual([{ name: 'default', tuning: undefined }]);
    // Two rounds over each stage's candidates, and two confirming measurements where a stage has a choice.
    expect(attentionMeasurementCount(h200, 96)).toBe(2 * 4 + 2 + (2 * 2 + 2));
    expect(attentionMeasurementCount(h200, 256)).toBe(2 * 4 + 2 + 2 * 1);
  });

  it('the attention key is its own: adapter, model, window and precision change it; the MatMulNBits key never equals it', () => {
    const config = { hidden: 3072, intermediate: 8192, heads: 32, kvHeads: 32, headDim: 96, vocab: 32064, layers: 32, attentionWindow: 2047 } as Phi3Config;
    const key = attentionAutotuneKey(h200, config, 'f16');
    expect(JSON.parse(key)).toMatchObject({ tuning: 'attention', precision: 'f16', defaults: { kernel: 'lanes', maxSplits: 24, prefill: 'blocked' } });
    expect(attentionAutotuneKey({ ...h200, device: 'nvidia-h100' }, config, 'f16')).not.toBe(key);
    expect(attentionAutotuneKey(h200, { ...config, attentionWindow: undefined }, 'f16')).not.toBe(key);
    expect(attentionAutotuneKey(h200, { ...config, layers: 2 }, 'f16')).not.toBe(key);
    expect(attentionAutotuneKey(h200, config, 'f32')).not.toBe(key);
    expect(autotuneKey(h200, config, 'f16', [])).not.toBe(key);
  });
});

describe('attentionTuneDue', () => {
  const chat = (n: number, contextLimit = 131072) => ({ cachedIds: Array<number>(n).fill(1), contextLimit });
  it('from 2,048 cached tokens with room for a 128-token chunk after them; again at 4× the context a stored choice was measured at', () => {
    expect(attentionTuneDue(chat(2047))).toBe(false);
    expect(attentionTuneDue(chat(2048))).toBe(true);
    expect(attentionTuneDue(chat(2048, 4096))).toBe(true);
    expect(attentionTuneDue(chat(3969, 4096))).toBe(false);
    expect(attentionTuneDue(chat(3968, 4096))).toBe(true);
    expect(attentionTuneDue(chat(2048, 2100))).toBe(false);
    // Measured at 2,126 tokens: again from 8,504.
    expect(attentionTuneDue(chat(8503), 2126)).toBe(false);
    expect(attentionTuneDue(chat(8504), 2126)).toBe(true);
    expect(attentionTuneDue(chat(131000), 40000)).toBe(false);
  });
});

/**
 * The choice rule alone, on a stand-in for the runtime whose decode steps take scripted times on a
 * virtual clock (the node-gpu tests run the real engine): per tuning name, the ms of each of its
 * measurements in turn.
 */
function scriptedRuntime(times: Record<string, number[]>) {
  let clock = 0;
  vi.spyOn(performance, 'now').mockImplementation(() => clock);
  const measured: Record<string, number> = {};
  const runtime = {
    cachedIds: [1, 2, 3],
    contextLimit: 4096,
    matMulTuning: undefined as MatMulNBitsTuning | undefined,
    name: () => runtime.matMulTuning?.gemv ?? 'default',
    async retune(t: MatMulNBitsTuning | undefined) {
      runtime.matMulTuning = t;
    },
    /** Measurements made so far, per tuning name. */
    measured,
    async step() {
      const name = runtime.name();
      const ms = times[name][measured[name] ?? 0];
      if (ms === undefined) throw new Error(`no scripted time for measurement ${measured[name] + 1} of ${name}`);
      clock += ms;
      return 7;
    },
    // decodeStepMs truncates after each measurement: the next one takes the next scripted time.
    truncate() {
      const name = runtime.name();
      measured[name] = (measured[name] ?? 0) + 1;
    },
  };
  return runtime as typeof runtime & Phi3Runtime;
}

describe('the autotune choice', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });
  const candidates = [
    { name: 'default', tuning: undefined },
    { name: 'direct', tuning: { gemv: 'direct' as const } },
  ];

  it('keeps a candidate that beat the default over the rounds only if it beats it again, back to back', async () => {
    // 'direct' was 20% faster in both rounds, then as slow as the default: noise, not a kernel.
    const lucky = scriptedRuntime({ default: [10, 10, 10], direct: [8, 8.5, 10] });
    const progress: Array<[number, number]> = [];
    const result = await autotuneDecode(lucky, { candidates, steps: 1, onProgress: (done, total) => progress.push([done, total]) });
    expect(result.chosen.name).toBe('default');
    expect(lucky.matMulTuning).toBeUndefined();
    expect(result.timings).toEqual([
      { name: 'default', ms: 10 },
      { name: 'direct', ms: 8 },
    ]);
    expect(progress).toEqual([1, 2, 3, 4, 5, 6].map((done) => [done, 6]));
    expect(lucky.measured).toEqual({ default: 3, direct: 3 });

    // Faster again in the confirming pair: kept.
    const real = scriptedRuntime({ default: [10, 10, 10], direct: [8, 8.5, 8.2] });
    expect((await autotuneDecode(real, { candidates, steps: 1 })).chosen.name).toBe('direct');
    expect(real.matMulTuning).toEqual({ gemv: 'direct' });
    // Without the confirmation the lucky one would have stayed.
    expect((await autotuneDecode(scriptedRuntime({ default: [10, 10], direct: [8, 8.5] }), { candidates, steps: 1, confirm: false })).chosen.name).toBe('direct');
  });

  it('measures nothing more where the default led; a gain under minGain keeps the default', async () => {
    const progress: number[] = [];
    const runtime = scriptedRuntime({ default: [10, 10], direct: [9.8, 9.9] });
    const result = await autotuneDecode(runtime, { candidates, steps: 1, onProgress: (done) => progress.push(done) });
    expect(result.chosen.name).toBe('default');
    // The two confirming measurements are counted, not run.
    expect(progress).toEqual([1, 2, 3, 4, 5, 6]);
    expect(runtime.measured).toEqual({ default: 2, direct: 2 });
    expect(result.timings.every((t) => t.error === undefined)).toBe(true);
  });
});
