/**
 * Decode tuning on the device (autotune.ts) and the runtime's `retune` under it, on a generated
 * model in Node (Dawn on lavapipe or SwiftShader here). What is checked exactly: kernels rebuilt by `retune`
 * compute what a model loaded with that tuning computes, over the KV cache already there; the
 * autotune measures every candidate, keeps the one its own figures say is fastest, survives a
 * candidate that cannot be built, and hands the cache back as it found it; the same for the
 * attention tuning (`retuneAttention`, `autotuneAttention`). Which candidate is
 * fastest on a real GPU is for the benchmark (`npm run bench:tune`), not for a test.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateTinyModel } from '../../../tools/tiny-model/generate';
import { nodeModelFiles } from '../node/model-dir';
import { maxAbsDiff, promptIds, testGpu } from '../gpu/testing';
import { matMulNBitsTuningFor, matMulNBitsWarmNextSupported, type MatMulNBitsTuning } from '../kernels/matmul-nbits';
import { loadModelFiles } from './files';
import type { LoadOptions, Phi3Runtime } from './model';
import { attentionPartialsBytes, attentionTuningFor, type AttentionTuning } from '../kernels/attention';
import { attentionDecodeCandidates, attentionPrefillCandidates, autotuneAttention, autotuneDecode, autotuneKey, autotunePrefill, decodeTuningCandidates, f16GemmOffered, prefillTuningCandidates, type AutotuneResult, type Schedule } from './autotune';

const root = mkdtempSync(join(tmpdir(), 'phi3-autotune-'));
const dir = join(root, 'model');
let files: ReturnType<typeof nodeModelFiles>;
const prompt = promptIds(9, 4, 32000);
const loaded: Phi3Runtime[] = [];

beforeAll(async () => {
  await generateTinyModel(dir, { layout: 'gqa-packed', layers: 2 });
  files = nodeModelFiles(dir);
});
afterAll(async () => {
  for (const r of loaded) r.destroy();
  await files.close();
  rmSync(root, { recursive: true, force: true });
});

async function load(opts: LoadOptions = {}): Promise<Phi3Runtime> {
  const { runtime } = await loadModelFiles(await testGpu(), files, opts);
  loaded.push(runtime);
  return runtime;
}

/**
 * With minGain −100 any candidate beats the default, so the choice is the fastest figure over the
 * rounds. The confirming pair then measures the leader and the default once more, which may lower
 * the default's figure below the leader's (each figure is a candidate's fastest measurement): so
 * the chosen figure is the least of all where the default was chosen (no confirming pair ran), and
 * of all but the default's otherwise.
 */
function expectFastestChosen(result: AutotuneResult<unknown>): void {
  const chosen = result.timings.find((t) => t.name === result.chosen.name)!;
  const rivals = result.timings.filter((t) => t.name !== 'default' || chosen.name === 'default');
  expect(chosen.ms).toBe(Math.min(...rivals.map((t) => t.ms!)));
}

