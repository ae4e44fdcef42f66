/**
 * GEMV tuning sweep, for choosing an adapter's defaults in `matMulNBitsTuningFor`:
 *   node --import tsx --import ./tools/raw-hooks.mjs tools/bench/sweep.ts [--reps N] [--dtype q4|q4f16]
 *        [--no-gemv] [--gemm 128,512] [--out file.json]
 * (on a GPU machine without npm: the bundle `.device/bench.tar.xz` → bench/sweep.mjs, see
 * tools/device/run.sh). Prints the copy bandwidth, then per Phi-3 GEMV shape (with its fusions)
 * the current default's time and the five fastest tunings; `--gemm M,…` also times the prefill
 * GEMM's tilings at those M; `--out` keeps every timing.
 * Rule: measures only; changing a default is a code change made by hand, with the figures in
 * the commit message and docs/benchmarks.md.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { acquireDevice } from '../../src/engine/gpu/device';
import { nodeGPU } from '../../src/engine/gpu/node-webgpu';
import { parseIntList } from './report';
import { measureCopyBandwidth, sweepGemms, sweepGemvs } from './kernels';

async function main(): Promise<void> {
  const { values } = parseArgs({ allowNegative: true, options: { reps: { type: 'string', default: '20' }, dtype: { type: 'string', default: 'q4f16' }, out: { type: 'string' }, gemv: { type: 'boolean', default: true }, gemm: { type: 'string', default: '' } } });
  const reps = Number(values.reps);
  if (!Number.isInteger(reps) || reps < 1) throw new Error(`--reps must be a positive integer, got "${values.reps}".`);
  if (values.dtype !== 'q4' && values.dtype !== 'q4f16') throw new Error(`--dtype must be q4 or q4f16, got "${values.dtype}".`);
  const ctx = await acquireDevice(await nodeGPU());
  const log = (s: string) => console.log(`[sweep] ${s}`);
  log(`adapter ${JSON.stringify(ctx.adapterInfo)}; features ${[...ctx.device.features].sort().join(', ')}`);
  const copy = await measureCopyBandwidth(ctx.device);
  log(`copy ${copy.gbPerSec.toFixed(1)} GB/s (${copy.note})`);
  const t = performance.now();
  const scalesDtype = values.dtype === 'q4f16' ? 'f16' : 'f32';
  const results = values.gemv ? await sweepGemvs(ctx.device, { reps, scalesDtype, copyGbPerSec: copy.gbPerSec, log }) : [];
  const gemms = [];
  for (const m of parseIntList('--gemm', values.gemm).filter((n) => n > 1)) gemms.push(...(await sweepGemms(ctx.device, { m, reps: Math.max(2, Math.round(reps / 4)), scalesDtype, log })));
  log(`swept in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  if (values.out) writeFileSync(values.out, `${JSON.stringify({ adapter: ctx.adapterInfo, copy, results, gemms }, null, 2)}\n`);
  ctx.device.destroy();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
    process.exit(1);
  },
);
