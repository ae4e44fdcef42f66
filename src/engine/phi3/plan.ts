/**
 * Phi-3 model plan: which ONNX tensor is which Phi-3 weight, and the hyper-parameters, decided
 * from what the graph contains (op types and data flow), never from node or file names.
 *
 * Supported layouts (DESIGN.md §3):
 *   web2024     MultiHeadAttention + com.microsoft RotaryEmbedding + position_ids (2024 web build)
 *   gqa         GroupQueryAttention with separate RotaryEmbedding nodes
 *   gqa-packed  GroupQueryAttention with packed qkv and do_rotary=1 (onnxruntime-genai)
 * Any of them may carry Phi-3 128K's LongRoPE `If` that picks long or short cos/sin caches.
 * Rule: when something cannot be placed, throw MODEL_UNSUPPORTED_GRAPH naming the ops/weights;
 * never guess a tensor by its name.
 */
import { AppError } from '../errors';
import { locationByteLength, readTensorBytes, type SourceResolver } from '../onnx/tensor-data';
import { OnnxDataType, type OnnxGraph, type OnnxModel, type OnnxNode, type OnnxTensorInfo } from '../onnx/types';

export type Phi3Layout = 'web2024' | 'gqa' | 'gqa-packed';

export interface QuantWeight {
  K: number;
  N: number;
  bits: number;
  blockSize: number;
  accuracyLevel: number;
  packed: OnnxTensorInfo; // uint8 (N, nBlocks, blockSize/2)
  scales: OnnxTensorInfo; // f32|f16 (N * nBlocks)
  zeroPoints?: OnnxTensorInfo; // uint8 (N, ceil(nBlocks/2))
}

export interface LayerPlan {
  inputNorm: OnnxTensorInfo; // (hidden,)
  postAttentionNorm: OnnxTensorInfo; // (hidden,)
  attention: { kind: 'separate'; q: QuantWeight; k: QuantWeight; v: QuantWeight } | { kind: 'packed'; qkv: QuantWeight };
  o: QuantWeight;
  mlp: { kind: 'separate'; gate: QuantWeight; up: QuantWeight } | { kind: 'fused'; gateUp: QuantWeight };
  down: QuantWeight;
}

export interface RotaryCaches {
  cos: OnnxTensorInfo; // (maxPositions, rotaryDim/2)
  sin: OnnxTensorInfo;
}

export interface Phi3Config {
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  rotaryDim: number;
  intermediate: number;
  vocab: number;
  /** Largest position the rotary caches cover. */
  maxPositions: number;
  /**
   * GroupQueryAttention's `local_window_size` where it is below `maxPositions`: a query attends to
   * its last `attentionWindow` keys (itself included), as onnxruntime does; the attention kernels
   * slide the window (AttentionLayout.window), and the context stays the model's. onnxruntime-genai
   * writes config.json's sliding_window here: 2047 in Phi-3 Mini 4K built since April 2025 (builds
   * from 2024 left it out), 262144 in Phi-3 Mini 128K's, more than the model holds: no window.
   * Absent: none.
   */
  attentionWindow?: number;
  rmsNormEps: number;
  attentionScale: number;
}

export interface Phi3Plan {
  layout: Phi3Layout;
  config: Phi3Config;
  embedding: OnnxTensorInfo; // (vocab, hidden) f32|f16
  layers: LayerPlan[];
  finalNorm: OnnxTensorInfo; // (hidden,)
  lmHead: QuantWeight; // N = vocab
  rotary: {
    short: RotaryCaches;
    /** LongRoPE: used while totalLength > `switchAbove` (as the graph's `If` decides). */
    long?: RotaryCaches & { switchAbove: number };
  };
  /** Whether the model's activations are fp16 (q4f16 files); we still compute in f32 when needed. */
  activationDtype: 'f32' | 'f16';
}

const MS = 'com.microsoft';

class GraphIndex {
  readonly producer = new Map<string, OnnxNode>();
  readonly consumers = new Map<string, OnnxNode[]>();
  readonly tensors = new Map<string, OnnxTensorInfo>();

