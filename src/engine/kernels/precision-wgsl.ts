/**
 * The two numeric paths of the native engine and the WGSL prelude that instantiates a shader for
 * one of them.
 *
 * Both work on every adapter; neither needs `shader-f16`. 'f16' changes what is stored, never how
 * it is computed: the KV cache is stored as f16 (2 bytes per element instead of 4), which halves
 * its memory and attention's cache bandwidth, and doubles the context that fits a KV budget or
 * binding limit; and a q4 file's f32 block scales, embedding table and rotary caches are stored
 * as fp16, as a q4f16 file has them (packed at load, kernels/f16-pack.ts; LoadOptions.f16Weights). All
 * arithmetic stays f32 on both paths: activations, q, rotary arithmetic, the score and output
 * accumulators, the softmax and the split-K partials (see docs/engine.md, Precision).
 *
 * How f16 is stored without `shader-f16`: two f16 values per u32 word, the first in the low half
 * (`pack2x16float` / `unpack2x16float`, core WGSL), which in memory is the same bytes as an
 * `array<f16>`. So the f16 path is one WGSL text on every GPU, and SwiftShader (no `shader-f16`)
 * runs and tests the very kernels a user's GPU runs. Until 2026-12-06 the f16 path used WGSL's
 * `f16` type and so only existed where the adapter had `shader-f16` (not Chrome on Linux with
 * NVIDIA, nor SwiftShader): those GPUs got the f32 cache, twice the memory.
 *
 * Shaders that touch the cache name its storage through the prelude below, never through f32 or
 * u32 directly:
 *   - `KV4`: four cache elements as one value (vec4<f32>, or vec2<u32>), read with `kv4(x)` → vec4<f32>;
 *   - `KVW`: one storage word (f32, or u32 holding two elements); `KV_PER_WORD` elements per word;
 *     element e of the cache is in word e / KV_PER_WORD, read with `kvAt(word, e)` → f32;
 *   - `kvWord(a, b)`: the word holding elements a (and b, on the f16 path) for a store;
 *   - `storeK` / `storeV` (`kvStoreSource`) for the decode rope epilogue, which writes single
 *     elements (see there).
 * Rule: a shader that uses these must be created through `withPrecision`, and does all arithmetic
 * in f32, converting only through these functions, so the f32 instantiation is the f16 kernel's
 * code, load for load.
 */
import { AppError } from '../errors';

/** The numeric path a model runs on (chosen once at load). */
export type Precision = 'f32' | 'f16';

/** What callers may ask for: 'auto' is 'f16' (on every device since 2026-12-06; see above). */
export type PrecisionOption = 'auto' | Precision;

/**
 * The numeric path for a model: 'auto' (or nothing) gives 'f16' on every device, since the f16
 * KV cache needs no `shader-f16` (see the header); 'f32' keeps the cache, and a q4 file's scales
 * and embedding, in f32 (more memory, for checks against a reference in f32).
 */
export function choosePrecision(requested: PrecisionOption = 'auto'): Precision {
  if (requested === 'f32' || requested === 'f16') return requested;
  if (requested === 'auto') return 'f16';
  throw new AppError('BAD_ARGUMENT', `precision = ${JSON.stringify(requested)} is not one of 'auto', 'f32', 'f16'.`);
}

/** Bytes of one KV-cache element on each path. */
export function kvBytesPerElement(precision: Precision): 2 | 4 {
  return precision === 'f16' ? 2 : 4;
}

/** Cache elements per 4-byte storage word (the prelude's KV_PER_WORD). */
export function kvElementsPerWord(precision: Precision): 1 | 2 {
  return kvBytesPerElement(precision) === 2 ? 2 : 1;
}

const F32_PRELUDE = `alias KV4 = vec4<f32>;
alias KVW = f32;
const KV_PER_WORD: u32 = ${kvElementsPerWord('f32')}u;
fn kv4(x: KV4) -> vec4<f32> { return x; }
fn kvAt(w: KVW, e: u32) -> f32 { return w; }
fn kvWord(a: f32, b: f32) -> KVW { return a; }
`;

const F16_PRELUDE = `alias KV4 = vec2<u32>;
alias KVW = u32;
const KV_PER_WORD: u32 = ${kvElementsPerWord('f16')}u;
fn kv4(x: KV4) -> vec4<f32> { return vec4<f32>(unpack2x16float(x.x), unpack2x16float(x.y)); }
fn kvAt(w: KVW, e: u32) -> f32 { return unpack2x16float(w)[e & 1u]; }
fn kvWord(a: f32, b: f32) -> KVW { return pack2x16float(vec2<f32>(a, b)); }
`;

/** The lines prepended to a shader source: the KV storage aliases and their conversions. */
export function precisionPrelude(precision: Precision): string {
  return precision === 'f16' ? F16_PRELUDE : F32_PRELUDE;
}

/** `source` instantiated for `precision` (the prelude, then the file unchanged). */
export function withPrecision(source: string, precision: Precision): string {
  return precisionPrelude(precision) + source;
}

/**
 * Element stores for the qkv GEMV's rope epilogue, appended after its source; it binds the caches
 * as `kCache: array<KVK>` and `vCache: array<KVV>` and writes one element per invocation.
 * - k: an f16 word's two halves come from rows that may sit in two workgroups (the rotary pairing
 *   puts dims d and d + 1 two rows apart), so on the f16 path each half is cleared and set with
 *   `atomicAnd` / `atomicOr`, right in either order.
 * - v: rows j and j ^ 1 sit in one workgroup and each knows the other's value (`next`, element
 *   i + 1 for an even i), so the even row writes the whole word and the odd one nothing: no atomics.
 */
export function kvStoreSource(precision: Precision): string {
  if (precision === 'f32') {
    return `alias KVK = f32;
alias KVV = f32;
fn storeK(i: u32, x: f32) { kCache[i] = x; }
fn storeV(i: u32, x: f32, next: f32) { vCache[i] = x; }
`;
  }
  return `alias KVK = atomic<u32>;
alias KVV = u32;
fn storeK(i: u32, x: f32) {
  let shift = (i & 1u) * 16u;
  atomicAnd(&kCache[i >> 1u], ~(0xffffu << shift));
  atomicOr(&kCache[i >> 1u], (pack2x16float(vec2<f32>(x, 0.0)) & 0xffffu) << shift);
}
fn storeV(i: u32, x: f32, next: f32) { if ((i & 1u) == 0u) { vCache[i >> 1u] = pack2x16float(vec2<f32>(x, next)); } }
`;
}
