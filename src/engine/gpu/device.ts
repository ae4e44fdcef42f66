/**
 * Acquiring a WebGPU device, in a browser worker/page or in Node (the caller passes the `GPU`).
 *
 * Limits are requested from the adapter (we want the largest storage bindings it offers) and the
 * optional features we can use are enabled when present. `shader-f16` is never required (the
 * engine's f16 KV cache is packed into u32 words; precision-wgsl.ts): it is requested for
 * onnxruntime-web's fp16 files and shown in the GPU panel. Device loss is reported through
 * `onLost`, the one place it is handled.
 */
import { AppError } from '../errors';

export interface GpuContext {
  device: GPUDevice;
  adapterInfo: { vendor: string; architecture: string; device: string; description: string };
  features: { shaderF16: boolean; subgroups: boolean; timestampQuery: boolean };
  limits: { maxStorageBufferBindingSize: number; maxBufferSize: number; maxComputeWorkgroupStorageSize: number };
}

/** The strings that identify an adapter (GPUAdapterInfo's, all optional so tests can name only a vendor). */
export type AdapterNames = { vendor?: string; architecture?: string; device?: string; description?: string };

/** An adapter's identifying strings, lower-cased in one line: what per-adapter defaults match vendors against. */
export function adapterText(a: AdapterNames): string {
  return `${a.vendor ?? ''} ${a.architecture ?? ''} ${a.device ?? ''} ${a.description ?? ''}`.toLowerCase();
}

export interface AcquireOptions {
  powerPreference?: GPUPowerPreference;
  /** Called once if the device is lost for any reason other than `destroy()`. */
  onLost?: (info: GPUDeviceLostInfo) => void;
}

const OPTIONAL_FEATURES: GPUFeatureName[] = ['shader-f16', 'subgroups', 'timestamp-query'];

/** WGSL language features of the `GPU` each acquired device came from (they live on `GPU`, not on the device). */
const languageFeatures = new WeakMap<GPUDevice, ReadonlySet<string>>();

/**
 * Whether WGSL code on this device may use a language feature (e.g. 'packed_4x8_integer_dot_product').
 * Devices from `acquireDevice` answer from their own `GPU`; others from `navigator.gpu` where there
 * is one, else no.
 */
export function hasWgslLanguageFeature(device: GPUDevice, name: string): boolean {
  const known = languageFeatures.get(device) ?? (typeof navigator !== 'undefined' ? navigator.gpu?.wgslLanguageFeatures : undefined);
  return known?.has(name) ?? false;
}

export async function acquireDevice(gpu: GPU | undefined, opts: AcquireOptions = {}): Promise<GpuContext> {
  if (!gpu) {
    throw new AppError(
      'WEBGPU_UNAVAILABLE',
      'WebGPU is not available in this browser. Use a recent Chrome, Edge or another browser with WebGPU enabled, or switch to the onnxruntime WASM engine.',
    );
  }
  const adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference ?? 'high-performance' });
  if (!adapter) {
    throw new AppError(
      'WEBGPU_UNAVAILABLE',
      'WebGPU is present but no GPU adapter was found. Check that hardware acceleration is enabled, or switch to the onnxruntime WASM engine.',
    );
  }
  const requiredFeatures = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f));
  const a = adapter.limits;
  const device = await adapter.requestDevice({
    requiredFeatures,
    requiredLimits: {
      maxStorageBufferBindingSize: a.maxStorageBufferBindingSize,
      maxBufferSize: a.maxBufferSize,
      maxStorageBuffersPerShaderStage: a.maxStorageBuffersPerShaderStage,
      maxComputeWorkgroupStorageSize: a.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: a.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: a.maxComputeWorkgroupSizeX,
    },
  });
  languageFeatures.set(device, new Set(gpu.wgslLanguageFeatures ?? []));
  void device.lost.then((info) => {
    if (info.reason !== 'destroyed') opts.onLost?.(info);
  });
  const info = adapter.info;
  return {
    device,
    adapterInfo: {
      vendor: info.vendor ?? '',
      architecture: info.architecture ?? '',
      device: info.device ?? '',
      description: info.description ?? '',
    },
    features: {
      shaderF16: device.features.has('shader-f16'),
      subgroups: device.features.has('subgroups'),
      timestampQuery: device.features.has('timestamp-query'),
    },
    limits: {
      maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize,
      maxBufferSize: device.limits.maxBufferSize,
      maxComputeWorkgroupStorageSize: device.limits.maxComputeWorkgroupStorageSize,
    },
  };
}

/**
 * Runs `fn` inside validation and out-of-memory error scopes and throws a typed error if either
 * caught something. Used at load time and in GPU tests; never per token.
 */
export async function withErrorScopes<T>(device: GPUDevice, fn: () => T | Promise<T>): Promise<T> {
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let result: T | undefined;
  let thrown: unknown;
  try {
    result = await fn();
  } catch (err) {
    thrown = err;
  }
  const validation = await device.popErrorScope();
  const oom = await device.popErrorScope();
  if (validation) throw new AppError('GPU_VALIDATION', `WebGPU validation error: ${validation.message}`);
  if (oom) throw new AppError('GPU_OUT_OF_MEMORY', `The GPU ran out of memory: ${oom.message}. Close other GPU-heavy tabs or pick a smaller model.`);
  if (thrown !== undefined) throw thrown;
  return result as T;
}

