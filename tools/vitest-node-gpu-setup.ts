// Setup for the `gpu-node` Vitest project: a Dawn `GPU` from the webgpu package (SwiftShader
// fallback) whose devices record every shader they compile, for the naga check that runs after
// the tests (tools/wgsl-portability/).
import { inject } from 'vitest';
import { nodeGPU } from '../src/engine/gpu/node-webgpu';
import { captureShaders } from './wgsl-portability/capture';

globalThis.__phi3TestGPU = await nodeGPU();
captureShaders(globalThis.__phi3TestGPU, inject('wgslCaptureDir'));
