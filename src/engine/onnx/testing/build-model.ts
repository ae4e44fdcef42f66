/**
 * Test fixtures for the ONNX reader: models encoded with onnx-proto (the general-purpose protobuf
 * encoder generated from onnx.proto), a tiny hand-rolled wire writer for what that encoder never
 * emits (unpacked repeated fields, unknown fields, malformed bytes), and a normaliser that turns
 * both the reader's output and onnx-proto's decoded message into one comparable shape.
 * Test-only: imported by *.test.ts files, never by the app.
 */
import onnxProto from 'onnx-proto';
import type { onnx as proto } from 'onnx-proto';
import type { OnnxAttributeValue, OnnxGraph, OnnxModel, OnnxTensorInfo, OnnxValueInfo } from '../types';

/**
 * onnx-proto's generated classes. It is a CommonJS module whose exports Node's ESM loader cannot
 * name, so take them from the default export (works under Vitest, tsx and plain Node alike).
 */
export const onnx = onnxProto.onnx;
/** onnx-proto's message interfaces (`proto.IModelProto`, ...). */
export type { proto };

// ---- deterministic data ------------------------------------------------------------------------

/** mulberry32: a small seeded PRNG, so that fixtures and fuzz cases are reproducible. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomBytes(n: number, seed: number): Uint8Array {
  const r = rng(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (r() * 256) | 0;
  return out;
}

// ---- onnx-proto builders ----------------------------------------------------------------------

export const DT = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, BOOL: 9, FLOAT16: 10, DOUBLE: 11, UINT32: 12, UINT64: 13, BFLOAT16: 16 };
const AT = onnx.AttributeProto.AttributeType;

/** Encodes with onnx-proto, copied into a plain Uint8Array (a Node Buffer's `slice` would alias). */
export function encodeModel(model: proto.IModelProto): Uint8Array {
  return new Uint8Array(onnx.ModelProto.encode(model).finish());
}

export function rawTensor(name: string, dataType: number, dims: number[], rawData: Uint8Array): proto.ITensorProto {
  return { name, dataType, dims, rawData };
}

export function externalTensor(
  name: string,
  dataType: number,
  dims: number[],
  location: string,
  offset: number,
  length?: number,
): proto.ITensorProto {
  const externalData = [{ key: 'location', value: location }];
  if (offset !== 0) externalData.push({ key: 'offset', value: String(offset) });
  if (length !== undefined) externalData.push({ key: 'length', value: String(length) });
  return { name, dataType, dims, externalData, dataLocation: onnx.TensorProto.DataLocation.EXTERNAL };
}

export function valueInfo(name: string, elemType: number, shape?: Array<number | string | null>): proto.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: shape && {
          dim: shape.map((d) => (d === null ? {} : typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
        },
      },
    },
  };
}

export function node(
  opType: string,
  inputs: string[],
  outputs: string[],
  attribute: proto.IAttributeProto[] = [],
  domain?: string,
  name?: string,
): proto.INodeProto {
  const n: proto.INodeProto = { opType, input: inputs, output: outputs, attribute, name: name ?? `${opType}_${outputs[0]}` };
  if (domain !== undefined) n.domain = domain;
  return n;
}

export const attr = {
  float: (name: string, f: number): proto.IAttributeProto => ({ name, type: AT.FLOAT, f }),
  int: (name: string, i: number): proto.IAttributeProto => ({ name, type: AT.INT, i }),
  string: (name: string, s: string): proto.IAttributeProto => ({ name, type: AT.STRING, s: new TextEncoder().encode(s) }),
  floats: (name: string, floats: number[]): proto.IAttributeProto => ({ name, type: AT.FLOATS, floats }),
  ints: (name: string, ints: Array<number | string>): proto.IAttributeProto => ({ name, type: AT.INTS, ints: ints as number[] }),
  strings: (name: string, strings: string[]): proto.IAttributeProto => ({
    name,
    type: AT.STRINGS,
    strings: strings.map((s) => new TextEncoder().encode(s)),
  }),
  tensor: (name: string, t: proto.ITensorProto): proto.IAttributeProto => ({ name, type: AT.TENSOR, t }),
  graph: (name: string, g: proto.IGraphProto): proto.IAttributeProto => ({ name, type: AT.GRAPH, g }),
  tensors: (name: string, tensors: proto.ITensorProto[]): proto.IAttributeProto => ({ name, type: AT.TENSORS, tensors }),
  graphs: (name: string, graphs: proto.IGraphProto[]): proto.IAttributeProto => ({ name, type: AT.GRAPHS, graphs }),
};

