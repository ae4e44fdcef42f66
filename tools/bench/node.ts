/**
 * The benchmark in Node through the `webgpu` package (Dawn), for machines with a GPU but no browser:
 *   npm run bench:node -- [--model DIR | --full | --layers N] [--rounds R] [--contexts 0,512,2048]
 *                         [--prefill 128,512] [--decode-steps N] [--no-ort] [--out file.json] [--docs]
 * Both engines, as in the browser runner: the native engine and onnxruntime-web's WebGPU EP
 * (OrtEngine on the WebGPU build, set up for Node by src/engine/ort/ort-node.ts on the same Dawn),
 * loaded from the same files, alternating each round (native, ort; then ort, native), each
 * measured by measure.ts; report.ts folds the rounds and computes native ÷ ort ratios. Every
 * (round, engine) runs in a fresh child process of this script (`--child`), so the engines never
 * share a Dawn instance, device or JS heap (on an H100 the engine measured second in one process
 * often ran at half speed; slow phases later showed in fresh processes too). ort runs
 * by default whenever it can (ort-node.ts here decides: fp16 files need shader-f16, each file
 * ≤ 2 GiB); otherwise, or with --no-ort, `engines.ort` says why it is missing.
 * `--full` generates a 32-layer random-weight q4f16 Phi-3 (~2.3 GB) into a temp dir (free space
 * checked first, deleted afterwards unless --keep): a 1.07 GB .onnx (weights inline up to 1 GiB)
 * and a 1.22 GB .onnx_data, so both engines run it. Prints decode/prefill
 * figures, the device's copy bandwidth and each GEMV's effective bandwidth as a share of it
 * (issue 7's ≥ 75% target).
 * `--tuning JSON` (a MatMulNBitsTuning) and `--attention JSON` (an AttentionTuning) override the
 * native engine's kernel choices, `--precision f32` its KV cache (default f16, packed),
 * `--f32-weights` a q4 file's block scales, embedding and rotary caches (default: packed to fp16 on the f16 path), and
 * `--no-run-ahead` its decode submission, for A/B runs.
 * Rule: same measurement code as the browser page (measure.ts, kernels.ts); only the host differs.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync, readFileSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { acquireDevice } from '../../src/engine/gpu/device';
import { nodeGPU } from '../../src/engine/gpu/node-webgpu';
import { NativeEngine } from '../../src/engine/native-engine';
import type { MatMulNBitsTuning } from '../../src/engine/kernels/matmul-nbits';
import type { AttentionTuning } from '../../src/engine/kernels/attention';
import type { Precision } from '../../src/engine/kernels/precision-wgsl';
import { nodeModelFiles } from '../../src/engine/node/model-dir';
import { OrtEngine } from '../../src/engine/ort/ort-engine';
import { loadOrtNode } from '../../src/engine/ort/ort-node';
import type { TokenRuntime } from '../../src/engine/generate';
import { kernelReport } from './kernels';
import { installGpuCounters, measureRound, startGpuMemoryWindow, type GpuClasses } from './measure';
import { describeModel, ensureFullWidthModel, gitCommit, machineBase } from './model';
import { ortSkipReason } from './ort-node';
import { profileDecodeSteps, profilePrefillChunks, type PrefillRuns, type ProfileRuns } from './profile';
import { combineRounds, computeRatios, foldDecodeProfile, foldPrefillProfile, isMissing, parseIntList, type BenchReport, type EngineResult, type KernelReport, type Missing, type RoundResult } from './report';
import { renderMarkdown, spliceSection } from './render';

const USAGE =
  'usage: npm run bench:node -- [--model DIR | --full | --layers N] [--dtype q4|q4f16] [--rounds R] [--contexts 0,512,2048] [--prefill 128,512] [--decode-steps N] [--kernel-reps N] [--profile-steps N] [--tuning JSON] [--attention JSON] [--precision f16|f32] [--f32-weights] [--no-run-ahead] [--no-kernels] [--no-ort] [--out file.json] [--docs] [--keep]';
const ROOT = resolve(import.meta.dirname, '../..');
/** The commit of the code this process loaded, read at start: edits during the run are not what it measures. */
const COMMIT = gitCommit(ROOT);
const log = (s: string) => console.log(`[bench:node] ${s}`);
type EngineName = 'native' | 'ort';

/** A flag's JSON object (`example` shows one in the error); fields are checked where they are used. */
function parseJsonFlag(flag: string, text: string, example: string): Record<string, unknown> {
  let t: unknown;
  try {
    t = JSON.parse(text);
  } catch {
    throw new Error(`--${flag} must be a JSON object such as '${example}', got "${text}".`);
  }
  if (typeof t !== 'object' || t === null || Array.isArray(t)) throw new Error(`--${flag} must be a JSON object, got "${text}".`);
  return t as Record<string, unknown>;
}

