/**
 * The two numeric paths of the native engine and the WGSL prelude that instantiates a shader for
 * one of them.
 *
 * 'f32' works on every adapter. 'f16' needs the adapter feature `shader-f16` and changes exactly
 * one thing: the KV cache is stored as f16 (2 bytes per element instead of 4), which halves its
 * memory and attention's cache bandwidth, and doubles the context that fits a KV budget.
 * Everything else stays f32 on both paths: activations, q, rotary arithmetic, the score and
 * output accumulators, the softmax and the split-K partials (see docs/engine.md, Precision).
 *
 * Shaders that touch the cache (attention.wgsl, kv_append.wgsl) name its element type through the
 * aliases `KV` (scalar) and `KV4` (vec4); `withPrecision` prepends their definition, so the f16
 * kernel is the same WGSL text as the f32 one, which every adapter (SwiftShader included) tests.
 * Rule: a shader that uses these aliases must be created through `withPrecision`, and must convert
 * explicitly at every boundary (`KV(x)` on store, `f32(…)` / `vec4<f32>(…)` on load), so that the
 * f32 instantiation is the same code as the f16 one, type for type.
 */
import { AppError } from '../errors';

/** The numeric path a model runs on (chosen once at load). */
export type Precision = 'f32' | 'f16';

/** What callers may ask for: 'auto' picks 'f16' when the device has `shader-f16`, else 'f32'. */
export type PrecisionOption = 'auto' | Precision;

/** Bytes of one KV-cache element on each path. */
export function kvBytesPerElement(precision: Precision): 2 | 4 {
  return precision === 'f16' ? 2 : 4;
}

/**
 * The lines prepended to a shader source: `enable f16;` (f16 only; it must precede every
 * declaration) and the KV aliases.
 */
export function precisionPrelude(precision: Precision): string {
  return precision === 'f16'
    ? 'enable f16;\nalias KV = f16;\nalias KV4 = vec4<f16>;\n'
    : 'alias KV = f32;\nalias KV4 = vec4<f32>;\n';
}

/** `source` instantiated for `precision` (the prelude, then the file unchanged). */
export function withPrecision(source: string, precision: Precision): string {
  return precisionPrelude(precision) + source;
}

/** Throws a clear error when a kernel is asked for the f16 path on a device without `shader-f16`. */
export function assertPrecisionSupported(device: GPUDevice, precision: Precision, kernel: string): void {
  if (precision === 'f16' && !device.features.has('shader-f16')) {
    throw new AppError('BAD_ARGUMENT', `${kernel}: precision 'f16' needs the WebGPU feature 'shader-f16', which this device was not created with. Use precision 'f32' (or 'auto').`);
  }
}
