/**
 * Builds the ONNX graph of a random Phi-3 in one of Microsoft's three layouts (see
 * docs/tiny-model.md and DESIGN.md §3), with lazily generated weights.
 *
 *   input_ids -> Gather(embed) -> per layer: RMSNorm -> q,k,v (or packed qkv) MatMulNBits
 *   -> rotary -> attention (MultiHeadAttention + additive mask | GroupQueryAttention) -> o_proj
 *   -> Skip-RMSNorm -> gate, up (or fused gate_up) -> SiLU(gate)·up -> down -> next layer
 *   -> final Skip-RMSNorm -> lm_head MatMulNBits [-> Cast to fp32 for q4f16] -> logits
 *
 * Weights come from per-tensor seeded generators (random.ts) so each one is produced only while
 * it is written. The embedding and lm_head go to the external `_data` file, everything else is
 * inline, as in the published files. Rule: only use ops (and op forms) that onnxruntime-node's
 * CPU EP runs; the tests load every layout × dtype to keep it that way.
 */

import { DataType, type AttrValue, type GraphSpec, type LazyTensor, type ModelSpec, type NodeSpec, type ValueInfoSpec } from './proto';
import { quantizeMatrix, type QuantizedMatrix } from './quantize';
import { floatBytes, Rng } from './random';
import { headDimOf, type TinyModelOptions } from './options';

const MS = 'com.microsoft';

/** LongRoPE factors (D/2 each): deterministic from the seed, distinct, short ≈ 1..1.5, long ≈ 1..40. */
export function ropeFactors(o: TinyModelOptions): { short: number[]; long: number[] } {
  const half = headDimOf(o) / 2;
  const rng = new Rng(o.seed, 'rope_scaling');
  const short: number[] = [];
  const long: number[] = [];
  for (let i = 0; i < half; i++) {
    const x = half === 1 ? 0 : i / (half - 1);
    short.push(Number((1 + 0.5 * x * x + 0.01 * rng.next()).toFixed(6)));
    long.push(Number((1 + 39 * x * x * x + 0.1 * rng.next()).toFixed(6)));
  }
  return { short, long };
}

/** sqrt(1 + ln(max/original)/ln(original)) for 128k, 1 otherwise. */
export function ropeScale(o: TinyModelOptions): number {
  if (o.context !== '128k') return 1;
  return Math.sqrt(1 + Math.log(o.maxPositions / o.originalMaxPositions) / Math.log(o.originalMaxPositions));
}

/** cos/sin caches [rows, D/2]: angle(t, i) = t / (factor_i · θ^(2i/D)), both times `scale`. */
export function rotaryCaches(o: TinyModelOptions, rows: number, factors: number[] | null, scale: number): { cos: Float32Array; sin: Float32Array } {
  const d = headDimOf(o);
  const half = d / 2;
  const cos = new Float32Array(rows * half);
  const sin = new Float32Array(rows * half);
  for (let i = 0; i < half; i++) {
    const invFreq = 1 / ((factors ? factors[i] : 1) * Math.pow(o.ropeTheta, (2 * i) / d));
    for (let t = 0; t < rows; t++) {
      const a = t * invFreq;
      cos[t * half + i] = Math.cos(a) * scale;
      sin[t * half + i] = Math.sin(a) * scale;
    }
  }
  return { cos, sin };
}

/** GroupQueryAttention's `local_window_size`, where the options give a sliding window (and `sliding_window_cache`, with windowedCache). */
const windowAttr = (o: TinyModelOptions): Record<string, AttrValue> =>
  o.slidingWindow >= 0 ? { local_window_size: { int: o.slidingWindow }, ...(o.windowedCache ? { sliding_window_cache: { int: 1 } } : {}) } : {};

interface Ctx {
  o: TinyModelOptions;
  half: boolean;
  /** Activation dtype. */
  act: number;
  nodes: NodeSpec[];
  inits: LazyTensor[];
  /** With `repeatLayerWeights`: layer 0's quantised matrices by weight stream, reused by later layers. */
  shared: Map<string, QuantizedMatrix>;
}

function eagerTensor(name: string, dataType: number, dims: number[], bytes: Uint8Array, external = false): LazyTensor {
  return { name, dataType, dims, byteLength: bytes.length, external, chunks: () => [bytes] };
}