/** A Constant node whose `value` is a raw_data tensor (how rotary caches are stored). */
export function constantNode(output: string, dataType: number, dims: number[], rawData: Uint8Array): proto.INodeProto {
  return node('Constant', [], [output], [attr.tensor('value', { dataType, dims, rawData })]);
}

export const EXTERNAL_FILE = 'model_q4.onnx_data';

/**
 * A small model with everything the reader must handle, shaped like Phi-3's files: inline and
 * external weights, every typed data field, every attribute type, com.microsoft nodes, symbolic
 * shapes, and an `If` whose branches hold Constant caches (the 128K LongRoPE layout).
 * Returns the encoded `.onnx` and the matching external data file.
 */
export function sampleModel(seed = 1): { bytes: Uint8Array; external: Uint8Array; proto: proto.IModelProto } {
  const external = randomBytes(8192, seed + 100);
  const cache = (name: string, s: number) => constantNode(name, DT.FLOAT16, [8, 4], randomBytes(64, seed + s));
  const thenBranch: proto.IGraphProto = {
    name: 'then_graph',
    node: [cache('cos_cache_large', 1), cache('sin_cache_large', 2)],
    output: [valueInfo('cos_cache_large', DT.FLOAT16, [8, 4]), valueInfo('sin_cache_large', DT.FLOAT16, [8, 4])],
  };
  const elseBranch: proto.IGraphProto = {
    name: 'else_graph',
    node: [cache('cos_cache_small', 3), cache('sin_cache_small', 4)],
    initializer: [rawTensor('else_local', DT.FLOAT, [2], randomBytes(8, seed + 5))],
    output: [valueInfo('cos_cache_small', DT.FLOAT16, [8, 4]), valueInfo('sin_cache_small', DT.FLOAT16, [8, 4])],
  };
  const initializer: proto.ITensorProto[] = [
    rawTensor('model.embed_tokens.weight', DT.FLOAT16, [16, 8], randomBytes(256, seed + 10)),
    rawTensor('model.layers.0.attn.qkv_proj.MatMulNBits.qweight', DT.UINT8, [24, 1, 16], randomBytes(384, seed + 11)),
    rawTensor('model.layers.0.attn.qkv_proj.MatMulNBits.scales', DT.FLOAT16, [24], randomBytes(48, seed + 12)),
    externalTensor('model.layers.0.mlp.down_proj.MatMulNBits.qweight', DT.UINT8, [8, 1, 16], EXTERNAL_FILE, 0, 128),
    externalTensor('lm_head.MatMulNBits.qweight', DT.UINT8, [16, 2, 16], EXTERNAL_FILE, 4096), // no length: computed
    { name: 'float_data', dataType: DT.FLOAT, dims: [3], floatData: [1.5, -2.25, 3e-8] },
    { name: 'fp16_in_int32_data', dataType: DT.FLOAT16, dims: [4], int32Data: [0x3c00, 0xc000, 0x7bff, 0x0001] },
    { name: 'bf16_in_int32_data', dataType: DT.BFLOAT16, dims: [2], int32Data: [0x3f80, 0xbf80] },
    { name: 'int32_data', dataType: DT.INT32, dims: [3], int32Data: [7, -1, -2147483648] },
    { name: 'int8_data', dataType: DT.INT8, dims: [3], int32Data: [-128, 127, -1] },
    { name: 'uint8_data', dataType: DT.UINT8, dims: [2], int32Data: [0, 255] },
    { name: 'bool_data', dataType: DT.BOOL, dims: [2], int32Data: [1, 0] },
    { name: 'int64_data', dataType: DT.INT64, dims: [2, 2], int64Data: [1, -1, '9007199254740993', '-9223372036854775808'] as unknown as number[] },
    { name: 'double_data', dataType: DT.DOUBLE, dims: [2], doubleData: [Math.PI, -1e300] },
    { name: 'uint64_data', dataType: DT.UINT64, dims: [2], uint64Data: ['18446744073709551615', 5] as unknown as number[] },
    { name: 'uint32_in_uint64_data', dataType: DT.UINT32, dims: [2], uint64Data: [4294967295, 3] },
    { name: 'empty_int64', dataType: DT.INT64, dims: [0] },
    { name: 'scalar_float', dataType: DT.FLOAT, dims: [], floatData: [0.5] },
  ];
  const graph: proto.IGraphProto = {
    name: 'main_graph',
    input: [
      valueInfo('input_ids', DT.INT64, ['batch_size', 'sequence_length']),
      valueInfo('attention_mask', DT.INT64, ['batch_size', 'total_sequence_length']),
      valueInfo('past_key_values.0.key', DT.FLOAT16, ['batch_size', 32, 'past_sequence_length', 96]),
    ],
    output: [
      valueInfo('logits', DT.FLOAT, ['batch_size', 'sequence_length', 32064]),
      valueInfo('unknown_rank', DT.FLOAT),
      valueInfo('scalar_out', DT.FLOAT, []),
      valueInfo('unknown_dim', DT.FLOAT, [null, 3]),
      { name: 'no_type' },
    ],
    valueInfo: [valueInfo('/model/embed_tokens/Gather/output_0', DT.FLOAT16, ['batch_size', 'sequence_length', 8])],
    initializer,
    node: [
      node('Gather', ['model.embed_tokens.weight', 'input_ids'], ['/model/embed_tokens/Gather/output_0']),
      node(
        'SimplifiedLayerNormalization',
        ['/model/embed_tokens/Gather/output_0', 'norm.weight'],
        ['norm_out'],
        [attr.float('epsilon', 1e-5), attr.int('axis', -1), attr.int('stash_type', 1)],
      ),
      node(
        'MatMulNBits',
        ['norm_out', 'model.layers.0.attn.qkv_proj.MatMulNBits.qweight', 'model.layers.0.attn.qkv_proj.MatMulNBits.scales'],
        ['qkv'],
        [attr.int('K', 8), attr.int('N', 24), attr.int('bits', 4), attr.int('block_size', 16), attr.int('accuracy_level', 4)],
        'com.microsoft',
      ),
      node(
        'GroupQueryAttention',
        ['qkv', '', '', 'past_key', 'past_value', 'seqlens_k', 'total_seq_len', 'cos_cache', 'sin_cache'],
        ['attn_out', 'present_key', 'present_value'],
        [attr.int('num_heads', 2), attr.int('kv_num_heads', 1), attr.float('scale', 0.25), attr.int('do_rotary', 1), attr.int('local_window_size', -1)],
        'com.microsoft',
      ),
      node(
        'AllAttributes',
        ['attn_out'],
        ['all_out'],
        [
          attr.float('f', -0.1),
          attr.int('i_big', 2 ** 40 + 3),
          attr.ints('i_extremes', ['9223372036854775807', '-9223372036854775808', 0, -7]),
          attr.string('s', 'héllo ✓ 世界'),
          attr.floats('floats', [1, 0.5, -3.75, Infinity]),
          attr.floats('floats_empty', []),
          attr.ints('ints', [0, 1, -1, 4096, 2 ** 53]),
          attr.strings('strings', ['a', '', 'ünï']),
          attr.tensor('t', rawTensor('attr_tensor', DT.FLOAT, [2, 2], randomBytes(16, seed + 20))),
          attr.graph('g', { name: 'attr_graph', node: [node('Identity', ['x'], ['y'])], input: [valueInfo('x', DT.FLOAT, [1])], output: [valueInfo('y', DT.FLOAT, [1])] }),
          attr.tensors('tensors', [
            { name: 'tt0', dataType: DT.INT64, dims: [1], int64Data: [42] },
            rawTensor('tt1', DT.UINT8, [3], randomBytes(3, seed + 21)),
          ]),
          attr.graphs('graphs', [{ name: 'gg0' }, { name: 'gg1', node: [node('Relu', ['a'], ['b'])] }]),
        ],
        'test.domain',
      ),
      constantNode('rotary_cos_cache', DT.FLOAT16, [32, 48], randomBytes(3072, seed + 30)),
      node('Shape', ['attention_mask'], ['mask_shape']),
      node('Greater', ['total_len', 'original_max'], ['is_long']),
      node('If', ['is_long'], ['cos_cache', 'sin_cache'], [attr.graph('then_branch', thenBranch), attr.graph('else_branch', elseBranch)]),
    ],
  };
  const proto: proto.IModelProto = {
    irVersion: 8,
    producerName: 'onnxruntime-genai',
    producerVersion: '0.4.0',
    opsetImport: [
      { domain: '', version: 14 },
      { domain: 'com.microsoft', version: 1 },
    ],
    graph,
  };
  return { bytes: encodeModel(proto), external, proto };
}

