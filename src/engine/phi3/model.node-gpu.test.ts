/**
 * The native engine against the reference: onnxruntime-node (CPU) running the same generated
 * files. For each layout and precision we compare the last-position logits of every step (the
 * native engine is fed the reference's greedy tokens, so both see the same sequence) and require
 * the same greedy token at every step. Runs on Dawn in Node (the `gpu-node` project).
 *
 * Tolerances: f32 files 1e-3 absolute on the logits (issue 3). fp16 files: onnxruntime computes
 * every activation in fp16 (about 3 significant digits) while we compute in f32, so the logits
 * differ by the reference's own rounding: we allow 3e-2 absolute, i.e. about 1% of the logit
 * range of these models, and still require identical greedy tokens.
 * Every model here loads with the f32 KV cache (`exact`): these bounds check the kernels against
 * onnxruntime's f32 cache. The default f16 cache (one rounding per cached value) is checked
 * against onnxruntime in precision-checks.node-gpu.test.ts.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateTinyModel } from '../../../tools/tiny-model/generate';
import type { TinyModelOptions } from '../../../tools/tiny-model/options';
import { argmax, OrtPhi3Session, runReference } from '../../../tools/reference/ort-reference';
import { nodeModelFiles } from '../node/model-dir';
import { promptIds, testGpu } from '../gpu/testing';
import { loadModelFiles as loadAny } from './files';
import { DEFAULT_SAMPLING } from '../types';
import { generate } from '../generate';
import type { LoadOptions } from './model';
import type { Phi3Plan, QuantWeight } from './plan';
import { tensorByteLength } from '../onnx/tensor-data';
import type { OnnxTensorInfo } from '../onnx/types';
import { matMulNBitsRopeAppendSupported, matMulNBitsWarmNextSupported } from '../kernels/matmul-nbits';

/** Loads with the f32 KV cache unless `opts` says otherwise (see the header). */
const loadModelFiles = (...[ctx, files, opts]: Parameters<typeof loadAny>) => loadAny(ctx, files, { precision: 'f32', ...opts });

