import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onnx } from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OrtPhi3Session, runReference } from '../reference/ort-reference';
import { generateTinyModel } from './generate';
import { resolveOptions, type TinyModelOptions } from './options';

// Small shapes so that every layout × dtype × context runs in well under a second on ORT's CPU.
const SMALL: Partial<TinyModelOptions> = { layers: 2, hidden: 64, heads: 4, intermediate: 96, vocab: 512, seed: 3 };
// 128k variants switch caches after 16 positions, so a short conversation crosses the switch.
const LONG: Partial<TinyModelOptions> = { context: '128k', maxPositions: 256, originalMaxPositions: 16 };
const PROMPT = [1, 32 % 512, 101, 7, 250, 77, 499];
const STEPS = 6;
const TURN2 = [11, 12, 13, 300, 4];

interface Case {
  label: string;
  options: Partial<TinyModelOptions>;
}

const cases: Case[] = [];
for (const layout of ['web2024', 'gqa', 'gqa-packed'] as const)
  for (const dtype of ['q4', 'q4f16'] as const)
    for (const context of ['4k', '128k'] as const)
      cases.push({ label: `${layout} ${dtype} ${context}`, options: { ...SMALL, layout, dtype, ...(context === '128k' ? LONG : {}) } });
cases.push({ label: 'gqa q4 kv_heads 1 < heads 4', options: { ...SMALL, layout: 'gqa', kvHeads: 1 } });
cases.push({ label: 'gqa-packed q4f16 kv_heads 2 < heads 4', options: { ...SMALL, layout: 'gqa-packed', dtype: 'q4f16', kvHeads: 2 } });
cases.push({ label: 'web2024 q4 block 128 + zero points (K padded)', options: { ...SMALL, layout: 'web2024', blockSize: 128, zeroPoints: true } });
cases.push({ label: 'gqa q4 with a 290 kB inline budget (later layers external)', options: { ...SMALL, layout: 'gqa', maxInlineBytes: 290_000 } });
cases.push({ label: 'gqa q4f16 block 16 + zero points, accuracy_level 4', options: { ...SMALL, layout: 'gqa', dtype: 'q4f16', blockSize: 16, zeroPoints: true, accuracyLevel: 4 } });

let root = '';
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'phi3-tiny-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function opCounts(graph: onnx.IGraphProto): Map<string, number> {
  const counts = new Map<string, number>();
  for (const n of graph.node ?? []) counts.set(n.opType ?? '', (counts.get(n.opType ?? '') ?? 0) + 1);
  return counts;
}

function attr(node: onnx.INodeProto, name: string): onnx.IAttributeProto | undefined {
  return node.attribute?.find((a) => a.name === name);
}

