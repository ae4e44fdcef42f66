/**
 * Malformed input: hundreds of generated broken files. Each must either parse (a flipped byte in a
 * payload can leave a valid file) or throw an AppError with an ONNX_* code: never another
 * exception, never a hang. Cases are deterministic (seeded), so a failure is reproducible by name.
 */
import { describe, expect, it } from 'vitest';
import { AppError } from '../errors';
import { readOnnxModel } from './reader';
import { bytesSource } from './sources';
import { readTensorBytes } from './tensor-data';
import { DT, WireWriter, attr, encodeModel, node, onnx, rawTensor, rng, sampleModel, type proto } from './testing/build-model';
import type { OnnxGraph, OnnxTensorInfo } from './types';

const CODES = ['ONNX_TRUNCATED', 'ONNX_MALFORMED', 'ONNX_UNSUPPORTED'];
const CASE_LIMIT_MS = 2000;

type Outcome = { ok: true } | { ok: false; code: string };

function tensorsOf(graph: OnnxGraph): OnnxTensorInfo[] {
  const out = [...graph.initializers];
  for (const n of graph.nodes) {
    for (const a of Object.values(n.attributes)) {
      if (a.type === 'tensor') out.push(a.value);
      else if (a.type === 'graph') out.push(...tensorsOf(a.value));
    }
  }
  return out;
}

/** Parses, then reads every tensor (external files resolve to 8 KiB of zeros). */
async function attempt(bytes: Uint8Array): Promise<Outcome> {
  const external = bytesSource(new Uint8Array(8192)); // as long as sampleModel's external file
  const run = async (): Promise<Outcome> => {
    const model = await readOnnxModel(bytesSource(bytes), { windowBytes: 64 + (bytes.length % 200) });
    for (const t of tensorsOf(model.graph)) await readTensorBytes(t, (f) => (f === null ? bytesSource(bytes) : external));
    return { ok: true };
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`case did not finish within ${CASE_LIMIT_MS} ms`)), CASE_LIMIT_MS);
  });
  const started = performance.now();
  try {
    return await Promise.race([run(), timeout]);
  } catch (err) {
    if (err instanceof AppError && CODES.includes(err.code)) return { ok: false, code: err.code };
    throw err; // any other exception fails the case
  } finally {
    clearTimeout(timer);
    expect(performance.now() - started).toBeLessThan(CASE_LIMIT_MS);
  }
}

interface Case {
  name: string;
  bytes: Uint8Array;
  /** Codes this case may end with; 'ok' means it may also parse. */
  allow: Array<string>;
}

const base = sampleModel(3).bytes;
const models = (g: proto.IGraphProto) => encodeModel({ irVersion: 8, graph: g });
const wrapGraph = (build: (g: WireWriter) => void) => new WireWriter().int(1, 8).message(7, build).finish();
const wrapNode = (nodeBytes: Uint8Array) => wrapGraph((g) => g.bytes(1, nodeBytes));

