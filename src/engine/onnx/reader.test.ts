import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AppError } from '../errors';
import { nodeFileSource } from './node-source';
import { readOnnxModel } from './reader';
import { blobSource, bytesSource, countingSource } from './sources';
import { readTensorBytes, streamTensorBytes } from './tensor-data';
import {
  DT,
  EXTERNAL_FILE,
  WireWriter,
  bigInlineModel,
  encodeModel,
  normalizeDecodedModel,
  normalizeReaderModel,
  rawTensor,
  sampleModel,
  onnx,
} from './testing/build-model';
import type { OnnxGraph, OnnxModel, OnnxTensorInfo } from './types';

function allTensors(graph: OnnxGraph): OnnxTensorInfo[] {
  const out = [...graph.initializers];
  for (const n of graph.nodes) {
    for (const a of Object.values(n.attributes)) {
      if (a.type === 'tensor') out.push(a.value);
      else if (a.type === 'tensors') out.push(...a.value);
      else if (a.type === 'graph') out.push(...allTensors(a.value));
      else if (a.type === 'graphs') for (const g of a.value) out.push(...allTensors(g));
    }
  }
  return out;
}

async function expectAppError(p: Promise<unknown>, code: string): Promise<AppError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AppError);
  expect((err as AppError).code).toBe(code);
  return err as AppError;
}