function floatTensor(ctx: Ctx, name: string, dims: number[], values: Float32Array, external = false): LazyTensor {
  return eagerTensor(name, ctx.act, dims, floatBytes(values, ctx.half), external);
}

function i64(values: number[]): Uint8Array {
  return new Uint8Array(BigInt64Array.from(values.map((v) => BigInt(v))).buffer);
}

/**
 * A small constant as a Constant node (raw_data tensor attribute), created once per name, the way
 * onnxruntime-genai's builder writes them: output "/model/constants/TensorProto.INT64/0D/4096".
 */
function constant(ctx: Ctx, name: string, dataType: number, dims: number[], bytes: Uint8Array): string {
  if (!ctx.nodes.some((n) => n.outputs[0] === name)) {
    ctx.nodes.push({
      name: name.replace('/model/constants/', '/model/constant_nodes/'), opType: 'Constant', inputs: [], outputs: [name],
      attributes: { value: { tensor: eagerTensor(name.replace('/model/constants/', '/model/numpy_helper/'), dataType, dims, bytes) } },
    });
  }
  return name;
}
const int64Const = (ctx: Ctx, v: number[], scalar = false): string =>
  constant(ctx, `/model/constants/TensorProto.INT64/${scalar ? '0D' : '1D'}/${v.join(', ')}`, DataType.INT64, scalar ? [] : [v.length], i64(v));
const actConst = (ctx: Ctx, v: number): string =>
  constant(ctx, `/model/constants/TensorProto.${ctx.half ? 'FLOAT16' : 'FLOAT'}/0D/${v}`, ctx.act, [], floatBytes(Float32Array.of(v), ctx.half));

/** Adds a node; its outputs are named `${name}/output_${i}` unless given. */
function add(ctx: Ctx, name: string, opType: string, inputs: string[], opts: { domain?: string; attrs?: Record<string, AttrValue>; outputs?: string[]; nOut?: number } = {}): string[] {
  const outputs = opts.outputs ?? Array.from({ length: opts.nOut ?? 1 }, (_, i) => `${name}/output_${i}`);
  ctx.nodes.push({ name, opType, domain: opts.domain, inputs, outputs, attributes: opts.attrs });
  return outputs;
}

/** Random (N, K) weights, std 1/√K (times `gain`), quantised as B / scales / zero_points initializers. */
function matMulNBits(ctx: Ctx, name: string, weightPrefix: string, input: string, n: number, k: number, gain = 1, external = false, outName?: string): string {
  const o = ctx.o;
  let cached: QuantizedMatrix | null = null;
  // With repeatLayerWeights every layer draws layer 0's stream, and the quantised result is kept.
  const layerWeight = /^model\.layers\.\d+\./;
  const shared = o.repeatLayerWeights && layerWeight.test(weightPrefix);
  const stream = shared ? weightPrefix.replace(layerWeight, 'model.layers.0.') : weightPrefix;
  const get = (): QuantizedMatrix => {
    if (!cached) cached = ctx.shared.get(stream) ?? null;
    if (!cached) {
      const rng = new Rng(o.seed, stream);
      const std = gain / Math.sqrt(k);
      cached = quantizeMatrix(n, k, { blockSize: o.blockSize, zeroPoints: o.zeroPoints, halfScales: ctx.half }, (_r, row) => rng.fill(row, std));
      if (shared) ctx.shared.set(stream, cached);
    }
    return cached;
  };
  const nBlocks = Math.ceil(k / o.blockSize);
  const bName = `${weightPrefix}.MatMul.weight_Q4`;
  const sName = `${weightPrefix}.MatMul.weight_scales`;
  const zName = `${weightPrefix}.MatMul.weight_zp`;
  const last = o.zeroPoints ? zName : sName;
  const release = (t: string): void => {
    if (t === last) cached = null;
  };
  ctx.inits.push({
    name: bName, dataType: DataType.UINT8, dims: [n, nBlocks, o.blockSize / 2], byteLength: n * nBlocks * (o.blockSize / 2), external,
    chunks: () => [get().b],
  });
  ctx.inits.push({
    name: sName, dataType: ctx.act, dims: [n * nBlocks], byteLength: n * nBlocks * (ctx.half ? 2 : 4), external,
    chunks: function* () {
      yield floatBytes(get().scales, ctx.half);
      release(sName);
    },
  });
  const inputs = [input, bName, sName];
  if (o.zeroPoints) {
    const zpBytes = n * Math.ceil(nBlocks / 2);
    ctx.inits.push({
      name: zName, dataType: DataType.UINT8, dims: [zpBytes], byteLength: zpBytes, external,
      chunks: function* () {
        const zp = get().zeroPoints;
        if (!zp) throw new Error('zero points missing');
        yield zp;
        release(zName);
      },
    });
    inputs.push(zName);
  }
  const attrs: Record<string, AttrValue> = {
    K: { int: k }, N: { int: n }, bits: { int: 4 }, block_size: { int: o.blockSize }, accuracy_level: { int: o.accuracyLevel },
  };
  return add(ctx, name, 'MatMulNBits', inputs, { domain: MS, attrs, outputs: outName ? [outName] : undefined })[0];
}

