/**
 * The native half of the benchmark in Node through the `webgpu` package (Dawn), for machines with
 * a GPU but no browser:
 *   npm run bench:node -- [--model DIR | --full | --layers N] [--rounds R] [--contexts 0,512,2048]
 *                         [--prefill 128,512] [--decode-steps N] [--out file.json] [--docs]
 * `--full` generates a 32-layer random-weight q4f16 Phi-3 (~2.3 GB) into a temp dir (free space
 * checked first, deleted afterwards unless --keep). Prints decode/prefill figures, the device's
 * copy bandwidth and each GEMV's effective bandwidth as a share of it (issue 7's ≥ 75% target).
 * Rule: same measurement code as the browser page (measure.ts, kernels.ts); only the host differs.
 */
import { mkdtempSync, rmSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { acquireDevice } from '../../src/engine/gpu/device';
import { nodeGPU } from '../../src/engine/gpu/node-webgpu';
import { NativeEngine } from '../../src/engine/native-engine';
import { nodeModelFiles } from '../../src/engine/node/model-dir';
import { kernelReport } from './kernels';
import { installGpuCounters, measureRound, type GpuClasses } from './measure';
import { describeModel, ensureFullWidthModel, gitCommit, machineBase } from './model';
import { combineRounds, parseIntList, type BenchReport, type KernelReport, type Missing, type RoundResult } from './report';
import { renderMarkdown, spliceSection } from './render';

const USAGE =
  'usage: npm run bench:node -- [--model DIR | --full | --layers N] [--dtype q4|q4f16] [--rounds R] [--contexts 0,512,2048] [--prefill 128,512] [--decode-steps N] [--kernel-reps N] [--out file.json] [--docs] [--keep]';
const ROOT = resolve(import.meta.dirname, '../..');
const log = (s: string) => console.log(`[bench:node] ${s}`);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string' },
      full: { type: 'boolean', default: false },
      layers: { type: 'string', default: '1' },
      dtype: { type: 'string' },
      rounds: { type: 'string', default: '2' },
      contexts: { type: 'string', default: '0,512,2048' },
      prefill: { type: 'string', default: '128,512' },
      'decode-steps': { type: 'string', default: '8' },
      'kernel-reps': { type: 'string', default: '20' },
      out: { type: 'string' },
      docs: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return void console.log(USAGE);
  const positive = (flag: string, v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${flag} must be a positive integer, got "${v}".`);
    return n;
  };
  const layers = values.full ? 32 : positive('layers', values.layers);
  const dtype = values.dtype ?? (values.full ? 'q4f16' : 'q4');
  if (dtype !== 'q4' && dtype !== 'q4f16') throw new Error(`--dtype must be q4 or q4f16, got "${dtype}".`);
  const rounds = positive('rounds', values.rounds);
  const decodeSteps = positive('decode-steps', values['decode-steps']);
  const kernelReps = positive('kernel-reps', values['kernel-reps']);
  const contexts = parseIntList('--contexts', values.contexts);
  const prefill = parseIntList('--prefill', values.prefill).filter((n) => n > 0);

  const loadBefore = loadavg();
  let modelDir = values.model;
  let generated = false;
  let tempDir: string | undefined;
  if (!modelDir) {
    if (values.full) {
      tempDir = mkdtempSync(join(tmpdir(), 'phi3-bench-'));
      modelDir = tempDir;
    } else {
      modelDir = join(ROOT, `.tmp/bench-model-l${layers}-${dtype}`);
    }
    await ensureFullWidthModel(modelDir, layers, dtype, log);
    generated = true;
  }
  try {
    const model = describeModel(modelDir, generated);
    const gpu = await nodeGPU(); // also puts the webgpu package's GPU* classes on globalThis
    installGpuCounters(globalThis as unknown as GpuClasses);
    const ctx = await acquireDevice(gpu);
    log(`adapter ${JSON.stringify(ctx.adapterInfo)}; features ${[...ctx.device.features].sort().join(', ')}`);

    const results: RoundResult[] = [];
    let declared: number | null = null;
    for (let r = 0; r < rounds; r++) {
      log(`round ${r + 1}/${rounds} (load avg ${loadavg().map((x) => x.toFixed(2)).join(' ')})`);
      const files = nodeModelFiles(modelDir);
      const t = performance.now();
      const engine = await NativeEngine.load(ctx, files);
      const loadMs = performance.now() - t;
      declared = engine.runtime.dispatchesPerDecode;
      log(`loaded in ${loadMs.toFixed(0)} ms (from disk)`);
      try {
        results.push(await measureRound(engine.runtime, { contexts, prefill, decodeSteps, log }, loadMs, null));
      } finally {
        engine.destroy();
        await files.close();
      }
    }
    let kernels: KernelReport | Missing;
    try {
      kernels = await kernelReport(ctx.device, { reps: kernelReps, scalesDtype: dtype === 'q4f16' ? 'f16' : 'f32', log });
    } catch (err) {
      kernels = { missing: err instanceof Error ? err.message : String(err) };
    }
    const base = machineBase();
    const notes: string[] = [];
    if (/swiftshader/i.test(JSON.stringify(ctx.adapterInfo))) notes.push('SwiftShader is a CPU implementation of Vulkan: these figures measure this machine\'s CPUs, not any GPU.');
    notes.push('Load is from disk (the files are read in ranges and uploaded as they arrive).');
    const native = combineRounds('native', 'native WGSL kernels (NativeEngine), Node webgpu package', results, declared);
    const report: BenchReport = {
      version: 1,
      createdAt: new Date().toISOString(),
      host: 'node',
      commit: gitCommit(ROOT),
      machine: { cpus: base.cpus, cpuModel: base.cpuModel, loadavgBefore: loadBefore, loadavgAfter: loadavg(), platform: base.platform, node: base.node, browser: null, adapter: ctx.adapterInfo, features: [...ctx.device.features].sort() },
      model: model.info,
      settings: { rounds, contexts, prefill, decodeSteps, loadFrom: 'disk (Node file reads)' },
      engines: { native, ort: { missing: 'onnxruntime-web runs in the browser only (npm run bench)' } },
      ratios: { decode: null, prefill: null, reason: 'ort: not run in Node' },
      kernels,
      notes,
    };
    const md = renderMarkdown(report);
    console.log(`\n${md}\n`);
    if (values.out) {
      writeFileSync(values.out, `${JSON.stringify(report, null, 2)}\n`);
      log(`wrote ${values.out}`);
    }
    if (values.docs) {
      const docPath = join(ROOT, 'docs/benchmarks.md');
      const doc = existsSync(docPath) ? readFileSync(docPath, 'utf8') : '# Benchmarks\n';
      writeFileSync(docPath, spliceSection(doc, 'bench-node', md));
      writeFileSync(join(ROOT, 'docs/bench-node.json'), `${JSON.stringify(report, null, 2)}\n`);
      log('updated docs/benchmarks.md and docs/bench-node.json');
    }
    ctx.device.destroy();
  } finally {
    if (tempDir && !values.keep) rmSync(tempDir, { recursive: true, force: true });
  }
}

main().then(
  // Dawn keeps the process alive; exit explicitly once everything is written.
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
    process.exit(1);
  },
);
