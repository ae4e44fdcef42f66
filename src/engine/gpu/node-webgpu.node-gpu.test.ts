/**
 * The adapter the Node GPU tests run on (node-webgpu.ts): a real WebGPU adapter, named in the log
 * so that a run says which driver its GPU figures came from. `.ci/run` installs Mesa's lavapipe
 * (shader-f16) and sets PHI3_EXPECT_SHADER_F16=1: then an adapter without shader-f16 fails here,
 * because the f16-arithmetic tests (matmul-nbits.gpu.test.ts, model.node-gpu.test.ts, ort-node)
 * would otherwise check only their refusal branch without anyone noticing.
 */
import { describe, expect, it } from 'vitest';
import { testGpu } from './testing';

describe('the Node GPU tests\' adapter [gpu]', () => {
  it('is named in the log, and has shader-f16 where the run expects it (PHI3_EXPECT_SHADER_F16=1)', async () => {
    const { adapterInfo: a, features, limits } = await testGpu();
    const name = [a.vendor, a.architecture, a.description].filter(Boolean).join(' / ');
    const on = Object.entries(features).filter(([, v]) => v).map(([k]) => k);
    console.log(`[node/webgpu] adapter: ${name}; features used: ${on.join(', ') || 'none'}; maxStorageBufferBindingSize ${limits.maxStorageBufferBindingSize}; VK_ICD_FILENAMES=${process.env.VK_ICD_FILENAMES ?? 'unset'}`);
    expect(name).not.toBe('');
    if (process.env.PHI3_EXPECT_SHADER_F16 === '1') {
      expect(features.shaderF16, `PHI3_EXPECT_SHADER_F16=1 but the adapter (${name}) has no shader-f16: is lavapipe installed and found by Dawn (VK_ICD_FILENAMES unset)?`).toBe(true);
    }
  });
});