const num = (v: number | Long | null | undefined): number => Number(v ?? 0);
type Long = { toNumber(): number };

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe.each(cases)('tiny model: $label', ({ label, options }) => {
  let dir = '';
  let model: onnx.ModelProto;
  let o: TinyModelOptions;
  let dataFile = '';

  beforeAll(async () => {
    dir = join(root, label.replace(/[^a-z0-9]+/gi, '-'));
    const generated = await generateTinyModel(dir, options);
    o = generated.options;
    dataFile = generated.dataPath;
    model = onnx.ModelProto.decode(await readFile(generated.onnxPath));
  });

  it('has the layout’s inputs, outputs and op types', () => {
    const g = model.graph as onnx.GraphProto;
    const inputs = g.input.map((v) => v.name);
    const kvNames = Array.from({ length: o.layers }, (_, i) => [`past_key_values.${i}.key`, `past_key_values.${i}.value`]).flat();
    expect(inputs).toEqual(['input_ids', 'attention_mask', ...(o.layout === 'gqa-packed' ? [] : ['position_ids']), ...kvNames]);
    expect(g.output.map((v) => v.name)).toEqual(['logits', ...kvNames.map((n) => n.replace('past_key_values', 'present'))]);
    const logitsType = g.output[0].type?.tensorType;
    expect(logitsType?.elemType).toBe(1);
    const pastType = g.input.find((v) => v.name === 'past_key_values.0.key')?.type?.tensorType;
    expect(pastType?.elemType).toBe(o.dtype === 'q4f16' ? 10 : 1);
    expect(pastType?.shape?.dim?.map((d) => d.dimParam || num(d.dimValue))).toEqual(['batch_size', o.kvHeads, 'past_sequence_length', o.hidden / o.heads]);

    const ops = opCounts(g);
    const L = o.layers;
    expect(ops.get('Gather')).toBeGreaterThanOrEqual(2); // embedding + mask shape
    expect(ops.get('SimplifiedLayerNormalization')).toBe(1);
    expect(ops.get('SkipSimplifiedLayerNormalization')).toBe(2 * L);
    expect(ops.get('Sigmoid')).toBe(L);
    expect(ops.get('MatMulNBits')).toBe((o.layout === 'gqa-packed' ? 4 : 7) * L + 1);
    expect(ops.get('MultiHeadAttention') ?? 0).toBe(o.layout === 'web2024' ? L : 0);
    expect(ops.get('GroupQueryAttention') ?? 0).toBe(o.layout === 'web2024' ? 0 : L);
    expect(ops.get('RotaryEmbedding') ?? 0).toBe(o.layout === 'gqa-packed' ? 0 : 2 * L);
    expect(ops.get('Slice') ?? 0).toBe(o.layout === 'gqa-packed' ? 2 * L : 0);
    expect(ops.get('If') ?? 0).toBe(o.context === '128k' ? 1 : 0);
    if (o.layout === 'web2024') {
      expect(ops.get('Range')).toBe(2); // key and query positions of the causal mask
      for (const op of ['LessOrEqual', 'And', 'Where']) expect(ops.get(op)).toBe(1);
    }
    else expect(ops.get('ReduceSum')).toBe(1);
    const last = g.node[g.node.length - 1];
    expect(last.output).toEqual(['logits']);
    expect(last.opType).toBe(o.dtype === 'q4f16' ? 'Cast' : 'MatMulNBits');

    for (const n of g.node) {
      if (n.domain === 'com.microsoft') expect(['MatMulNBits', 'SkipSimplifiedLayerNormalization', 'RotaryEmbedding', 'MultiHeadAttention', 'GroupQueryAttention']).toContain(n.opType);
      if (n.opType === 'MatMulNBits') {
        expect(num(attr(n, 'bits')?.i)).toBe(4);
        expect(num(attr(n, 'block_size')?.i)).toBe(o.blockSize);
        expect(num(attr(n, 'accuracy_level')?.i)).toBe(o.accuracyLevel);
        expect(n.input?.length).toBe(o.zeroPoints ? 4 : 3);
      }
      if (n.opType === 'GroupQueryAttention') {
        expect(num(attr(n, 'kv_num_heads')?.i)).toBe(o.kvHeads);
        expect(num(attr(n, 'do_rotary')?.i)).toBe(o.layout === 'gqa-packed' ? 1 : 0);
      }
    }
  });

  it('keeps the embedding, lm_head and weights past the inline budget external, with consistent shapes', async () => {
    const g = model.graph as onnx.GraphProto;
    const dataSize = (await stat(dataFile)).size;
    const location = `model_${o.dtype}.onnx_data`;
    let externalEnd = 0;
    // Expected placement: caches and norms inline; projections inline until the budget is spent.
    const rawLength = (t: onnx.ITensorProto): number => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL ? Number(t.externalData?.find((e) => e.key === 'length')?.value) : (t.rawData?.length ?? 0);
    const alwaysExternal = (t: onnx.ITensorProto): boolean => t.name === 'model.embed_tokens.weight' || !!t.name?.startsWith('lm_head.');
    const isProjection = (t: onnx.ITensorProto): boolean => !!t.name?.includes('.MatMul.') && !alwaysExternal(t);
    let inlineBytes = g.initializer.filter((t) => !alwaysExternal(t) && !isProjection(t)).reduce((sum, t) => sum + rawLength(t), 0);
    let spilled = false;
    let spilledCount = 0;
    for (const t of g.initializer) {
      let isExternal = alwaysExternal(t);
      if (isProjection(t)) {
        spilled ||= inlineBytes + rawLength(t) > o.maxInlineBytes;
        if (spilled) spilledCount++;
        else inlineBytes += rawLength(t);
        isExternal = spilled;
      }
      if (isExternal) {
        expect(t.dataLocation, t.name ?? '').toBe(onnx.TensorProto.DataLocation.EXTERNAL);
        const kv = Object.fromEntries((t.externalData ?? []).map((e) => [e.key, e.value]));
        expect(kv.location).toBe(location);
        externalEnd = Math.max(externalEnd, Number(kv.offset) + Number(kv.length));
      } else {
        expect(t.rawData?.length, t.name ?? '').toBeGreaterThan(0);
      }
    }
    expect(inlineBytes).toBeLessThanOrEqual(o.maxInlineBytes);
    if (o.maxInlineBytes < 1 << 30) {
      // The budget case: layer 0's projections inline, the last layer's down_proj external.
      expect(spilledCount).toBeGreaterThan(0);
      expect(g.initializer.find((t) => t.name === 'model.layers.0.attn.q_proj.MatMul.weight_Q4')?.rawData?.length).toBeGreaterThan(0);
      expect(g.initializer.find((t) => t.name === `model.layers.${o.layers - 1}.mlp.down_proj.MatMul.weight_Q4`)?.dataLocation).toBe(onnx.TensorProto.DataLocation.EXTERNAL);
    } else expect(spilledCount).toBe(0);
    expect(externalEnd).toBe(dataSize);
    const embed = g.initializer.find((t) => t.name === 'model.embed_tokens.weight');
    expect(embed?.dims?.map(num)).toEqual([o.vocab, o.hidden]);
    expect(embed?.dataType).toBe(o.dtype === 'q4f16' ? 10 : 1);
    const q4 = g.initializer.find((t) => t.name === 'lm_head.MatMul.weight_Q4');
    expect(q4?.dims?.map(num)).toEqual([o.vocab, Math.ceil(o.hidden / o.blockSize), o.blockSize / 2]);
    const scales = g.initializer.find((t) => t.name === 'lm_head.MatMul.weight_scales');
    expect(scales?.dataType).toBe(o.dtype === 'q4f16' ? 10 : 1);
  });

  it('runs in onnxruntime-node: prefill, greedy decode and a second turn on the KV cache', async () => {
    const run = await runReference(dir, { inputIds: PROMPT, steps: STEPS, chunks: [TURN2] });
    expect(run.tokens).toHaveLength(2 * STEPS);
    expect(run.vocab).toBe(o.vocab);
    expect(run.prefillLogits[0].length).toBe(PROMPT.length * o.vocab);
    for (const row of [...run.logits, ...run.prefillLogits]) expect(row.every(Number.isFinite)).toBe(true);
    const first = run.logits[0];
    const mean = first.reduce((s, x) => s + x, 0) / first.length;
    const std = Math.sqrt(first.reduce((s, x) => s + (x - mean) ** 2, 0) / first.length);
    expect(std).toBeGreaterThan(1);
    expect(new Set(run.tokens).size).toBeGreaterThanOrEqual(4);
    for (const t of run.tokens) expect(t).toBeLessThan(o.vocab);

    // The same conversation prefilled in one run: equal on 4k; on 128k the KV cache of the first
    // turn was rotated with the short factors, the one-shot prefill with the long ones (unless the
    // second turn runs the whole sequence again: rerunAcross).
    const all = [...PROMPT, ...run.tokens.slice(0, STEPS), ...TURN2];
    const oneShot = await runReference(dir, { inputIds: all, steps: 1 });
    const diff = maxAbsDiff(run.logits[STEPS], oneShot.logits[0]);
    console.log(`${label}: second-turn logits vs one-shot prefill max |Δ| = ${diff.toExponential(2)}`);
    if (o.context === '4k') expect(diff).toBeLessThan(o.dtype === 'q4f16' ? 0.06 : 1e-4);
    else {
      expect(PROMPT.length + STEPS).toBeLessThan(o.originalMaxPositions);
      expect(all.length).toBeGreaterThan(o.originalMaxPositions);
      expect(diff).toBeGreaterThan(0.1);
      // Run again where it crosses (what onnxruntime-genai and transformers do), it is the one-shot prefill.
      const rerun = await runReference(dir, { inputIds: PROMPT, steps: STEPS, chunks: [TURN2], rerunAcross: o.originalMaxPositions });
      expect(rerun.tokens.slice(0, STEPS)).toEqual(run.tokens.slice(0, STEPS));
      expect(maxAbsDiff(rerun.logits[STEPS], oneShot.logits[0])).toBeLessThan(o.dtype === 'q4f16' ? 0.06 : 1e-4);
    }
  });
});