const root = mkdtempSync(join(tmpdir(), 'phi3-native-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** onnxruntime's last-position logits for `ids`, run at once from an empty cache. */
function lastLogits(session: OrtPhi3Session): (ids: number[]) => Promise<Float32Array> {
  return async (ids) => {
    session.reset();
    const { logits, vocab } = await session.forward(ids);
    return logits.slice((ids.length - 1) * vocab);
  };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Runs `body` and returns how many times it called `queue[method]` (the real method still runs). */
async function countQueueCalls<T>(queue: GPUQueue, method: 'submit' | 'writeBuffer', body: () => Promise<T>): Promise<{ calls: number; value: T }> {
  const original = queue[method] as (...args: unknown[]) => unknown;
  let calls = 0;
  (queue as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
    calls++;
    return original.apply(queue, args);
  };
  try {
    const value = await body();
    return { calls, value };
  } finally {
    (queue as unknown as Record<string, unknown>)[method] = original;
  }
}

interface Case {
  name: string;
  options: Partial<TinyModelOptions>;
  promptLength: number;
  steps: number;
  /** Later user turns, fed on top of the cache (multi-turn KV reuse). */
  turns?: number[][];
  tolerance: number;
  /** Per-test limit; SwiftShader needs minutes for a 4K-token prefill. */
  timeoutMs?: number;
  /** Load options, e.g. a small maxPrefill so that the prompt runs in several chunks. */
  load?: LoadOptions;
  /**
   * A path with its own rounding (the dp4a GEMVs): the share of teacher-forced greedy tokens that
   * must match the reference (default: all), and the GPU sampler is checked against this engine's
   * own argmax up to its first disagreement instead of against the reference's tokens.
   */
  minAgree?: number;
  /** The KV cache's capacity at the end (it grows from LoadOptions.kvInitialTokens); default: unchecked. */
  kvCapacity?: number;
}

const f16Tol = 3e-2;
const cases: Case[] = [
  { name: 'web2024 q4 (MultiHeadAttention + RotaryEmbedding)', options: { layout: 'web2024' }, promptLength: 12, steps: 64, tolerance: 1e-3 },
  { name: 'web2024 q4f16', options: { layout: 'web2024', dtype: 'q4f16' }, promptLength: 12, steps: 64, tolerance: f16Tol },
  { name: 'gqa q4 (GroupQueryAttention + RotaryEmbedding)', options: { layout: 'gqa' }, promptLength: 12, steps: 64, tolerance: 1e-3 },
  { name: 'gqa q4f16', options: { layout: 'gqa', dtype: 'q4f16' }, promptLength: 12, steps: 64, tolerance: f16Tol },
  { name: 'gqa-packed q4 (packed qkv, do_rotary, fused gate_up)', options: { layout: 'gqa-packed' }, promptLength: 12, steps: 64, tolerance: 1e-3 },
  { name: 'gqa-packed q4f16', options: { layout: 'gqa-packed', dtype: 'q4f16' }, promptLength: 12, steps: 64, tolerance: f16Tol },
  { name: 'gqa with 8 heads / 2 KV heads', options: { layout: 'gqa', heads: 8, kvHeads: 2 }, promptLength: 12, steps: 64, tolerance: 1e-3 },
  { name: 'block 128 with zero points', options: { layout: 'gqa-packed', blockSize: 128, zeroPoints: true, hidden: 256, intermediate: 384 }, promptLength: 12, steps: 64, tolerance: 1e-3 },
  { name: 'block 16, prompt longer than one prefill chunk', options: { layout: 'web2024', blockSize: 16 }, promptLength: 300, steps: 8, tolerance: 1e-3, load: { maxPrefill: 128 } },
  {
    // Every prefill matmul (packed qkv with the input norm, o and down with the residual add,
    // gate_up, down with silu·up) on the wide GEMM instead of the tiled one, and every decode GEMV
    // (the qkv one with rotary + KV append, the lm_head) prefetching its weights. 2 columns per
    // thread, 1 under 4 workgroups (gemmWideMinGroups): chunks of 32, 32 and 6 rows and a 20-row
    // turn run o and down (1 column of workgroups) on 2, 2, 1 and 1 columns, qkv and gate_up
    // (2 columns of workgroups) on 2, 2, 1 and 2.
    name: 'wide prefill GEMM (1 and 2 columns) and prefetching GEMV (matMulTuning), zero points, a prompt over several chunks and a second turn',
    options: { layout: 'gqa-packed', zeroPoints: true, blockSize: 64 },
    promptLength: 70,
    steps: 8,
    turns: [promptIds(21, 8, 32000).slice(1)],
    tolerance: 1e-3,
    load: { maxPrefill: 32, matMulTuning: { gemm: 'wide', gemmWideRows: 8, gemmWideCols: 2, gemmWideMinGroups: 4, gemvPrefetch: true, threadsPerRow: 8, rowGroups: 2, rowsPerThread: 2 } },
  },
  {
    // The same prefill matmuls on the wide GEMM in f16 arithmetic (tuning.gemmF16, the autotune's
    // 'wide-f16' candidate): fp16 files, whose graph onnxruntime computes in f16 too. Runs where
    // the device has shader-f16 (lavapipe, real GPUs); elsewhere (SwiftShader) the load refuses.
    name: 'wide prefill GEMM in f16 arithmetic (gemmF16), fp16 files, a prompt over several chunks and a second turn',
    options: { layout: 'gqa-packed', dtype: 'q4f16', zeroPoints: true, blockSize: 32, seed: 8 },
    promptLength: 70,
    steps: 8,
    turns: [promptIds(21, 8, 32000).slice(1)],
    tolerance: f16Tol,
    load: { maxPrefill: 32, matMulTuning: { gemm: 'wide', gemmF16: true, gemmWideCols: 2, gemmWideMinGroups: 4 } },
  },
  {
    // Every decode GEMV (qkv with rotary + KV append and the norm, o and down with the residual
    // add, gate_up, down with silu·up, lm_head) on int8 activations: its own rounding contract
    // (quantizeActivationsQ8), so a looser logit tolerance than the f32 kernels', greedy tokens alike.
    // And each (but the fused qkv) reading half of the next matmul's rows ahead (warmNext), which
    // must change nothing.
    name: 'dp4a decode GEMVs (int8 activations) warming the next matmul, zero points, a second turn',
    options: { layout: 'gqa-packed', zeroPoints: true, blockSize: 32, seed: 5 },
    promptLength: 12,
    steps: 16,
    turns: [promptIds(19, 5, 32000).slice(1)],
    // Logits have a spread of about 4 (tools/tiny-model/graph.ts); int8 rounding of each GEMV's
    // input (±amax/254 per element) gives them noise of about 0.5% of that, up to 0.2 over the
    // 32000 · 32 logits compared (measured 0.196 on SwiftShader).
    tolerance: 0.3,
    minAgree: 0.9,
    load: { matMulTuning: { gemv: 'dp4a', warmNext: 0.5 } },
  },
  {
    // 70-token prompt: 5 blocked-prefill workgroups per head over 3 key tiles; 16-key splits:
    // split-K decode (lanes kernel) from the first step, capped at 4 splits (71–90 keys: each
    // split stretches to 18–23 keys, as real GPUs' cap of 24 does past 1536); the second turn's
    // prefill is blocked too.
    name: "'lanes' attention kernel with 16-key decode splits capped at 4, blocked prefill, GQA, a second turn",
    options: { layout: 'gqa', seed: 11 },
    promptLength: 70,
    steps: 8,
    turns: [promptIds(23, 6, 32000).slice(1)],
    tolerance: 1e-3,
    load: { attention: { kernel: 'lanes', keysPerSplit: 16, maxSplits: 4, prefill: 'blocked' } },
  },
  {
    // The KV cache starts at 16 positions and grows as the conversation does (fitCapacity):
    // to 32 in the 20-token prompt's prefill, to 64 and 128 between decode steps run ahead and in
    // the later turns' prefill; what was cached must survive every copy.
    name: 'multi-turn conversation reusing the KV cache, which starts at 16 positions and grows 3 times',
    options: { layout: 'gqa', seed: 7 },
    promptLength: 20,
    steps: 16,
    turns: [promptIds(9, 5, 32000).slice(1), promptIds(14, 6, 32000).slice(1)],
    tolerance: 1e-3,
    load: { kvInitialTokens: 16 },
    kvCapacity: 128,
  },
  {
    // LongRoPE switches caches when the total length passes original_max_position_embeddings (16
    // here): turn 1 stays below, turn 2 crosses in its decode, where the whole sequence runs again
    // with the long factors, as onnxruntime-genai and transformers do (no key keeps the short
    // rotation: the reference's rerunAcross).
    name: '128k LongRoPE, a conversation that crosses the switch in the second turn',
    options: { layout: 'gqa-packed', context: '128k', maxPositions: 256, originalMaxPositions: 16 },
    promptLength: 6,
    steps: 6,
    turns: [promptIds(9, 3, 32000).slice(1)],
    tolerance: 1e-3,
  },
  {
    // One prompt that crosses the switch (16) over several prefill chunks of 8: onnxruntime runs
    // it at once and rotates every key with the long factors, so every chunk must (the caches are
    // picked by where the step ends, not the chunk).
    name: '128k LongRoPE, one prompt over several prefill chunks that crosses the switch',
    options: { layout: 'gqa-packed', context: '128k', maxPositions: 256, originalMaxPositions: 16 },
    promptLength: 30,
    steps: 6,
    turns: [promptIds(9, 3, 32000).slice(1)],
    tolerance: 1e-3,
    load: { maxPrefill: 8 },
  },
  {
    // onnxruntime-genai writes config.json's sliding_window as local_window_size: 262144 in Phi-3
    // Mini 128K's builds, more than the model holds, so no window applies.
    name: '128k with local_window_size 262144 (as Phi-3 Mini 128K builds carry): no window',
    options: { layout: 'gqa-packed', context: '128k', maxPositions: 256, originalMaxPositions: 16, slidingWindow: 262144 },
    promptLength: 20,
    steps: 8,
    tolerance: 1e-3,
  },
  {
    // A window of 24 keys (GroupQueryAttention's local_window_size): a 40-token prompt over
    // 16-token prefill chunks (each query's window starts inside an earlier chunk), decode past
    // it, and a second turn. The cache is a ring of 24 + 16 rows: decode and the second turn's
    // prefill write over the oldest.
    name: 'attention window 24 (local_window_size), prompt over several chunks, a second turn, a ring of 40 rows',
    options: { layout: 'gqa', slidingWindow: 24, seed: 6 },
    promptLength: 40,
    steps: 8,
    turns: [promptIds(13, 4, 32000).slice(1)],
    tolerance: 1e-3,
    load: { maxPrefill: 16 },
    kvCapacity: 40,
  },
  {
    // Window 80 with packed qkv: decode from 100 keys on runs split-K over the window's 80 keys
    // (two splits of the default 64), the lanes kernel and the blocked prefill; the second turn
    // wraps the ring of 80 + 48 rows (the decode epilogue's and the blocked kernel's row wrap).
    name: "attention window 80, packed qkv: split-K decode over the window, 'lanes' kernel, blocked prefill, a ring of 128 rows",
    options: { layout: 'gqa-packed', slidingWindow: 80, seed: 7 },
    promptLength: 100,
    steps: 8,
    turns: [promptIds(21, 9, 32000).slice(1)],
    tolerance: 1e-3,
    load: { maxPrefill: 48, attention: { kernel: 'lanes', prefill: 'blocked' } },
    kvCapacity: 128,
  },
  {
    name: '128k LongRoPE crossing position 4096 (web2024, fp16 files)',
    options: { layout: 'web2024', context: '128k', dtype: 'q4f16', maxPositions: 8192, originalMaxPositions: 4096 },
    promptLength: 4090,
    steps: 12,
    tolerance: f16Tol,
    timeoutMs: 900_000,
  },
  {
    name: 'full width: hidden 3072, intermediate 8192, vocab 32064, 32 heads of 96, 1 layer',
    options: { layout: 'gqa-packed', dtype: 'q4f16', layers: 1, hidden: 3072, heads: 32, kvHeads: 32, intermediate: 8192 },
    promptLength: 8,
    steps: 3,
    tolerance: f16Tol,
  },
];

async function compare(c: Case, dir: string): Promise<void> {
  const ctx = await testGpu();
  if (c.load?.matMulTuning?.gemmF16 && !ctx.features.shaderF16) {
    // Kernels that compute in f16 on a device without shader-f16: the load refuses, naming the feature.
    const files = nodeModelFiles(dir);
    try {
      await expect(loadModelFiles(ctx, files, c.load)).rejects.toThrow(/needs the shader-f16 feature/);
    } finally {
      await files.close();
    }
    return;
  }
  const prompt = promptIds(c.promptLength, 11, 32000);
  // Phi-3 128K: the sequence runs again where it crosses LongRoPE's switch (ReferenceOptions.rerunAcross).
  const rerunAcross = c.options.context === '128k' ? (c.options.originalMaxPositions ?? 4096) : undefined;
  const ref = await runReference(dir, { inputIds: prompt, steps: c.steps, chunks: c.turns, rerunAcross });
  const files = nodeModelFiles(dir);
  const { runtime, plan } = await loadModelFiles(ctx, files, c.load);
  try {
    // Every layout decodes as embed + 5 kernels per layer (qkv with the rotary and KV append
    // fused, attention, o, gate_up, down) + lm_head + sampler; split-K attention adds a combine
    // pass per layer past 64 tokens of context. (Prefill adds a kv-append per layer.)
    // (6 per layer where the device has too few storage buffers per stage for the fused GEMV.)
    const perLayer = matMulNBitsRopeAppendSupported(ctx.device) ? 5 : 6;
    expect(runtime.dispatchesPerDecode).toBe(3 + perLayer * plan.config.layers);
    console.log(`[node/webgpu] ${c.name}: ${runtime.dispatchesPerDecode} dispatches per decode token (${plan.config.layers} layers), decode matmuls on ${runtime.decodeMatMulPaths.join(', ')}`);
    if (c.load?.matMulTuning?.gemv === 'dp4a') expect(runtime.decodeMatMulPaths.every((p) => p.startsWith('gemv-dp4a'))).toBe(true);
    const share = c.load?.matMulTuning?.warmNext ?? 0;
    if (share > 0) {
      // Rows (N) and 16-byte words per row of each decode matmul in order: qkv, o, gate_up, down per layer, then lm_head.
      const { layers, hidden: H, intermediate: I, heads, kvHeads, headDim: D, vocab } = plan.config;
      const perLayer = [[(heads + 2 * kvHeads) * D, H], [H, heads * D], [2 * I, H], [H, I]].map(([N, K]) => ({ N, words: K / 32 }));
      const order = [...Array.from({ length: layers }, () => perLayer).flat(), { N: vocab, words: H / 32 }];
      // Each matmul's predecessor warms it: attention the o_proj, a GEMV the rest (where the device
      // has the storage buffers; the first qkv has none).
      const gemvHosts = matMulNBitsWarmNextSupported(ctx.device);
      const warmed = order.filter((_, i) => i > 0 && (gemvHosts || i % 4 === 1));
      const want = warmed.reduce((n, m) => n + m.N * Math.max(1, Math.round(share * m.words)) * 16, 0);
      console.log(`[node/webgpu] ${c.name}: ${runtime.decodeWarmBytes} bytes of weights read ahead per decode step (warmNext ${share})`);
      expect(runtime.decodeWarmBytes).toBe(want);
    }
    let worst = 0;
    let agree = 0;
    let i = 0;
    const own: number[] = [];
    const turns = [prompt, ...(c.turns ?? [])];
    for (let t = 0; t < turns.length; t++) {
      const feed = t === 0 ? turns[0] : [ref.tokens[i - 1], ...turns[t]];
      let logits = await runtime.logits(feed);
      for (let s = 0; s < c.steps; s++, i++) {
        worst = Math.max(worst, maxAbsDiff(logits, ref.logits[i]));
        own.push(argmax(logits));
        if (own[i] === ref.tokens[i]) agree++;
        if (s + 1 < c.steps) logits = await runtime.logits([ref.tokens[i]]);
      }
    }
    console.log(`[node/webgpu] ${c.name} (${plan.layout}, ${plan.activationDtype} files): max |Δlogit| = ${worst.toExponential(2)} over ${i} steps (tolerance ${c.tolerance}), greedy tokens identical ${agree}/${i}`);
    expect(worst).toBeLessThanOrEqual(c.tolerance);
    if (c.kvCapacity !== undefined) expect(runtime.kvCapacity).toBe(c.kvCapacity);
    if (c.minAgree === undefined) expect(agree).toBe(i);
    else expect(agree).toBeGreaterThanOrEqual(Math.ceil(c.minAgree * i));

    // The GPU sampler in greedy mode reproduces the reference tokens from a fresh cache.
    runtime.truncate(0);
    const greedy = { ...DEFAULT_SAMPLING, temperature: 0, repetitionPenalty: 1 };
    const n = Math.min(16, c.steps);
    const got: number[] = [await runtime.step(prompt, greedy, 0)];
    // A decode step is one submit: forward, sampling and the 4-byte copy share a command buffer.
    if (got.length < n) {
      const { calls, value } = await countQueueCalls(ctx.device.queue, 'submit', () => runtime.step([got[0]], greedy, 1));
      got.push(value);
      expect(calls).toBe(1);
    }
    while (got.length < n) got.push(await runtime.step([got[got.length - 1]], greedy, got.length));
    if (c.minAgree === undefined) {
      expect(got).toEqual(ref.tokens.slice(0, n));
    } else {
      // Up to the first teacher-forced disagreement the states are the same, so greedy sampling
      // follows the reference's tokens and then takes this engine's own argmax.
      const split = own.slice(0, n).findIndex((t, s) => t !== ref.tokens[s]);
      const upTo = split < 0 ? n : split + 1;
      expect(got.slice(0, upTo)).toEqual(own.slice(0, upTo));
    }
  } finally {
    runtime.destroy();
    await files.close();
  }
}

describe('native engine vs onnxruntime [gpu]', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const dir = join(root, c.name.replace(/[^a-z0-9]+/gi, '-'));
      await generateTinyModel(dir, c.options);
      await compare(c, dir);
    }, c.timeoutMs);
  }
});