describe('decode tuning on the device', () => {
  it('retune builds the decode kernels again over the same weights and KV cache: they compute what a model loaded with that tuning computes', async () => {
    const ctx = await testGpu();
    const tunings: MatMulNBitsTuning[] = [{ gemv: 'direct' }, { gemv: 'dp4a', rowsPerThread: 2 }];
    if (matMulNBitsWarmNextSupported(ctx.device)) tunings.push({ warmNext: 0.5 });
    const runtime = await load();
    const defaultPaths = runtime.decodeMatMulPaths;
    for (const tuning of tunings) {
      const fresh = await load({ matMulTuning: tuning });
      runtime.truncate(0);
      // The prompt's KV entries are computed with the defaults, the next token with `tuning`.
      await runtime.logits(prompt);
      await runtime.retune(tuning);
      expect(runtime.matMulTuning).toBe(tuning);
      expect(runtime.decodeMatMulPaths).toEqual(fresh.decodeMatMulPaths);
      expect(runtime.decodeWarmBytes).toBe(fresh.decodeWarmBytes);
      await fresh.logits(prompt);
      const diff = maxAbsDiff(await runtime.logits([7]), await fresh.logits([7]));
      console.log(`[autotune] retune ${JSON.stringify(tuning)}: paths ${runtime.decodeMatMulPaths.join(', ')}, ${runtime.decodeWarmBytes} bytes warmed; decode logits differ from a fresh load by ${diff}`);
      expect(diff).toBeLessThanOrEqual(1e-6);
      expect(runtime.cachedIds).toEqual([...prompt, 7]);
      await runtime.retune(undefined);
      expect(runtime.decodeMatMulPaths).toEqual(defaultPaths);
      expect(runtime.decodeWarmBytes).toBe(0);
    }
  });

  it('times every candidate, keeps the fastest of its own figures, and leaves the cache as it found it', async () => {
    const ctx = await testGpu();
    const candidates = decodeTuningCandidates(ctx.device, ctx.adapterInfo);
    expect(candidates[0]).toEqual({ name: 'default', tuning: undefined });
    expect(candidates.length).toBeGreaterThan(1);
    const runtime = await load();
    await runtime.logits(prompt);
    const cached = [...runtime.cachedIds];
    const progress: number[] = [];
    // minGain −100: any candidate may replace the default, so the choice is the fastest figure.
    const result = await autotuneDecode(runtime, { candidates, rounds: 2, steps: 3, minGain: -100, onProgress: (done) => progress.push(done) });
    console.log(`[autotune] ${result.timings.map((t) => `${t.name} ${t.ms?.toFixed(1)} ms`).join(', ')}: chose ${result.chosen.name} in ${result.ms.toFixed(0)} ms`);
    // Two rounds, then the confirming pair (counted whether or not it runs).
    expect(progress).toEqual([...Array(2 * candidates.length + 2).keys()].map((i) => i + 1));
    expect(result.timings.map((t) => t.name)).toEqual(candidates.map((c) => c.name));
    for (const t of result.timings) expect(t.ms).toBeGreaterThan(0);
    expectFastestChosen(result);
    expect(runtime.matMulTuning).toBe(result.chosen.tuning);
    expect(runtime.cachedIds).toEqual(cached);

    // What it runs now is what a model loaded with the chosen tuning runs, on the cache it kept.
    const fresh = await load({ matMulTuning: result.chosen.tuning });
    await fresh.logits(prompt);
    expect(maxAbsDiff(await runtime.logits([5]), await fresh.logits([5]))).toBeLessThanOrEqual(1e-6);

    // With a gain no candidate can reach, the default stays.
    runtime.truncate(cached.length);
    const kept = await autotuneDecode(runtime, { candidates, rounds: 1, steps: 2, minGain: 1 });
    expect(kept.chosen).toBe(candidates[0]);
    expect(runtime.matMulTuning).toBeUndefined();
    expect(runtime.cachedIds).toEqual(cached);
  });

  it('scheduled: each measurement is one unit that leaves the runtime on the tuning it found, so a chat between units runs the defaults and keeps its cache; the choice comes in a last unit', async () => {
    const ctx = await testGpu();
    const candidates = decodeTuningCandidates(ctx.device, ctx.adapterInfo);
    const runtime = await load();
    await runtime.logits(prompt);
    const defaultPaths = runtime.decodeMatMulPaths;
    const seen: Array<{ tuning: MatMulNBitsTuning | undefined; paths: string[] }> = [];
    let chat = [...runtime.cachedIds];
    const schedule: Schedule = async (work) => {
      seen.push({ tuning: runtime.matMulTuning, paths: runtime.decodeMatMulPaths });
      // A chat turn between two units: one more token cached, computed with whatever runs now.
      if (seen.length === 2) {
        await runtime.logits([11]);
        chat = [...runtime.cachedIds];
      }
      return work();
    };
    // minGain −100: the fastest figure wins, which is not the default unless it measured fastest.
    const result = await autotuneDecode(runtime, { candidates, rounds: 1, steps: 2, minGain: -100, schedule });
    // One unit per measurement, two more where a candidate led and was confirmed, and the switch.
    const switched = result.chosen !== candidates[0];
    expect(seen).toHaveLength(candidates.length + (switched ? 3 : 0));
    for (const s of seen) expect(s).toEqual({ tuning: undefined, paths: defaultPaths });
    expect(chat).toEqual([...prompt, 11]);
    expect(runtime.cachedIds).toEqual(chat);
    expect(runtime.matMulTuning).toBe(result.chosen.tuning);

    // A unit finds the chat grown past what its appended steps need: it stops with CONTEXT_OVERFLOW, on the defaults.
    const small = await load({ maxContext: 64 });
    let units = 0;
    const filling: Schedule = async (work) => {
      if (++units === 2) await small.logits(promptIds(61, 5, 32000));
      return work();
    };
    await expect(autotuneDecode(small, { candidates, rounds: 1, steps: 2, schedule: filling })).rejects.toMatchObject({ code: 'CONTEXT_OVERFLOW' });
    expect(small.matMulTuning).toBeUndefined();
    expect(small.cachedIds).toHaveLength(61);
  });

  it('prefill: times a chunk with each GEMM on top of the decode choice (the f16 one where offered), keeps the fastest, and the cache', async () => {
    const ctx = await testGpu();
    const decode = { gemv: 'direct' as const };
    const runtime = await load({ matMulTuning: decode });
    const f16Gemm = f16GemmOffered(runtime.precision, ctx.features.shaderF16);
    expect(f16Gemm).toBe(ctx.features.shaderF16); // the default precision is the f16 path
    const candidates = prefillTuningCandidates(ctx.adapterInfo, decode, f16Gemm);
    // The other candidate is the GEMM the adapter's default is not (SwiftShader's is the tiled one,
    // a real GPU's and lavapipe's the wide one), with the decode choice kept; then, with shader-f16,
    // the wide one in f16 arithmetic.
    const wideSplit = { gemm: 'wide', gemmWideCols: 2, gemmWideMinGroups: 256 } as const;
    const wideDefault = matMulNBitsTuningFor(ctx.adapterInfo).gemm === 'wide';
    expect(candidates).toEqual([
      { name: 'default', tuning: decode },
      wideDefault ? { name: 'tiled', tuning: { ...decode, gemm: 'tiled' } } : { name: 'wide', tuning: { ...decode, ...wideSplit } },
      ...(f16Gemm ? [{ name: 'wide-f16', tuning: { ...decode, ...(wideDefault ? { gemm: 'wide' } : wideSplit), gemmF16: true } }] : []),
    ]);
    expect(prefillTuningCandidates({ vendor: 'nvidia' }, undefined)).toEqual([
      { name: 'default', tuning: undefined },
      { name: 'tiled', tuning: { gemm: 'tiled' } },
    ]);
    expect(prefillTuningCandidates({ vendor: 'nvidia' }, undefined, true)[2]).toEqual({ name: 'wide-f16', tuning: { gemm: 'wide', gemmF16: true } });
    expect(f16GemmOffered('f32', true)).toBe(false);
    await runtime.logits(prompt);
    const cached = [...runtime.cachedIds];
    const result = await autotunePrefill(runtime, { candidates, rounds: 2, rows: 32, minGain: -100 });
    console.log(`[autotune] prefill, 32 rows: ${result.timings.map((t) => `${t.name} ${t.ms?.toFixed(1)} ms`).join(', ')}: chose ${result.chosen.name}`);
    expectFastestChosen(result);
    expect(result.timings.map((t) => t.name)).toEqual(candidates.map((c) => c.name));
    expect(result.timings.every((t) => t.ms !== null)).toBe(true);
    expect(runtime.matMulTuning).toBe(result.chosen.tuning);
    expect(runtime.decodeMatMulPaths).toEqual(['gemv-direct-subgroup']);
    expect(runtime.cachedIds).toEqual(cached);
    // From an empty cache (the prompt's KV entries above came from the GEMM before the choice).
    const fresh = await load({ matMulTuning: result.chosen.tuning });
    runtime.truncate(0);
    expect(maxAbsDiff(await runtime.logits(prompt), await fresh.logits(prompt))).toBeLessThanOrEqual(1e-6);
    await expect(autotunePrefill(runtime, { candidates, rows: 8 })).rejects.toThrow(/rows \(8\) must be an integer from 16/);
  });

  it('a load builds its kernels with the tuning resolveMatMulTuning returns once the shapes are known (the stored choice)', async () => {
    const asked: Array<[number, string]> = [];
    const runtime = await load({
      matMulTuning: { gemv: 'staged' },
      resolveMatMulTuning: async (config, precision) => {
        asked.push([config.hidden, precision]);
        return { gemv: 'direct' };
      },
    });
    expect(asked).toEqual([[runtime.plan.config.hidden, runtime.precision]]);
    expect(runtime.matMulTuning).toEqual({ gemv: 'direct' });
    expect(runtime.decodeMatMulPaths).toEqual((await load({ matMulTuning: { gemv: 'direct' } })).decodeMatMulPaths);
    // Nothing resolved: matMulTuning stands.
    expect((await load({ matMulTuning: { gemv: 'staged' }, resolveMatMulTuning: async () => undefined })).matMulTuning).toEqual({ gemv: 'staged' });
  });

  it('skips a candidate that cannot be built and still runs', async () => {
    const ctx = await testGpu();
    const runtime = await load();
    const broken = { name: 'broken', tuning: { threadsPerRow: 3 } };
    const result = await autotuneDecode(runtime, { candidates: [{ name: 'default', tuning: undefined }, broken, { name: 'direct', tuning: { gemv: 'direct' } }], rounds: 2, steps: 2, minGain: -100 });
    const failed = result.timings.find((t) => t.name === 'broken')!;
    expect(failed.ms).toBeNull();
    expect(failed.error).toMatch(/threadsPerRow = 3 must be a power of two/);
    expect(result.chosen.name).not.toBe('broken');
    const fresh = await load({ matMulTuning: result.chosen.tuning });
    expect(maxAbsDiff(await runtime.logits(prompt), await fresh.logits(prompt))).toBeLessThanOrEqual(1e-6);
    expect(autotuneKey(ctx.adapterInfo, runtime.plan.config, runtime.precision, [broken])).not.toBe(autotuneKey(ctx.adapterInfo, runtime.plan.config, runtime.precision, []));
    expect(autotuneKey({ ...ctx.adapterInfo, device: 'other' }, runtime.plan.config, runtime.precision, [])).not.toBe(autotuneKey(ctx.adapterInfo, runtime.plan.config, runtime.precision, []));
    expect(autotuneKey(ctx.adapterInfo, { ...runtime.plan.config, hidden: 1 }, runtime.precision, [])).not.toBe(autotuneKey(ctx.adapterInfo, runtime.plan.config, runtime.precision, []));
  });
});