  constructor(readonly graph: OnnxGraph) {
    for (const t of graph.initializers) this.tensors.set(t.name, t);
    for (const node of graph.nodes) {
      for (const out of node.outputs) if (out) this.producer.set(out, node);
      for (const input of node.inputs) {
        if (!input) continue;
        const list = this.consumers.get(input) ?? [];
        list.push(node);
        this.consumers.set(input, list);
      }
      if (node.opType === 'Constant' && node.domain === '' && node.attributes.value?.type === 'tensor') {
        this.tensors.set(node.outputs[0], { ...node.attributes.value.value, name: node.outputs[0] });
      }
    }
  }

  uses(name: string): OnnxNode[] {
    return this.consumers.get(name) ?? [];
  }

  /** The tensor behind a value, following Identity/Cast-free chains of one node at most. */
  tensor(name: string, what: string): OnnxTensorInfo {
    const t = this.tensors.get(name);
    if (t) return t;
    const p = this.producer.get(name);
    if (p && p.opType === 'Identity') return this.tensor(p.inputs[0], what);
    throw new AppError('MODEL_MISSING_WEIGHT', `The ${what} ("${name}") is not an initializer or constant in the graph, so its weights cannot be loaded.`);
  }
}

function attrInt(node: OnnxNode, name: string, fallback?: number): number {
  const a = node.attributes[name];
  if (a?.type === 'int') return a.value;
  if (fallback !== undefined) return fallback;
  throw new AppError('MODEL_UNSUPPORTED_GRAPH', `${node.opType} node "${node.name}" lacks the integer attribute "${name}".`);
}

/**
 * The first GroupQueryAttention with `sliding_window_cache = 1`, which onnxruntime-genai's builder
 * writes beside a window for onnxruntime's CPU and CUDA providers: onnxruntime then wants cache
 * buffers sized to the window and evicts inside the node, so a graph with it cannot be fed the
 * growing cache the onnxruntime-web engine keeps (its WebGPU provider refuses the attribute
 * outright). The native engine keeps its own cache and reads only the attention math from the
 * graph, which the attribute does not change.
 */
export function windowedCacheNode(graph: OnnxGraph): OnnxNode | undefined {
  return graph.nodes.find((n) => isOp(n, 'GroupQueryAttention', MS) && attrInt(n, 'sliding_window_cache', 0) !== 0);
}

function attrFloat(node: OnnxNode, name: string, fallback: number): number {
  const a = node.attributes[name];
  return a?.type === 'float' ? a.value : fallback;
}

function isOp(node: OnnxNode, op: string, domain = ''): boolean {
  const d = node.domain === 'ai.onnx' ? '' : node.domain;
  return node.opType === op && d === domain;
}

function unsupported(msg: string): never {
  throw new AppError('MODEL_UNSUPPORTED_GRAPH', `${msg} This is not a Phi-3 layout the engine supports (web2024 MultiHeadAttention, GroupQueryAttention, packed GroupQueryAttention).`);
}

function quant(ix: GraphIndex, node: OnnxNode, what: string): QuantWeight {
  if (!isOp(node, 'MatMulNBits', MS)) unsupported(`Expected MatMulNBits for ${what}, found ${node.opType} ("${node.name}").`);
  const bits = attrInt(node, 'bits', 4);
  if (bits !== 4) throw new AppError('MODEL_UNSUPPORTED_GRAPH', `MatMulNBits "${node.name}" (${what}) uses ${bits}-bit weights; only 4-bit is supported.`);
  if (node.inputs[4] || node.inputs[5]) unsupported(`MatMulNBits "${node.name}" (${what}) has g_idx or bias inputs.`);
  return {
    K: attrInt(node, 'K'),
    N: attrInt(node, 'N'),
    bits,
    blockSize: attrInt(node, 'block_size'),
    accuracyLevel: attrInt(node, 'accuracy_level', 0),
    packed: ix.tensor(node.inputs[1], `${what} packed weight`),
    scales: ix.tensor(node.inputs[2], `${what} scales`),
    zeroPoints: node.inputs[3] ? ix.tensor(node.inputs[3], `${what} zero points`) : undefined,
  };
}