describe('profileDecode [gpu]', () => {
  it('times every kernel of a decode step, which then continues exactly like step()', async () => {
    const dir = join(root, 'profile');
    await generateTinyModel(dir, { layout: 'gqa-packed', layers: 2 });
    const prompt = promptIds(12, 11, 32000);
    const ref = await runReference(dir, { inputIds: prompt, steps: 3 });
    const files = nodeModelFiles(dir);
    const ctx = await testGpu();
    const { runtime, plan } = await loadModelFiles(ctx, files);
    try {
      await runtime.logits(prompt);
      const times = await runtime.profileDecode(ref.tokens[0]);
      if (!ctx.device.features.has('timestamp-query')) {
        expect(times).toBeNull();
        return;
      }
      // Decode fuses the rotary and KV append into qkv: no kvAppend kernel runs.
      const layerKinds = matMulNBitsRopeAppendSupported(ctx.device) ? ['qkv', 'attention', 'o', 'gateUp', 'down'] : ['qkv', 'kvAppend', 'attention', 'o', 'gateUp', 'down'];
      expect(times!.map((t) => t.kind)).toEqual(['embedding', ...layerKinds, ...layerKinds, 'lm_head']);
      expect(times!.map((t) => t.layer)).toEqual([null, ...layerKinds.map(() => 0), ...layerKinds.map(() => 1), null]);
      for (const t of times!) {
        expect(Number.isFinite(t.ms) && t.ms >= 0).toBe(true);
        expect(t.weightBytes > 0).toBe(['qkv', 'o', 'gateUp', 'down', 'lm_head'].includes(t.kind));
      }
      const lmHeadBytes = [plan.lmHead.packed, plan.lmHead.scales].reduce((n, t) => n + (tensorByteLength(t.dataType, t.dims) ?? 0), 0);
      expect(times!.at(-1)!.weightBytes).toBe(lmHeadBytes);
      console.log(`[node/webgpu] profileDecode: ${times!.map((t) => `${t.kind} ${t.ms.toFixed(3)} ms`).join(', ')}`);
      // The profiled step appended its token: the next step sees the same cache as the reference.
      expect(runtime.cachedIds.length).toBe(prompt.length + 1);
      // Leave-one-out step times: positive, and they append nothing (their KV entry lies past the
      // cache and the next step overwrites it, as the logits below check).
      const whole = await runtime.timeDecodeWithout(new Set(), 2);
      const withoutGateUp = await runtime.timeDecodeWithout(new Set(['gateUp']), 2);
      const nothing = await runtime.timeDecodeWithout(new Set([...layerKinds, 'embedding', 'lm_head']), 2);
      expect(whole! > 0 && Number.isFinite(whole!)).toBe(true);
      expect(withoutGateUp! > 0 && Number.isFinite(withoutGateUp!)).toBe(true);
      expect(nothing! >= 0 && nothing! < whole!).toBe(true);
      console.log(`[node/webgpu] timeDecodeWithout: whole step ${whole!.toFixed(3)} ms, without gateUp ${withoutGateUp!.toFixed(3)} ms, empty pass ${nothing!.toFixed(3)} ms`);
      await expect(runtime.timeDecodeWithout(new Set(), 0)).rejects.toThrow(/reps must be a positive integer/);
      // The weight-read floor: matmul kinds replaced by a kernel that only reads their weights.
      expect(runtime.weightMatmulKinds()).toEqual(['qkv', 'o', 'gateUp', 'down', 'lm_head']);
      const readGateUp = await runtime.timeDecodeWithout(new Set(), 2, new Set(['gateUp']));
      const readAll = await runtime.timeDecodeWithout(new Set(), 2, new Set(runtime.weightMatmulKinds()));
      expect(readGateUp! > 0 && Number.isFinite(readGateUp!)).toBe(true);
      expect(readAll! > 0 && Number.isFinite(readAll!)).toBe(true);
      console.log(`[node/webgpu] timeDecodeWithout: gateUp only reading its weights ${readGateUp!.toFixed(3)} ms, every matmul only reading ${readAll!.toFixed(3)} ms`);
      await expect(runtime.timeDecodeWithout(new Set(), 1, new Set(['attention']))).rejects.toThrow(/readInstead names 'attention', which is not a weight matmul of the decode step \(qkv, o, gateUp, down, lm_head\)/);
      expect(runtime.cachedIds.length).toBe(prompt.length + 1);
      const logits = await runtime.logits([ref.tokens[1]]);
      expect(maxAbsDiff(logits, ref.logits[2])).toBeLessThanOrEqual(1e-3);
    } finally {
      runtime.destroy();
      await files.close();
    }
  });
});

