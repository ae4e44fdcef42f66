/**
 * A minimal, streaming ONNX (onnx.proto, proto2 wire format) writer for the tiny-model generator.
 *
 * Nodes, attributes and value infos are small and encoded eagerly; initializers are lazy: their
 * byte length is known up front (so every enclosing length prefix can be written first) and their
 * bytes are produced chunk by chunk only while the file is written, one tensor at a time. Tensors
 * marked external go to the `_data` file with a bare file name as `location`, as Microsoft's files
 * do. Rule: a lazy tensor's `chunks()` must yield exactly `byteLength` bytes, or the file is
 * corrupt — `writeModel` checks this and throws.
 */

import { closeSync, openSync, writeSync } from 'node:fs';
import { basename } from 'node:path';

// ---- wire-format primitives -------------------------------------------------------------------

const WIRE_VARINT = 0;
const WIRE_FIXED32 = 5;
const WIRE_LEN = 2;

function varintBytes(value: number | bigint): number[] {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}

const textEncoder = new TextEncoder();

/** Builds one protobuf message in memory. */
export class Pb {
  private readonly parts: Uint8Array[] = [];
  private length = 0;

  raw(bytes: Uint8Array | number[]): this {
    const u = bytes instanceof Uint8Array ? bytes : Uint8Array.from(bytes);
    this.parts.push(u);
    this.length += u.length;
    return this;
  }
  tag(field: number, wire: number): this {
    return this.raw(varintBytes((field << 3) | wire));
  }
  varint(field: number, value: number | bigint): this {
    return this.tag(field, WIRE_VARINT).raw(varintBytes(value));
  }
  fixed32(field: number, value: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    return this.tag(field, WIRE_FIXED32).raw(b);
  }
  bytes(field: number, value: Uint8Array): this {
    return this.tag(field, WIRE_LEN).raw(varintBytes(value.length)).raw(value);
  }
  string(field: number, value: string): this {
    return this.bytes(field, textEncoder.encode(value));
  }
  message(field: number, msg: Pb): this {
    return this.bytes(field, msg.finish());
  }
  get byteLength(): number {
    return this.length;
  }
  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

// ---- ONNX model description --------------------------------------------------------------------

export const DataType = { FLOAT: 1, UINT8: 2, INT32: 6, INT64: 7, BOOL: 9, FLOAT16: 10 } as const;

/** A tensor whose bytes are produced on demand. */
export interface LazyTensor {
  name: string;
  dataType: number;
  dims: number[];
  byteLength: number;
  /** Stored in the external `_data` file instead of inline `raw_data`. */
  external: boolean;
  chunks: () => Iterable<Uint8Array>;
}

export type AttrValue =
  | { int: number }
  | { float: number }
  | { string: string }
  | { ints: number[] }
  | { floats: number[] }
  | { tensor: LazyTensor }
  | { graph: GraphSpec };

export interface NodeSpec {
  name: string;
  opType: string;
  domain?: string;
  inputs: string[];
  outputs: string[];
  attributes?: Record<string, AttrValue>;
}

export interface ValueInfoSpec {
  name: string;
  elemType: number;
  /** Number for a fixed dim, string for a symbolic one. */
  shape: Array<number | string>;
}

export interface GraphSpec {
  name: string;
  nodes: NodeSpec[];
  initializers: LazyTensor[];
  inputs: ValueInfoSpec[];
  outputs: ValueInfoSpec[];
}

export interface ModelSpec {
  irVersion: number;
  producerName: string;
  opsets: Array<{ domain: string; version: number }>;
  graph: GraphSpec;
}

function collect(t: LazyTensor): Uint8Array {
  const out = new Uint8Array(t.byteLength);
  let o = 0;
  for (const c of t.chunks()) {
    if (o + c.length > out.length) throw new Error(`tensor ${t.name} yields more than ${t.byteLength} bytes`);
    out.set(c, o);
    o += c.length;
  }
  if (o !== out.length) throw new Error(`tensor ${t.name} yields ${o} bytes, expected ${t.byteLength}`);
  return out;
}

/** TensorProto fields 1, 2, 8 (dims, data_type, name), in field order. */
function tensorHeader(t: LazyTensor): Pb {
  const pb = new Pb();
  for (const d of t.dims) pb.varint(1, d);
  pb.varint(2, t.dataType);
  pb.string(8, t.name);
  return pb;
}

/** A whole inline TensorProto (used for Constant/attribute tensors, which are small). */
function inlineTensor(t: LazyTensor): Pb {
  return tensorHeader(t).bytes(9, collect(t));
}

function externalTensor(t: LazyTensor, location: string, offset: number): Pb {
  const pb = tensorHeader(t);
  const entry = (k: string, v: string): Pb => new Pb().string(1, k).string(2, v);
  pb.message(13, entry('location', location));
  pb.message(13, entry('offset', String(offset)));
  pb.message(13, entry('length', String(t.byteLength)));
  pb.varint(14, 1);
  return pb;
}

const ATTR = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7 } as const;

function attribute(name: string, v: AttrValue): Pb {
  const pb = new Pb().string(1, name);
  if ('int' in v) return pb.varint(3, v.int).varint(20, ATTR.INT);
  if ('float' in v) return pb.fixed32(2, v.float).varint(20, ATTR.FLOAT);
  if ('string' in v) return pb.string(4, v.string).varint(20, ATTR.STRING);
  if ('tensor' in v) return pb.message(5, inlineTensor(v.tensor)).varint(20, ATTR.TENSOR);
  if ('graph' in v) return pb.message(6, encodeSubgraph(v.graph)).varint(20, ATTR.GRAPH);
  if ('floats' in v) {
    for (const f of v.floats) pb.fixed32(7, f);
    return pb.varint(20, ATTR.FLOATS);
  }
  for (const i of v.ints) pb.varint(8, i);
  return pb.varint(20, ATTR.INTS);
}

