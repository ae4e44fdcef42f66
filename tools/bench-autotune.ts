/**
 * The kernel autotune (src/engine/phi3/autotune.ts) as a benchmark: what each candidate tuning
 * measures per decode step, and then each prefill GEMM per 128-token chunk on top of the decode
 * choice, on this GPU; which ones the autotune keeps, how long choosing took, and whether repeated
 * runs choose the same. Then decode and prefill tok/s of the kept tuning against the defaults,
 * alternating over longer runs than the autotune's own, so the choice is checked by a measurement
 * it did not make. With `--attention-context N` (N ≥ 2048, ATTENTION_TUNE_CONTEXT) it then fills
 * the cache to N tokens and does the same for the attention autotune (`autotuneAttention`: decode
 * kernel and split cap, then the prefill kernel), as the app does once a chat reaches N tokens.
 * `--null-runs N` measures how often noise alone replaces the default: N decode autotunes whose
 * three other candidates are the default again (`tuning: {}`, the same kernels), alternately with
 * and without the confirming measurement (AutotuneOptions.confirm), each time counting whether a
 * copy was kept.
 * The native engine on a generated Phi-3 in Node (Dawn; SwiftShader without a GPU, where the
 * figures are this machine's CPUs, not a GPU).
 *   npm run bench:autotune [-- --layers 2 --hidden 3072 --repeat 3 --check-steps 32 --attention-context 2048]
 * `--full` generates Phi-3 Mini's shape (32 layers, hidden 3072, 32 heads, intermediate 8192, q4
 * with fp16 activations where the GPU has shader-f16): for a GPU machine, where the device bundle
 * runs it as `bash tools/device/run.sh autotune`.
 * Rule: not a test; nothing here asserts a time.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { nodeGPU } from '../src/engine/gpu/node-webgpu';
import { acquireDevice } from '../src/engine/gpu/device';
import { loadModelFiles } from '../src/engine/phi3/files';
import { nodeModelFiles } from '../src/engine/node/model-dir';
import {
  ATTENTION_TUNE_CONTEXT,
  attentionDecodeCandidates,
  attentionPrefillCandidates,
  autotuneAttention,
  autotuneDecode,
  autotuneKernels,
  decodeStepMs,
  decodeTuningCandidates,
  f16GemmOffered,
  prefillChunkMs,
  prefillTuningCandidates,
  type AutotuneResult,
  type TuningCandidate,
} from '../src/engine/phi3/autotune';
import type { AttentionTuning } from '../src/engine/kernels/attention';
import type { Phi3Runtime } from '../src/engine/phi3/model';
import { generateTinyModel } from './tiny-model/generate';

const { values } = parseArgs({
  options: {
    layers: { type: 'string', default: '2' },
    hidden: { type: 'string', default: '3072' },
    repeat: { type: 'string', default: '3' },
    'check-steps': { type: 'string', default: '32' },
    'check-rounds': { type: 'string', default: '3' },
    full: { type: 'boolean', default: false },
    'attention-context': { type: 'string', default: '0' },
    'null-runs': { type: 'string', default: '0' },
  },
});

/** The chunk autotunePrefill times (its default), and the check's. */
const PREFILL_ROWS = 128;

/** How often each choice was kept over the runs: "dp4a in 2 of 3 runs, default in 1 of 3 runs". */
function tally(names: string[]): string {
  const picks = new Map<string, number>();
  for (const n of names) picks.set(n, (picks.get(n) ?? 0) + 1);
  return [...picks].map(([n, k]) => `${n} in ${k} of ${names.length} runs`).join(', ');
}

/**
 * The kept tuning against the defaults (`set` switches between them), alternating, over longer
 * runs than the autotune's own: decode tok/s and a prefill chunk's, medians, at the cache's context.
 */
