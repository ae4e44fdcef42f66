/**
 * Records every WGSL module and compute pipeline a Node GPU test creates, so that the gpu-node
 * run can check afterwards that wgpu's WGSL compiler (naga, which Firefox's WebGPU uses) accepts
 * them too (./check.ts). The tests run on Dawn, whose compiler (Tint) is Chromium's: a shader
 * that only Tint accepts would pass every test here and fail to load for Firefox users.
 *
 * `captureShaders(gpu, dir)` wraps the `GPU` in place: each device it hands out writes
 * `m-<sha1>.wgsl` per distinct module and `p-<sha1>.json` ({ module, label, constants }) per
 * distinct pipeline into `dir`. Files are named by content, so the test processes running side
 * by side never clash and a shader compiled a thousand times is written once. Pipelines that
 * onnxruntime-web creates (the tests that compare the engines) are marked as its own (`origin`).
 */
import { createHash } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** One compute pipeline as a test created it: its module's file hash and its override constants. */
export interface CapturedPipeline {
  module: string;
  label: string;
  constants: Record<string, number>;
  /**
   * Set where the pipeline is not this project's: onnxruntime-web's WebGPU EP builds its own
   * shaders on the same device in the tests that compare against it (src/engine/ort/).
   */
  origin?: 'onnxruntime-web';
}

/** Whether the call being recorded comes from onnxruntime-web's code (its JS glue to WebGPU). */
function fromOnnxruntime(): boolean {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 30;
  try {
    return /onnxruntime-web/.test(new Error().stack ?? '');
  } finally {
    Error.stackTraceLimit = limit;
  }
}

const sha1 = (text: string) => createHash('sha1').update(text).digest('hex').slice(0, 16);

function writeOnce(file: string, text: string) {
  if (!existsSync(file)) writeFileSync(file, text);
}

function captureDevice(device: GPUDevice, dir: string): GPUDevice {
  const moduleHash = new WeakMap<GPUShaderModule, string>();
  const createShaderModule = device.createShaderModule.bind(device);
  device.createShaderModule = (descriptor: GPUShaderModuleDescriptor) => {
    const module = createShaderModule(descriptor);
    const hash = sha1(descriptor.code);
    writeOnce(path.join(dir, `m-${hash}.wgsl`), descriptor.code);
    moduleHash.set(module, hash);
    return module;
  };
  const record = (descriptor: GPUComputePipelineDescriptor) => {
    const module = moduleHash.get(descriptor.compute.module);
    if (!module) return;
    const constants = Object.fromEntries(Object.entries(descriptor.compute.constants ?? {}).map(([k, v]) => [k, Number(v)]));
    const captured: CapturedPipeline = { module, label: descriptor.label ?? '', constants, ...(fromOnnxruntime() ? { origin: 'onnxruntime-web' as const } : {}) };
    const text = JSON.stringify(captured);
    writeOnce(path.join(dir, `p-${sha1(module + JSON.stringify(constants))}.json`), text);
  };
  const createComputePipeline = device.createComputePipeline.bind(device);
  device.createComputePipeline = (descriptor: GPUComputePipelineDescriptor) => {
    record(descriptor);
    return createComputePipeline(descriptor);
  };
  const createComputePipelineAsync = device.createComputePipelineAsync.bind(device);
  device.createComputePipelineAsync = (descriptor: GPUComputePipelineDescriptor) => {
    record(descriptor);
    return createComputePipelineAsync(descriptor);
  };
  return device;
}

/** Makes every device `gpu` hands out from now on record its shaders into `dir`. */
export function captureShaders(gpu: GPU, dir: string): void {
  const requestAdapter = gpu.requestAdapter.bind(gpu);
  gpu.requestAdapter = async (options?: GPURequestAdapterOptions) => {
    const adapter = await requestAdapter(options);
    if (!adapter) return adapter;
    const requestDevice = adapter.requestDevice.bind(adapter);
    adapter.requestDevice = async (descriptor?: GPUDeviceDescriptor) => captureDevice(await requestDevice(descriptor), dir);
    return adapter;
  };
}