function cases(): Case[] {
  const out: Case[] = [];
  const any = ['ok', ...CODES];
  const r = rng(12345);

  // 1. Truncations of a whole file at many offsets.
  for (let i = 0; i < 100; i++) {
    const at = i < 30 ? i : Math.floor(((i - 30) / 70) * base.length) + 1;
    out.push({ name: `truncate file at ${at}`, bytes: base.slice(0, Math.min(at, base.length - 1)), allow: any });
  }
  // 2. Truncations inside nested messages, with the enclosing lengths kept consistent.
  const allAttrsNode = new Uint8Array(onnx.NodeProto.encode(
    node('AllAttributes', ['x'], ['y'], [
      attr.float('f', 1),
      attr.ints('ints', [1, -2, 3]),
      attr.strings('strings', ['a', 'bc']),
      attr.tensor('t', rawTensor('t', DT.FLOAT, [2], new Uint8Array(8))),
      attr.graph('g', { node: [node('Relu', ['a'], ['b'])], input: [{ name: 'a', type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'n' }] } } } }] }),
    ]),
  ).finish());
  for (let at = 0; at < allAttrsNode.length; at += Math.max(1, Math.floor(allAttrsNode.length / 40))) {
    out.push({ name: `node cut at ${at} inside a valid graph`, bytes: wrapNode(allAttrsNode.slice(0, at)), allow: any });
  }
  // 3. Flipped bytes at many positions.
  for (let i = 0; i < 150; i++) {
    const at = Math.floor(r() * base.length);
    const bytes = base.slice();
    const mask = 1 + Math.floor(r() * 255);
    bytes[at] ^= mask;
    out.push({ name: `flip byte ${at} ^ ${mask}`, bytes, allow: any });
  }
  for (let i = 0; i < 30; i++) {
    const bytes = base.slice();
    const n = 2 + Math.floor(r() * 20);
    for (let k = 0; k < n; k++) bytes[Math.floor(r() * bytes.length)] = Math.floor(r() * 256);
    out.push({ name: `${n} random bytes, seed case ${i}`, bytes, allow: any });
  }
  for (const value of [0x00, 0x80, 0xff]) {
    for (let i = 0; i < 10; i++) {
      const at = Math.floor(r() * base.length);
      const bytes = base.slice();
      bytes[at] = value;
      out.push({ name: `byte ${at} set to ${value}`, bytes, allow: any });
    }
  }
  // 4. Random garbage.
  for (let i = 0; i < 20; i++) {
    const n = 1 + Math.floor(r() * 3000);
    const bytes = new Uint8Array(n);
    for (let k = 0; k < n; k++) bytes[k] = Math.floor(r() * 256);
    out.push({ name: `garbage ${n} bytes`, bytes, allow: any });
  }
  // 5. Lengths past the end.
  out.push({ name: 'graph longer than the file', bytes: new WireWriter().tag(7, 2).varint(1000).raw([10, 0]).finish(), allow: ['ONNX_TRUNCATED'] });
  out.push({
    name: 'node longer than its graph',
    bytes: new WireWriter().tag(7, 2).varint(4).tag(1, 2).varint(50).raw([0, 0]).raw(new Uint8Array(60)).finish(),
    allow: ['ONNX_MALFORMED'],
  });
  out.push({ name: 'name length 2^50', bytes: wrapGraph((g) => g.tag(2, 2).varint(2n ** 50n).raw([65])), allow: ['ONNX_MALFORMED', 'ONNX_TRUNCATED'] });
  out.push({ name: 'name length 2^60', bytes: wrapGraph((g) => g.tag(2, 2).varint(2n ** 60n).raw([65])), allow: ['ONNX_MALFORMED'] });
  out.push({ name: 'raw_data longer than its tensor', bytes: wrapGraph((g) => g.message(5, (t) => t.int(2, 2).tag(9, 2).varint(100).raw([1, 2])).string(2, 'after')), allow: ['ONNX_MALFORMED'] });
  out.push({ name: 'raw_data past end of file', bytes: new WireWriter().tag(7, 2).varint(2000).tag(5, 2).varint(1990).int(2, 2).tag(9, 2).varint(1900).finish(), allow: ['ONNX_TRUNCATED'] });
  out.push({ name: 'packed dims cut mid-varint', bytes: wrapGraph((g) => g.message(5, (t) => t.tag(1, 2).varint(2).raw([0x80, 0x80]))), allow: ['ONNX_MALFORMED'] });
  out.push({ name: 'packed floats not a multiple of 4', bytes: wrapGraph((g) => g.message(5, (t) => t.int(1, 1).int(2, 1).bytes(4, [0, 0, 0]))), allow: ['ONNX_MALFORMED'] });
  // 6. Huge and broken varints.
  out.push({ name: '11-byte varint', bytes: new WireWriter().tag(1, 0).raw([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).finish(), allow: ['ONNX_MALFORMED'] });
  out.push({ name: '10th varint byte > 1', bytes: new WireWriter().tag(1, 0).raw([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]).finish(), allow: ['ONNX_MALFORMED'] });
  out.push({ name: 'varint cut by end of file', bytes: new WireWriter().tag(1, 0).raw([0xff, 0xff]).finish(), allow: ['ONNX_TRUNCATED'] });
  out.push({ name: 'varint cut by end of message', bytes: wrapGraph((g) => g.tag(900, 0).raw([0xff])), allow: ['ONNX_MALFORMED'] });
  out.push({ name: 'tag above 2^32', bytes: new WireWriter().varint(2n ** 40n).varint(1).finish(), allow: ['ONNX_MALFORMED'] });
  out.push({ name: 'field number 0', bytes: new WireWriter().tag(0, 0).varint(1).finish(), allow: ['ONNX_MALFORMED'] });
  out.push({ name: 'dims of 2^62', bytes: wrapGraph((g) => g.message(5, (t) => t.int(1, 2n ** 62n).int(2, 1))), allow: ['ONNX_MALFORMED'] });
  out.push({ name: 'dims product overflows', bytes: wrapGraph((g) => g.message(5, (t) => t.int(1, 2 ** 40).int(1, 2 ** 40).int(2, 1))), allow: ['ONNX_MALFORMED'] });
  out.push({ name: 'negative dim', bytes: wrapGraph((g) => g.message(5, (t) => t.int(1, -3).int(2, 1))), allow: ['ONNX_MALFORMED'] });
  // 7. Wrong wire types, at every message we parse.
  const wrongWire: Array<[string, (g: WireWriter) => void]> = [
    ['node as varint', (g) => g.int(1, 3)],
    ['initializer as fixed32', (g) => g.fixed32(5, 3)],
    ['input as fixed64', (g) => g.double(11, 3)],
    ['graph name as varint', (g) => g.int(2, 3)],
    ['dims as fixed32', (g) => g.message(5, (t) => t.fixed32(1, 3))],
    ['data_type as LEN', (g) => g.message(5, (t) => t.bytes(2, [1]))],
    ['raw_data as varint', (g) => g.message(5, (t) => t.int(9, 1))],
    ['float_data as varint', (g) => g.message(5, (t) => t.int(4, 1))],
    ['int64_data as fixed32', (g) => g.message(5, (t) => t.fixed32(7, 1))],
    ['external_data as varint', (g) => g.message(5, (t) => t.int(13, 1))],
    ['op_type as varint', (g) => g.message(1, (n) => n.int(4, 1))],
    ['attribute as fixed64', (g) => g.message(1, (n) => n.double(5, 1))],
    ['attribute f as varint', (g) => g.message(1, (n) => n.message(5, (a) => a.string(1, 'x').int(2, 1)))],
    ['attribute i as LEN', (g) => g.message(1, (n) => n.message(5, (a) => a.string(1, 'x').bytes(3, [1])))],
    ['attribute floats as varint', (g) => g.message(1, (n) => n.message(5, (a) => a.string(1, 'x').int(7, 1)))],
    ['attribute g as varint', (g) => g.message(1, (n) => n.message(5, (a) => a.string(1, 'x').int(6, 1)))],
    ['value type as varint', (g) => g.message(11, (v) => v.int(2, 1))],
    ['shape as varint', (g) => g.message(11, (v) => v.message(2, (tp) => tp.message(1, (tt) => tt.int(2, 1))))],
    ['dim_value as LEN', (g) => g.message(11, (v) => v.message(2, (tp) => tp.message(1, (tt) => tt.message(2, (s) => s.message(1, (d) => d.bytes(1, [1]))))))],
  ];
  for (const [name, build] of wrongWire) out.push({ name: `wrong wire type: ${name}`, bytes: wrapGraph(build), allow: ['ONNX_MALFORMED'] });
  for (const wire of [3, 4, 6, 7]) {
    out.push({ name: `wire type ${wire} at top level`, bytes: new WireWriter().tag(50, wire).raw([0, 0, 0, 0, 0, 0, 0, 0]).finish(), allow: ['ONNX_MALFORMED'] });
    out.push({ name: `wire type ${wire} in a node`, bytes: wrapGraph((g) => g.message(1, (n) => n.tag(50, wire).raw([0, 0, 0, 0]))), allow: ['ONNX_MALFORMED'] });
  }
  // 8. Deep nesting: If inside If inside If ...
  const deep = (levels: number): Uint8Array => {
    let graph = new WireWriter().string(2, 'leaf').finish();
    for (let i = 0; i < levels; i++) {
      const inner = graph;
      graph = new WireWriter().message(1, (n) => n.string(4, 'If').message(5, (a) => a.string(1, 'then_branch').int(20, 5).bytes(6, inner))).finish();
    }
    return new WireWriter().bytes(7, graph).finish();
  };
  out.push({ name: 'subgraphs nested 8 deep parse', bytes: deep(8), allow: ['ok'] });
  out.push({ name: 'subgraphs nested 500 deep', bytes: deep(500), allow: ['ONNX_MALFORMED'] });
  // 9. Semantically broken tensors.
  const tensorCase = (name: string, t: proto.ITensorProto, allow: string[]) => out.push({ name, bytes: models({ initializer: [t] }), allow });
  tensorCase('no data_type', { name: 'w', dims: [1], rawData: new Uint8Array(4) }, ['ONNX_MALFORMED']);
  tensorCase('unknown data_type 99', { name: 'w', dataType: 99, dims: [1], rawData: new Uint8Array(4) }, ['ONNX_UNSUPPORTED']);
  tensorCase('data_location 2', { name: 'w', dataType: 1, dims: [1], rawData: new Uint8Array(4), dataLocation: 2 as proto.TensorProto.DataLocation }, ['ONNX_MALFORMED']);
  tensorCase('elements but no data', { name: 'w', dataType: 1, dims: [3] }, ['ONNX_MALFORMED']);
  tensorCase('float_data for an INT64 tensor', { name: 'w', dataType: DT.INT64, dims: [1], floatData: [1] }, ['ONNX_MALFORMED']);
  tensorCase('raw_data and float_data', { name: 'w', dataType: 1, dims: [1], floatData: [1], rawData: new Uint8Array(4) }, ['ONNX_MALFORMED']);
  tensorCase('typed count mismatch', { name: 'w', dataType: 1, dims: [3], floatData: [1, 2] }, ['ONNX_MALFORMED']);
  for (const [key, value] of [['offset', 'abc'], ['offset', '-1'], ['length', '99999999999999999999'], ['length', '7'], ['offset', '']]) {
    tensorCase(
      `external ${key}='${value}'`,
      { name: 'w', dataType: 1, dims: [2], dataLocation: 1, externalData: [{ key: 'location', value: 'x.onnx_data' }, { key, value }] },
      ['ONNX_MALFORMED'],
    );
  }
  tensorCase('external without location', { name: 'w', dataType: 1, dims: [2], dataLocation: 1, externalData: [{ key: 'offset', value: '0' }] }, ['ONNX_MALFORMED']);
  tensorCase(
    'external past the end of its file',
    { name: 'w', dataType: 1, dims: [4096], dataLocation: 1, externalData: [{ key: 'location', value: 'x.onnx_data' }] },
    ['ONNX_TRUNCATED'],
  );
  out.push({
    name: 'TENSOR attribute without a tensor',
    bytes: wrapGraph((g) => g.message(1, (n) => n.string(4, 'Constant').message(5, (a) => a.string(1, 'value').int(20, 4)))),
    allow: ['ONNX_MALFORMED'],
  });
  out.push({ name: 'no graph at all', bytes: new WireWriter().int(1, 8).string(2, 'x').finish(), allow: ['ONNX_MALFORMED'] });
  return out;
}