describe('attention tuning on the device', () => {
  it('retuneAttention builds the attention kernels again over the same cache: they compute what a model loaded with that tuning computes', async () => {
    const runtime = await load();
    const { heads, headDim } = runtime.plan.config;
    const scratch = runtime.gpuBytes().other;
    // 4-key splits, so the 10 keys below take the split-K path; 256 splits of 4 keys outgrow the
    // scratch sized for the defaults' cap (64 on SwiftShader, 24 on real GPUs and lavapipe).
    const tunings: AttentionTuning[] = [{ kernel: 'lanes' }, { keysPerSplit: 4, maxSplits: 2 }, { prefill: 'blocked', keysPerSplit: 4 }, { kernel: 'lanes', keysPerSplit: 4, maxSplits: 256 }];
    for (const tuning of tunings) {
      const fresh = await load({ attention: tuning });
      runtime.truncate(0);
      // The prompt's KV entries are computed with the tuning before, the next token with `tuning`:
      // the second layer's K and V come from the first layer's attention, so they differ from the
      // fresh load's by rounding (another summation order), not more.
      await runtime.logits(prompt);
      await runtime.retuneAttention(tuning);
      expect(runtime.attentionTuning).toBe(tuning);
      await fresh.logits(prompt);
      const kept = maxAbsDiff(await runtime.logits([7]), await fresh.logits([7]));
      // From an empty cache both compute everything with `tuning`: a prompt (prefill kernel), then decode.
      runtime.truncate(0);
      fresh.truncate(0);
      const chunk = maxAbsDiff(await runtime.logits(prompt), await fresh.logits(prompt));
      const diff = maxAbsDiff(await runtime.logits([7]), await fresh.logits([7]));
      console.log(`[autotune] retuneAttention ${JSON.stringify(tuning)}: logits differ from a fresh load's by ${chunk} (prompt), ${diff} (decode), ${kept} (decode over the cache the tuning before wrote)`);
      expect(kept).toBeLessThanOrEqual(1e-4);
      expect(chunk).toBeLessThanOrEqual(1e-6);
      expect(diff).toBeLessThanOrEqual(1e-6);
      expect(runtime.cachedIds).toEqual([...prompt, 7]);
    }
    // The split-K scratch grew once, to 256 splits: it never shrinks.
    const defaultCap = attentionTuningFor((await testGpu()).adapterInfo, headDim).maxSplits ?? 64;
    expect(runtime.gpuBytes().other - scratch).toBe(attentionPartialsBytes(heads, headDim, 256) - attentionPartialsBytes(heads, headDim, defaultCap));
    // Bad split sizes are refused before anything is rebuilt: the runtime runs on as it was.
    const before = await runtime.logits([9]);
    runtime.truncate(runtime.cachedIds.length - 1);
    await expect(runtime.retuneAttention({ maxSplits: 0 })).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
    expect(runtime.attentionTuning).toBe(tunings.at(-1));
    expect(maxAbsDiff(await runtime.logits([9]), before)).toBe(0);
  });

  it("autotuneAttention times each candidate at the chat's own context, keeps the fastest of its figures and the cache, and leaves the matmuls alone", async () => {
    const ctx = await testGpu();
    const runtime = await load({ matMulTuning: { gemv: 'direct' } });
    const chat = promptIds(150, 5, 32000);
    await runtime.logits(chat);
    const progress: Array<[number, number]> = [];
    const units: Array<AttentionTuning | undefined> = [];
    // Scheduled as the worker does: between units the runtime is back on the tuning it had.
    const schedule: Schedule = async (work) => {
      units.push(runtime.attentionTuning);
      return work();
    };
    // minGain −100: the fastest figure wins.
    const result = await autotuneAttention(runtime, ctx.adapterInfo, { rounds: 1, steps: 2, rows: 16, minGain: -100, schedule, onProgress: (done, total) => progress.push([done, total]) });
    console.log(
      `[autotune] attention at ${result.context} tokens: decode ${result.decode.timings.map((t) => `${t.name} ${t.ms?.toFixed(1)} ms`).join(', ')}, chose ${result.decode.chosen.name}; prefill ${result.prefill.timings.map((t) => `${t.name} ${t.ms?.toFixed(1)} ms`).join(', ')}, chose ${result.prefill.chosen.name}`,
    );
    const candidates = attentionDecodeCandidates(ctx.adapterInfo, runtime.plan.config.headDim);
    expect(result.context).toBe(150);
    expect(result.decode.timings.map((t) => t.name)).toEqual(candidates.map((c) => c.name));
    expect(result.prefill.timings.map((t) => t.name)).toEqual(attentionPrefillCandidates(ctx.adapterInfo, runtime.plan.config.headDim, result.decode.chosen.tuning).map((c) => c.name));
    expect(result.prefill.timings).toHaveLength(2);
    for (const s of [result.decode, result.prefill]) {
      expectFastestChosen(s);
    }
    // One round over each stage's candidates, and each stage's confirming pair.
    const total = candidates.length + 2 + 2 + 2;
    expect(progress).toEqual([...Array(total).keys()].map((i) => [i + 1, total]));
    // Decode units run from the defaults, prefill units from the decode choice.
    expect(units.slice(0, candidates.length)).toEqual(Array(candidates.length).fill(undefined));
    expect(runtime.attentionTuning).toBe(result.prefill.chosen.tuning);
    expect(runtime.matMulTuning).toEqual({ gemv: 'direct' });
    expect(runtime.cachedIds).toEqual(chat);
    // What it runs now is what a model loaded with the choice runs, on the cache it kept (written
    // with the defaults: the second layer's K and V differ by rounding, as above).
    const fresh = await load({ matMulTuning: { gemv: 'direct' }, attention: result.prefill.chosen.tuning });
    await fresh.logits(chat);
    expect(maxAbsDiff(await runtime.logits([5]), await fresh.logits([5]))).toBeLessThanOrEqual(1e-4);
  });

  it('a load builds its attention with the tuning resolveAttentionTuning returns (the stored choice)', async () => {
    const asked: string[] = [];
    const runtime = await load({
      attention: { kernel: 'serial' },
      resolveAttentionTuning: async (_config, precision) => {
        asked.push(precision);
        return { kernel: 'lanes', maxSplits: 8 };
      },
    });
    expect(asked).toEqual([runtime.precision]);
    expect(runtime.attentionTuning).toEqual({ kernel: 'lanes', maxSplits: 8 });
    const fresh = await load({ attention: { kernel: 'lanes', maxSplits: 8 } });
    expect(maxAbsDiff(await runtime.logits(prompt), await fresh.logits(prompt))).toBe(0);
    // Nothing resolved: `attention` stands.
    expect((await load({ attention: { kernel: 'serial' }, resolveAttentionTuning: async () => undefined })).attentionTuning).toEqual({ kernel: 'serial' });
  });
});