/** A model whose single initializer is `rawBytes` of inline raw_data (streaming tests). */
export function bigInlineModel(rawBytes: number, seed = 7): Uint8Array {
  const raw = new Uint8Array(rawBytes);
  const r = randomBytes(4096, seed);
  for (let i = 0; i < rawBytes; i += 4096) raw.set(r.subarray(0, Math.min(4096, rawBytes - i)), i);
  return encodeModel({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 14 }],
    graph: {
      name: 'big',
      initializer: [
        rawTensor('small_before', DT.FLOAT, [4], randomBytes(16, seed + 1)),
        rawTensor('big_weight', DT.UINT8, [rawBytes], raw),
        rawTensor('small_after', DT.FLOAT, [4], randomBytes(16, seed + 2)),
      ],
      node: [node('Add', ['small_before', 'small_after'], ['sum'])],
      output: [valueInfo('sum', DT.FLOAT, [4])],
    },
  });
}

// ---- a hand-rolled wire writer ------------------------------------------------------------------

/** Writes protobuf wire format by hand, including what no encoder emits (unpacked, unknown, broken). */
export class WireWriter {
  private readonly out: number[] = [];

  raw(bytes: ArrayLike<number>): this {
    for (let i = 0; i < bytes.length; i++) this.out.push(bytes[i]);
    return this;
  }