describe('malformed ONNX input', () => {
  const all = cases();

  it('has at least 200 generated cases', () => {
    expect(all.length).toBeGreaterThanOrEqual(200);
  });

  it('every case parses or throws a typed ONNX error, within the time limit', async () => {
    const tally: Record<string, number> = {};
    for (const c of all) {
      let outcome: Outcome;
      try {
        outcome = await attempt(c.bytes);
      } catch (err) {
        throw new Error(`case "${c.name}" threw a non-ONNX error: ${err instanceof Error ? err.stack : String(err)}`, { cause: err });
      }
      const key = outcome.ok ? 'ok' : outcome.code;
      tally[key] = (tally[key] ?? 0) + 1;
      if (!c.allow.includes(key)) throw new Error(`case "${c.name}" ended with ${key}, expected one of ${c.allow.join(', ')}`);
    }
    console.log(`malformed ONNX cases: ${all.length}`, tally);
    expect(tally.ONNX_TRUNCATED).toBeGreaterThan(50);
    expect(tally.ONNX_MALFORMED).toBeGreaterThan(50);
  });

  it('reports a file cut anywhere inside its graph as ONNX_TRUNCATED', async () => {
    // The graph field starts within the first bytes; any cut after its length prefix is a truncation.
    for (let at = 16; at < base.length; at += 37) {
      const outcome = await attempt(base.slice(0, at));
      expect(outcome, `cut at ${at}`).toEqual({ ok: false, code: 'ONNX_TRUNCATED' });
    }
  });
});
