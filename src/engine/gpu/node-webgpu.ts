/**
 * Node only: a `GPU` object from the `webgpu` npm package (Dawn).
 *
 * On a machine without a GPU driver Dawn finds no adapter. If Debian's Chromium is installed we then
 * fall back to its bundled SwiftShader Vulkan driver: point the Vulkan loader at its ICD file and
 * preload Chromium's own libvulkan (RTLD_NODELETE keeps it mapped after Node's addon check fails,
 * so Dawn's later dlopen("libvulkan.so.1") finds it). A process that starts with VK_ICD_FILENAMES
 * already pointing at that ICD (a child of one that fell back) preloads it the same way.
 * Never import this from browser code.
 *
 * `PHI3_DAWN_F16_ON_NVIDIA=1` passes Dawn's adapter toggle `vulkan_enable_f16_on_nvidia`. Dawn
 * turns `shader-f16` off on NVIDIA's Vulkan driver by default (so does Chrome); we turn it on only
 * on request, so that onnxruntime-web's WebGPU EP runs fp16 files in the GPU benchmarks
 * (tools/device/run.sh). The native engine never needs it. Unset, Dawn gets no flags at all.
 */
import { existsSync } from 'node:fs';
import { AppError } from '../errors';

export const CHROMIUM_LIB_DIR = '/usr/lib/chromium';
const SWIFTSHADER_ICD = `${CHROMIUM_LIB_DIR}/vk_swiftshader_icd.json`;
const VULKAN_LOADERS = ['/usr/lib/x86_64-linux-gnu/libvulkan.so.1', '/usr/lib/aarch64-linux-gnu/libvulkan.so.1', '/usr/lib64/libvulkan.so.1', '/usr/lib/libvulkan.so.1'];
const RTLD_NOW = 2;
const RTLD_GLOBAL = 0x100;
const RTLD_NODELETE = 0x1000;

type WebGpuModule = { create: (flags: string[]) => GPU; globals: Record<string, unknown> };
let cached: Promise<GPU> | undefined;

async function load(): Promise<WebGpuModule> {
  const mod = (await import('webgpu')) as unknown as WebGpuModule;
  // GPUBufferUsage, GPUMapMode, ... are globals in browsers; Dawn's package provides them.
  Object.assign(globalThis, mod.globals);
  return mod;
}

function useSwiftShader(): boolean {
  if (!existsSync(SWIFTSHADER_ICD)) return false;
  process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
  const lib = `${CHROMIUM_LIB_DIR}/libvulkan.so.1`;
  if (existsSync(lib)) {
    try {
      process.dlopen({ exports: {} }, lib, RTLD_NOW | RTLD_GLOBAL | RTLD_NODELETE);
    } catch {
      // Expected: it is not a Node addon. The library stays loaded because of RTLD_NODELETE.
    }
  }
  return true;
}

/**
 * Dawn flags for `create`, from the environment (none unless asked for):
 *   PHI3_DAWN_F16_ON_NVIDIA=1     enable `vulkan_enable_f16_on_nvidia` (above)
 *   PHI3_DAWN_EXACT_TIMESTAMPS=1  disable `timestamp_quantization`: Dawn rounds timestamp queries
 *                                 (as browsers do, against timing attacks), so short kernels in a
 *                                 benchmark show up as multiples of the quantum; only the tuning
 *                                 sweep and the benchmark's kernel table ask for exact ones.
 */
export function dawnFlags(env: Record<string, string | undefined> = process.env): string[] {
  const flags: string[] = [];
  if (env.PHI3_DAWN_F16_ON_NVIDIA === '1') flags.push('enable-dawn-features=vulkan_enable_f16_on_nvidia');
  if (env.PHI3_DAWN_EXACT_TIMESTAMPS === '1') flags.push('disable-dawn-features=timestamp_quantization');
  return flags;
}

async function hasAdapter(gpu: GPU): Promise<boolean> {
  return (await gpu.requestAdapter()) !== null;
}

/** Returns a `GPU` with at least one adapter, or throws WEBGPU_UNAVAILABLE with what to install. */
export function nodeGPU(): Promise<GPU> {
  cached ??= (async () => {
    const mod = await load();
    const flags = dawnFlags();
    // Without a system Vulkan loader, Dawn's first attempt can only fail (and print a warning).
    const systemVulkan = VULKAN_LOADERS.some((p) => existsSync(p));
    if (!process.env.VK_ICD_FILENAMES && !systemVulkan && useSwiftShader()) {
      const gpu = mod.create(flags);
      if (await hasAdapter(gpu)) return gpu;
    } else if (!process.env.VK_ICD_FILENAMES) {
      const gpu = mod.create(flags);
      if (await hasAdapter(gpu)) return gpu;
      if (!useSwiftShader()) {
        throw new AppError(
          'WEBGPU_UNAVAILABLE',
          'No WebGPU adapter found in Node. Install a GPU driver with Vulkan support, or Debian\'s Chromium (apt-get install chromium) whose SwiftShader driver is used as a fallback.',
        );
      }
    }
    // Set by a parent process that fell back to SwiftShader (the benchmark's children inherit its
    // environment): Chromium's Vulkan loader must be preloaded here too, or Dawn finds no adapter.
    if (process.env.VK_ICD_FILENAMES === SWIFTSHADER_ICD) useSwiftShader();
    const gpu = mod.create(flags);
    if (await hasAdapter(gpu)) return gpu;
    throw new AppError(
      'WEBGPU_UNAVAILABLE',
      `No WebGPU adapter found in Node, even with VK_ICD_FILENAMES=${process.env.VK_ICD_FILENAMES}. Check the Vulkan driver installation.`,
    );
  })();
  return cached;
}