/** Follows single-consumer pass-through ops (Cast, Identity, Reshape) to the real consumers. */
function realUses(ix: GraphIndex, name: string): OnnxNode[] {
  const out: OnnxNode[] = [];
  for (const n of ix.uses(name)) {
    if (n.opType === 'Cast' || n.opType === 'Identity' || n.opType === 'Reshape') out.push(...realUses(ix, n.outputs[0]));
    else out.push(n);
  }
  return out;
}

/** SiLU as Phi-3 exports it: Mul(gate, Sigmoid(gate)), then Mul(·, up). */
function checkSilu(ix: GraphIndex, gateOut: string, upMul: OnnxNode, upOut: string): void {
  const other = upMul.inputs.find((i) => i !== upOut);
  const act = other ? ix.producer.get(other) : undefined;
  const sig = act?.inputs.map((i) => ix.producer.get(i)).find((n) => n?.opType === 'Sigmoid');
  if (!act || act.opType !== 'Mul' || !act.inputs.includes(gateOut) || !sig || sig.inputs[0] !== gateOut) {
    unsupported(`The MLP activation before "${upMul.name}" is not SiLU (gate · sigmoid(gate)).`);
  }
}

function normWeight(ix: GraphIndex, node: OnnxNode): OnnxTensorInfo {
  const axis = attrInt(node, 'axis', -1);
  if (axis !== -1 && axis !== 2) unsupported(`RMSNorm "${node.name}" normalises axis ${axis}; Phi-3 normalises the last axis.`);
  return ix.tensor(isOp(node, 'SimplifiedLayerNormalization') ? node.inputs[1] : node.inputs[2], `RMSNorm weight of "${node.name}"`);
}

function isNorm(n: OnnxNode): boolean {
  return isOp(n, 'SimplifiedLayerNormalization') || isOp(n, 'SimplifiedLayerNormalization', MS) || isOp(n, 'SkipSimplifiedLayerNormalization', MS);
}

/** Finds where a projection's output lands in the attention node, through an optional RotaryEmbedding. */
function attentionSlot(ix: GraphIndex, projectionOut: string): { node: OnnxNode; slot: number; rotary?: OnnxNode } {
  for (const use of realUses(ix, projectionOut)) {
    if (isOp(use, 'RotaryEmbedding', MS)) {
      for (const att of realUses(ix, use.outputs[0])) {
        const slot = att.inputs.indexOf(use.outputs[0]);
        if (isAttention(att) && slot >= 0) return { node: att, slot, rotary: use };
      }
    }
    if (isAttention(use)) return { node: use, slot: use.inputs.indexOf(projectionOut) };
  }
  unsupported(`The projection output "${projectionOut}" does not reach an attention node.`);
}

function isAttention(n: OnnxNode): boolean {
  return isOp(n, 'MultiHeadAttention', MS) || isOp(n, 'GroupQueryAttention', MS);
}

interface RotaryFound {
  cosName: string;
  sinName: string;
}

async function rotaryCaches(ix: GraphIndex, found: RotaryFound, resolve: SourceResolver): Promise<Phi3Plan['rotary']> {
  const cosProducer = ix.producer.get(found.cosName);
  if (cosProducer && isOp(cosProducer, 'If')) return longRope(ix, cosProducer, found, resolve);
  return { short: { cos: ix.tensor(found.cosName, 'rotary cos cache'), sin: ix.tensor(found.sinName, 'rotary sin cache') } };
}

