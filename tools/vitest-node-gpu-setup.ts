// Setup for the `gpu-node` Vitest project: a Dawn `GPU` from the webgpu package (SwiftShader fallback).
import { nodeGPU } from '../src/engine/gpu/node-webgpu';

globalThis.__phi3TestGPU = await nodeGPU();
