/**
 * Test-only helpers shared by the GPU tests in Node (webgpu package) and in Chromium.
 * The Node project's setup file puts a `GPU` on `globalThis.__phi3TestGPU`; in the browser we use
 * `navigator.gpu`. No adapter is a failure, never a skip: CI must prove the kernels ran.
 */
import { acquireDevice, type GpuContext } from './device';

declare global {
  var __phi3TestGPU: GPU | undefined;
}

let ctx: Promise<GpuContext> | undefined;

export function testGpu(): Promise<GpuContext> {
  ctx ??= acquireDevice(globalThis.__phi3TestGPU ?? (typeof navigator !== 'undefined' ? navigator.gpu : undefined));
  return ctx;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/** Deterministic uniform values in [-scale, scale) (mulberry32). */
export function seededRandom(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

/** Which runtime ran the test, printed beside measured errors so logs show both ran. */
export function runtimeName(): string {
  return typeof window === 'undefined' ? 'node/webgpu' : 'chromium';
}

/** A deterministic prompt: BOS (1), then ids from an LCG, all in 3 .. vocab − 1. */
export function promptIds(n: number, seed: number, vocab: number): number[] {
  const ids = [1];
  let s = seed;
  for (let i = 1; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    ids.push(3 + (s % (vocab - 3)));
  }
  return ids;
}

/** Index of the largest value (the first one on ties), as a greedy sampler picks. */
export function argmax(v: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}