/** Reads the LongRoPE `If`: cond = Greater(totalLength, threshold); then → long caches, else → short. */
async function longRope(ix: GraphIndex, ifNode: OnnxNode, found: RotaryFound, resolve: SourceResolver): Promise<Phi3Plan['rotary']> {
  const cosIndex = ifNode.outputs.indexOf(found.cosName);
  const sinIndex = ifNode.outputs.indexOf(found.sinName);
  if (sinIndex < 0) unsupported(`The rotary sin cache is not produced by the same If node "${ifNode.name}" as the cos cache.`);
  const branch = (name: 'then_branch' | 'else_branch'): RotaryCaches => {
    const a = ifNode.attributes[name];
    if (a?.type !== 'graph') unsupported(`If node "${ifNode.name}" has no ${name}.`);
    const sub = new GraphIndex(a.value);
    return {
      cos: { ...sub.tensor(a.value.outputs[cosIndex].name, `${name} cos cache`) },
      sin: { ...sub.tensor(a.value.outputs[sinIndex].name, `${name} sin cache`) },
    };
  };
  const cond = ix.producer.get(ifNode.inputs[0]);
  if (!cond || !isOp(cond, 'Greater')) unsupported(`The LongRoPE If "${ifNode.name}" is not conditioned on Greater(length, threshold).`);
  const threshold = await scalarValue(ix.tensor(cond.inputs[1], 'LongRoPE threshold'), resolve);
  return { short: branch('else_branch'), long: { ...branch('then_branch'), switchAbove: threshold } };
}

async function scalarValue(t: OnnxTensorInfo, resolve: SourceResolver): Promise<number> {
  if (locationByteLength(t.location) > 8) unsupported(`"${t.name}" should be a scalar but holds ${locationByteLength(t.location)} bytes.`);
  const b = await readTensorBytes(t, resolve);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  switch (t.dataType) {
    case OnnxDataType.INT64:
      return Number(dv.getBigInt64(0, true));
    case OnnxDataType.INT32:
      return dv.getInt32(0, true);
    case OnnxDataType.FLOAT:
      return dv.getFloat32(0, true);
    default:
      return unsupported(`The scalar "${t.name}" has dtype ${t.dataType}.`);
  }
}