describe('profilePrefill [gpu]', () => {
  it('times every kernel of a prefill chunk with its rows and multiply-adds, which then continues exactly like logits()', async () => {
    const dir = join(root, 'profile-prefill');
    await generateTinyModel(dir, { layout: 'gqa-packed', layers: 2 });
    const prompt = promptIds(12, 11, 32000);
    const ref = await runReference(dir, { inputIds: prompt, steps: 2 });
    const files = nodeModelFiles(dir);
    const ctx = await testGpu();
    const { runtime, plan } = await loadModelFiles(ctx, files, { maxPrefill: 16 });
    try {
      await expect(runtime.profilePrefill([prompt[0]])).rejects.toThrow(/1 tokens; a prefill chunk is 2 to 16/);
      await expect(runtime.profilePrefill(promptIds(17, 3, 32000))).rejects.toThrow(/17 tokens; a prefill chunk is 2 to 16/);
      const times = await runtime.profilePrefill(prompt);
      if (!ctx.device.features.has('timestamp-query')) {
        expect(times).toBeNull();
        return;
      }
      // Prefill keeps the separate rotary + KV append after the qkv GEMM.
      const layerKinds = ['qkv', 'kvAppend', 'attention', 'o', 'gateUp', 'down'];
      expect(times!.map((t) => t.kind)).toEqual(['embedding', ...layerKinds, ...layerKinds, 'lm_head']);
      const { hidden: H, intermediate: I, heads, kvHeads, vocab } = plan.config;
      const D = H / heads;
      const macs: Record<string, number> = { qkv: H * (heads + 2 * kvHeads) * D, o: H * H, gateUp: H * 2 * I, down: I * H, lm_head: H * vocab };
      for (const t of times!) {
        expect(Number.isFinite(t.ms) && t.ms >= 0).toBe(true);
        expect(t.macsPerRow).toBe(macs[t.kind] ?? 0);
        expect(t.rows).toBe(t.kind === 'lm_head' ? 1 : prompt.length);
      }
      console.log(`[node/webgpu] profilePrefill (${prompt.length} tokens): ${times!.map((t) => `${t.kind} ${t.ms.toFixed(3)} ms`).join(', ')}`);
      // The profiled chunk was appended like logits(prompt): the next token sees the reference's cache.
      expect(runtime.cachedIds).toEqual(prompt);
      const logits = await runtime.logits([ref.tokens[0]]);
      expect(maxAbsDiff(logits, ref.logits[1])).toBeLessThanOrEqual(1e-3);
    } finally {
      runtime.destroy();
      await files.close();
    }
  });
});

