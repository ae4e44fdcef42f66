/**
 * The decode autotune (src/engine/phi3/autotune.ts) as a benchmark: what each candidate tuning
 * measures per decode step on this GPU, which one the autotune keeps, how long choosing took, and
 * whether repeated runs choose the same. Then decode tok/s of the chosen tuning against the
 * default, alternating over longer runs than the autotune's own, so the choice is checked by a
 * measurement it did not make. The native engine on a generated Phi-3 in Node (Dawn; SwiftShader
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
import { autotuneDecode, decodeTuningCandidates, type TuningCandidate } from '../src/engine/phi3/autotune';
import type { Phi3Runtime } from '../src/engine/phi3/model';
import { GREEDY_SAMPLING } from '../src/engine/types';
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

/** tok/s of `steps` decode steps after the cache (greedy, run ahead), truncated back afterwards. */
async function decodeRate(runtime: Phi3Runtime, steps: number): Promise<number> {
  const start = runtime.cachedIds.length;
  let token = await runtime.step([1], GREEDY_SAMPLING, 0);
  const t0 = performance.now();
  for (let i = 1; i <= steps; i++) token = await runtime.step([token], GREEDY_SAMPLING, i);
  const rate = (steps * 1000) / (performance.now() - t0);
  runtime.truncate(start);
  return rate;
}

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
  console.log('');
  console.log(`| run | ${candidates.map((c) => `${c.name} ms/step`).join(' | ')} | chosen | took |`);
  console.log(`|---|${candidates.map(() => '---|').join('')}---|---|`);
  const chosen: TuningCandidate[] = [];
  for (let r = 1; r <= Number(values.repeat); r++) {
    await runtime.retune(undefined);
    const result = await autotuneDecode(runtime, { candidates });
    chosen.push(result.chosen);
    const cells = result.timings.map((t) => (t.msPerStep === null ? `failed: ${t.error}` : t.msPerStep.toFixed(2)));
    console.log(`| ${r} | ${cells.join(' | ')} | ${result.chosen.name} | ${(result.ms / 1000).toFixed(2)} s |`);
  }
  const picks = new Map<string, number>();
  for (const c of chosen) picks.set(c.name, (picks.get(c.name) ?? 0) + 1);
  console.log('');
  console.log(`Chosen: ${[...picks].map(([n, k]) => `${n} in ${k} of ${chosen.length} runs`).join(', ')}.`);

  // The last choice against the default, alternating, over longer runs than the autotune's.
  const pick = chosen.at(-1)!;
  if (pick.tuning !== undefined) {
    const rates: Record<'default' | 'chosen', number[]> = { default: [], chosen: [] };
    const steps = Number(values['check-steps']);
    for (let r = 0; r < Number(values['check-rounds']); r++) {
      for (const which of ['default', 'chosen'] as const) {
        await runtime.retune(which === 'default' ? undefined : pick.tuning);
        rates[which].push(await decodeRate(runtime, steps));
      }
    }
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
    const [d, c] = [median(rates.default), median(rates.chosen)];
    console.log(`Check (${values['check-rounds']} alternating rounds of ${steps} decode steps, medians): default ${d.toFixed(1)} tok/s, ${pick.name} ${c.toFixed(1)} tok/s: ${(c / d).toFixed(2)}×.`);
  } else console.log('The default was kept; nothing to check against it.');
  runtime.destroy();
  await model.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
