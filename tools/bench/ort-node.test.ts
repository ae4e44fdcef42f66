// The Node benchmark's decision whether onnxruntime-web can run a model (ort-node.ts), against the
// limits it encodes: shader-f16 for fp16 files, 2 GiB per file, and the full-width size estimate.
import { describe, expect, it } from 'vitest';
import { ORT_MAX_FILE_BYTES } from '../../src/engine/ort/ort-engine';
import { estimateModelBytes } from './model';
import { maxOrtLayers, ortSkipReason } from './ort-node';
import type { BenchReport } from './report';

function model(over: Partial<BenchReport['model']>): BenchReport['model'] {
  return { dir: '/m', onnxPath: 'onnx/model_q4.onnx', layers: 1, hidden: 3072, intermediate: 8192, vocab: 32064, dtype: 'q4', bytes: 1, generated: true, ...over };
}

describe('maxOrtLayers', () => {
  for (const dtype of ['q4', 'q4f16'] as const) {
    it(`${dtype}: the largest layer count whose estimated model fits one 2 GiB buffer`, () => {
      const n = maxOrtLayers(dtype);
      expect(n).toBeGreaterThan(0);
      expect(n).toBeLessThan(32);
      expect(estimateModelBytes(n, dtype)).toBeLessThanOrEqual(ORT_MAX_FILE_BYTES);
      expect(estimateModelBytes(n + 1, dtype)).toBeGreaterThan(ORT_MAX_FILE_BYTES);
    });
  }
});

describe('ortSkipReason', () => {
  const small = { 'onnx/model_q4.onnx': 1000, 'onnx/model_q4.onnx_data': 70e6 };

  it('runs an f32-scale model whose files fit', () => {
    expect(ortSkipReason({ model: model({}), fileBytes: small, adapterFeatures: new Set() })).toBeNull();
  });

  it('fp16 needs shader-f16 on the adapter', () => {
    const m = model({ dtype: 'q4f16', onnxPath: 'onnx/model_q4f16.onnx' });
    expect(ortSkipReason({ model: m, fileBytes: small, adapterFeatures: new Set() })).toMatch(/no shader-f16.*--dtype q4/);
    expect(ortSkipReason({ model: m, fileBytes: small, adapterFeatures: new Set(['shader-f16']) })).toBeNull();
  });

  it('a file over 2 GiB is named, with the largest --layers that fits for a generated full-width model', () => {
    const big = { 'onnx/model_q4f16.onnx': 1000, 'onnx/model_q4f16.onnx_data': 2.2e9 };
    const m = model({ dtype: 'q4f16', layers: 32, onnxPath: 'onnx/model_q4f16.onnx' });
    const reason = ortSkipReason({ model: m, fileBytes: big, adapterFeatures: new Set(['shader-f16']) });
    expect(reason).toContain('onnx/model_q4f16.onnx_data (2.05 GiB)');
    expect(reason).toContain(`--layers ${maxOrtLayers('q4f16')} or fewer`);
    // A model of the user's own (not generated here) gets no layer hint.
    const own = ortSkipReason({ model: { ...m, generated: false }, fileBytes: big, adapterFeatures: new Set(['shader-f16']) });
    expect(own).toMatch(/at most 2 GiB, and onnx\/model_q4f16\.onnx_data \(2\.05 GiB\) is larger$/);
  });

  it('exactly 2 GiB − 1 bytes still fits', () => {
    expect(ortSkipReason({ model: model({}), fileBytes: { 'onnx/model_q4.onnx_data': ORT_MAX_FILE_BYTES }, adapterFeatures: new Set() })).toBeNull();
  });
});