function node(n: NodeSpec): Pb {
  const pb = new Pb();
  for (const i of n.inputs) pb.string(1, i);
  for (const o of n.outputs) pb.string(2, o);
  pb.string(3, n.name).string(4, n.opType);
  for (const [k, v] of Object.entries(n.attributes ?? {})) pb.message(5, attribute(k, v));
  if (n.domain) pb.string(7, n.domain);
  return pb;
}

function valueInfo(v: ValueInfoSpec): Pb {
  const shape = new Pb();
  for (const d of v.shape) shape.message(1, typeof d === 'number' ? new Pb().varint(1, d) : new Pb().string(2, d));
  const tensorType = new Pb().varint(1, v.elemType).message(2, shape);
  return new Pb().string(1, v.name).message(2, new Pb().message(1, tensorType));
}

/** Subgraphs (If branches) are small: encoded whole, initializers inline. */
function encodeSubgraph(g: GraphSpec): Pb {
  const pb = new Pb();
  for (const n of g.nodes) pb.message(1, node(n));
  pb.string(2, g.name);
  for (const t of g.initializers) pb.message(5, inlineTensor(t));
  for (const v of g.inputs) pb.message(11, valueInfo(v));
  for (const v of g.outputs) pb.message(12, valueInfo(v));
  return pb;
}

// ---- streaming file writer ----------------------------------------------------------------------

/** Buffers small writes into 4 MiB blocks; large chunks go straight through. */
class FileSink {
  private readonly fd: number;
  private readonly buf = new Uint8Array(4 << 20);
  private used = 0;
  written = 0;
  constructor(path: string) {
    this.fd = openSync(path, 'w');
  }
  write(bytes: Uint8Array): void {
    this.written += bytes.length;
    if (bytes.length > this.buf.length / 2) {
      this.flush();
      let o = 0;
      while (o < bytes.length) o += writeSync(this.fd, bytes, o, bytes.length - o);
      return;
    }
    if (this.used + bytes.length > this.buf.length) this.flush();
    this.buf.set(bytes, this.used);
    this.used += bytes.length;
  }
  flush(): void {
    let o = 0;
    while (o < this.used) o += writeSync(this.fd, this.buf, o, this.used - o);
    this.used = 0;
  }
  close(): void {
    this.flush();
    closeSync(this.fd);
  }
}

const lenPrefixSize = (n: number): number => varintBytes(n).length;
const fieldSize = (field: number, len: number): number => varintBytes((field << 3) | WIRE_LEN).length + lenPrefixSize(len) + len;

/**
 * Writes `model` to `onnxPath`; tensors with `external` go to `dataPath` (its bare file name is
 * the recorded location). Returns the two file sizes.
 */
export function writeModel(model: ModelSpec, onnxPath: string, dataPath: string): { onnxBytes: number; dataBytes: number } {
  const g = model.graph;
  const location = basename(dataPath);

  // Plan: encode everything except inline tensor payloads, and lay out the external file.
  const nodeBytes = g.nodes.map((n) => node(n).finish());
  let dataOffset = 0;
  const inits = g.initializers.map((t) => {
    if (t.external) {
      const bytes = externalTensor(t, location, dataOffset).finish();
      dataOffset += t.byteLength;
      return { t, header: bytes, payload: 0 };
    }
    const header = tensorHeader(t).finish();
    return { t, header, payload: fieldSize(9, t.byteLength) - t.byteLength };
  });
  const tail = new Pb();
  for (const v of g.inputs) tail.message(11, valueInfo(v));
  for (const v of g.outputs) tail.message(12, valueInfo(v));
  const tailBytes = tail.finish();
  const nameBytes = new Pb().string(2, g.name).finish();

  let graphLen = nameBytes.length + tailBytes.length;
  for (const b of nodeBytes) graphLen += fieldSize(1, b.length);
  const initLens = inits.map((i) => i.header.length + (i.t.external ? 0 : i.payload + i.t.byteLength));
  for (const l of initLens) graphLen += fieldSize(5, l);

  const onnx = new FileSink(onnxPath);
  const data = new FileSink(dataPath);
  try {
    const head = new Pb().varint(1, model.irVersion).string(2, model.producerName).tag(7, WIRE_LEN).raw(varintBytes(graphLen));
    onnx.write(head.finish());
    for (const b of nodeBytes) onnx.write(new Pb().bytes(1, b).finish());
    onnx.write(nameBytes);
    inits.forEach((i, idx) => {
      onnx.write(new Pb().tag(5, WIRE_LEN).raw(varintBytes(initLens[idx])).finish());
      onnx.write(i.header);
      const sink = i.t.external ? data : onnx;
      if (!i.t.external) sink.write(new Pb().tag(9, WIRE_LEN).raw(varintBytes(i.t.byteLength)).finish());
      let n = 0;
      for (const c of i.t.chunks()) {
        sink.write(c);
        n += c.length;
      }
      if (n !== i.t.byteLength) throw new Error(`tensor ${i.t.name} yields ${n} bytes, expected ${i.t.byteLength}`);
    });
    onnx.write(tailBytes);
    const opsets = new Pb();
    for (const o of model.opsets) opsets.message(8, new Pb().string(1, o.domain).varint(2, o.version));
    onnx.write(opsets.finish());
  } finally {
    onnx.close();
    data.close();
  }
  return { onnxBytes: onnx.written, dataBytes: data.written };
}