function normWeight(ctx: Ctx, name: string): string {
  const v = new Rng(ctx.o.seed, name).fill(new Float32Array(ctx.o.hidden), 0.1, 1);
  ctx.inits.push(floatTensor(ctx, name, [ctx.o.hidden], v));
  return name;
}

/** The (vocab, hidden) embedding, std 1, generated and written 256 rows at a time. */
function embedding(ctx: Ctx): string {
  const { vocab, hidden, seed } = ctx.o;
  const name = 'model.embed_tokens.weight';
  ctx.inits.push({
    name, dataType: ctx.act, dims: [vocab, hidden], byteLength: vocab * hidden * (ctx.half ? 2 : 4), external: true,
    chunks: function* () {
      const rng = new Rng(seed, name);
      const rows = new Float32Array(256 * hidden);
      for (let r = 0; r < vocab; r += 256) {
        const n = Math.min(256, vocab - r);
        const part = rng.fill(rows.subarray(0, n * hidden), 1);
        yield floatBytes(part, ctx.half).slice();
      }
    },
  });
  return name;
}

function ropeCacheTensors(ctx: Ctx, suffix: string, rows: number, factors: number[] | null, scale: number): { cos: LazyTensor; sin: LazyTensor } {
  const half = headDimOf(ctx.o) / 2;
  const { cos, sin } = rotaryCaches(ctx.o, rows, factors, scale);
  return {
    cos: floatTensor(ctx, `cos_cache${suffix}`, [rows, half], cos),
    sin: floatTensor(ctx, `sin_cache${suffix}`, [rows, half], sin),
  };
}

/** cos/sin cache names: initializers for 4k; for 128k the LongRoPE `If` on total length > original. */
function rotaryCacheInputs(ctx: Ctx, totalLen: string): [string, string] {
  const o = ctx.o;
  if (o.context === '4k') {
    const { cos, sin } = ropeCacheTensors(ctx, '', o.maxPositions, null, 1);
    ctx.inits.push(cos, sin);
    return [cos.name, sin.name];
  }
  const { short, long } = ropeFactors(o);
  const scale = ropeScale(o);
  const branch = (suffix: string, rows: number, factors: number[]): GraphSpec => {
    const { cos, sin } = ropeCacheTensors(ctx, suffix, rows, factors, scale);
    const half = headDimOf(o) / 2;
    const outputs: ValueInfoSpec[] = [cos, sin].map((t) => ({ name: t.name, elemType: ctx.act, shape: [rows, half] }));
    const nodes: NodeSpec[] = [cos, sin].map((t) => ({
      name: `/model/rotemb_caches_subgraph/${t.name}/Constant`, opType: 'Constant', inputs: [], outputs: [t.name], attributes: { value: { tensor: t } },
    }));
    return { name: `rotemb_caches_graph${suffix}`, nodes, initializers: [], inputs: [], outputs };
  };
  const [cond] = add(ctx, '/model/rotemb_caches_subgraph/Greater', 'Greater', [totalLen, int64Const(ctx, [o.originalMaxPositions], true)]);
  return add(ctx, '/model/rotemb_caches_subgraph/If', 'If', [cond], {
    outputs: ['cos_cache', 'sin_cache'],
    attrs: {
      then_branch: { graph: branch('_large', o.maxPositions, long) },
      else_branch: { graph: branch('_small', o.originalMaxPositions, short) },
    },
  }) as [string, string];
}