describe('sliding window (GroupQueryAttention local_window_size)', () => {
  it('onnxruntime lets a query attend to its last W keys, itself included: up to W tokens the window changes nothing', async () => {
    const base: Partial<TinyModelOptions> = { layout: 'gqa-packed', layers: 1, hidden: 64, heads: 4, intermediate: 64, vocab: 300, seed: 3 };
    await generateTinyModel(join(root, 'window-none'), base);
    const { options } = await generateTinyModel(join(root, 'window-8'), { ...base, slidingWindow: 8 });
    const config = JSON.parse(await readFile(join(root, 'window-8', 'config.json'), 'utf8')) as { sliding_window: number };
    expect([options.slidingWindow, config.sliding_window]).toEqual([8, 8]);
    const plain = await OrtPhi3Session.open(join(root, 'window-none'));
    const windowed = await OrtPhi3Session.open(join(root, 'window-8'));
    try {
      const ids = Array.from({ length: 12 }, (_, i) => 3 + ((i * 37) % 290));
      const a = await plain.forward(ids);
      const b = await windowed.forward(ids);
      // Row r is the query at position r: it sees r + 1 keys, all of them while r + 1 ≤ 8.
      const rows = ids.map((_, r) => maxAbsDiff(a.logits.subarray(r * a.vocab, (r + 1) * a.vocab), b.logits.subarray(r * b.vocab, (r + 1) * b.vocab)));
      expect(rows.map((d) => d > 1e-5)).toEqual(ids.map((_, r) => r + 1 > 8));
    } finally {
      await plain.release();
      await windowed.release();
    }
  });

  it('is refused for MultiHeadAttention, which has none', () => {
    expect(() => resolveOptions({ layout: 'web2024', slidingWindow: 8 })).toThrow(/--sliding-window needs a GroupQueryAttention layout/);
    expect(() => resolveOptions({ layout: 'gqa', windowedCache: true })).toThrow(/windowedCache needs a sliding window/);
  });
});