describe('readOnnxModel cross-checked against onnx-proto', () => {
  const { bytes, external } = sampleModel();

  it('matches the general-purpose decoder exactly (graph, attributes, tensors and their bytes)', async () => {
    const model = await readOnnxModel(bytesSource(bytes));
    const decoded = onnx.ModelProto.decode(bytes);
    expect(normalizeReaderModel(model, bytes)).toEqual(normalizeDecodedModel(decoded));
  });

  it('gives the same result whatever the window size', async () => {
    const reference = await readOnnxModel(bytesSource(bytes));
    for (const windowBytes of [64, 65, 100, 333, 4096]) {
      const counted = countingSource(bytesSource(bytes));
      const model = await readOnnxModel(counted, { windowBytes });
      expect(model).toEqual(reference);
      expect(counted.stats.largestRead).toBeLessThanOrEqual(windowBytes);
    }
  });

  it('reads the Phi-3 shaped details', async () => {
    const model = await readOnnxModel(bytesSource(bytes));
    expect(model.irVersion).toBe(8);
    expect(model.producerName).toBe('onnxruntime-genai');
    expect(model.opsetImports).toEqual([
      { domain: '', version: 14 },
      { domain: 'com.microsoft', version: 1 },
    ]);
    const g = model.graph;
    expect(g.inputs[0]).toEqual({ name: 'input_ids', elemType: DT.INT64, shape: ['batch_size', 'sequence_length'] });
    expect(g.inputs[2].shape).toEqual(['batch_size', 32, 'past_sequence_length', 96]);
    expect(g.outputs.find((o) => o.name === 'unknown_rank')).toEqual({ name: 'unknown_rank', elemType: DT.FLOAT });
    expect(g.outputs.find((o) => o.name === 'scalar_out')?.shape).toEqual([]);
    expect(g.outputs.find((o) => o.name === 'unknown_dim')?.shape).toEqual([null, 3]);
    expect(g.valueInfo?.[0].shape).toEqual(['batch_size', 'sequence_length', 8]);

    const mm = g.nodes.find((n) => n.opType === 'MatMulNBits')!;
    expect(mm.domain).toBe('com.microsoft');
    expect(mm.attributes.block_size).toEqual({ type: 'int', value: 16 });
    const gqa = g.nodes.find((n) => n.opType === 'GroupQueryAttention')!;
    expect(gqa.inputs.slice(0, 3)).toEqual(['qkv', '', '']);
    expect(gqa.attributes.local_window_size).toEqual({ type: 'int', value: -1 });

    const all = g.nodes.find((n) => n.opType === 'AllAttributes')!.attributes;
    expect(all.i_big).toEqual({ type: 'int', value: 2 ** 40 + 3 });
    expect(all.i_extremes).toEqual({ type: 'ints', value: [2 ** 63, -(2 ** 63), 0, -7] });
    expect(all.s).toEqual({ type: 'string', value: 'héllo ✓ 世界' });
    expect(all.floats_empty).toEqual({ type: 'floats', value: [] });
    expect(all.f).toEqual({ type: 'float', value: Math.fround(-0.1) });

    const ifNode = g.nodes.find((n) => n.opType === 'If')!;
    const thenBranch = ifNode.attributes.then_branch;
    const elseBranch = ifNode.attributes.else_branch;
    if (thenBranch.type !== 'graph' || elseBranch.type !== 'graph') throw new Error('If branches must be graphs');
    expect(thenBranch.value.nodes.map((n) => n.outputs[0])).toEqual(['cos_cache_large', 'sin_cache_large']);
    expect(elseBranch.value.initializers.map((t) => t.name)).toEqual(['else_local']);
    const cos = thenBranch.value.nodes[0].attributes.value;
    if (cos.type !== 'tensor') throw new Error('Constant value must be a tensor');
    expect(cos.value.location).toMatchObject({ kind: 'inline', length: 64 });
    expect(cos.value.dims).toEqual([8, 4]);

    const byName = new Map(g.initializers.map((t) => [t.name, t]));
    expect(byName.get('model.layers.0.mlp.down_proj.MatMulNBits.qweight')!.location).toEqual({
      kind: 'external',
      file: EXTERNAL_FILE,
      offset: 0,
      length: 128,
    });
    // length absent: computed from dims (16*2*16 uint8)
    expect(byName.get('lm_head.MatMulNBits.qweight')!.location).toEqual({ kind: 'external', file: EXTERNAL_FILE, offset: 4096, length: 512 });
    expect(byName.get('model.embed_tokens.weight')!.location).toMatchObject({ kind: 'inline', length: 256 });
    const fp16 = byName.get('fp16_in_int32_data')!.location;
    expect(fp16.kind === 'embedded' && Array.from(new Uint16Array(fp16.bytes.slice().buffer))).toEqual([0x3c00, 0xc000, 0x7bff, 0x0001]);
    const i64 = byName.get('int64_data')!.location;
    expect(i64.kind === 'embedded' && Array.from(new BigInt64Array(i64.bytes.slice().buffer))).toEqual([
      1n,
      -1n,
      9007199254740993n,
      -9223372036854775808n,
    ]);
    expect(byName.get('empty_int64')!.location).toEqual({ kind: 'embedded', bytes: new Uint8Array(0) });
  });

  it('is plain structured-clone data', async () => {
    const model = await readOnnxModel(bytesSource(bytes));
    expect(structuredClone(model)).toEqual(model);
  });

  it('readTensorBytes and streamTensorBytes return every tensor exactly', async () => {
    const model = await readOnnxModel(bytesSource(bytes));
    const decoded = normalizeDecodedModel(onnx.ModelProto.decode(bytes));
    const resolve = (file: string | null) => {
      if (file === null) return bytesSource(bytes);
      if (file === EXTERNAL_FILE) return bytesSource(external);
      throw new Error(`unexpected file ${file}`);
    };
    const tensors = allTensors(model.graph);
    expect(tensors.length).toBeGreaterThan(25);
    for (const t of tensors) {
      const got = await readTensorBytes(t, resolve);
      const loc = t.location;
      const want =
        loc.kind === 'external' ? external.subarray(loc.offset, loc.offset + loc.length) : loc.kind === 'inline' ? bytes.subarray(loc.offset, loc.offset + loc.length) : loc.bytes;
      expect(Array.from(got)).toEqual(Array.from(want));
      const chunks: Uint8Array[] = [];
      for await (const c of streamTensorBytes(t, resolve, 7)) chunks.push(c);
      expect(chunks.every((c) => c.byteLength <= 7)).toBe(true);
      expect(Array.from(chunks.flatMap((c) => Array.from(c)))).toEqual(Array.from(got));
    }
    // initializers of the decoded model agree too (names, order, bytes)
    const resolvedInline = tensors.length; // sanity: the normalised cross-check above covers values
    expect(resolvedInline).toBeGreaterThan(0);
    expect(model.graph.initializers.map((t) => t.name)).toEqual(decoded.graph.initializers.map((t) => t.name));
  });

  it('reports a short external data file as ONNX_TRUNCATED', async () => {
    const model = await readOnnxModel(bytesSource(bytes));
    const lmHead = model.graph.initializers.find((t) => t.name === 'lm_head.MatMulNBits.qweight')!;
    const err = await expectAppError(
      readTensorBytes(lmHead, (f) => bytesSource(f === null ? bytes : external.subarray(0, 4200))),
      'ONNX_TRUNCATED',
    );
    expect(err.message).toContain(EXTERNAL_FILE);
  });
});

