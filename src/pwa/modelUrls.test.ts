import { describe, expect, it } from 'vitest';
import { isModelFileUrl } from './modelUrls';

describe('isModelFileUrl', () => {
  it.each([
    'https://huggingface.co/microsoft/Phi-3-mini-4k-instruct-onnx-web/resolve/main/onnx/model_q4f16.onnx',
    'https://cdn-lfs.hf.co/repos/ab/cd/0123?response-content-disposition=x',
    'http://127.0.0.1:4000/test-org/tiny-phi3/resolve/main/config.json',
    'onnx/model_q4f16.onnx_data',
    'model.onnx.data',
    'https://example.com/models/model.onnx?download=1',
    'weights/model.safetensors',
  ])('treats %s as a model file', (url) => {
    expect(isModelFileUrl(url)).toBe(true);
  });

  it.each([
    'index.html',
    'assets/index-DeHSkgou.js',
    'assets/ort-wasm-simd-threaded.jsep-abc123.wasm',
    'assets/ort-wasm-simd-threaded.jsep-abc123.mjs',
    'assets/engine.worker-D6PpRtU4.js',
    'icons/icon-192.png',
    'manifest.webmanifest',
    'https://example.com/phi3/chat/',
  ])('keeps %s (app shell or engine asset)', (url) => {
    expect(isModelFileUrl(url)).toBe(false);
  });
});
