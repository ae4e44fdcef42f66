/**
 * onnxruntime-web's WebGPU EP in Node (ort-node.ts: the `webgpu` package's Dawn as `navigator.gpu`)
 * against the native engine on the same generated tiny Phi-3 files — the proof that the Node
 * benchmark's ort column measures a working engine.
 *
 * web2024 layout (the benchmark's models), f32 scales: both engines are fed the same sequence (the
 * native engine's greedy tokens) and every step's last-position logits are compared: max |Δlogit| ≤ 1e-3
 * and identical greedy tokens; then both caches are truncated inside the sequence (ORT's GPU-side
 * KV copy) and the runs continue and must still agree. fp16 files: refused with ONNX_UNSUPPORTED
 * where the adapter has no shader-f16 (SwiftShader), compared within 3e-2 where it has. Also the
 * 128K model across its LongRoPE switch, and a GroupQueryAttention model with a 6-key window.
 * Kept small for SwiftShader (one f32 layout, vocabulary 512): compiling pipelines dominates there
 * (the other layouts are compared in the browser, ort-engine.browser.test.ts).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateTinyModel } from '../../../tools/tiny-model/generate';
import type { TinyModelOptions } from '../../../tools/tiny-model/options';
import { AppError } from '../errors';
import { argmax, maxAbsDiff, promptIds, testGpu } from '../gpu/testing';
import { NativeEngine } from '../native-engine';
import { nodeModelFiles } from '../node/model-dir';
import { OrtEngine } from './ort-engine';
import { loadOrtNode } from './ort-node';
import type { OrtModule } from './ort-runtime';

const F32_TOL = 1e-3;
const F16_TOL = 3e-2;
const STEPS = 8;
const VOCAB = 512;

const MODELS: Record<string, Partial<TinyModelOptions>> = {
  web2024: { layout: 'web2024', layers: 2, hidden: 64, heads: 4, intermediate: 96, vocab: VOCAB, maxInlineBytes: 4096 },
  // LongRoPE switching after 16 positions: the 10-token prompt's decode crosses it, and the
  // truncation to 7 goes back below it (both engines then run the whole sequence again).
  '128k': { layout: 'web2024', context: '128k', maxPositions: 256, originalMaxPositions: 16, layers: 2, hidden: 64, heads: 4, intermediate: 96, vocab: VOCAB, seed: 4, maxInlineBytes: 4096 },
  // A 6-key attention window (local_window_size): the 10-token prompt and its decode look past it.
  window: { layout: 'gqa', slidingWindow: 6, layers: 1, hidden: 64, heads: 4, intermediate: 96, vocab: VOCAB, seed: 12, maxInlineBytes: 4096 },
  // The same weights built for onnxruntime's CPU and CUDA providers (sliding_window_cache = 1).
  'windowed-cache': { layout: 'gqa', slidingWindow: 6, windowedCache: true, layers: 1, hidden: 64, heads: 4, intermediate: 96, vocab: VOCAB, seed: 12, maxInlineBytes: 4096 },
  'gqa-f16': { layout: 'gqa', dtype: 'q4f16', layers: 1, hidden: 128, heads: 4, kvHeads: 2, intermediate: 96, vocab: VOCAB, seed: 9, maxInlineBytes: 4096 },
};

let root: string;
let ort: OrtModule;
const dirs = new Map<string, string>();

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'ort-node-test-'));
  for (const [name, options] of Object.entries(MODELS)) {
    const dir = join(root, name);
    await generateTinyModel(dir, options);
    dirs.set(name, dir);
  }
  const gpu = globalThis.__phi3TestGPU;
  if (!gpu) throw new Error('The gpu-node setup file did not provide a GPU (tools/vitest-node-gpu-setup.ts).');
  ort = await loadOrtNode(gpu);
}, 120_000);
afterAll(() => rmSync(root, { recursive: true, force: true }));



/** Both engines on `model`'s files (the native engine on `nativeModel`'s, where given: the same weights built otherwise). */
async function compare(model: string, tolerance: number, nativeModel = model): Promise<void> {
  const nativeFiles = nodeModelFiles(dirs.get(nativeModel)!);
  const ortFiles = nodeModelFiles(dirs.get(model)!);
  // The f32 KV cache, as onnxruntime keeps it for f32 files (the default f16 cache: precision-checks.node-gpu.test.ts).
  const native = await NativeEngine.load(await testGpu(), nativeFiles, { precision: 'f32' });
  const engine = await OrtEngine.load(ortFiles, { provider: 'webgpu', ort });
  try {
    expect(engine.provider).toBe('webgpu');
    expect(engine.info).toEqual({ ...native.info, contextLimit: engine.info.contextLimit, precision: engine.info.precision });
    let worst = 0;
    const run = async (first: number[], steps: number) => {
      let ids = first;
      for (let step = 0; step < steps; step++) {
        const a = await native.runtime.logits(ids);
        const b = await engine.runtime.logits(ids);
        worst = Math.max(worst, maxAbsDiff(a, b));
        expect(argmax(b), `${model} step ${step}`).toBe(argmax(a));
        ids = [argmax(a)];
      }
    };
    await run(promptIds(10, 11, VOCAB), STEPS);
    // Keep 7 of the cached positions (inside the prompt), then continue with a different token.
    native.runtime.truncate(7);
    engine.runtime.truncate(7);
    await run([42], STEPS / 2);
    expect(engine.runtime.cachedIds).toEqual(native.runtime.cachedIds);
    console.log(`${model}: onnxruntime-web WebGPU EP in Node vs native${nativeModel === model ? '' : ` on ${nativeModel}`}, max |Δlogit| over ${STEPS + STEPS / 2} steps = ${worst.toExponential(3)} (tolerance ${tolerance})`);
    expect(worst).toBeLessThanOrEqual(tolerance);
  } finally {
    native.destroy();
    await engine.destroy();
    await nativeFiles.close();
    await ortFiles.close();
  }
}