/** `resolve` gives the model's byte sources; only a few scalar constants are read through it. */
export async function planPhi3(model: OnnxModel, resolve: SourceResolver): Promise<Phi3Plan> {
  const ix = new GraphIndex(model.graph);
  const inputIds = model.graph.inputs.find((i) => i.name === 'input_ids')?.name ?? model.graph.inputs[0]?.name;
  const gather = realUses(ix, inputIds).find((n) => isOp(n, 'Gather'));
  if (!gather) unsupported('No Gather node reads input_ids, so the token embedding cannot be found.');
  const embedding = ix.tensor(gather.inputs[0], 'token embedding');
  if (embedding.dims.length !== 2) throw new AppError('MODEL_BAD_WEIGHT', `The token embedding "${embedding.name}" has dims [${embedding.dims}]; expected [vocab, hidden].`);
  const [, hidden] = embedding.dims;

  const layers: LayerPlan[] = [];
  let norm = realUses(ix, gather.outputs[0]).find(isNorm);
  let rotary: RotaryFound | undefined;
  let layout: Phi3Layout | undefined;
  let heads = 0;
  let kvHeads = 0;
  let scale = 0;
  let rotaryDim = 0;
  /** GroupQueryAttention's local_window_size, the same in every layer (-1: none). */
  let window: number | undefined;
  let eps = 0;

  while (norm) {
    eps ||= attrFloat(norm, 'epsilon', 1e-5);
    const projections = realUses(ix, norm.outputs[0]).filter((n) => isOp(n, 'MatMulNBits', MS));
    if (projections.length === 1 && realUses(ix, projections[0].outputs[0]).some((n) => n.opType === 'Softmax' || n.opType === 'Cast')) break;
    const lmHeadOnly = projections.length === 1 && !realUses(ix, projections[0].outputs[0]).some(isAttention) && !realUses(ix, projections[0].outputs[0]).some((n) => isOp(n, 'RotaryEmbedding', MS));
    if (lmHeadOnly) break; // final norm → lm_head
    if (projections.length === 0) unsupported(`RMSNorm "${norm.name}" feeds no MatMulNBits.`);

    // Attention projections.
    let attention: LayerPlan['attention'];
    let attNode: OnnxNode;
    if (projections.length === 1) {
      const slot = attentionSlot(ix, projections[0].outputs[0]);
      attNode = slot.node;
      if (!isOp(attNode, 'GroupQueryAttention', MS) || slot.slot !== 0) unsupported(`A single projection after "${norm.name}" must be a packed qkv feeding GroupQueryAttention.`);
      attention = { kind: 'packed', qkv: quant(ix, projections[0], `layer ${layers.length} qkv_proj`) };
      layout ??= 'gqa-packed';
    } else if (projections.length === 3) {
      const slots = projections.map((p) => ({ p, ...attentionSlot(ix, p.outputs[0]) }));
      const bySlot = (s: number) => slots.find((x) => x.slot === s) ?? unsupported(`Attention input ${s} is not a projection in layer ${layers.length}.`);
      const q = bySlot(0);
      attNode = q.node;
      attention = { kind: 'separate', q: quant(ix, q.p, `layer ${layers.length} q_proj`), k: quant(ix, bySlot(1).p, `layer ${layers.length} k_proj`), v: quant(ix, bySlot(2).p, `layer ${layers.length} v_proj`) };
      if (q.rotary) {
        rotary ??= { cosName: q.rotary.inputs[2], sinName: q.rotary.inputs[3] };
        rotaryDim ||= attrInt(q.rotary, 'rotary_embedding_dim', 0);
      }
      for (const r of slots.map((x) => x.rotary)) {
        if (r && attrInt(r, 'interleaved', 0) !== 0) unsupported(`RotaryEmbedding "${r.name}" is interleaved; Phi-3 uses rotate-half.`);
      }
      if (!bySlot(1).rotary !== !q.rotary) unsupported(`Layer ${layers.length} rotates only one of q and k.`);
      layout ??= isOp(attNode, 'MultiHeadAttention', MS) ? 'web2024' : 'gqa';
    } else {
      unsupported(`RMSNorm "${norm.name}" feeds ${projections.length} MatMulNBits; expected 1 (packed qkv) or 3 (q, k, v).`);
    }

    if (isOp(attNode, 'GroupQueryAttention', MS)) {
      heads ||= attrInt(attNode, 'num_heads');
      kvHeads ||= attrInt(attNode, 'kv_num_heads');
      if (attrInt(attNode, 'do_rotary', 0) === 1) {
        rotary ??= { cosName: attNode.inputs[7], sinName: attNode.inputs[8] };
        if (attrInt(attNode, 'rotary_interleaved', 0) !== 0) unsupported(`GroupQueryAttention "${attNode.name}" uses interleaved rotary.`);
      } else if (attention.kind === 'packed') {
        unsupported(`Packed GroupQueryAttention "${attNode.name}" without do_rotary has no rotary embedding to apply.`);
      }
      const w = attrInt(attNode, 'local_window_size', -1);
      if (w === 0 || w < -1) unsupported(`GroupQueryAttention "${attNode.name}" has local_window_size ${w}; expected -1 (none) or a positive window.`);
      if (window !== undefined && w !== window) unsupported(`GroupQueryAttention "${attNode.name}" has local_window_size ${w} where an earlier layer has ${window}.`);
      window = w;
      // Inputs past the rotary caches that change the result (com.microsoft schema): an additive
      // attention bias, per-head attention sinks, q/k norms. Left empty for Phi-3 by every builder;
      // position_ids (9) and the KV cache's quantisation scales (12, 13) are not refused: the
      // engine numbers positions as onnxruntime-genai feeds them, and keeps its cache unquantised.
      for (const [slot, what] of [[10, 'an attention bias'], [11, 'attention sinks'], [14, 'a q norm'], [15, 'a k norm']] as const) {
        if (attNode.inputs[slot]) unsupported(`GroupQueryAttention "${attNode.name}" has ${what} (input ${slot}, "${attNode.inputs[slot]}"), which the native kernels do not apply.`);
      }
      // Newer builders write these at their neutral values; any other changes the softmax.
      if (attrFloat(attNode, 'softcap', 0) !== 0) unsupported(`GroupQueryAttention "${attNode.name}" caps its logits (softcap ${attrFloat(attNode, 'softcap', 0)}).`);
      if (attrInt(attNode, 'smooth_softmax', 0) !== 0) unsupported(`GroupQueryAttention "${attNode.name}" uses smooth softmax.`);
    } else {
      heads ||= attrInt(attNode, 'num_heads');
      kvHeads ||= heads;
    }
    scale ||= attrFloat(attNode, 'scale', 0);

    // o_proj → post-attention norm.
    const oNode = realUses(ix, attNode.outputs[0]).find((n) => isOp(n, 'MatMulNBits', MS)) ?? unsupported(`No o_proj MatMulNBits reads attention "${attNode.name}".`);
    const postNorm = realUses(ix, oNode.outputs[0]).find(isNorm) ?? unsupported(`No RMSNorm follows o_proj "${oNode.name}".`);

    // MLP.
    const mlpProj = realUses(ix, postNorm.outputs[0]).filter((n) => isOp(n, 'MatMulNBits', MS));
    let mlp: LayerPlan['mlp'];
    let mulOut: string;
    if (mlpProj.length === 2) {
      const gateNode = mlpProj.find((p) => realUses(ix, p.outputs[0]).some((n) => n.opType === 'Sigmoid' || isOp(n, 'QuickGelu', MS)));
      const upNode = mlpProj.find((p) => p !== gateNode);
      if (!gateNode || !upNode) unsupported(`Cannot tell gate_proj from up_proj after "${postNorm.name}" (no Sigmoid on either).`);
      mlp = { kind: 'separate', gate: quant(ix, gateNode, `layer ${layers.length} gate_proj`), up: quant(ix, upNode, `layer ${layers.length} up_proj`) };
      const upMul = realUses(ix, upNode.outputs[0]).find((n) => n.opType === 'Mul') ?? unsupported(`up_proj "${upNode.name}" is not multiplied by the activation.`);
      checkSilu(ix, gateNode.outputs[0], upMul, upNode.outputs[0]);
      mulOut = upMul.outputs[0];
    } else if (mlpProj.length === 1) {
      mlp = { kind: 'fused', gateUp: quant(ix, mlpProj[0], `layer ${layers.length} gate_up_proj`) };
      // Slice → Sigmoid/Mul → Mul(·, up). The last Mul is the one whose output feeds down_proj.
      const muls = collectDownstream(ix, mlpProj[0].outputs[0], 4).filter((n) => n.opType === 'Mul');
      const last = muls.find((m) => realUses(ix, m.outputs[0]).some((n) => isOp(n, 'MatMulNBits', MS)));
      if (!last) unsupported(`Fused gate_up "${mlpProj[0].name}" does not lead to down_proj through Mul.`);
      mulOut = last.outputs[0];
    } else {
      unsupported(`RMSNorm "${postNorm.name}" feeds ${mlpProj.length} MatMulNBits; expected gate+up or a fused gate_up.`);
    }
    const downNode = realUses(ix, mulOut).find((n) => isOp(n, 'MatMulNBits', MS)) ?? unsupported(`No down_proj reads the MLP product in layer ${layers.length}.`);
    layers.push({
      inputNorm: normWeight(ix, norm),
      postAttentionNorm: normWeight(ix, postNorm),
      attention,
      o: quant(ix, oNode, `layer ${layers.length} o_proj`),
      mlp,
      down: quant(ix, downNode, `layer ${layers.length} down_proj`),
    });
    norm = realUses(ix, downNode.outputs[0]).find(isNorm) ?? unsupported(`No RMSNorm follows down_proj "${downNode.name}".`);
  }
  if (!norm || layers.length === 0) unsupported('No transformer layer was found after the embedding.');
  const lmNode = realUses(ix, norm.outputs[0]).find((n) => isOp(n, 'MatMulNBits', MS)) ?? unsupported(`No lm_head MatMulNBits follows the final norm "${norm.name}".`);
  const lmHead = quant(ix, lmNode, 'lm_head');
  if (!layout || !rotary) unsupported('No rotary embedding was found (neither RotaryEmbedding nodes nor GroupQueryAttention do_rotary).');

  const rot = await rotaryCaches(ix, rotary, resolve);
  const first = layers[0];
  const qN = first.attention.kind === 'separate' ? first.attention.q.N : first.attention.qkv.N / (1 + (2 * kvHeads) / heads);
  const headDim = qN / heads;
  const intermediate = first.mlp.kind === 'separate' ? first.mlp.gate.N : first.mlp.gateUp.N / 2;
  const halfRot = rot.short.cos.dims[1];
  const config: Phi3Config = {
    layers: layers.length,
    hidden,
    heads,
    kvHeads,
    headDim,
    rotaryDim: rotaryDim || halfRot * 2,
    intermediate,
    vocab: lmHead.N,
    maxPositions: rot.long ? rot.long.cos.dims[0] : rot.short.cos.dims[0],
    rmsNormEps: eps,
    attentionScale: scale || 1 / Math.sqrt(headDim),
  };
  if (window !== undefined && window > 0 && window < config.maxPositions) config.attentionWindow = window;
  validate(config, embedding);
  const f16 = embedding.dataType === OnnxDataType.FLOAT16;
  const plan: Phi3Plan = { layout, config, embedding, layers, finalNorm: normWeight(ix, norm), lmHead, rotary: rot, activationDtype: f16 ? 'f16' : 'f32' };
  validateWeights(plan);
  return plan;
}