describe('wire-format details', () => {
  /** One graph, written by hand, with the given initializer and node bytes. */
  function handModel(build: (graph: WireWriter) => void): Uint8Array {
    return new WireWriter()
      .int(1, 7)
      .message(7, build)
      .message(8, (o) => o.string(1, '').int(2, 13))
      .finish();
  }

  it('accepts unpacked repeated fields, as older exporters wrote them', async () => {
    const bytes = handModel((g) =>
      g
        .message(5, (t) =>
          t
            .int(1, 2)
            .int(1, 3) // dims unpacked
            .int(2, DT.FLOAT)
            .float(4, 1)
            .float(4, 2)
            .float(4, 3)
            .float(4, 4)
            .float(4, 5)
            .float(4, 6) // float_data unpacked
            .string(8, 'w'),
        )
        .message(5, (t) => t.int(1, 2).int(2, DT.INT64).int(7, -5).int(7, 2n ** 62n).string(8, 'i64'))
        .message(5, (t) => t.int(1, 1).int(2, DT.DOUBLE).double(10, 0.125).string(8, 'f64'))
        .message(5, (t) => t.int(1, 2).int(2, DT.UINT64).int(11, 1).int(11, 2n ** 64n - 1n).string(8, 'u64'))
        .message(1, (n) =>
          n
            .string(1, 'w')
            .string(2, 'y')
            .string(4, 'Foo')
            .message(5, (a) => a.string(1, 'ints').int(20, 7).int(8, 1).int(8, -2))
            .message(5, (a) => a.string(1, 'floats').int(20, 6).float(7, 0.5).float(7, -1)),
        ),
    );
    const model = await readOnnxModel(bytesSource(bytes));
    expect(normalizeReaderModel(model, bytes)).toEqual(normalizeDecodedModel(onnx.ModelProto.decode(bytes)));
    expect(model.graph.initializers[0].dims).toEqual([2, 3]);
    expect(model.graph.nodes[0].attributes).toEqual({
      ints: { type: 'ints', value: [1, -2] },
      floats: { type: 'floats', value: [0.5, -1] },
    });
  });

  it('skips unknown fields of every wire type at every level', async () => {
    const unknown = (w: WireWriter) => w.int(900, 5).double(901, 1).string(902, 'x').fixed32(903, 9);
    const bytes = new WireWriter()
      .int(1, 8)
      .message(7, (g) => {
        unknown(g);
        g.message(5, (t) => unknown(t.int(1, 2).int(2, DT.UINT8).bytes(9, [1, 2]).string(8, 'u8')));
        g.message(1, (n) => unknown(n.string(4, 'Op').message(5, (a) => unknown(a.string(1, 'k').int(20, 2).int(3, 5)))));
        g.message(11, (v) => unknown(v.string(1, 'in').message(2, (tp) => unknown(tp.message(1, (tt) => unknown(tt.int(1, 1)))))));
      })
      .finish();
    const model = await readOnnxModel(bytesSource(bytes));
    expect(normalizeReaderModel(model, bytes)).toEqual(normalizeDecodedModel(onnx.ModelProto.decode(bytes)));
    expect(model.graph.nodes[0].attributes.k).toEqual({ type: 'int', value: 5 });
  });

  it('infers a missing attribute type from the field present (IR version 1 files)', async () => {
    const bytes = handModel((g) =>
      g.message(1, (n) =>
        n
          .string(4, 'Op')
          .message(5, (a) => a.string(1, 'alpha').float(2, 0.25))
          .message(5, (a) => a.string(1, 'axes').tag(8, 2).varint(2).varint(1).varint(2))
          .message(5, (a) => a.string(1, 'mode').string(4, 'constant')),
      ),
    );
    const model = await readOnnxModel(bytesSource(bytes));
    expect(model.graph.nodes[0].attributes).toEqual({
      alpha: { type: 'float', value: 0.25 },
      axes: { type: 'ints', value: [1, 2] },
      mode: { type: 'string', value: 'constant' },
    });
  });

  it('keeps an attribute named __proto__ as data', async () => {
    const bytes = handModel((g) => g.message(1, (n) => n.string(4, 'Op').message(5, (a) => a.string(1, '__proto__').int(20, 2).int(3, 1))));
    const model = await readOnnxModel(bytesSource(bytes));
    const attrs = model.graph.nodes[0].attributes;
    expect(Object.getPrototypeOf(attrs)).toBe(Object.prototype);
    expect(Object.keys(attrs)).toEqual(['__proto__']);
  });

  it('rejects string tensors, sparse initializers and segments as ONNX_UNSUPPORTED', async () => {
    const cases = [
      handModel((g) => g.message(5, (t) => t.int(1, 1).int(2, 8).bytes(6, [97]).string(8, 's'))),
      handModel((g) => g.message(15, (s) => s.int(3, 1))),
      handModel((g) => g.message(5, (t) => t.int(1, 1).int(2, 1).message(3, (s) => s.int(1, 0).int(2, 1)).bytes(9, [0, 0, 0, 0]))),
    ];
    for (const bytes of cases) await expectAppError(readOnnxModel(bytesSource(bytes)), 'ONNX_UNSUPPORTED');
  });

  it('rejects raw_data whose size does not match dims and dtype, naming the tensor', async () => {
    const bytes = encodeModel({ graph: { initializer: [rawTensor('bad.weight', DT.FLOAT, [2, 3], new Uint8Array(20))] } });
    const err = await expectAppError(readOnnxModel(bytesSource(bytes)), 'ONNX_MALFORMED');
    expect(err.message).toContain("'bad.weight'");
    expect(err.message).toContain('24');
  });

  it('refuses absurd amounts of list data instead of exhausting memory', async () => {
    // model > graph > node > attribute 'ints' with 40M packed varints (WireWriter is too slow for 40 MB)
    const concat = (...parts: Uint8Array[]) => {
      const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
      return out;
    };
    const field = (n: number, payload: Uint8Array) => concat(new WireWriter().tag(n, 2).varint(payload.length).finish(), payload);
    const hugeList = new Uint8Array(40 << 20).fill(1);
    const attribute = concat(new WireWriter().string(1, 'ints').int(20, 7).finish(), field(8, hugeList));
    const bytes = field(7, field(1, concat(new WireWriter().string(4, 'Op').finish(), field(5, attribute))));
    await expectAppError(readOnnxModel(bytesSource(bytes)), 'ONNX_UNSUPPORTED');
  });

  it('rejects external locations outside the model directory', async () => {
    for (const location of ['../secret', '/etc/passwd', 'C:\\x', 'a/../../b']) {
      const bytes = encodeModel({
        graph: {
          initializer: [
            { name: 'w', dataType: DT.UINT8, dims: [1], dataLocation: 1, externalData: [{ key: 'location', value: location }] },
          ],
        },
      });
      await expectAppError(readOnnxModel(bytesSource(bytes)), 'ONNX_MALFORMED');
    }
  });

  it('says what happened and what to do', async () => {
    const { bytes } = sampleModel();
    const truncated = await expectAppError(readOnnxModel(bytesSource(bytes.subarray(0, 300))), 'ONNX_TRUNCATED');
    expect(truncated.message).toMatch(/download/i);
    const wrongWire = handModel((g) => g.int(2, 5)); // graph name as a varint
    const malformed = await expectAppError(readOnnxModel(bytesSource(wrongWire)), 'ONNX_MALFORMED');
    expect(malformed.message).toMatch(/byte \d+/);
    expect(malformed.message).toContain('name');
    expect(malformed.message).toMatch(/download/i);
    await expectAppError(readOnnxModel(bytesSource(new Uint8Array(0))), 'ONNX_TRUNCATED');
    await expectAppError(readOnnxModel(bytesSource(new TextEncoder().encode('<!doctype html><html>Not found</html>'))), 'ONNX_MALFORMED');
  });
});

