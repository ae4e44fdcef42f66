/**
 * The kernel autotune (src/engine/phi3/autotune.ts) as a benchmark: what each candidate tuning
 * measures per decode step, and then each prefill GEMM per 128-token chunk on top of the decode
 * choice, on this GPU; which ones the autotune keeps, how long choosing took, and whether repeated
 * runs choose the same. Then decode and prefill tok/s of the kept tuning against the defaults,
 * alternating over longer runs than the autotune's own, so the choice is checked by a measurement
 * it did not make. The native engine on a generated Phi-3 in Node (Dawn; SwiftShader
 * without a GPU, where the figures are this machine's CPUs, not a GPU).
 *   npm run bench:autotune [-- --layers 2 --hidden 3072 --repeat 3 --check-steps 32]
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
import { autotuneKernels, decodeStepMs, decodeTuningCandidates, prefillChunkMs, prefillTuningCandidates, type AutotuneResult, type TuningCandidate } from '../src/engine/phi3/autotune';
import { generateTinyModel } from './tiny-model/generate';

const { values } = parseArgs({
  options: {
    layers: { type: 'string', default: '2' },
    hidden: { type: 'string', default: '3072' },
    repeat: { type: 'string', default: '3' },
    'check-steps': { type: 'string', default: '32' },
    'check-rounds': { type: 'string', default: '3' },
    full: { type: 'boolean', default: false },
  },
});

/** The chunk autotunePrefill times (its default), and the check's. */
const PREFILL_ROWS = 128;

const dir = mkdtempSync(join(tmpdir(), 'bench-autotune-'));
const files = () => nodeModelFiles(dir);
try {
  const hidden = values.full ? 3072 : Number(values.hidden);
  const layers = values.full ? 32 : Number(values.layers);
  const ctx = await acquireDevice(await nodeGPU());
  const f16 = values.full && ctx.features.shaderF16;
  await generateTinyModel(dir, { layers, hidden, heads: hidden % 96 === 0 ? hidden / 96 : hidden / 32, intermediate: values.full ? 8192 : Math.round((hidden * 8) / 3 / 64) * 64, dtype: f16 ? 'q4f16' : 'q4' });
  const model = files();
  const { runtime } = await loadModelFiles(ctx, model);
  await runtime.logits([1]);
  const candidates = decodeTuningCandidates(ctx.device, ctx.adapterInfo);
  const a = ctx.adapterInfo;
  console.log(`Adapter: ${[a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' / ')}`);
  console.log(`Model: ${layers} layers, hidden ${hidden}, intermediate ${runtime.plan.config.intermediate}, vocab ${runtime.plan.config.vocab}, ${runtime.precision}; candidates: ${candidates.map((c) => `${c.name} ${JSON.stringify(c.tuning ?? {})}`).join(', ')}.`);
  const prefillNames = prefillTuningCandidates(a, undefined).map((c) => c.name);
  console.log('');
  console.log(`| run | ${candidates.map((c) => `decode ${c.name} ms/step`).join(' | ')} | decode kept | ${prefillNames.map((n) => `prefill ${n} ms/${PREFILL_ROWS}`).join(' | ')} | prefill kept | took |`);
  console.log(`|---|${candidates.map(() => '---|').join('')}---|${prefillNames.map(() => '---|').join('')}---|---|`);
  const cells = (r: AutotuneResult) => r.timings.map((t) => (t.ms === null ? `failed: ${t.error}` : t.ms.toFixed(2)));
  const kept: Array<{ decode: TuningCandidate; prefill: TuningCandidate }> = [];
  for (let r = 1; r <= Number(values.repeat); r++) {
    await runtime.retune(undefined);
    const { decode, prefill } = await autotuneKernels(runtime, candidates, a);
    kept.push({ decode: decode.chosen, prefill: prefill.chosen });
    console.log(`| ${r} | ${cells(decode).join(' | ')} | ${decode.chosen.name} | ${cells(prefill).join(' | ')} | ${prefill.chosen.name} | ${((decode.ms + prefill.ms) / 1000).toFixed(2)} s |`);
  }
  const tally = (names: string[]) => {
    const picks = new Map<string, number>();
    for (const n of names) picks.set(n, (picks.get(n) ?? 0) + 1);
    return [...picks].map(([n, k]) => `${n} in ${k} of ${names.length} runs`).join(', ');
  };
  console.log('');
  console.log(`Kept: decode ${tally(kept.map((k) => k.decode.name))}; prefill ${tally(kept.map((k) => k.prefill.name))}.`);

  // The last choice against the defaults, alternating, over longer runs than the autotune's own.
  const last = kept.at(-1)!;
  if (last.prefill.tuning !== undefined) {
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
    const rates = { decode: { default: [] as number[], kept: [] as number[] }, prefill: { default: [] as number[], kept: [] as number[] } };
    const steps = Number(values['check-steps']);
    for (let r = 0; r < Number(values['check-rounds']); r++) {
      for (const which of ['default', 'kept'] as const) {
        await runtime.retune(which === 'default' ? undefined : last.prefill.tuning);
        rates.decode[which].push(1000 / (await decodeStepMs(runtime, steps)));
        rates.prefill[which].push((PREFILL_ROWS * 1000) / (await prefillChunkMs(runtime, PREFILL_ROWS)));
      }
    }
    const line = (what: 'decode' | 'prefill') => {
      const [d, k] = [median(rates[what].default), median(rates[what].kept)];
      return `${what} ${d.toFixed(1)} → ${k.toFixed(1)} tok/s (${(k / d).toFixed(2)}×)`;
    };
    console.log(`Check, the defaults → the kept tuning (decode ${last.decode.name}, prefill ${last.prefill.name}), ${values['check-rounds']} alternating rounds of ${steps} decode steps and one ${PREFILL_ROWS}-token chunk, medians: ${line('decode')}; ${line('prefill')}.`);
  } else console.log('The defaults were kept; nothing to check against them.');
  runtime.destroy();
  await model.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
