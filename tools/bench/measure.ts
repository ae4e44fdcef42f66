/**
 * One benchmark round over any `TokenRuntime` (the native Phi3Runtime or onnxruntime-web's
 * OrtRuntime), in the browser page and in Node alike: time to first token, decode tokens/s at
 * each context, prefill tokens/s per prompt length, and per-token GPU work counted by wrapping
 * the WebGPU prototypes (dispatches, submits, bytes mapped for reading, GPU buffer bytes created
 * and not yet destroyed) — so both engines are counted the same way, whatever they do inside.
 * Rule: nothing here knows which engine it runs; engine specifics live in the page/Node runner.
 */
import type { TokenRuntime } from '../../src/engine/generate';
import { DEFAULT_SAMPLING, type SamplingOptions } from '../../src/engine/types';
import { benchTokenIds, summarize, type RoundResult } from './report';

const GREEDY: SamplingOptions = { ...DEFAULT_SAMPLING, temperature: 0, repetitionPenalty: 1 };

export interface GpuCounts {
  dispatches: number;
  submits: number;
  readbackBytes: number;
}

/** The WebGPU classes whose prototypes are wrapped (browser: globalThis; Node: the webgpu package's globals). */
export interface GpuClasses {
  GPUComputePassEncoder: { prototype: GPUComputePassEncoder };
  GPUQueue: { prototype: GPUQueue };
  GPUBuffer: { prototype: GPUBuffer };
  GPUDevice: { prototype: GPUDevice };
}

const counts: GpuCounts = { dispatches: 0, submits: 0, readbackBytes: 0 };
let installed = false;

/**
 * Bytes of the GPU buffers created and not destroyed (what was asked of WebGPU: drivers add
 * padding, and a buffer left to the garbage collector counts until the end), and the most there
 * were since `startGpuMemoryWindow`.
 */
const gpuMemory = { live: 0, peak: 0 };
const liveBuffers = new WeakMap<GPUBuffer, number>();

/** From now on `gpuMemoryWindow` reports against what is live now: call it before a load. */
export function startGpuMemoryWindow(): { base: number } {
  gpuMemory.peak = gpuMemory.live;
  return { base: gpuMemory.live };
}

/** GPU buffer bytes above `window.base`: live now, and the most since the window started. */
export function gpuMemoryWindow(window: { base: number }): { liveBytes: number; peakBytes: number } {
  return { liveBytes: gpuMemory.live - window.base, peakBytes: gpuMemory.peak - window.base };
}

/** Wraps dispatchWorkgroups(Indirect), submit and mapAsync(READ) once; returns a live counter. */
export function installGpuCounters(classes: GpuClasses): GpuCounts {
  if (installed) return counts;
  installed = true;
  const pass = classes.GPUComputePassEncoder.prototype;
  const dispatch = pass.dispatchWorkgroups;
  pass.dispatchWorkgroups = function (this: GPUComputePassEncoder, ...args: Parameters<GPUComputePassEncoder['dispatchWorkgroups']>) {
    counts.dispatches++;
    return dispatch.apply(this, args);
  };
  const indirect = pass.dispatchWorkgroupsIndirect;
  pass.dispatchWorkgroupsIndirect = function (this: GPUComputePassEncoder, ...args: Parameters<GPUComputePassEncoder['dispatchWorkgroupsIndirect']>) {
    counts.dispatches++;
    return indirect.apply(this, args);
  };
  const queue = classes.GPUQueue.prototype;
  const submit = queue.submit;
  queue.submit = function (this: GPUQueue, buffers: Iterable<GPUCommandBuffer>) {
    counts.submits++;
    return submit.call(this, buffers);
  };
  const buffer = classes.GPUBuffer.prototype;
  const mapAsync = buffer.mapAsync;
  buffer.mapAsync = function (this: GPUBuffer, mode: GPUMapModeFlags, offset?: number, size?: number) {
    // GPUMapMode.READ = 1
    if (mode & 1) counts.readbackBytes += size ?? this.size - (offset ?? 0);
    return mapAsync.call(this, mode, offset, size);
  };
  const device = classes.GPUDevice.prototype;
  const createBuffer = device.createBuffer;
  device.createBuffer = function (this: GPUDevice, descriptor: GPUBufferDescriptor) {
    const created = createBuffer.call(this, descriptor);
    liveBuffers.set(created, created.size);
    gpuMemory.live += created.size;
    gpuMemory.peak = Math.max(gpuMemory.peak, gpuMemory.live);
    return created;
  };
  const destroy = buffer.destroy;
  buffer.destroy = function (this: GPUBuffer) {
    const size = liveBuffers.get(this);
    if (size !== undefined) {
      liveBuffers.delete(this);
      gpuMemory.live -= size;
    }
    return destroy.call(this);
  };
  return counts;
}