const FLOATS: readonly number[] = [OnnxDataType.FLOAT, OnnxDataType.FLOAT16];

function expectTensor(t: OnnxTensorInfo, what: string, dtypes: readonly number[], elements: number, dims?: readonly number[]): void {
  const bad = (why: string) => {
    throw new AppError('MODEL_BAD_WEIGHT', `The ${what} ("${t.name}") ${why}. The file does not match its graph; download the model again.`);
  };
  if (!dtypes.includes(t.dataType)) bad(`has ONNX dtype ${t.dataType}; expected one of ${dtypes.join(', ')}`);
  const count = t.dims.reduce((a, b) => a * b, 1);
  if (count !== elements) bad(`has dims [${t.dims.join(', ')}] (${count} elements); expected ${elements}`);
  if (dims && (dims.length !== t.dims.length || dims.some((d, i) => d !== t.dims[i]))) bad(`has dims [${t.dims.join(', ')}]; expected [${dims.join(', ')}]`);
}

function expectQuant(w: QuantWeight, what: string, K: number, N: number): void {
  if (w.K !== K || w.N !== N) {
    throw new AppError('MODEL_BAD_WEIGHT', `The ${what} is ${w.N}×${w.K} (N×K) but the model's shapes need ${N}×${K}.`);
  }
  if (![16, 32, 64, 128].includes(w.blockSize)) throw new AppError('MODEL_UNSUPPORTED_GRAPH', `The ${what} uses block_size ${w.blockSize}; supported sizes are 16, 32, 64 and 128.`);
  const nBlocks = Math.ceil(K / w.blockSize);
  expectTensor(w.packed, `${what} packed weight`, [OnnxDataType.UINT8], N * nBlocks * (w.blockSize / 2));
  expectTensor(w.scales, `${what} scales`, FLOATS, N * nBlocks);
  if (w.zeroPoints) expectTensor(w.zeroPoints, `${what} zero points`, [OnnxDataType.UINT8], N * Math.ceil(nBlocks / 2));
}