/** Builds the whole model description for `o`. */
export function buildPhi3Graph(o: TinyModelOptions): ModelSpec {
  const half = o.dtype === 'q4f16';
  const ctx: Ctx = { o, half, act: half ? DataType.FLOAT16 : DataType.FLOAT, nodes: [], inits: [], shared: new Map() };
  const d = headDimOf(o);
  const qDim = o.heads * d;
  const kvDim = o.kvHeads * d;
  const gqa = o.layout !== 'web2024';
  const hasPositionIds = o.layout !== 'gqa-packed';

  const inputs: ValueInfoSpec[] = [
    { name: 'input_ids', elemType: DataType.INT64, shape: ['batch_size', 'sequence_length'] },
    { name: 'attention_mask', elemType: DataType.INT64, shape: ['batch_size', 'total_sequence_length'] },
  ];
  if (hasPositionIds) inputs.push({ name: 'position_ids', elemType: DataType.INT64, shape: ['batch_size', 'sequence_length'] });
  const outputs: ValueInfoSpec[] = [{ name: 'logits', elemType: DataType.FLOAT, shape: ['batch_size', 'sequence_length', o.vocab] }];
  for (let i = 0; i < o.layers; i++) {
    for (const kv of ['key', 'value']) {
      inputs.push({ name: `past_key_values.${i}.${kv}`, elemType: ctx.act, shape: ['batch_size', o.kvHeads, 'past_sequence_length', d] });
      outputs.push({ name: `present.${i}.${kv}`, elemType: ctx.act, shape: ['batch_size', o.kvHeads, 'total_sequence_length', d] });
    }
  }

  // Embedding first so that the external file starts with it, as in the published files.
  const [x0] = add(ctx, '/model/embed_tokens/Gather', 'Gather', [embedding(ctx), 'input_ids']);

  // Total length T (int64 scalar) from the attention mask's shape.
  const [maskShape] = add(ctx, '/model/attn_mask_reformat/Shape', 'Shape', ['attention_mask']);
  const [totalLen] = add(ctx, '/model/attn_mask_reformat/Gather', 'Gather', [maskShape, int64Const(ctx, [1], true)], { attrs: { axis: { int: 0 } } });

  let attnBias = '';
  let seqlensK = '';
  let totalLen32 = '';
  if (gqa) {
    // seqlens_k = ReduceSum(mask) - 1 as int32; total_sequence_length = T as an int32 scalar.
    const p = '/model/attn_mask_reformat/attn_mask_subgraph';
    const [sum] = add(ctx, `${p}/ReduceSum`, 'ReduceSum', ['attention_mask', int64Const(ctx, [1])], { attrs: { keepdims: { int: 0 } } });
    const [minus] = add(ctx, `${p}/Sub`, 'Sub', [sum, int64Const(ctx, [1], true)]);
    [seqlensK] = add(ctx, `${p}/Sub/Cast`, 'Cast', [minus], { attrs: { to: { int: DataType.INT32 } } });
    [totalLen32] = add(ctx, `${p}/Gather/Cast`, 'Cast', [totalLen], { attrs: { to: { int: DataType.INT32 } } });
  } else {
    // Additive mask [B, 1, S, T]: 0 where key j ≤ query position (P + i) and mask[j] = 1, else lowest.
    const p = '/model/attn_mask_reformat/mha_mask';
    const [idsShape] = add(ctx, `${p}/input_ids/Shape`, 'Shape', ['input_ids']);
    const [seqLen] = add(ctx, `${p}/input_ids/Gather`, 'Gather', [idsShape, int64Const(ctx, [1], true)], { attrs: { axis: { int: 0 } } });
    const [pastLen] = add(ctx, `${p}/Sub`, 'Sub', [totalLen, seqLen]);
    const [keyPos] = add(ctx, `${p}/Range_keys`, 'Range', [int64Const(ctx, [0], true), totalLen, int64Const(ctx, [1], true)]);
    const [queryPos] = add(ctx, `${p}/Range_queries`, 'Range', [pastLen, totalLen, int64Const(ctx, [1], true)]);
    const [queryCol] = add(ctx, `${p}/Unsqueeze_queries`, 'Unsqueeze', [queryPos, int64Const(ctx, [1])]);
    const [causal] = add(ctx, `${p}/LessOrEqual`, 'LessOrEqual', [keyPos, queryCol]);
    const [padBool] = add(ctx, `${p}/Cast`, 'Cast', ['attention_mask'], { attrs: { to: { int: DataType.BOOL } } });
    const [pad4] = add(ctx, `${p}/Unsqueeze_mask`, 'Unsqueeze', [padBool, int64Const(ctx, [1, 2])]);
    const [allowed] = add(ctx, `${p}/And`, 'And', [causal, pad4]);
    const lowest = half ? -65504 : -3.4028234663852886e38;
    [attnBias] = add(ctx, `${p}/Where`, 'Where', [allowed, actConst(ctx, 0), actConst(ctx, lowest)]);
  }

  const [cosCache, sinCache] = rotaryCacheInputs(ctx, totalLen);

  let residual = x0;
  let normed = add(ctx, '/model/layers.0/input_layernorm/LayerNorm', 'SimplifiedLayerNormalization', [x0, normWeight(ctx, 'model.layers.0.input_layernorm.weight')], {
    attrs: { axis: { int: -1 }, epsilon: { float: o.rmsNormEps }, stash_type: { int: 1 } },
  })[0];
  const skipNorm = (name: string, x: string, skip: string, weight: string): [string, string] => {
    const outs = add(ctx, name, 'SkipSimplifiedLayerNormalization', [x, skip, normWeight(ctx, weight)], {
      domain: MS, attrs: { epsilon: { float: o.rmsNormEps } }, nOut: 4,
    });
    const last = ctx.nodes[ctx.nodes.length - 1];
    last.outputs = [outs[0], '', '', outs[3]];
    return [outs[0], outs[3]];
  };

  for (let i = 0; i < o.layers; i++) {
    const L = `/model/layers.${i}`;
    const W = `model.layers.${i}`;
    const pastK = `past_key_values.${i}.key`;
    const pastV = `past_key_values.${i}.value`;
    const presentK = `present.${i}.key`;
    const presentV = `present.${i}.value`;
    let attnOut: string;

    if (o.layout === 'gqa-packed') {
      const qkv = matMulNBits(ctx, `${L}/attn/qkv_proj/MatMulNBits`, `${W}.attn.qkv_proj`, normed, qDim + 2 * kvDim, o.hidden);
      [attnOut] = add(ctx, `${L}/attn/GroupQueryAttention`, 'GroupQueryAttention', [qkv, '', '', pastK, pastV, seqlensK, totalLen32, cosCache, sinCache], {
        domain: MS, outputs: [`${L}/attn/GroupQueryAttention/output_0`, presentK, presentV],
        attrs: { num_heads: { int: o.heads }, kv_num_heads: { int: o.kvHeads }, do_rotary: { int: 1 }, rotary_interleaved: { int: 0 }, ...windowAttr(o) },
      });
    } else {
      const q = matMulNBits(ctx, `${L}/attn/q_proj/MatMulNBits`, `${W}.attn.q_proj`, normed, qDim, o.hidden);
      const k = matMulNBits(ctx, `${L}/attn/k_proj/MatMulNBits`, `${W}.attn.k_proj`, normed, kvDim, o.hidden);
      const v = matMulNBits(ctx, `${L}/attn/v_proj/MatMulNBits`, `${W}.attn.v_proj`, normed, kvDim, o.hidden);
      const rope = (name: string, x: string): string =>
        add(ctx, name, 'RotaryEmbedding', [x, 'position_ids', cosCache, sinCache], { domain: MS, attrs: { interleaved: { int: 0 } } })[0];
      const qRot = rope(`${L}/attn/q_rotary/RotaryEmbedding`, q);
      const kRot = rope(`${L}/attn/k_rotary/RotaryEmbedding`, k);
      if (gqa) {
        [attnOut] = add(ctx, `${L}/attn/GroupQueryAttention`, 'GroupQueryAttention', [qRot, kRot, v, pastK, pastV, seqlensK, totalLen32], {
          domain: MS, outputs: [`${L}/attn/GroupQueryAttention/output_0`, presentK, presentV],
          attrs: { num_heads: { int: o.heads }, kv_num_heads: { int: o.kvHeads }, ...windowAttr(o) },
        });
      } else {
        [attnOut] = add(ctx, `${L}/attn/MultiHeadAttention`, 'MultiHeadAttention', [qRot, kRot, v, '', '', attnBias, pastK, pastV], {
          domain: MS, outputs: [`${L}/attn/MultiHeadAttention/output_0`, presentK, presentV],
          attrs: { num_heads: { int: o.heads } },
        });
      }
    }
    const o_ = matMulNBits(ctx, `${L}/attn/o_proj/MatMulNBits`, `${W}.attn.o_proj`, attnOut, o.hidden, qDim);
    const [postNorm, resid2] = skipNorm(`${L}/post_attention_layernorm/SkipLayerNorm`, o_, residual, `${W}.post_attention_layernorm.weight`);

    let gate: string;
    let up: string;
    if (o.layout === 'gqa-packed') {
      const gateUp = matMulNBits(ctx, `${L}/mlp/gate_up_proj/MatMulNBits`, `${W}.mlp.gate_up_proj`, postNorm, 2 * o.intermediate, o.hidden);
      const I = o.intermediate;
      [gate] = add(ctx, `${L}/mlp/gate/Slice`, 'Slice', [gateUp, int64Const(ctx, [0]), int64Const(ctx, [I]), int64Const(ctx, [-1])]);
      [up] = add(ctx, `${L}/mlp/up/Slice`, 'Slice', [gateUp, int64Const(ctx, [I]), int64Const(ctx, [2 * I]), int64Const(ctx, [-1])]);
    } else {
      gate = matMulNBits(ctx, `${L}/mlp/gate_proj/MatMulNBits`, `${W}.mlp.gate_proj`, postNorm, o.intermediate, o.hidden);
      up = matMulNBits(ctx, `${L}/mlp/up_proj/MatMulNBits`, `${W}.mlp.up_proj`, postNorm, o.intermediate, o.hidden);
    }
    const [sig] = add(ctx, `${L}/mlp/act_fn/Sigmoid`, 'Sigmoid', [gate]);
    const [silu] = add(ctx, `${L}/mlp/act_fn/Mul`, 'Mul', [gate, sig]);
    const [h] = add(ctx, `${L}/mlp/Mul`, 'Mul', [silu, up]);
    const down = matMulNBits(ctx, `${L}/mlp/down_proj/MatMulNBits`, `${W}.mlp.down_proj`, h, o.hidden, o.intermediate);

    const isLast = i === o.layers - 1;
    const nextName = isLast ? `/model/layers.${o.layers}/final_norm_layernorm/SkipLayerNorm` : `/model/layers.${i + 1}/input_layernorm/SkipLayerNorm`;
    const nextWeight = isLast ? `model.layers.${o.layers}.final_norm_layernorm.weight` : `model.layers.${i + 1}.input_layernorm.weight`;
    [normed, residual] = skipNorm(nextName, down, resid2, nextWeight);
  }

  // lm_head: std 4/√H so logits have a spread of a few units and greedy decoding varies.
  if (half) {
    const lm = matMulNBits(ctx, '/lm_head/MatMulNBits', 'lm_head', normed, o.vocab, o.hidden, 4, true);
    add(ctx, '/lm_head/Cast', 'Cast', [lm], { attrs: { to: { int: DataType.FLOAT } }, outputs: ['logits'] });
  } else {
    matMulNBits(ctx, '/lm_head/MatMulNBits', 'lm_head', normed, o.vocab, o.hidden, 4, true, 'logits');
  }

  // Protobuf caps a message at 2 GiB, so (as in the published files) inline weights stop at a
  // budget: caches and norms always stay inline, and layer projections past the budget go to the
  // _data file, in order (so a spilled layer's later projections are external too).
  const isProjection = (t: LazyTensor): boolean => t.name.includes('.MatMul.');
  let inline = ctx.inits.filter((t) => !t.external && !isProjection(t)).reduce((sum, t) => sum + t.byteLength, 0);
  let spilled = false;
  for (const t of ctx.inits) {
    if (t.external || !isProjection(t)) continue;
    spilled ||= inline + t.byteLength > o.maxInlineBytes;
    if (spilled) t.external = true;
    else inline += t.byteLength;
  }
  return {
    irVersion: 8,
    producerName: 'phi3-webgpu-chat tiny-model',
    opsets: [{ domain: '', version: 17 }, { domain: MS, version: 1 }],
    graph: { name: 'main_graph', nodes: ctx.nodes, initializers: ctx.inits, inputs, outputs },
  };
}