/** `--tuning '{"gemv":"direct","threadsPerRow":64,…}'`: a MatMulNBitsTuning for every native matmul. */
const parseTuning = (text: string) => parseJsonFlag('tuning', text, '{"gemv":"direct","threadsPerRow":64,"rowGroups":2,"rowsPerThread":8}') as MatMulNBitsTuning;

/** `--precision f32`: the native KV cache's element type (the default is f16, packed in u32 words). */
function parsePrecision(text: string): Precision {
  if (text !== 'f16' && text !== 'f32') throw new Error(`--precision must be f16 or f32, got "${text}".`);
  return text;
}

/** `--attention '{"kernel":"lanes","keysPerSplit":128}'`: the AttentionTuning of every native layer. */
const parseAttention = (text: string) => parseJsonFlag('attention', text, '{"kernel":"lanes","keysPerSplit":128}') as AttentionTuning;

/** What a `--child` process reports to the parent (as JSON in the file given by --child-out). */
interface ChildReport {
  result?: RoundResult;
  declared?: number;
  profile?: ProfileRuns[] | Missing;
  prefillProfile?: PrefillRuns[] | Missing;
  ortVersion?: string;
  error?: string;
}

type Values = ReturnType<typeof parseOptions>['values'];

/** Runs one round of one engine in a new Node process running this script, and returns its report. */
async function runChild(name: EngineName, modelDir: string, values: Values, profile: boolean): Promise<ChildReport> {
  const outFile = join(tmpdir(), `phi3-bench-${process.pid}-${name}-${Date.now()}.json`);
  const pass = (flag: 'contexts' | 'prefill' | 'decode-steps' | 'profile-steps') => [`--${flag}`, String(values[flag])];
  const passIfSet = (flag: 'tuning' | 'attention' | 'precision') => (values[flag] ? [`--${flag}`, values[flag]] : []);
  const args = [...process.execArgv, process.argv[1], '--child', name, '--model', modelDir, ...pass('contexts'), ...pass('prefill'), ...pass('decode-steps'), ...pass('profile-steps'), '--child-out', outFile, ...(profile ? ['--child-profile'] : []), ...passIfSet('tuning'), ...passIfSet('attention'), ...passIfSet('precision'), ...(values['no-run-ahead'] ? ['--no-run-ahead'] : []), ...(values['f32-weights'] ? ['--f32-weights'] : [])];
  const code = await new Promise<number | null>((done) => spawn(process.execPath, args, { stdio: 'inherit' }).on('exit', done));
  try {
    if (!existsSync(outFile)) return { error: `the ${name} process exited with code ${code} before reporting` };
    return JSON.parse(readFileSync(outFile, 'utf8')) as ChildReport;
  } finally {
    rmSync(outFile, { force: true });
  }
}

/** `--child NAME`: load one engine from --model, measure one round (and profile native when asked), report, exit. */
async function child(values: Values): Promise<void> {
  const name = values.child as EngineName;
  const modelDir = values.model!;
  const report: ChildReport = {};
  const plan = { contexts: parseIntList('--contexts', values.contexts), prefill: parseIntList('--prefill', values.prefill).filter((n) => n > 0), decodeSteps: Number(values['decode-steps']), log: (line: string) => log(`${name}: ${line}`) };
  const gpu = await nodeGPU(); // also puts the webgpu package's GPU* classes on globalThis
  installGpuCounters(globalThis as unknown as GpuClasses);
  const files = nodeModelFiles(modelDir);
  let loaded: { runtime: TokenRuntime; destroy(): unknown } | undefined;
  try {
    const gpuWindow = startGpuMemoryWindow();
    const t = performance.now();
    if (name === 'native') {
      const ctx = await acquireDevice(gpu);
      log(`adapter ${JSON.stringify(ctx.adapterInfo)}; features ${[...ctx.device.features].sort().join(', ')}`);
      const engine = await NativeEngine.load(ctx, files, { matMulTuning: values.tuning ? parseTuning(values.tuning) : undefined, attention: values.attention ? parseAttention(values.attention) : undefined, precision: values.precision ? parsePrecision(values.precision) : undefined, f16Weights: !values['f32-weights'], runAhead: !values['no-run-ahead'] });
      report.declared = engine.runtime.dispatchesPerDecode;
      const warm = engine.runtime.decodeWarmBytes;
      log(`decode matmuls on ${engine.runtime.decodeMatMulPaths.join(', ')}${warm ? `; ${(warm / 1e6).toFixed(1)} MB of weights read ahead per token (warmNext)` : ''}`);
      loaded = engine;
    } else {
      const ort = await loadOrtNode(gpu);
      report.ortVersion = ort.env.versions.web;
      loaded = await OrtEngine.load(files, { provider: 'webgpu', ort });
    }
    const loadMs = performance.now() - t;
    log(`${name} loaded in ${loadMs.toFixed(0)} ms (from disk)`);
    const native = loaded instanceof NativeEngine ? loaded.runtime : undefined;
    const gpuMB = (r: NonNullable<typeof native>) => JSON.stringify(Object.fromEntries(Object.entries(r.gpuBytes()).map(([k, v]) => [k, Math.round(v / 1e6)])));
    if (native) log(`GPU buffers at load, MB: ${gpuMB(native)}`);
    report.result = await measureRound(loaded.runtime, plan, loadMs, null, gpuWindow);
    log(`${name}: GPU buffers ${JSON.stringify(report.result.gpuBuffers)} bytes (after load; most at once over load and round)`);
    // The KV cache grows with the context (model.ts, fitCapacity) and shrinks again at a short prompt: what the round left.
    if (native) log(`GPU buffers after the round, MB: ${gpuMB(native)} (KV cache ${native.kvCapacity} positions)`);
    if (values['child-profile'] && loaded instanceof NativeEngine) {
      report.profile = await profileDecodeSteps(loaded.runtime, plan.contexts, Number(values['profile-steps']), plan.log);
      report.prefillProfile = await profilePrefillChunks(loaded.runtime, plan.prefill, Number(values['profile-steps']), plan.log);
    }
  } catch (err) {
    report.error = err instanceof Error ? err.message.split('\n')[0] : String(err);
  } finally {
    await loaded?.destroy();
    await files.close();
  }
  writeFileSync(values['child-out']!, JSON.stringify(report));
}