async function check<T>(runtime: Phi3Runtime, set: (tuning: T | undefined) => Promise<void>, kept: T | undefined, what: string): Promise<void> {
  if (kept === undefined) return console.log('The defaults were kept; nothing to check against them.');
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  const rates = { decode: { default: [] as number[], kept: [] as number[] }, prefill: { default: [] as number[], kept: [] as number[] } };
  const steps = Number(values['check-steps']);
  for (let r = 0; r < Number(values['check-rounds']); r++) {
    for (const which of ['default', 'kept'] as const) {
      await set(which === 'default' ? undefined : kept);
      rates.decode[which].push(1000 / (await decodeStepMs(runtime, steps)));
      rates.prefill[which].push((PREFILL_ROWS * 1000) / (await prefillChunkMs(runtime, PREFILL_ROWS)));
    }
  }
  const line = (of: 'decode' | 'prefill') => {
    const [d, k] = [median(rates[of].default), median(rates[of].kept)];
    return `${of} ${d.toFixed(1)} → ${k.toFixed(1)} tok/s (${(k / d).toFixed(2)}×)`;
  };
  console.log(`Check, the defaults → the kept tuning (${what}), ${values['check-rounds']} alternating rounds of ${steps} decode steps and one ${PREFILL_ROWS}-token chunk, medians: ${line('decode')}; ${line('prefill')}.`);
}