describe('decode steps encoded ahead [gpu]', () => {
  for (const runAhead of [true, false]) {
    it(`${runAhead ? 'run-ahead' : 'encoded ahead, submitted on demand'}: a step fed a token other than the one sampled (or after truncate) drops the step encoded ahead and computes from what it was given`, async () => {
      const dir = join(root, `prepared-${runAhead}`);
      await generateTinyModel(dir, { layout: 'gqa-packed', layers: 2 });
      const prompt = promptIds(10, 5, 32000);
      const files = nodeModelFiles(dir);
      const ctx = await testGpu();
      const { runtime } = await loadModelFiles(ctx, files, { runAhead });
      const greedy = { ...DEFAULT_SAMPLING, temperature: 0, repetitionPenalty: 1 };
      const penalised = { ...greedy, repetitionPenalty: 1.3 };
      try {
        // Ground truth from logits() on a fresh cache for each prefix.
        const expected = async (ids: number[]) => {
          runtime.truncate(0);
          return argmax(await runtime.logits(ids));
        };
        runtime.truncate(0);
        const a = await runtime.step(prompt, greedy, 0);
        const other = (a + 1) % 512;
        const b = await runtime.step([other], greedy, 1); // not the sampled token: step encoded ahead dropped
        // The sampled token: the step encoded ahead is used, so the CPU writes only the two
        // uniforms (of this step, or with run-ahead of the one it submits after it; the ids and
        // history come from the GPU) and submits once, where a step encoded on the spot also
        // writes both.
        const { calls: writes, value: c } = await countQueueCalls(ctx.device.queue, 'writeBuffer', () => runtime.step([b], greedy, 2));
        expect(writes).toBe(2);
        expect(runtime.cachedIds).toEqual([...prompt, other, b]);
        expect(b).toBe(await expected([...prompt, other]));
        expect(c).toBe(await expected([...prompt, other, b]));

        // truncate between steps, then the same token again: computed afresh at the new position.
        runtime.truncate(0);
        const a2 = await runtime.step(prompt, greedy, 0);
        runtime.truncate(prompt.length - 1);
        const d = await runtime.step([a2], greedy, 1);
        expect(d).toBe(await expected([...prompt.slice(0, -1), a2]));

        // Changed sampling settings between steps: the repetition penalty applies from that step on.
        runtime.truncate(0);
        const e = await runtime.step(prompt, greedy, 0);
        const f = await runtime.step([e], penalised, 1);
        runtime.truncate(0);
        await runtime.step(prompt, penalised, 0);
        runtime.truncate(prompt.length);
        expect(await runtime.step([e], penalised, 1)).toBe(f);
      } finally {
        runtime.destroy();
        await files.close();
      }
    });
  }

  it('run-ahead samples exactly what step-by-step decoding samples: seeded sampling, other step indices, generations that stop and follow-ups', async () => {
    const dir = join(root, 'run-ahead');
    await generateTinyModel(dir, { layout: 'gqa-packed', layers: 2 });
    const files = nodeModelFiles(dir);
    const ctx = await testGpu();
    const ahead = (await loadModelFiles(ctx, files, { runAhead: true })).runtime;
    const plain = (await loadModelFiles(ctx, files, { runAhead: false })).runtime;
    // Temperature 1.5 with a repetition penalty: every step depends on the RNG step index and the
    // whole history, so a token read from a stale or wrongly seeded step would show.
    const sampling = { ...DEFAULT_SAMPLING, temperature: 1.5, topK: 0, topP: 1, repetitionPenalty: 1.2, seed: 3 };
    const eos = new Set<number>();
    const run = async (runtime: typeof ahead, promptIds: number[], maxNewTokens: number) => {
      const out: number[] = [];
      for await (const t of generate(runtime, { promptIds, maxNewTokens, eosTokenIds: eos, sampling })) out.push(t);
      return out;
    };
    try {
      const prompt = promptIds(9, 4, 32000);
      // One generation of 24 tokens; then a follow-up turn on top of the first 10 of them (the
      // cache is reused, and the step submitted after the last token of the first was dropped).
      const first = await run(plain, prompt, 24);
      expect(await run(ahead, prompt, 24)).toEqual(first);
      expect(new Set(first).size).toBeGreaterThan(4); // sampled, not a repeated argmax
      const followUp = [...prompt, ...first.slice(0, 10), ...promptIds(5, 9, 32000).slice(1)];
      const second = await run(plain, followUp, 12);
      expect(await run(ahead, followUp, 12)).toEqual(second);
      expect(ahead.cachedIds).toEqual(plain.cachedIds);

      // A caller that skips a step index (another RNG draw than the one submitted ahead) gets the
      // draw it asked for: the step in flight is dropped and the token recomputed.
      for (const runtime of [ahead, plain]) runtime.truncate(0);
      const t0 = await ahead.step(prompt, sampling, 0);
      expect(await plain.step(prompt, sampling, 0)).toBe(t0);
      const skipped = await ahead.step([t0], sampling, 5);
      expect(await plain.step([t0], sampling, 5)).toBe(skipped);
      expect(await ahead.step([skipped], sampling, 6)).toBe(await plain.step([skipped], sampling, 6));

      // logits() after a step whose successor is in flight sees the cache without that successor.
      const logitsAhead = await ahead.logits([7]);
      const logitsPlain = await plain.logits([7]);
      expect(maxAbsDiff(logitsAhead, logitsPlain)).toBeLessThanOrEqual(1e-6);
    } finally {
      ahead.destroy();
      plain.destroy();
      await files.close();
    }
  });

  it('a KV cache that grows while decode runs ahead, and shrinks for a new chat, gives the tokens and logits of one allocated whole', async () => {
    const dir = join(root, 'kv-grow');
    await generateTinyModel(dir, { layout: 'gqa-packed', layers: 2, seed: 3 });
    const files = nodeModelFiles(dir);
    const ctx = await testGpu();
    const whole = (await loadModelFiles(ctx, files, { kvInitialTokens: 4096 })).runtime;
    const grown = (await loadModelFiles(ctx, files, { kvInitialTokens: 16 })).runtime;
    const greedy = { ...DEFAULT_SAMPLING, temperature: 0, repetitionPenalty: 1 };
    try {
      expect(whole.kvCapacity).toBe(whole.contextLimit);
      expect(grown.kvCapacity).toBe(16);
      // K and V of every layer: kvHeads · headDim · 4 bytes (f32 here) per position.
      const { layers, kvHeads, headDim } = grown.plan.config;
      const cacheBytes = (positions: number) => layers * 2 * kvHeads * headDim * 4 * positions;
      expect(grown.gpuBytes().kvCache).toBe(cacheBytes(16));
      expect(whole.gpuBytes().kvCache).toBe(cacheBytes(whole.contextLimit));
      expect(grown.gpuBytes().weights).toBe(whole.gpuBytes().weights);
      const run = async (runtime: typeof whole) => {
        const ids = [await runtime.step(promptIds(12, 2, 32000), greedy, 0)];
        // Past 16 and 32 cached tokens: the cache grows between steps encoded ahead.
        while (ids.length < 40) ids.push(await runtime.step([ids[ids.length - 1]], greedy, ids.length));
        return { ids, logits: await runtime.logits([ids[ids.length - 1]]) };
      };
      const a = await run(whole);
      const b = await run(grown);
      expect(grown.kvCapacity).toBe(64);
      expect(grown.gpuBytes().kvCache).toBe(cacheBytes(64));
      console.log(`[node/webgpu] kv growth: ${JSON.stringify(grown.gpuBytes())} bytes after 52 tokens from 16 positions; allocated whole: ${JSON.stringify(whole.gpuBytes())}`);
      expect(b.ids).toEqual(a.ids);
      expect(maxAbsDiff(b.logits, a.logits)).toBe(0);

      // Back to 20 held positions: 64 is under 4× the 32 they fit in, so the cache stays.
      for (const runtime of [whole, grown]) runtime.truncate(20);
      const at21 = await Promise.all([whole, grown].map((r) => r.logits([b.ids[7]])));
      expect(grown.kvCapacity).toBe(64);
      expect(maxAbsDiff(at21[1], at21[0])).toBe(0);
      // A new chat that keeps 4 positions (a shared system prompt): its 12 fit in 16, and 64 is
      // 4× that, so the cache shrinks back, keeping the 4, and grows again as the answer goes on.
      const again = async (runtime: typeof whole) => {
        runtime.truncate(4);
        const ids = [await runtime.step(promptIds(8, 5, 32000), greedy, 0)];
        const after = { capacity: runtime.kvCapacity, kvCache: runtime.gpuBytes().kvCache };
        while (ids.length < 30) ids.push(await runtime.step([ids[ids.length - 1]], greedy, ids.length));
        return { ids, after, logits: await runtime.logits([ids[ids.length - 1]]) };
      };
      const c = await again(whole);
      const d = await again(grown);
      expect(d.after).toEqual({ capacity: 16, kvCache: cacheBytes(16) });
      expect(grown.kvCapacity).toBe(64);
      expect(d.ids).toEqual(c.ids);
      expect(maxAbsDiff(d.logits, c.logits)).toBe(0);
      // A chat that grew the cache to 128 and one to 64 after it: the next short chat shrinks it
      // again (what the 128 wrote before the first shrink no longer counts).
      grown.truncate(4);
      await grown.step(promptIds(100, 6, 32000), greedy, 0);
      expect(grown.kvCapacity).toBe(128);
      const e = await again(grown);
      expect([e.after.capacity, grown.kvCapacity]).toEqual([16, 64]);
      await again(grown);
      expect(grown.kvCapacity).toBe(64);
      grown.truncate(4);
      await grown.step(promptIds(8, 7, 32000), greedy, 0);
      expect(grown.kvCapacity).toBe(16);
    } finally {
      whole.destroy();
      grown.destroy();
      await files.close();
    }
  });

  it('a long prompt reports each prefill chunk as it runs, and a stop between chunks keeps the chunks that ran', async () => {
    const dir = join(root, 'prefill-feed');
    await generateTinyModel(dir, { layout: 'gqa-packed', layers: 1, seed: 4 });
    const files = nodeModelFiles(dir);
    const ctx = await testGpu();
    const { runtime } = await loadModelFiles(ctx, files, { maxPrefill: 8 });
    const greedy = { ...DEFAULT_SAMPLING, temperature: 0, repetitionPenalty: 1 };
    const prompt = promptIds(30, 9, 32000);
    try {
      const plain = await runtime.step(prompt, greedy, 0);
      runtime.truncate(0);
      // Chunks of 8: the first three are reported as the GPU finishes them; the fourth is the step's own.
      const seen: number[] = [];
      expect(await runtime.step(prompt, greedy, 0, { onPrefill: (done) => seen.push(done) })).toBe(plain);
      expect(seen).toEqual([8, 16, 24]);

      // Stopped once the first chunk is reported: the chunks submitted by then are in the cache
      // and the rest of the prompt after them gives the same token.
      runtime.truncate(0);
      const ctrl = new AbortController();
      const stopped = runtime.step(prompt, greedy, 0, { signal: ctrl.signal, onPrefill: () => ctrl.abort() });
      await expect(stopped).rejects.toMatchObject({ name: 'AbortError' });
      const kept = runtime.cachedIds.length;
      expect(kept === 16 || kept === 24).toBe(true);
      expect(runtime.cachedIds).toEqual(prompt.slice(0, kept));
      expect(await runtime.step(prompt.slice(kept), greedy, 0)).toBe(plain);

      // Through generate: a stop mid-prompt ends the answer as stopped, with no token.
      runtime.truncate(0);
      const ctrl2 = new AbortController();
      const gen = generate(runtime, { promptIds: prompt, maxNewTokens: 4, eosTokenIds: new Set(), sampling: greedy, signal: ctrl2.signal, onPrefill: (done, total) => (expect(total).toBe(30), done >= 8 && ctrl2.abort()) });
      const r = await gen.next();
      expect(r).toMatchObject({ done: true, value: { stopReason: 'aborted', newTokens: 0 } });
    } finally {
      runtime.destroy();
      await files.close();
    }
  });

  it('run-ahead stops at the context limit: the last step submits nothing after it', async () => {
    const dir = join(root, 'run-ahead-limit');
    await generateTinyModel(dir, { layout: 'gqa-packed', layers: 1 });
    const files = nodeModelFiles(dir);
    const ctx = await testGpu();
    const { runtime } = await loadModelFiles(ctx, files, { maxContext: 20 });
    const greedy = { ...DEFAULT_SAMPLING, temperature: 0, repetitionPenalty: 1 };
    try {
      const token = await runtime.step(promptIds(18, 2, 32000), greedy, 0);
      const next = await countQueueCalls(ctx.device.queue, 'submit', () => runtime.step([token], greedy, 1)); // 19 cached: the 20th is submitted ahead
      expect(next.calls).toBe(1);
      const last = await countQueueCalls(ctx.device.queue, 'submit', () => runtime.step([next.value], greedy, 2)); // 20 cached: the context is full, nothing follows
      expect(last.calls).toBe(0);
      expect(runtime.cachedIds.length).toBe(20);
    } finally {
      runtime.destroy();
      await files.close();
    }
  });
});