describe('LongRoPE caches', () => {
  it('hold cos/sin of t / (factor · θ^(2i/D)) times the attention factor, in an If on length > original', async () => {
    const dir = join(root, 'longrope');
    const { onnxPath, options: o } = await generateTinyModel(dir, { ...SMALL, layout: 'gqa', ...LONG });
    const g = onnx.ModelProto.decode(await readFile(onnxPath)).graph as onnx.GraphProto;
    const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as { rope_scaling: { short_factor: number[]; long_factor: number[]; type: string }; original_max_position_embeddings: number; max_position_embeddings: number };
    expect(config.rope_scaling.type).toBe('longrope');
    const d = o.hidden / o.heads;
    expect(config.rope_scaling.short_factor).toHaveLength(d / 2);
    expect(config.rope_scaling.long_factor).not.toEqual(config.rope_scaling.short_factor);
    const ifNode = g.node.find((n) => n.opType === 'If');
    const greater = g.node.find((n) => n.output?.[0] === ifNode?.input?.[0]);
    expect(greater?.opType).toBe('Greater');
    const thresholdNode = g.node.find((n) => n.output?.[0] === greater?.input?.[1]);
    expect(thresholdNode?.opType).toBe('Constant');
    const threshold = attr(thresholdNode!, 'value')?.t;
    expect(threshold?.dims ?? []).toEqual([]);
    expect(Number(new DataView(Uint8Array.from(threshold?.rawData ?? []).buffer).getBigInt64(0, true))).toBe(16);
    const scale = Math.sqrt(1 + Math.log(256 / 16) / Math.log(16));
    for (const [branch, rows, factors] of [['then_branch', 256, config.rope_scaling.long_factor], ['else_branch', 16, config.rope_scaling.short_factor]] as const) {
      const sub = attr(ifNode!, branch)?.g as onnx.GraphProto;
      const consts = sub.node.map((n) => attr(n, 'value')?.t as onnx.TensorProto);
      expect(consts.map((t) => t.dims.map(num))).toEqual([[rows, d / 2], [rows, d / 2]]);
      const [cos, sin] = consts.map((t) => new Float32Array(Uint8Array.from(t.rawData).buffer));
      let worst = 0;
      for (const t of [0, 1, rows - 1]) {
        for (let i = 0; i < d / 2; i++) {
          const angle = t / (factors[i] * Math.pow(10000, (2 * i) / d));
          worst = Math.max(worst, Math.abs(cos[t * (d / 2) + i] - Math.cos(angle) * scale), Math.abs(sin[t * (d / 2) + i] - Math.sin(angle) * scale));
        }
      }
      expect(worst).toBeLessThan(1e-6);
    }
  });
});

