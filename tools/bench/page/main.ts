/**
 * The benchmark page (built by tools/bench.ts with Vite, served from 127.0.0.1, driven through
 * Playwright). It imports the app's own engine modules — NativeEngine and OrtEngine — so the
 * figures are for the code the app runs. Node calls the functions on `window.__bench` one at a
 * time: `init` fetches every model file into memory once; `load`/`measure`/`unload` run one
 * engine for one round; `profile` and `profilePrefill` time the loaded native engine's decode
 * and prefill kernels in context;
 * `kernels` runs the isolated GEMV and copy timings.
 * Rule: model files are fetched once and shared by both engines, so load times compare
 * engine work, not network or disk.
 */
import { AppError } from '../../../src/engine/errors';
import { acquireDevice, type GpuContext } from '../../../src/engine/gpu/device';
import type { TokenRuntime } from '../../../src/engine/generate';
import { NativeEngine } from '../../../src/engine/native-engine';
import { bytesSource } from '../../../src/engine/onnx/sources';
import { OrtEngine } from '../../../src/engine/ort/ort-engine';
import type { ModelFiles } from '../../../src/engine/phi3/files';
import { Phi3Runtime } from '../../../src/engine/phi3/model';
import { kernelReport } from '../kernels';
import { installGpuCounters, measureRound, startGpuMemoryWindow, type GpuClasses, type RoundPlan } from '../measure';
import { profileDecodeSteps, profilePrefillChunks, type PrefillRuns, type ProfileRuns } from '../profile';
import type { KernelReport, Missing, RoundResult } from '../report';

type EngineName = 'native' | 'ort';

interface Loaded {
  name: EngineName;
  runtime: TokenRuntime;
  destroy(): Promise<void> | void;
  /** GPU buffers counted from before the load (measure.ts). */
  gpuWindow: { base: number };
}

installGpuCounters(globalThis as unknown as GpuClasses);

const files = new Map<string, Uint8Array>();
let onnxPath = '';
let nativeCtx: GpuContext | undefined;
let current: Loaded | undefined;

function memoryFiles(): ModelFiles {
  return {
    onnxPath,
    async open(path) {
      const bytes = files.get(path);
      if (!bytes) throw new AppError('MODEL_MISSING_WEIGHT', `Benchmark page: ${path} was not fetched.`);
      return bytesSource(bytes);
    },
    async readJson(path) {
      const bytes = files.get(path);
      return bytes ? (JSON.parse(new TextDecoder().decode(bytes)) as unknown) : undefined;
    },
  };
}

async function init(opts: { paths: string[]; onnxPath: string }): Promise<{ adapter: GpuContext['adapterInfo']; features: string[]; userAgent: string; bytes: number }> {
  onnxPath = opts.onnxPath;
  let bytes = 0;
  for (const path of opts.paths) {
    const res = await fetch(`/model/${path}`);
    if (!res.ok) throw new Error(`GET /model/${path}: HTTP ${res.status}`);
    const u8 = new Uint8Array(await res.arrayBuffer());
    files.set(path, u8);
    bytes += u8.byteLength;
  }
  nativeCtx = await acquireDevice(navigator.gpu);
  return { adapter: nativeCtx.adapterInfo, features: [...nativeCtx.device.features].sort(), userAgent: navigator.userAgent, bytes };
}

/** Loads one engine from the in-memory files; returns ms to ready. `runAhead: false`: LoadOptions.runAhead off (native). */
async function load(name: EngineName, opts: { runAhead?: boolean } = {}): Promise<{ loadMs: number; declaredDispatchesPerDecode: number | null }> {
  if (current) throw new Error(`load(${name}): ${current.name} is still loaded`);
  const gpuWindow = startGpuMemoryWindow();
  const t = performance.now();
  if (name === 'native') {
    if (!nativeCtx) throw new Error('init() first');
    const engine = await NativeEngine.load(nativeCtx, memoryFiles(), { runAhead: opts.runAhead ?? true });
    current = { name, runtime: engine.runtime, destroy: () => engine.destroy(), gpuWindow };
    return { loadMs: performance.now() - t, declaredDispatchesPerDecode: engine.runtime.dispatchesPerDecode };
  }
  const engine = await OrtEngine.load(memoryFiles(), { provider: 'webgpu' });
  current = { name, runtime: engine.runtime, destroy: () => engine.destroy(), gpuWindow };
  return { loadMs: performance.now() - t, declaredDispatchesPerDecode: null };
}

async function measure(plan: Omit<RoundPlan, 'log'>, loadMs: number, heap: RoundResult['heap']): Promise<RoundResult> {
  if (!current) throw new Error('load() first');
  const name = current.name;
  return measureRound(current.runtime, { ...plan, log: (line) => console.log(`[bench ${name}] ${line}`) }, loadMs, heap, current.gpuWindow);
}

async function unload(): Promise<void> {
  await current?.destroy();
  current = undefined;
}

/** The loaded native engine's decode step, each kernel timed in context (profile.ts). */
async function profile(contexts: number[], steps: number): Promise<ProfileRuns[] | Missing> {
  if (current?.name !== 'native' || !(current.runtime instanceof Phi3Runtime)) throw new Error('profile(): load the native engine first');
  return profileDecodeSteps(current.runtime, contexts, steps, (line) => console.log(`[bench native] ${line}`));
}

/** `copyOnly`: the copy bandwidth without the isolated GEMVs (--no-kernels). */
async function kernels(opts: { reps: number; scalesDtype: 'f32' | 'f16'; copyOnly?: boolean }): Promise<KernelReport> {
  if (!nativeCtx) throw new Error('init() first');
  return kernelReport(nativeCtx.device, { ...opts, log: (line) => console.log(`[bench kernels] ${line}`) });
}

/** The loaded native engine's prefill chunks, each kernel timed in context (profile.ts). */
async function profilePrefill(lengths: number[], runs: number): Promise<PrefillRuns[] | Missing> {
  if (current?.name !== 'native' || !(current.runtime instanceof Phi3Runtime)) throw new Error('profilePrefill(): load the native engine first');
  return profilePrefillChunks(current.runtime, lengths, runs, (line) => console.log(`[bench native] ${line}`));
}

const api = { init, load, measure, profile, profilePrefill, unload, kernels, ready: true };
declare global {
  interface Window {
    __bench?: typeof api;
  }
}
window.__bench = api;