describe('attention window [gpu]', () => {
  it('a local_window_size below the rotary caches keeps the model\'s context: the kernels slide the window', async () => {
    const dir = join(root, 'window-24');
    await generateTinyModel(dir, { layout: 'gqa', layers: 1, slidingWindow: 24, seed: 2 });
    const files = nodeModelFiles(dir);
    const { runtime, plan } = await loadModelFiles(await testGpu(), files);
    try {
      expect([plan.config.attentionWindow, plan.config.maxPositions, runtime.contextLimit]).toEqual([24, 4096, 4096]);
      // The cache stops at the window and a prefill chunk: a ring of 24 + 512 rows.
      expect([runtime.ringRows, runtime.kvMaxPositions, runtime.kvCapacity]).toEqual([536, 536, 512]);
    } finally {
      runtime.destroy();
      await files.close();
    }
  });

  it('the cache is a ring of window + maxPrefill rows: decode run ahead past it, going back within its slack keeps it, further back runs the kept tokens again, and generate counts that as prefill', async () => {
    const dir = join(root, 'window-ring');
    await generateTinyModel(dir, { layout: 'gqa-packed', layers: 2, slidingWindow: 8, seed: 4 });
    const files = nodeModelFiles(dir);
    const ctx = await testGpu();
    const { runtime } = await loadModelFiles(ctx, files, { maxPrefill: 8 });
    const session = await OrtPhi3Session.open(dir);
    // The reference: onnxruntime over the whole sequence, with its own (unbounded) cache.
    const fresh = lastLogits(session);
    const greedy = { ...DEFAULT_SAMPLING, temperature: 0, repetitionPenalty: 1 };
    try {
      const { layers, kvHeads, headDim } = runtime.plan.config;
      expect([runtime.ringRows, runtime.kvMaxPositions, runtime.kvCapacity, runtime.contextLimit]).toEqual([16, 16, 16, 4096]);
      // A 20-token prompt in chunks of 8 (the third wraps), then greedy decode run ahead to 40 tokens.
      const prompt = promptIds(20, 4, 32000);
      const ids = [...prompt, await runtime.step(prompt, greedy, 0)];
      while (ids.length < 40) ids.push(await runtime.step([ids[ids.length - 1]], greedy, ids.length - prompt.length));
      for (let n = prompt.length; n < ids.length; n++) expect(ids[n], `token ${n}`).toBe(argmax(await fresh(ids.slice(0, n))));
      expect(runtime.kvCapacity).toBe(16);
      expect(runtime.gpuBytes().kvCache).toBe(layers * 2 * kvHeads * headDim * 4 * 16);

      // 39 cached, 40 written (the step run ahead): rows hold positions 24–39. Going back to 33
      // keeps what position 33 attends (26–32); to 30 it would need 23, overwritten.
      expect(runtime.reusableFor(40)).toBe(39);
      runtime.truncate(33);
      expect(runtime.reusableFor(35)).toBe(33);
      const within = [...ids.slice(0, 33), 7, 8];
      expect(maxAbsDiff(await runtime.logits([7, 8]), await fresh(within))).toBeLessThanOrEqual(1e-3);
      runtime.truncate(30);
      expect(runtime.reusableFor(32)).toBe(0);
      const back = [...ids.slice(0, 30), 9, 10];
      expect(maxAbsDiff(await runtime.logits([9, 10]), await fresh(back))).toBeLessThanOrEqual(1e-3);
      expect(runtime.cachedIds).toEqual(back);
      expect(runtime.reusableFor(33)).toBe(32);

      // Regenerating from 12 tokens of these 32: generate keeps none of them, and says so.
      const shorter = [...back.slice(0, 12), 11];
      const gen = generate(runtime, { promptIds: shorter, maxNewTokens: 1, eosTokenIds: new Set(), sampling: greedy });
      const first = await gen.next();
      expect(first.value).toBe(argmax(await fresh(shorter)));
      expect(await gen.next()).toMatchObject({ done: true, value: { promptTokens: 13, prefillTokens: 13 } });

      // An answer of maxPrefill tokens, regenerated: it wrote maxPrefill positions past its prompt
      // (the step run ahead included), within the ring's slack, so only the prompt's last token
      // runs. One token longer is past it: the whole prompt runs again.
      const chat = promptIds(30, 8, 32000);
      const answer = async (maxNewTokens = 8) => {
        const g = generate(runtime, { promptIds: chat, maxNewTokens, eosTokenIds: new Set(), sampling: greedy });
        const out: number[] = [];
        for (let r = await g.next(); ; r = await g.next()) {
          if (r.done) return { out, timings: r.value };
          out.push(r.value);
        }
      };
      const once = await answer();
      const twice = await answer();
      expect(twice.out).toEqual(once.out);
      expect(twice.timings).toMatchObject({ promptTokens: 30, prefillTokens: 1, newTokens: 8 });
      const longer9 = await answer(9);
      expect(longer9.out.slice(0, 8)).toEqual(once.out);
      expect((await answer()).timings).toMatchObject({ promptTokens: 30, prefillTokens: 30, newTokens: 8 });
    } finally {
      await session.release();
      runtime.destroy();
      await files.close();
    }
  });
});