  varint(value: number | bigint): this {
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      this.out.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.out.push(Number(v));
    return this;
  }

  tag(field: number, wire: number): this {
    return this.varint(field * 8 + wire);
  }

  int(field: number, value: number | bigint): this {
    return this.tag(field, 0).varint(value);
  }

  fixed32(field: number, u32: number): this {
    this.tag(field, 5);
    return this.raw([u32 & 0xff, (u32 >>> 8) & 0xff, (u32 >>> 16) & 0xff, u32 >>> 24]);
  }

  float(field: number, f: number): this {
    const b = new Uint8Array(new Float32Array([f]).buffer);
    return this.tag(field, 5).raw(b);
  }

  double(field: number, d: number): this {
    const b = new Uint8Array(new Float64Array([d]).buffer);
    return this.tag(field, 1).raw(b);
  }

  bytes(field: number, data: ArrayLike<number>): this {
    return this.tag(field, 2).varint(data.length).raw(data);
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  message(field: number, build: (w: WireWriter) => void): this {
    const inner = new WireWriter();
    build(inner);
    return this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.out);
  }
}

// ---- normalising for cross-checks ------------------------------------------------------------

/** A tensor with its bytes resolved, the same shape whichever decoder produced it. */
export interface NormTensor {
  name: string;
  dataType: number;
  dims: number[];
  data: { kind: 'bytes'; bytes: number[] } | { kind: 'external'; file: string; offset: number; length: number };
}
export type NormAttr =
  | Exclude<OnnxAttributeValue, { type: 'tensor' | 'graph' | 'tensors' | 'graphs' }>
  | { type: 'tensor'; value: NormTensor }
  | { type: 'graph'; value: NormGraph }
  | { type: 'tensors'; value: NormTensor[] }
  | { type: 'graphs'; value: NormGraph[] };