describe('determinism', () => {
  async function filesOf(dir: string): Promise<Map<string, Buffer>> {
    const out = new Map<string, Buffer>();
    for (const f of await readdir(dir, { recursive: true })) {
      const p = join(dir, f);
      if ((await stat(p)).isFile()) out.set(f, await readFile(p));
    }
    return out;
  }

  it('gives byte-identical directories for one seed and different weights for another', async () => {
    const opts = { ...SMALL, layout: 'gqa-packed', dtype: 'q4f16', ...LONG } as const;
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((n) => join(root, `det-${n}`)));
    await generateTinyModel(a, opts);
    await generateTinyModel(b, opts);
    await generateTinyModel(c, { ...opts, seed: 4 });
    const fa = await filesOf(a);
    const fb = await filesOf(b);
    const fc = await filesOf(c);
    expect([...fa.keys()].sort()).toEqual([...fb.keys()].sort());
    expect(fa.size).toBeGreaterThanOrEqual(9);
    for (const [name, bytes] of fa) expect(bytes.equals(fb.get(name)!), name).toBe(true);
    expect(fa.get('onnx/model_q4f16.onnx')!.equals(fc.get('onnx/model_q4f16.onnx')!)).toBe(false);
    expect(fa.get('onnx/model_q4f16.onnx_data')!.equals(fc.get('onnx/model_q4f16.onnx_data')!)).toBe(false);
  });
});

describe('repeatLayerWeights (benchmark models)', () => {
  it('gives every layer layer 0’s projection bytes, in its own initializers, and leaves layer 0 as without it', async () => {
    const opts = { ...SMALL, layers: 3, layout: 'gqa', maxInlineBytes: 0 } as const;
    const plain = await generateTinyModel(join(root, 'repeat-plain'), opts);
    const repeated = await generateTinyModel(join(root, 'repeat-on'), { ...opts, repeatLayerWeights: true });
    const projections = async (m: typeof plain): Promise<Map<string, Buffer>> => {
      const g = onnx.ModelProto.decode(await readFile(m.onnxPath)).graph as onnx.GraphProto;
      const data = await readFile(m.dataPath);
      const out = new Map<string, Buffer>();
      for (const t of g.initializer) {
        if (!t.name?.includes('.MatMul.') || !t.name.startsWith('model.layers.')) continue;
        const field = (k: string) => Number(t.externalData?.find((e) => e.key === k)?.value);
        out.set(t.name, data.subarray(field('offset'), field('offset') + field('length')));
      }
      return out;
    };
    const p = await projections(plain);
    const r = await projections(repeated);
    expect([...r.keys()].sort()).toEqual([...p.keys()].sort());
    expect(r.size).toBe(3 * 7 * 2); // q, k, v, o, gate, up, down: B and scales, in 3 layers
    for (const [name, bytes] of r) {
      const layer0 = name.replace(/^model\.layers\.\d+\./, 'model.layers.0.');
      expect(bytes.equals(p.get(layer0)!), name).toBe(true);
      if (!name.startsWith('model.layers.0.')) expect(p.get(name)!.equals(p.get(layer0)!), `${name} differs without the option`).toBe(false);
    }
  });
});