describe('streaming', () => {
  const RAW = 64 << 20;
  const WINDOW = 1 << 20;

  function checkBig(model: OnnxModel, file: Uint8Array | null) {
    const [before, big, after] = model.graph.initializers;
    expect(big.name).toBe('big_weight');
    expect(big.dims).toEqual([RAW]);
    expect(big.location.kind).toBe('inline');
    if (big.location.kind !== 'inline' || before.location.kind !== 'inline' || after.location.kind !== 'inline') return;
    expect(big.location.length).toBe(RAW);
    expect(after.location.offset).toBeGreaterThan(big.location.offset + RAW);
    if (file) {
      const expected = onnx.ModelProto.decode(file).graph!.initializer![1].rawData!;
      expect(Buffer.compare(file.subarray(big.location.offset, big.location.offset + RAW), expected)).toBe(0);
    }
  }

  it('scans a model with a 64 MiB inline tensor reading only a few KiB, never more than the window at once', async () => {
    const file = bigInlineModel(RAW);
    const counted = countingSource(bytesSource(file));
    const model = await readOnnxModel(counted, { windowBytes: WINDOW });
    checkBig(model, file);
    expect(counted.stats.largestRead).toBeLessThanOrEqual(WINDOW);
    expect(counted.stats.bytesRead).toBeLessThan(64 * 1024);
    expect(counted.stats.bytesRead).toBeLessThan(file.byteLength / 1000);

    // Streaming the tensor out: chunks of the requested size, never the whole tensor.
    const big = model.graph.initializers[1];
    const resolve = () => counted;
    const before = counted.stats.largestRead;
    let total = 0;
    let chunks = 0;
    for await (const chunk of streamTensorBytes(big, resolve, 4 << 20)) {
      expect(chunk.byteLength).toBeLessThanOrEqual(4 << 20);
      total += chunk.byteLength;
      chunks++;
    }
    expect(total).toBe(RAW);
    expect(chunks).toBe(16);
    expect(counted.stats.largestRead).toBe(Math.max(before, 4 << 20));
  });

  it('reads the same model from a Blob and from a Node file', async () => {
    const file = bigInlineModel(RAW);
    const fromBlob = countingSource(blobSource(new Blob([file as Uint8Array<ArrayBuffer>])));
    checkBig(await readOnnxModel(fromBlob), null);
    expect(fromBlob.stats.bytesRead).toBeLessThan(64 * 1024);

    const dir = await mkdtemp(join(tmpdir(), 'onnx-reader-'));
    try {
      const path = join(dir, 'big.onnx');
      await writeFile(path, file);
      const source = await nodeFileSource(path);
      try {
        const counted = countingSource(source);
        const model = await readOnnxModel(counted);
        checkBig(model, null);
        expect(counted.stats.bytesRead).toBeLessThan(64 * 1024);
        const small = await readTensorBytes(model.graph.initializers[2], () => source);
        const decoded = onnx.ModelProto.decode(file).graph!.initializer![2].rawData!;
        expect(Array.from(small)).toEqual(Array.from(decoded));
      } finally {
        await source.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  /**
   * A Phi-3 sized file without the memory: real protobuf headers, with each raw_data payload
   * served as zeros on demand. 3000 initializers of 280 kB (840 MB) and 2000 MatMulNBits nodes.
   */
  function virtualPhi3Sized(tensors: number, rawEach: number, nodes: number) {
    const segments: Array<{ start: number; bytes: Uint8Array | null; length: number }> = [];
    const rawOffsets: number[] = [];
    let size = 0;
    const push = (bytes: Uint8Array | null, length = bytes?.length ?? 0) => {
      segments.push({ start: size, bytes, length });
      size += length;
    };
    const headers: Uint8Array[] = [];
    let graphLength = 0;
    for (let i = 0; i < tensors; i++) {
      const header = new WireWriter().int(1, rawEach).int(2, DT.UINT8).string(8, `model.layers.${i % 32}.w${i}`).tag(9, 2).varint(rawEach).finish();
      const prefix = new WireWriter().tag(5, 2).varint(header.length + rawEach).finish();
      const both = new Uint8Array(prefix.length + header.length);
      both.set(prefix);
      both.set(header, prefix.length);
      headers.push(both);
      graphLength += both.length + rawEach;
    }
    const nodeBytes = new WireWriter();
    for (let i = 0; i < nodes; i++) {
      nodeBytes.message(1, (n) =>
        n
          .string(1, `x${i}`)
          .string(1, `model.layers.${i % 32}.w${i}`)
          .string(2, `y${i}`)
          .string(3, `/model/layers.${i % 32}/MatMulNBits_${i}`)
          .string(4, 'MatMulNBits')
          .string(7, 'com.microsoft')
          .message(5, (a) => a.string(1, 'K').int(20, 2).int(3, 3072))
          .message(5, (a) => a.string(1, 'N').int(20, 2).int(3, 8192))
          .message(5, (a) => a.string(1, 'block_size').int(20, 2).int(3, 32)),
      );
    }
    const tail = nodeBytes.finish();
    graphLength += tail.length;
    push(new WireWriter().int(1, 8).tag(7, 2).varint(graphLength).finish());
    for (const h of headers) {
      push(h);
      rawOffsets.push(size);
      push(null, rawEach);
    }
    push(tail);
    push(new WireWriter().message(8, (o) => o.string(1, 'com.microsoft').int(2, 1)).finish());
    const source = {
      size,
      async read(offset: number, length: number) {
        const out = new Uint8Array(Math.max(0, Math.min(length, size - offset)));
        let lo = 0;
        let hi = segments.length - 1;
        while (lo < hi) {
          const mid = (lo + hi + 1) >> 1;
          if (segments[mid].start <= offset) lo = mid;
          else hi = mid - 1;
        }
        for (let k = lo; k < segments.length && segments[k].start < offset + out.length; k++) {
          const seg = segments[k];
          if (seg.start + seg.length <= offset || !seg.bytes) continue;
          const from = Math.max(offset, seg.start);
          const to = Math.min(offset + out.length, seg.start + seg.length);
          out.set(seg.bytes.subarray(from - seg.start, to - seg.start), from - offset);
        }
        return out;
      },
    };
    return { source, rawOffsets };
  }

  it('scans an 840 MB file with 3000 inline tensors quickly, reading a few MB', async () => {
    const { source, rawOffsets } = virtualPhi3Sized(3000, 280_000, 2000);
    expect(source.size).toBeGreaterThan(838e6);
    const counted = countingSource(source);
    const started = performance.now();
    const model = await readOnnxModel(counted);
    const seconds = (performance.now() - started) / 1000;
    expect(model.graph.initializers).toHaveLength(3000);
    expect(model.graph.nodes).toHaveLength(2000);
    model.graph.initializers.forEach((t, i) => expect(t.location).toEqual({ kind: 'inline', offset: rawOffsets[i], length: 280_000 }));
    expect(model.graph.nodes[1999].attributes.N).toEqual({ type: 'int', value: 8192 });
    expect(model.opsetImports).toEqual([{ domain: 'com.microsoft', version: 1 }]);
    expect(counted.stats.largestRead).toBeLessThanOrEqual(1 << 20);
    expect(counted.stats.bytesRead).toBeLessThan(16 << 20);
    console.log(
      `virtual 840 MB scan: ${seconds.toFixed(2)} s, ${counted.stats.reads} reads, ${(counted.stats.bytesRead / 1e6).toFixed(1)} MB read`,
    );
    expect(seconds).toBeLessThan(10);
  });
});