/** Every weight's dtype and element count against the hyper-parameters read from the graph. */
function validateWeights(p: Phi3Plan): void {
  const c = p.config;
  const qDim = c.heads * c.headDim;
  const kvDim = c.kvHeads * c.headDim;
  expectTensor(p.embedding, 'token embedding', FLOATS, p.embedding.dims[0] * c.hidden, [p.embedding.dims[0], c.hidden]);
  expectTensor(p.finalNorm, 'final norm weight', FLOATS, c.hidden);
  expectQuant(p.lmHead, 'lm_head', c.hidden, c.vocab);
  for (const [i, l] of p.layers.entries()) {
    expectTensor(l.inputNorm, `layer ${i} input norm weight`, FLOATS, c.hidden);
    expectTensor(l.postAttentionNorm, `layer ${i} post-attention norm weight`, FLOATS, c.hidden);
    if (l.attention.kind === 'packed') expectQuant(l.attention.qkv, `layer ${i} qkv_proj`, c.hidden, qDim + 2 * kvDim);
    else {
      expectQuant(l.attention.q, `layer ${i} q_proj`, c.hidden, qDim);
      expectQuant(l.attention.k, `layer ${i} k_proj`, c.hidden, kvDim);
      expectQuant(l.attention.v, `layer ${i} v_proj`, c.hidden, kvDim);
    }
    expectQuant(l.o, `layer ${i} o_proj`, qDim, c.hidden);
    if (l.mlp.kind === 'fused') expectQuant(l.mlp.gateUp, `layer ${i} gate_up_proj`, c.hidden, 2 * c.intermediate);
    else {
      expectQuant(l.mlp.gate, `layer ${i} gate_proj`, c.hidden, c.intermediate);
      expectQuant(l.mlp.up, `layer ${i} up_proj`, c.hidden, c.intermediate);
    }
    expectQuant(l.down, `layer ${i} down_proj`, c.intermediate, c.hidden);
  }
  const half = c.rotaryDim / 2;
  // All four caches share the short cos cache's float type: the kernels read them as rotary tables
  // of one dtype (kernels/rotary.ts).
  const first = p.rotary.short.cos.dataType;
  const rotaryDtypes = FLOATS.includes(first) ? [first] : FLOATS;
  for (const [name, pair] of Object.entries({ short: p.rotary.short, long: p.rotary.long })) {
    if (!pair) continue;
    const rows = pair.cos.dims[0];
    expectTensor(pair.cos, `${name} rotary cos cache`, rotaryDtypes, rows * half, [rows, half]);
    expectTensor(pair.sin, `${name} rotary sin cache`, rotaryDtypes, rows * half, [rows, half]);
  }
}