export interface NormNode {
  name: string;
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attributes: Record<string, NormAttr>;
}
export interface NormGraph {
  name: string;
  nodes: NormNode[];
  initializers: NormTensor[];
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  valueInfo: OnnxValueInfo[];
}
export interface NormModel {
  irVersion: number;
  producerName: string;
  opsetImports: Array<{ domain: string; version: number }>;
  graph: NormGraph;
}

/** The reader's model with inline tensors resolved against the file bytes. */
export function normalizeReaderModel(model: OnnxModel, file: Uint8Array): NormModel {
  const tensor = (t: OnnxTensorInfo): NormTensor => {
    const loc = t.location;
    const data: NormTensor['data'] =
      loc.kind === 'external'
        ? { kind: 'external', file: loc.file, offset: loc.offset, length: loc.length }
        : { kind: 'bytes', bytes: Array.from(loc.kind === 'inline' ? file.subarray(loc.offset, loc.offset + loc.length) : loc.bytes) };
    return { name: t.name, dataType: t.dataType, dims: t.dims, data };
  };
  const graph = (g: OnnxGraph): NormGraph => ({
    name: g.name,
    nodes: g.nodes.map((n) => ({
      name: n.name,
      opType: n.opType,
      domain: n.domain,
      inputs: n.inputs,
      outputs: n.outputs,
      attributes: Object.fromEntries(
        Object.entries(n.attributes).map(([k, a]): [string, NormAttr] => {
          switch (a.type) {
            case 'tensor':
              return [k, { type: 'tensor', value: tensor(a.value) }];
            case 'graph':
              return [k, { type: 'graph', value: graph(a.value) }];
            case 'tensors':
              return [k, { type: 'tensors', value: a.value.map(tensor) }];
            case 'graphs':
              return [k, { type: 'graphs', value: a.value.map(graph) }];
            default:
              return [k, a];
          }
        }),
      ),
    })),
    initializers: g.initializers.map(tensor),
    inputs: g.inputs,
    outputs: g.outputs,
    valueInfo: g.valueInfo ?? [],
  });
  return { irVersion: model.irVersion, producerName: model.producerName, opsetImports: model.opsetImports, graph: graph(model.graph) };
}

interface LongLike {
  low: number;
  high: number;
  toNumber(): number;
}
function num(v: number | LongLike | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}
function has(obj: object, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(obj, key);
}
const ELEM_BYTES: Record<number, number> = { 1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2 };

/**
 * onnx-proto's decoded model in the same shape, with typed data converted to bytes independently
 * of the reader (DataView writes) and external lengths computed from dims when absent.
 */