describe('LongRoPE switch [gpu]', () => {
  it('a cache written on one side of the switch runs again on the other: up in a decode run ahead, down for a shorter chat that shares a prefix, and generate counts it as prefill', async () => {
    const dir = join(root, 'longrope-rerun');
    await generateTinyModel(dir, { layout: 'gqa-packed', context: '128k', maxPositions: 256, originalMaxPositions: 16, layers: 1, seed: 5 });
    const files = nodeModelFiles(dir);
    const ctx = await testGpu();
    const { runtime } = await loadModelFiles(ctx, files);
    const session = await OrtPhi3Session.open(dir);
    // The reference: onnxruntime runs the whole sequence at once (every key by its length's factors).
    const fresh = lastLogits(session);
    const greedy = { ...DEFAULT_SAMPLING, temperature: 0, repetitionPenalty: 1 };
    try {
      // Up: a 12-token prompt, then greedy decode run ahead to 22 tokens, across 16 (at 17 the
      // step encoded ahead is not used: the 17 run again with the long factors).
      const prompt = promptIds(12, 4, 32000);
      const ids = [...prompt, await runtime.step(prompt, greedy, 0)];
      expect(runtime.reusableFor(14)).toBe(12);
      expect(runtime.reusableFor(17)).toBe(0);
      while (ids.length < 22) ids.push(await runtime.step([ids[ids.length - 1]], greedy, ids.length - prompt.length));
      for (let n = prompt.length; n < ids.length; n++) expect(ids[n], `token ${n}`).toBe(argmax(await fresh(ids.slice(0, n))));
      expect(runtime.reusableFor(30)).toBe(21);

      // Down: a chat that shares the first 10 tokens and ends at 14 runs them again with the short ones.
      expect(runtime.reusableFor(14)).toBe(0);
      runtime.truncate(10);
      const short = [...ids.slice(0, 10), 5, 6, 7, 8];
      expect(maxAbsDiff(await runtime.logits(short.slice(10)), await fresh(short))).toBeLessThanOrEqual(1e-3);
      expect(runtime.cachedIds).toEqual(short);
      expect(runtime.reusableFor(15)).toBe(14);

      // generate keeps none of the 14 for a 20-token prompt that starts with them, and says so.
      const longer = [...short, ...promptIds(7, 9, 32000).slice(1)];
      const gen = generate(runtime, { promptIds: longer, maxNewTokens: 1, eosTokenIds: new Set(), sampling: greedy });
      const first = await gen.next();
      expect(first.value).toBe(argmax(await fresh(longer)));
      expect(await gen.next()).toMatchObject({ done: true, value: { promptTokens: 20, prefillTokens: 20 } });
    } finally {
      await session.release();
      runtime.destroy();
      await files.close();
    }
  });
});

/**
 * Whether this device refuses, as out of memory, the largest buffer it lets a shader bind (only
 * then can a test make the KV cache run out of memory by growing it). SwiftShader does: its
 * bindings go up to 1 GiB, and vkAllocateMemory fails for exactly 1 GiB (1023 MiB succeeds).
 */
