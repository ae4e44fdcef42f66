/**
 * What the GPU offers, as a plain serialisable record for the UI. Runs wherever `navigator.gpu`
 * exists (page or worker); requests an adapter but never a device.
 */
export interface GpuProbe {
  available: boolean;
  /** Why WebGPU cannot be used, when `available` is false. */
  reason?: string;
  adapter?: { vendor: string; architecture: string; device: string; description: string };
  features: string[];
  maxStorageBufferBindingSize?: number;
  maxBufferSize?: number;
}

export async function probeGpu(gpu: GPU | undefined): Promise<GpuProbe> {
  if (!gpu) return { available: false, reason: 'navigator.gpu is missing: this browser has no WebGPU.', features: [] };
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (err) {
    return { available: false, reason: `requestAdapter failed: ${String(err)}`, features: [] };
  }
  if (!adapter) return { available: false, reason: 'WebGPU is present but no GPU adapter was found.', features: [] };
  const info = adapter.info;
  return {
    available: true,
    adapter: {
      vendor: info.vendor ?? '',
      architecture: info.architecture ?? '',
      device: info.device ?? '',
      description: info.description ?? '',
    },
    features: [...adapter.features].sort(),
    maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
    maxBufferSize: adapter.limits.maxBufferSize,
  };
}