export function snapshot(): GpuCounts {
  return { ...counts };
}

export interface RoundPlan {
  /** contexts at which decode is timed (0 = a 1-token prompt) */
  contexts: number[];
  /** prompt lengths whose prefill is timed */
  prefill: number[];
  /** timed decode steps per context */
  decodeSteps: number;
  /** called between phases, e.g. to log progress */
  log?: (line: string) => void;
}

/**
 * Measures one loaded engine (one round). `loadMs` and `heap` come from the caller, which timed
 * the load; `gpuWindow` is what `startGpuMemoryWindow` returned before it. The runtime's cache
 * is emptied before each phase.
 */
export async function measureRound(runtime: TokenRuntime, plan: RoundPlan, loadMs: number, heap: RoundResult['heap'], gpuWindow: { base: number }): Promise<RoundResult> {
  const afterLoadBytes = gpuMemoryWindow(gpuWindow).liveBytes;
  const log = plan.log ?? (() => {});
  const now = () => performance.now();
  runtime.truncate(0);
  let t = now();
  await runtime.step(benchTokenIds(16, 1), GREEDY, 0);
  const firstTokenMs = now() - t;
  log(`first token ${firstTokenMs.toFixed(0)} ms`);

  const decode: Record<string, number> = {};
  let perToken: RoundResult['perToken'] | undefined;
  for (const ctx of plan.contexts) {
    if (ctx + plan.decodeSteps + 1 > runtime.contextLimit) {
      log(`context ${ctx}: skipped (limit ${runtime.contextLimit})`);
      continue;
    }
    runtime.truncate(0);
    let token = await runtime.step(benchTokenIds(Math.max(1, ctx), 2), GREEDY, 0);
    const stepMs: number[] = [];
    const before = snapshot();
    for (let i = 0; i < plan.decodeSteps; i++) {
      t = now();
      token = await runtime.step([token], GREEDY, i + 1);
      stepMs.push(now() - t);
    }
    const after = snapshot();
    perToken ??= {
      dispatches: (after.dispatches - before.dispatches) / plan.decodeSteps,
      submits: (after.submits - before.submits) / plan.decodeSteps,
      readbackBytes: (after.readbackBytes - before.readbackBytes) / plan.decodeSteps,
    };
    decode[String(ctx)] = 1000 / summarize(stepMs).median;
    log(`decode at context ${ctx}: ${decode[String(ctx)].toFixed(3)} tok/s (steps ${stepMs.map((x) => x.toFixed(0)).join(', ')} ms)`);
  }

  // A short untimed step first: after the longest context the native KV cache shrinks at the
  // next short prompt (model.ts, fitCapacity), which a chat pays once, not per prefill.
  runtime.truncate(0);
  await runtime.step(benchTokenIds(1, 3), GREEDY, 0);
  const prefill: Record<string, number> = {};
  for (const len of plan.prefill) {
    if (len + 1 > runtime.contextLimit) continue;
    runtime.truncate(0);
    t = now();
    await runtime.step(benchTokenIds(len, 3), GREEDY, 0);
    prefill[String(len)] = (len * 1000) / (now() - t);
    log(`prefill ${len}: ${prefill[String(len)].toFixed(2)} tok/s`);
  }
  runtime.truncate(0);
  const gpuBuffers = { afterLoadBytes, peakBytes: gpuMemoryWindow(gpuWindow).peakBytes };
  return { loadMs, firstTokenMs, decode, prefill, perToken: perToken ?? { dispatches: NaN, submits: NaN, readbackBytes: NaN }, heap, gpuBuffers };
}