function parseOptions() {
  return parseArgs({
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
      'profile-steps': { type: 'string', default: '3' },
      tuning: { type: 'string' },
      attention: { type: 'string' },
      precision: { type: 'string' },
      // The native engine submits each decode step only when asked for (LoadOptions.runAhead off).
      'no-run-ahead': { type: 'boolean', default: false },
      'f32-weights': { type: 'boolean', default: false },
      'no-kernels': { type: 'boolean', default: false },
      out: { type: 'string' },
      docs: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      // ort runs whenever it can; --ort only documents that, --no-ort skips it.
      ort: { type: 'boolean', default: false },
      // Internal (runChild): one engine, one round, in this process.
      child: { type: 'string' },
      'child-out': { type: 'string' },
      'child-profile': { type: 'boolean', default: false },
      'no-ort': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
}

async function main(): Promise<void> {
  const { values } = parseOptions();
  if (values.help) return void console.log(USAGE);
  if (values.child) {
    if (values.child !== 'native' && values.child !== 'ort') throw new Error(`--child must be native or ort, got "${values.child}".`);
    if (!values.model || !values['child-out']) throw new Error('--child needs --model and --child-out (it is started by this script itself).');
    return child(values);
  }
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
  positive('profile-steps', values['profile-steps']); // checked here, used by the child processes
  if (values.tuning) parseTuning(values.tuning);
  if (values.attention) parseAttention(values.attention);
  if (values.precision) parsePrecision(values.precision);
  const contexts = parseIntList('--contexts', values.contexts);
  const prefill = parseIntList('--prefill', values.prefill).filter((n) => n > 0);
  if (values.ort && values['no-ort']) throw new Error('--ort and --no-ort contradict each other; give one (ort runs by default when it can).');

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
    // The parent only asks for the adapter until the rounds are done: each round's engine gets a
    // fresh process and device (runChild); the isolated kernel timings run here afterwards.
    const gpu = await nodeGPU();

    // onnxruntime-web: decided up front from the model and the adapter onnxruntime will get.
    let ortSkip: string | null = values['no-ort'] ? 'not requested (--no-ort)' : null;
    if (!ortSkip) {
      const fileBytes = Object.fromEntries(model.paths.filter((p) => p.includes('.onnx')).map((p) => [p, statSync(join(model.info.dir, p)).size]));
      const adapter = await gpu.requestAdapter();
      ortSkip = ortSkipReason({ model: model.info, fileBytes, adapterFeatures: new Set(adapter?.features ?? []) });
      if (ortSkip) log(`onnxruntime-web skipped: ${ortSkip}`);
    }
    const engines: EngineName[] = ortSkip ? ['native'] : ['native', 'ort'];

    const results: Record<EngineName, RoundResult[]> = { native: [], ort: [] };
    let ortFailed: string | undefined;
    let ortVersion = '';
    let declared: number | null = null;
    let profiled: ProfileRuns[] | Missing = { missing: 'not run' };
    let prefillProfiled: PrefillRuns[] | Missing = { missing: 'not run' };
    for (let r = 0; r < rounds; r++) {
      // As in the browser runner: native first in even rounds, ort first in odd ones.
      const order = r % 2 === 0 ? engines : [...engines].reverse();
      for (const name of order) {
        if (name === 'ort' && ortFailed) continue;
        log(`round ${r + 1}/${rounds}: ${name} in a fresh process (load avg ${loadavg().map((x) => x.toFixed(2)).join(' ')})`);
        const child = await runChild(name, modelDir, values, r === rounds - 1);
        if (child.error || !child.result) {
          // The native engine is what this runner exists for: its failure ends the run.
          if (name === 'native') throw new Error(`native round ${r + 1} failed: ${child.error ?? 'no result'}`);
          ortFailed = child.error ?? 'no result';
          log(`ort failed: ${ortFailed}`);
          continue;
        }
        results[name].push(child.result);
        if (child.declared !== undefined) declared = child.declared;
        if (child.profile) profiled = child.profile;
        if (child.prefillProfile) prefillProfiled = child.prefillProfile;
        if (child.ortVersion) ortVersion = child.ortVersion;
      }
    }
    const ctx = await acquireDevice(gpu);
    // --no-kernels skips the isolated GEMVs, not the copy bandwidth: the profile's % of copy needs it.
    let kernels: KernelReport | Missing;
    try {
      kernels = await kernelReport(ctx.device, { reps: kernelReps, scalesDtype: dtype === 'q4f16' ? 'f16' : 'f32', log, copyOnly: values['no-kernels'] });
    } catch (err) {
      kernels = { missing: err instanceof Error ? err.message : String(err) };
    }
    const copyGb = isMissing(kernels) ? null : kernels.copy.gbPerSec;
    const profile = isMissing(profiled) ? profiled : profiled.map((p) => foldDecodeProfile(p.context, p.runs, copyGb, p.inStep));
    const prefillProfile = isMissing(prefillProfiled) ? prefillProfiled : prefillProfiled.map((p) => foldPrefillProfile(p.tokens, p.runs));
    const base = machineBase();
    const notes: string[] = [];
    if (/swiftshader/i.test(JSON.stringify(ctx.adapterInfo))) notes.push('SwiftShader is a CPU implementation of Vulkan: these figures measure this machine\'s CPUs, not any GPU.');
    if (values.tuning) notes.push(`The native engine ran every matmul with the tuning override ${values.tuning} (--tuning), not the adapter's defaults.`);
    if (values.attention) notes.push(`The native engine ran attention with ${values.attention} (--attention), not the defaults.`);
    if (values.precision) notes.push(`The native engine's KV cache was ${values.precision} (--precision).`);
    if (values['f32-weights']) notes.push('The native engine kept a q4 file\'s block scales, embedding and rotary caches in f32 (--f32-weights), not packed to fp16.');
    if (values['no-run-ahead']) notes.push('The native engine ran with run-ahead off (--no-run-ahead): each decode step was submitted only after the previous token was read back.');
    notes.push('Load is from disk: the native engine reads the files in ranges and uploads them as they arrive; onnxruntime-web reads each file whole first (it takes whole buffers).');
    const native = combineRounds('native', 'native WGSL kernels (NativeEngine), Node webgpu package', results.native, declared);
    let ortResult: EngineResult | Missing;
    if (ortSkip) ortResult = { missing: ortSkip };
    else if (results.ort.length === 0) ortResult = { missing: ortFailed ?? 'no rounds completed' };
    else {
      if (ortFailed) notes.push(`ort failed after ${results.ort.length} round(s): ${ortFailed}`);
      ortResult = combineRounds('ort', `onnxruntime-web ${ortVersion}, WebGPU EP (OrtEngine), Node webgpu package`, results.ort, null);
      notes.push(
        `Both engines ran the same ${model.info.layers}-layer ${model.info.dtype} model from the same files, alternating each round, each round in a fresh Node process. onnxruntime-web runs its WebGPU build (asyncify wasm, one thread as in the browser page) on the same Dawn through navigator.gpu.`,
      );
      notes.push('Per-token counts come from wrapping GPUComputePassEncoder.dispatchWorkgroups, GPUQueue.submit and GPUBuffer.mapAsync(READ), so both engines are counted the same way; GPU buffer bytes likewise, from GPUDevice.createBuffer and GPUBuffer.destroy (bytes asked of WebGPU, counted from just before each load).');
    }
    const report: BenchReport = {
      version: 1,
      createdAt: new Date().toISOString(),
      host: 'node',
      commit: COMMIT,
      machine: { cpus: base.cpus, cpuModel: base.cpuModel, loadavgBefore: loadBefore, loadavgAfter: loadavg(), platform: base.platform, node: base.node, browser: null, adapter: ctx.adapterInfo, features: [...ctx.device.features].sort() },
      model: model.info,
      settings: { rounds, contexts, prefill, decodeSteps, loadFrom: 'disk (Node file reads)' },
      engines: { native, ort: ortResult },
      ratios: computeRatios(native, ortResult),
      kernels,
      profile,
      prefillProfile,
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
