/**
 * One compute pipeline per (device, WGSL source, entry point, override constants).
 *
 * A model creates the same kernel once per layer; compiling 32 identical pipelines would make
 * loading slow, so kernels ask this cache instead of calling createComputePipeline themselves.
 * Bind groups made from `pipeline.getBindGroupLayout(0)` of a shared pipeline are valid for it.
 * Rule: the key must include everything that changes the compiled code (source and constants).
 */

/**
 * Identifies a kernel's WGSL sources (FNV-1a over them, 8 hex digits): a tuning measured on a
 * device (phi3/autotune.ts) is kept only while its kernels' id stays the same.
 */
export function sourceId(sources: readonly string[]): string {
  const text = sources.join('\0');
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}

const caches = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();
const modules = new WeakMap<GPUDevice, Map<string, GPUShaderModule>>();

export function getComputePipeline(
  device: GPUDevice,
  label: string,
  code: string,
  constants: Record<string, number> = {},
  entryPoint = 'main',
): GPUComputePipeline {
  let cache = caches.get(device);
  if (!cache) caches.set(device, (cache = new Map()));
  let mods = modules.get(device);
  if (!mods) modules.set(device, (mods = new Map()));
  const constKey = Object.keys(constants)
    .sort()
    .map((k) => `${k}=${constants[k]}`)
    .join(',');
  const key = `${entryPoint}|${constKey}|${code}`;
  let pipeline = cache.get(key);
  if (!pipeline) {
    let module = mods.get(code);
    if (!module) mods.set(code, (module = device.createShaderModule({ label, code })));
    pipeline = device.createComputePipeline({ label, layout: 'auto', compute: { module, entryPoint, constants } });
    cache.set(key, pipeline);
  }
  return pipeline;
}

/** Pipelines compiled so far on this device (for load-time reports and tests). */
export function pipelineCount(device: GPUDevice): number {
  return caches.get(device)?.size ?? 0;
}