const dir = mkdtempSync(join(tmpdir(), 'bench-autotune-'));
const files = () => nodeModelFiles(dir);
try {
  // --attention-context is checked before the model is generated (minutes at full width on a
  // borrowed GPU), as far as it can be without the model: a bad value costs seconds.
  const context = Number(values['attention-context']);
  const badContext = (range: string) => new Error(`--attention-context ${values['attention-context']} must be 0 (no attention autotune) or from ${ATTENTION_TUNE_CONTEXT} ${range}.`);
  if (context !== 0 && !(Number.isInteger(context) && context >= ATTENTION_TUNE_CONTEXT)) throw badContext('up to the model\'s context');
  const hidden = values.full ? 3072 : Number(values.hidden);
  const layers = values.full ? 32 : Number(values.layers);
  const ctx = await acquireDevice(await nodeGPU());
  const f16 = values.full && ctx.features.shaderF16;
  await generateTinyModel(dir, { layers, hidden, heads: hidden % 96 === 0 ? hidden / 96 : hidden / 32, intermediate: values.full ? 8192 : Math.round((hidden * 8) / 3 / 64) * 64, dtype: f16 ? 'q4f16' : 'q4' });
  const model = files();
  const { runtime } = await loadModelFiles(ctx, model);
  // Its upper bound is the loaded model's context; still before anything is measured.
  if (context > 0 && context + PREFILL_ROWS > runtime.contextLimit) throw badContext(`to ${runtime.contextLimit - PREFILL_ROWS} for this model`);
  await runtime.logits([1]);
  const nullRuns = Number(values['null-runs']);
  if (nullRuns > 0) {
    // The default against three copies of itself: any copy kept is noise winning.
    const copies: TuningCandidate[] = [{ name: 'default', tuning: undefined }, ...[1, 2, 3].map((i) => ({ name: `copy-${i}`, tuning: {} }))];
    const kept = { unconfirmed: 0, confirmed: 0 };
    const gaps: number[] = [];
    for (let r = 0; r < nullRuns; r++) {
      for (const confirm of r % 2 === 0 ? [false, true] : [true, false]) {
        await runtime.retune(undefined);
        const result = await autotuneDecode(runtime, { candidates: copies, confirm });
        if (result.chosen.name !== 'default') kept[confirm ? 'confirmed' : 'unconfirmed']++;
        const ms = result.timings.map((t) => t.ms!);
        gaps.push((Math.max(...ms) - Math.min(...ms)) / Math.min(...ms));
      }
    }
    gaps.sort((x, y) => x - y);
    console.log(`Null test: the default against 3 copies of itself, ${nullRuns} decode autotunes each way: a copy kept in ${kept.unconfirmed} of ${nullRuns} without the confirming measurement, ${kept.confirmed} of ${nullRuns} with it (3% to win); spread between the fastest and slowest copy's figure: median ${(100 * gaps[Math.floor(gaps.length / 2)]).toFixed(1)}%, largest ${(100 * gaps.at(-1)!).toFixed(1)}%.`);
  }
  const candidates = decodeTuningCandidates(ctx.device, ctx.adapterInfo);
  const a = ctx.adapterInfo;
  console.log(`Adapter: ${[a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' / ')}`);
  console.log(`Model: ${layers} layers, hidden ${hidden}, intermediate ${runtime.plan.config.intermediate}, vocab ${runtime.plan.config.vocab}, ${runtime.precision}; candidates: ${candidates.map((c) => `${c.name} ${JSON.stringify(c.tuning ?? {})}`).join(', ')}.`);
  const prefillNames = prefillTuningCandidates(a, undefined, f16GemmOffered(runtime.precision, runtime.shaderF16)).map((c) => c.name);
  console.log('');
  console.log(`| run | ${candidates.map((c) => `decode ${c.name} ms/step`).join(' | ')} | decode kept | ${prefillNames.map((n) => `prefill ${n} ms/${PREFILL_ROWS}`).join(' | ')} | prefill kept | took |`);
  console.log(`|---|${candidates.map(() => '---|').join('')}---|${prefillNames.map(() => '---|').join('')}---|---|`);
  const cells = <T>(r: AutotuneResult<T>) => r.timings.map((t) => (t.ms === null ? `failed: ${t.error}` : t.ms.toFixed(2)));
  const kept: Array<{ decode: TuningCandidate; prefill: TuningCandidate }> = [];
  for (let r = 1; r <= Number(values.repeat); r++) {
    await runtime.retune(undefined);
    const { decode, prefill } = await autotuneKernels(runtime, candidates, a);
    kept.push({ decode: decode.chosen, prefill: prefill.chosen });
    console.log(`| ${r} | ${cells(decode).join(' | ')} | ${decode.chosen.name} | ${cells(prefill).join(' | ')} | ${prefill.chosen.name} | ${((decode.ms + prefill.ms) / 1000).toFixed(2)} s |`);
  }
  console.log('');
  console.log(`Kept: decode ${tally(kept.map((k) => k.decode.name))}; prefill ${tally(kept.map((k) => k.prefill.name))}.`);
  const last = kept.at(-1)!;
  await check(runtime, (t) => runtime.retune(t), last.prefill.tuning, `decode ${last.decode.name}, prefill ${last.prefill.name}`);

  if (context > 0) {
    // The chat the app would have: `context` tokens in prefill chunks, on the kernels kept above.
    const t0 = performance.now();
    for (let at = runtime.cachedIds.length; at < context; at += runtime.maxPrefill) await runtime.logits(Array.from({ length: Math.min(runtime.maxPrefill, context - at) }, (_, i) => 100 + ((at + i) % 20000)));
    const { headDim } = runtime.plan.config;
    const decodeNames = attentionDecodeCandidates(a, headDim).map((c) => c.name);
    const prefillAttention = attentionPrefillCandidates(a, headDim, undefined).map((c) => c.name);
    console.log('');
    console.log(`Attention at ${runtime.cachedIds.length} tokens of context (filled in ${((performance.now() - t0) / 1000).toFixed(1)} s); candidates: ${attentionDecodeCandidates(a, headDim).map((c) => `${c.name} ${JSON.stringify(c.tuning ?? {})}`).join(', ')}.`);
    console.log('');
    console.log(`| run | ${decodeNames.map((n) => `decode ${n} ms/step`).join(' | ')} | decode kept | ${prefillAttention.map((n) => `prefill ${n} ms/${PREFILL_ROWS}`).join(' | ')} | prefill kept | took |`);
    console.log(`|---|${decodeNames.map(() => '---|').join('')}---|${prefillAttention.map(() => '---|').join('')}---|---|`);
    const keptAttention: Array<{ decode: TuningCandidate<AttentionTuning>; prefill: TuningCandidate<AttentionTuning> }> = [];
    for (let r = 1; r <= Number(values.repeat); r++) {
      await runtime.retuneAttention(undefined);
      const { decode, prefill } = await autotuneAttention(runtime, a);
      keptAttention.push({ decode: decode.chosen, prefill: prefill.chosen });
      console.log(`| ${r} | ${cells(decode).join(' | ')} | ${decode.chosen.name} | ${cells(prefill).join(' | ')} | ${prefill.chosen.name} | ${((decode.ms + prefill.ms) / 1000).toFixed(2)} s |`);
    }
    console.log('');
    console.log(`Kept: attention decode ${tally(keptAttention.map((k) => k.decode.name))}; prefill ${tally(keptAttention.map((k) => k.prefill.name))}.`);
    const lastAttention = keptAttention.at(-1)!;
    await check(runtime, (t) => runtime.retuneAttention(t), lastAttention.prefill.tuning, `attention ${lastAttention.decode.name}, prefill ${lastAttention.prefill.name}, at ${runtime.cachedIds.length} tokens`);
  }
  runtime.destroy();
  await model.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
