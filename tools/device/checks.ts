/**
 * The GPU checks of both numeric paths, without vitest: for a GPU machine that has Node and a
 * driver but no npm (bundled by tools/device/bundle-checks.mjs, run by tools/device/run.sh), and
 * runnable here too (both paths run on every device: the f16 cache needs no shader-f16).
 *   node device-checks.mjs [--out checks.json] [--data <dir>] [--kernels-only]
 * Prints the adapter and its features, then one line per check (PASS/FAIL/SKIPPED, precision,
 * name, max error, tolerance), writes every result as JSON to --out and exits 1 if any failed.
 * Checks: every attention and KV-append kernel case on f32 and f16 (src/engine/kernels/
 * precision-checks.ts), then each tiny model of checks-models.ts on f32 and f16 (decode GEMVs on
 * the staged shader: EXACT_DECODE) against the onnxruntime-node logits shipped in --data
 * (default: `checks-data` beside this script), written at pack time by checks-reference.ts, then
 * its MODEL_VARIANTS (other kernels, f32, and the wide GEMM in f16 arithmetic on the f16 path).
 * run.sh sets PHI3_DAWN_F16_ON_NVIDIA=1 as the benchmarks do (onnxruntime-web needs shader-f16 for
 * fp16 files); only the f16-arithmetic variant depends on it (skipped, saying so, without it).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { acquireDevice } from '../../src/engine/gpu/device';
import { nodeGPU } from '../../src/engine/gpu/node-webgpu';
import { nodeModelFiles } from '../../src/engine/node/model-dir';
import { checkModel, formatCheck, guardedCheck, runKernelChecks, type CheckResult, type ModelCheckVariant, type ModelReference } from '../../src/engine/kernels/precision-checks';
import type { Precision } from '../../src/engine/kernels/precision-wgsl';
import { EXACT_DECODE, MODEL_CHECKS, MODEL_VARIANTS, modelTolerance } from './checks-models';
import type { ShippedReference } from './checks-reference';

interface Args {
  out?: string;
  data: string;
  kernelsOnly: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { data: join(dirname(fileURLToPath(import.meta.url)), 'checks-data'), kernelsOnly: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--out') args.out = resolve(value());
    else if (a === '--data') args.data = resolve(value());
    else if (a === '--kernels-only') args.kernelsOnly = true;
    else if (a === '--help') {
      console.log('usage: device-checks.mjs [--out checks.json] [--data <checks-data dir>] [--kernels-only]');
      process.exit(0);
    } else throw new Error(`unknown argument ${a}; try --help`);
  }
  return args;
}

function loadReference(dir: string): ModelReference {
  const meta = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8')) as ShippedReference;
  const bytes = readFileSync(join(dir, 'logits.f32'));
  const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  if (all.length !== meta.tokens.length * meta.vocab) throw new Error(`${dir}/logits.f32 holds ${all.length} floats; ${meta.tokens.length} steps × vocab ${meta.vocab} expected. Re-pack.`);
  const logits = meta.tokens.map((_, i) => all.subarray(i * meta.vocab, (i + 1) * meta.vocab));
  return { prompt: meta.prompt, tokens: meta.tokens, logits };
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const started = performance.now();
  const gpu = await nodeGPU();
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  const adapterFeatures = adapter ? [...adapter.features].sort() : [];
  const ctx = await acquireDevice(gpu);
  const a = ctx.adapterInfo;
  console.log(`adapter: ${[a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' | ')}`);
  console.log(`adapter features: ${adapterFeatures.join(', ') || '(none)'}`);
  console.log(`PHI3_DAWN_F16_ON_NVIDIA=${process.env.PHI3_DAWN_F16_ON_NVIDIA ?? 'unset'}; shader-f16 on the device: ${ctx.features.shaderF16}`);

  const results: CheckResult[] = await runKernelChecks(ctx, (r) => console.log(formatCheck(r)));
  if (!args.kernelsOnly) {
    if (!existsSync(args.data)) throw new Error(`no model check data at ${args.data}; build it with tools/device/bundle-checks.mjs (or pass --kernels-only)`);
    // One model check on the shipped model `id` and its reference, logged and recorded.
    const runModel = async (id: string, name: string, precision: Precision, tolerance: number, variant: ModelCheckVariant) => {
      const dir = join(args.data, id);
      const ref = loadReference(dir);
      const files = nodeModelFiles(dir);
      try {
        for (const r of await guardedCheck(name, precision, 'max |Δlogit|', tolerance, async () => [await checkModel(ctx, files, ref, precision, tolerance, name, variant)])) {
          results.push(r);
          console.log(formatCheck(r));
        }
      } finally {
        await files.close();
      }
    };
    for (const spec of MODEL_CHECKS) {
      for (const precision of ['f32', 'f16'] as const) await runModel(spec.id, `model ${spec.description}, ${spec.steps} steps vs onnxruntime`, precision, modelTolerance(spec, precision), EXACT_DECODE);
    }
    for (const v of MODEL_VARIANTS) {
      const spec = MODEL_CHECKS.find((m) => m.id === v.model)!;
      await runModel(spec.id, `model ${spec.description}, ${v.label}, ${spec.steps} steps vs onnxruntime`, v.precision ?? 'f32', v.tolerance, v);
    }
  }
  const failed = results.filter((r) => !r.pass);
  const ran = results.filter((r) => !r.skipped).length;
  const seconds = (performance.now() - started) / 1000;
  console.log(`${ran - failed.length} passed, ${failed.length} failed, ${results.length - ran} skipped (${seconds.toFixed(1)} s)`);
  if (args.out) {
    const report = {
      adapter: ctx.adapterInfo,
      adapterFeatures,
      shaderF16: ctx.features.shaderF16,
      dawnF16OnNvidia: process.env.PHI3_DAWN_F16_ON_NVIDIA === '1',
      commit: process.env.BENCH_COMMIT ?? null,
      seconds,
      results: results.map((r) => ({ ...r, maxError: Number.isFinite(r.maxError) ? r.maxError : String(r.maxError) })),
    };
    writeFileSync(args.out, `${JSON.stringify(report, null, 2)}\n`);
    console.log(`wrote ${args.out}`);
  }
  ctx.device.destroy();
  return failed.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exit(1);
  },
);
