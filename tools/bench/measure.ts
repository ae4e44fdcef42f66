/**
 * One benchmark round over any `TokenRuntime` (the native Phi3Runtime or onnxruntime-web's
 * OrtRuntime), in the browser page and in Node alike: time to first token, decode tokens/s at
 * each context, prefill tokens/s per prompt length, and per-token GPU work counted by wrapping
 * the WebGPU prototypes (dispatches, submits, bytes mapped for reading) — so both engines are
 * counted the same way, whatever they do inside.
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
}

const counts: GpuCounts = { dispatches: 0, submits: 0, readbackBytes: 0 };
let installed = false;

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
 * the load. The runtime's cache is emptied before each phase.
 */
export async function measureRound(runtime: TokenRuntime, plan: RoundPlan, loadMs: number, heap: RoundResult['heap']): Promise<RoundResult> {
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
  return { loadMs, firstTokenMs, decode, prefill, perToken: perToken ?? { dispatches: NaN, submits: NaN, readbackBytes: NaN }, heap };
}