export function normalizeDecodedModel(m: proto.ModelProto): NormModel {
  const utf8 = new TextDecoder();
  const tensor = (t: proto.ITensorProto): NormTensor => {
    const dims = (t.dims ?? []).map((d) => num(d as number | LongLike));
    const dataType = t.dataType ?? 0;
    const count = dims.reduce((a, b) => a * b, 1);
    if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
      const kv = Object.fromEntries((t.externalData ?? []).map((e) => [e.key, e.value]));
      return {
        name: t.name ?? '',
        dataType,
        dims,
        data: {
          kind: 'external',
          file: kv.location ?? '',
          offset: Number(kv.offset ?? 0),
          length: kv.length !== undefined && kv.length !== null ? Number(kv.length) : count * ELEM_BYTES[dataType],
        },
      };
    }
    let bytes: number[];
    if (t.rawData && t.rawData.length) bytes = Array.from(t.rawData);
    else {
      const size = ELEM_BYTES[dataType];
      const dv = new DataView(new ArrayBuffer(count * size));
      const ints = (t.int32Data ?? []) as number[];
      const longs = ((dataType === DT.INT64 ? t.int64Data : t.uint64Data) ?? []) as unknown as Array<number | LongLike>;
      for (let i = 0; i < count; i++) {
        if (dataType === DT.FLOAT) dv.setFloat32(i * 4, (t.floatData ?? [])[i], true);
        else if (dataType === DT.DOUBLE) dv.setFloat64(i * 8, (t.doubleData ?? [])[i], true);
        else if (dataType === DT.INT64 || dataType === DT.UINT64) {
          const v = longs[i];
          dv.setUint32(i * 8, typeof v === 'number' ? v >>> 0 : v.low >>> 0, true);
          dv.setUint32(i * 8 + 4, typeof v === 'number' ? Math.floor(v / 4294967296) >>> 0 : v.high >>> 0, true);
        } else if (dataType === DT.UINT32) {
          const v = longs[i];
          dv.setUint32(i * 4, typeof v === 'number' ? v >>> 0 : v.low >>> 0, true);
        } else if (size === 4) dv.setInt32(i * 4, ints[i], true);
        else if (size === 2) dv.setUint16(i * 2, ints[i] & 0xffff, true);
        else dv.setUint8(i, ints[i] & 0xff);
      }
      bytes = Array.from(new Uint8Array(dv.buffer));
    }
    return { name: t.name ?? '', dataType, dims, data: { kind: 'bytes', bytes } };
  };
  const vi = (v: proto.IValueInfoProto): OnnxValueInfo => {
    const out: OnnxValueInfo = { name: v.name ?? '' };
    const tt = v.type?.tensorType;
    if (v.type && has(v.type, 'tensorType') && tt) {
      if (has(tt, 'elemType')) out.elemType = tt.elemType ?? 0;
      if (has(tt, 'shape') && tt.shape) {
        out.shape = (tt.shape.dim ?? []).map((d) =>
          has(d, 'dimValue') ? num(d.dimValue as number | LongLike) : has(d, 'dimParam') ? (d.dimParam ?? '') : null,
        );
      }
    }
    return out;
  };
  const T = onnx.AttributeProto.AttributeType;
  const attribute = (a: proto.IAttributeProto): NormAttr => {
    switch (a.type) {
      case T.FLOAT:
        return { type: 'float', value: a.f ?? 0 };
      case T.INT:
        return { type: 'int', value: num(a.i as number | LongLike) };
      case T.STRING:
        return { type: 'string', value: utf8.decode(a.s ?? new Uint8Array(0)) };
      case T.FLOATS:
        return { type: 'floats', value: a.floats ?? [] };
      case T.INTS:
        return { type: 'ints', value: (a.ints ?? []).map((v) => num(v as number | LongLike)) };
      case T.STRINGS:
        return { type: 'strings', value: (a.strings ?? []).map((s) => utf8.decode(s)) };
      case T.TENSOR:
        return { type: 'tensor', value: tensor(a.t!) };
      case T.GRAPH:
        return { type: 'graph', value: graph(a.g!) };
      case T.TENSORS:
        return { type: 'tensors', value: (a.tensors ?? []).map(tensor) };
      case T.GRAPHS:
        return { type: 'graphs', value: (a.graphs ?? []).map(graph) };
      default:
        throw new Error(`normalizeDecodedModel: attribute type ${a.type} not covered`);
    }
  };
  const graph = (g: proto.IGraphProto): NormGraph => ({
    name: g.name ?? '',
    nodes: (g.node ?? []).map((n) => ({
      name: n.name ?? '',
      opType: n.opType ?? '',
      domain: n.domain ?? '',
      inputs: n.input ?? [],
      outputs: n.output ?? [],
      attributes: Object.fromEntries((n.attribute ?? []).map((a) => [a.name ?? '', attribute(a)])),
    })),
    initializers: (g.initializer ?? []).map(tensor),
    inputs: (g.input ?? []).map(vi),
    outputs: (g.output ?? []).map(vi),
    valueInfo: (g.valueInfo ?? []).map(vi),
  });
  return {
    irVersion: num(m.irVersion as number | LongLike),
    producerName: m.producerName ?? '',
    opsetImports: (m.opsetImport ?? []).map((o) => ({ domain: o.domain ?? '', version: num(o.version as number | LongLike) })),
    graph: graph(m.graph!),
  };
}