describe('onnxruntime-web WebGPU EP in Node matches the native engine', () => {
  it(`web2024, f32 scales: logits within ${F32_TOL}, same greedy tokens, also after truncating the KV cache`, () => compare('web2024', F32_TOL));

  it(`Phi-3 128K (LongRoPE switch at 16): logits within ${F32_TOL} across the switch, up in decode and down after truncating`, () => compare('128k', F32_TOL));

  it(`GroupQueryAttention with a 6-key window: logits within ${F32_TOL} past the window`, () => compare('window', F32_TOL));

  it('a build with a window-sized cache (sliding_window_cache = 1): refused before its weights are read, and the native engine runs it as onnxruntime-web runs the same weights without it', async () => {
    const files = nodeModelFiles(dirs.get('windowed-cache')!);
    const opened: string[] = [];
    const open = files.open.bind(files);
    files.open = (path) => (opened.push(path), open(path));
    const err = await OrtEngine.load(files, { provider: 'webgpu', ort }).then(
      () => undefined,
      (e: unknown) => e,
    );
    await files.close();
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ code: 'ONNX_UNSUPPORTED', message: expect.stringMatching(/sliding_window_cache = 1.*Use the native engine/) });
    expect(opened).toEqual([files.onnxPath]);
    await compare('window', F32_TOL, 'windowed-cache');
  });

  // The refusal above stands in for onnxruntime-web's own error (docs/engine.md). When an
  // onnxruntime-web upgrade runs such a graph, this fails: drop windowedCacheNode's refusal then.
  it('onnxruntime-web itself still refuses sliding_window_cache = 1 (the reason OrtEngine refuses it first)', async () => {
    const onnx = join(dirs.get('windowed-cache')!, 'onnx');
    const err = await ort.InferenceSession.create(readFileSync(join(onnx, 'model_q4.onnx')), {
      executionProviders: ['webgpu'],
      externalData: [{ path: 'model_q4.onnx_data', data: readFileSync(join(onnx, 'model_q4.onnx_data')) }],
    }).then(
      async (session) => {
        await session.release();
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(String(err)).toMatch(/sliding_window_cache=1 is not implemented/);
  });

  it('fp16 files: refused with ONNX_UNSUPPORTED without shader-f16, run within tolerance with it', async () => {
    const adapter = await globalThis.__phi3TestGPU!.requestAdapter();
    if (adapter?.features.has('shader-f16')) return compare('gqa-f16', F16_TOL);
    const files = nodeModelFiles(dirs.get('gqa-f16')!);
    const err = await OrtEngine.load(files, { provider: 'webgpu', ort }).then(
      () => undefined,
      (e: unknown) => e,
    );
    await files.close();
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('ONNX_UNSUPPORTED');
    expect((err as AppError).message).toMatch(/shader-f16/);
  });

  it('one GPU per process: a second, different GPU is refused with a clear error', () => {
    expect(() => loadOrtNode({} as GPU)).toThrow(/already called with another GPU/);
  });
});