function collectDownstream(ix: GraphIndex, name: string, depth: number): OnnxNode[] {
  if (depth === 0) return [];
  const out: OnnxNode[] = [];
  for (const n of realUses(ix, name)) {
    out.push(n);
    for (const o of n.outputs) out.push(...collectDownstream(ix, o, depth - 1));
  }
  return out;
}

function validate(c: Phi3Config, embedding: OnnxTensorInfo): void {
  const bad = (what: string) => {
    throw new AppError('MODEL_CONFIG_MISMATCH', `Inconsistent Phi-3 graph: ${what}.`);
  };
  if (!Number.isInteger(c.headDim) || c.headDim * c.heads === 0) bad(`q_proj width does not split into ${c.heads} heads`);
  if (c.heads % c.kvHeads !== 0) bad(`${c.heads} heads is not a multiple of ${c.kvHeads} KV heads`);
  if (embedding.dims[0] < c.vocab) bad(`the embedding has ${embedding.dims[0]} rows but lm_head produces ${c.vocab} logits`);
  if (c.rotaryDim > c.headDim || c.rotaryDim % 2) bad(`rotary dim ${c.rotaryDim} does not fit head_dim ${c.headDim}`);
}

/** Cross-checks the plan with config.json / genai_config.json when they are present. */
export function checkAgainstConfigs(plan: Phi3Plan, configJson?: Record<string, unknown>): void {
  if (!configJson) return;
  const c = plan.config;
  const pairs: Array<[string, number]> = [
    ['hidden_size', c.hidden],
    ['num_hidden_layers', c.layers],
    ['num_attention_heads', c.heads],
    ['num_key_value_heads', c.kvHeads],
    ['intermediate_size', c.intermediate],
  ];
  for (const [key, value] of pairs) {
    const v = configJson[key];
    if (typeof v === 'number' && v !== value) {
      throw new AppError('MODEL_CONFIG_MISMATCH', `config.json says ${key} = ${v} but the ONNX graph has ${value}. The files come from different models; download them again from one repository.`);
    }
  }
}