async function refusesLargestBinding(ctx: Awaited<ReturnType<typeof testGpu>>): Promise<boolean> {
  const { device, limits } = ctx;
  if (limits.maxStorageBufferBindingSize !== 2 ** 30) return false;
  device.pushErrorScope('out-of-memory');
  const b = device.createBuffer({ size: 2 ** 30, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  const oom = await device.popErrorScope();
  b.destroy();
  return oom !== null;
}

describe('weights on the GPU [gpu]', () => {
  /** Every tensor the plan names, found by walking it (independently of the loader's own list). */
  function planTensors(plan: Phi3Plan): OnnxTensorInfo[] {
    const found = new Set<OnnxTensorInfo>();
    const walk = (v: unknown): void => {
      if (!v || typeof v !== 'object') return;
      if ('dims' in v && 'dataType' in v) found.add(v as OnnxTensorInfo);
      else Object.values(v).forEach(walk);
    };
    walk({ embedding: plan.embedding, layers: plan.layers, finalNorm: plan.finalNorm, lmHead: plan.lmHead, rotary: plan.rotary });
    return [...found];
  }

  it('hold each of the file\'s tensors once, rotary caches included (one table per LongRoPE pair), and progress counts each byte once', async () => {
    const dir = join(root, 'weights-once');
    await generateTinyModel(dir, { layout: 'gqa-packed', context: '128k', maxPositions: 256, originalMaxPositions: 16, layers: 2, seed: 6 });
    const ctx = await testGpu();
    let last = { done: 0, total: -1 };
    const { runtime, plan } = await loadModelFiles(ctx, nodeModelFiles(dir), { precision: 'f32', onProgress: (done, total) => (last = { done, total }) });
    try {
      const tensors = planTensors(plan);
      const bytes = tensors.map((t) => tensorByteLength(t.dataType, t.dims) ?? NaN);
      const pairs = [plan.rotary.short, plan.rotary.long].filter((p) => p !== undefined);
      expect(pairs.length).toBe(2);
      // The uploader rounds each buffer up to 16 bytes; a pair's table is its cos and sin side by side.
      const round16 = (n: number) => Math.max(16, Math.ceil(n / 16) * 16);
      const rotaryTensors = new Set<OnnxTensorInfo>(pairs.flatMap((p) => [p.cos, p.sin]));
      const others = tensors.filter((t) => !rotaryTensors.has(t)).reduce((n, t) => n + round16(tensorByteLength(t.dataType, t.dims) ?? NaN), 0);
      const tables = pairs.reduce((n, p) => n + round16(2 * (tensorByteLength(p.cos.dataType, p.cos.dims) ?? NaN)), 0);
      expect(runtime.gpuBytes().weights).toBe(others + tables);
      expect(last).toEqual({ done: bytes.reduce((a, b) => a + b, 0), total: bytes.reduce((a, b) => a + b, 0) });
    } finally {
      runtime.destroy();
    }
  });
});

describe('f16 weights: a q4 file\'s f32 scales, embedding and rotary caches packed to fp16 [gpu]', () => {
  /**
   * Element counts of the f32 buffers the f16 path packs: every matmul's scales, the embedding (one
   * part here) and each rotary table (a cos/sin pair side by side).
   */
  function packedTensors(plan: Phi3Plan): number[] {
    const ws: QuantWeight[] = [plan.lmHead];
    for (const l of plan.layers) {
      if (l.attention.kind !== 'packed' || l.mlp.kind !== 'fused') throw new Error('the gqa-packed layout has one tensor per matmul');
      ws.push(l.attention.qkv, l.o, l.mlp.gateUp, l.down);
    }
    const elements = (t: OnnxTensorInfo) => t.dims.reduce((a, b) => a * b, 1);
    const tables = [plan.rotary.short, plan.rotary.long].filter((p) => p !== undefined).map((p) => 2 * elements(p.cos));
    expect(tables.length).toBe(2);
    return [...ws.map((w) => elements(w.scales)), elements(plan.embedding), ...tables];
  }
  const round16 = (n: number) => Math.ceil(n / 16) * 16;

  it('halves what those tensors take on the GPU, and the logits stay within 3e-2 of the unpacked ones with identical greedy tokens', async () => {
    const dir = join(root, 'f16-weights');
    // LongRoPE's two pairs (128 rows, the short one used up to 16 tokens): both tables are packed.
    await generateTinyModel(dir, { layout: 'gqa-packed', context: '128k', maxPositions: 128, originalMaxPositions: 16, layers: 2, seed: 8 });
    const ctx = await testGpu();
    const files = nodeModelFiles(dir);
    const packed = await loadModelFiles(ctx, files, { precision: 'f16' });
    const unpacked = await loadModelFiles(ctx, files, { precision: 'f16', f16Weights: false });
    const exact = await loadModelFiles(ctx, files, { precision: 'f32' });
    try {
      const saved = packedTensors(packed.plan).reduce((n, e) => n + round16(4 * e) - round16(4 * Math.ceil(e / 2)), 0);
      expect(unpacked.runtime.gpuBytes().weights - packed.runtime.gpuBytes().weights).toBe(saved);
      // The f32 path keeps them f32 whatever f16Weights says.
      expect(exact.runtime.gpuBytes().weights).toBe(unpacked.runtime.gpuBytes().weights);
      const prompt = promptIds(20, 5, 32000);
      let diff = 0;
      const ids = [...prompt];
      for (let s = 0; s < 12; s++) {
        const feed = s === 0 ? prompt : [ids[ids.length - 1]];
        const [a, b] = [await packed.runtime.logits(feed), await unpacked.runtime.logits(feed)];
        diff = Math.max(diff, maxAbsDiff(a, b));
        expect(argmax(a), `step ${s}`).toBe(argmax(b));
        ids.push(argmax(b));
      }
      expect(diff).toBeGreaterThan(0);
      expect(diff).toBeLessThanOrEqual(3e-2);

      // Under a 3 MiB binding limit the packed table (32064 × 128 fp16, 8.2 MB) loads in three
      // parts, each packed from its own first row: the same logits as the one-part table.
      const split = await loadModelFiles({ ...ctx, limits: { ...ctx.limits, maxStorageBufferBindingSize: 3 << 20 } }, files, { precision: 'f16' });
      try {
        const labels = (split.runtime as unknown as { uploader: { buffers: GPUBuffer[] } }).uploader.buffers.map((b) => b.label).filter((l) => l.startsWith('embedding.'));
        expect(labels).toEqual(['embedding.part0', 'embedding.part1', 'embedding.part2']);
        packed.runtime.truncate(0);
        expect(await split.runtime.logits(prompt)).toEqual(await packed.runtime.logits(prompt));
      } finally {
        split.runtime.destroy();
      }
    } finally {
      for (const m of [packed, unpacked, exact]) m.runtime.destroy();
      await files.close();
    }
  });

  it('a value beyond fp16\'s range loads the model again with them in f32: the memory and logits of f16Weights false', async () => {
    const dir = join(root, 'f16-weights-range');
    const model = await generateTinyModel(dir, { layout: 'gqa-packed', layers: 2, seed: 9 });
    const ctx = await testGpu();
    let files = nodeModelFiles(dir);
    const { plan, runtime: probe } = await loadModelFiles(ctx, files, { precision: 'f32' });
    probe.destroy();
    await files.close();
    // 1e5 in the embedding row of the last token, which the prompt never uses.
    const loc = plan.embedding.location;
    if (loc.kind !== 'external') throw new Error('the generator writes the embedding as external data');
    const data = readFileSync(model.dataPath);
    data.writeFloatLE(1e5, loc.offset + (plan.embedding.dims[0] * plan.embedding.dims[1] - 1) * 4);
    writeFileSync(model.dataPath, data);
    files = nodeModelFiles(dir);
    const fallback = await loadModelFiles(ctx, files, { precision: 'f16' });
    const unpacked = await loadModelFiles(ctx, files, { precision: 'f16', f16Weights: false });
    try {
      expect(fallback.runtime.gpuBytes()).toEqual(unpacked.runtime.gpuBytes());
      const prompt = promptIds(16, 6, 32000);
      expect(await fallback.runtime.logits(prompt)).toEqual(await unpacked.runtime.logits(prompt));
    } finally {
      fallback.runtime.destroy();
      unpacked.runtime.destroy();
      await files.close();
    }
  });
});

describe('KV cache out of GPU memory [gpu]', () => {
  it('a step that grows the cache past what the GPU can allocate fails with GPU_OUT_OF_MEMORY, keeps the chat and lowers the context to the cache it got', async ({ skip }) => {
    const ctx = await testGpu();
    if (!(await refusesLargestBinding(ctx))) {
      skip('this GPU allocates a 1 GiB buffer, so it cannot be made to run out of memory here (SwiftShader cannot)');
    }
    // 32 KV heads of 16 at f32: 2 KiB per position and layer, so the whole context (524,288
    // positions) is one 1 GiB buffer per K and V, which the device refuses; 262,144 (512 MiB
    // each) is the largest cache it gets.
    const dir = join(root, 'kv-oom');
    await generateTinyModel(dir, { layout: 'gqa', layers: 2, hidden: 512, heads: 32, kvHeads: 32, intermediate: 64, vocab: 1000, maxPositions: 2 ** 19, seed: 6 });
    const prompt = promptIds(12, 3, 1000);
    const ref = await runReference(dir, { inputIds: prompt, steps: 3 });
    const files = nodeModelFiles(dir);
    const { runtime } = await loadModelFiles(ctx, files, { precision: 'f32' });
    const greedy = { ...DEFAULT_SAMPLING, temperature: 0, repetitionPenalty: 1 };
    try {
      expect(runtime.contextLimit).toBe(2 ** 19);
      expect(runtime.kvCapacity).toBe(512);
      expect(maxAbsDiff(await runtime.logits(prompt), ref.logits[0])).toBeLessThanOrEqual(1e-3);

      // A prompt of 300,000 more tokens: the cache doubles from 512 to 262,144, then fails at
      // 524,288 before any of the prompt runs.
      const t0 = performance.now();
      const long = new Array<number>(300_000).fill(7);
      await expect(runtime.logits(long)).rejects.toMatchObject({ code: 'GPU_OUT_OF_MEMORY', message: expect.stringContaining('now 262144 tokens') });
      console.log(`[node/webgpu] kv out of memory: grew 512 → 262144 positions and failed at 524288 in ${(performance.now() - t0).toFixed(0)} ms`);
      expect(runtime.contextLimit).toBe(2 ** 18);
      expect(runtime.kvCapacity).toBe(2 ** 18);
      expect(runtime.gpuBytes().kvCache).toBe(2 ** 18 * runtime.kvBytesPerPosition);
      expect(runtime.cachedIds).toEqual(prompt);

      // The chat goes on from its cache, copied nine times over on the way up, and once more on
      // the way down: 13 positions need 512, a 512th of what the cache holds, so it shrinks.
      expect(maxAbsDiff(await runtime.logits([ref.tokens[0]]), ref.logits[1])).toBeLessThanOrEqual(1e-3);
      expect(runtime.kvCapacity).toBe(512);
      expect(await runtime.step([ref.tokens[1]], greedy, 2)).toBe(ref.tokens[2]);

      // Past the new limit is a context overflow, not another try at the memory.
      await expect(runtime.logits(long.slice(0, 2 ** 18))).rejects.toMatchObject({ code: 'CONTEXT_OVERFLOW', message: expect.stringContaining('262144-token context') });
      expect(runtime.kvCapacity).toBe(512);
    } finally {
      runtime.destroy();
      await files.close();
    }
  }, 300_000);
});
