/**
 * Malformed models: a generated tiny Phi-3 is broken in many ways (initializers removed, dims and
 * dtypes changed, nodes removed, attributes changed, data files cut short, bytes flipped), and
 * every case must end in a typed AppError with a code — or load and run when the damage happens
 * not to matter — never another exception, never a hang. Runs on Dawn in Node.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateTinyModel } from '../../../tools/tiny-model/generate';
import { AppError } from '../errors';
import { testGpu } from '../gpu/testing';
import { bytesSource } from '../onnx/sources';
import { onnx, type proto } from '../onnx/testing/build-model';
import type { ByteSource } from '../onnx/types';
import { loadModelFiles, type ModelFiles } from './files';
import { float32ToFloat16Bits } from '../kernels/dequantize';

const root = mkdtempSync(join(tmpdir(), 'phi3-malformed-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let graphBytes: Uint8Array;
let dataBytes: Uint8Array;

beforeAll(async () => {
  const m = await generateTinyModel(join(root, 'base'), { layout: 'gqa', layers: 1, hidden: 64, heads: 4, intermediate: 96, vocab: 300, maxPositions: 64 });
  graphBytes = new Uint8Array(readFileSync(m.onnxPath));
  dataBytes = new Uint8Array(readFileSync(m.dataPath));
});

function filesOf(graph: Uint8Array, data: Uint8Array): ModelFiles {
  return {
    onnxPath: 'onnx/model_q4.onnx',
    async open(path: string): Promise<ByteSource> {
      if (path === 'onnx/model_q4.onnx') return bytesSource(graph);
      if (path === 'onnx/model_q4.onnx_data') return bytesSource(data);
      throw new AppError('MODEL_MISSING_WEIGHT', `no file ${path}`);
    },
    async readJson() {
      return undefined;
    },
  };
}

type Outcome = { ok: true } | { ok: false; code: string };

async function attempt(graph: Uint8Array, data: Uint8Array): Promise<Outcome> {
  const ctx = await testGpu();
  const work = (async (): Promise<Outcome> => {
    try {
      const { runtime } = await loadModelFiles(ctx, filesOf(graph, data), { maxContext: 32, maxPrefill: 8 });
      try {
        const logits = await runtime.logits([1, 2, 3]);
        expect(logits.length).toBe(runtime.plan.config.vocab);
      } finally {
        runtime.destroy();
      }
      return { ok: true };
    } catch (err) {
      if (err instanceof AppError) return { ok: false, code: err.code };
      throw new Error(`untyped failure: ${err instanceof Error ? err.stack : String(err)}`, { cause: err });
    }
  })();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('hang: no result within 20 s')), 20_000);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function decode(): proto.IModelProto {
  return onnx.ModelProto.decode(graphBytes) as proto.IModelProto;
}

function encode(m: proto.IModelProto): Uint8Array {
  return onnx.ModelProto.encode(m as proto.ModelProto).finish();
}

interface Mutation {
  name: string;
  graph: () => Uint8Array;
  data?: () => Uint8Array;
  /** Codes this damage may produce (every case must produce a typed error or run). */
  mustFail?: boolean;
}

function mutations(): Mutation[] {
  const out: Mutation[] = [];
  const base = decode();
  const inits = base.graph!.initializer!;
  const nodes = base.graph!.node!;
  for (let i = 0; i < inits.length; i++) {
    out.push({ name: `initializer ${inits[i].name} removed`, mustFail: true, graph: () => { const m = decode(); m.graph!.initializer!.splice(i, 1); return encode(m); } });
    out.push({ name: `initializer ${inits[i].name} dims doubled`, mustFail: true, graph: () => { const m = decode(); const t = m.graph!.initializer![i]; t.dims = [...(t.dims ?? [])].map((d, j) => (j === 0 ? Number(d) * 2 : Number(d))); return encode(m); } });
    out.push({ name: `initializer ${inits[i].name} dtype INT32`, graph: () => { const m = decode(); m.graph!.initializer![i].dataType = 6; return encode(m); } });
  }
  for (let i = 0; i < nodes.length; i++) {
    out.push({ name: `node ${nodes[i].opType} ${nodes[i].name} removed`, graph: () => { const m = decode(); m.graph!.node!.splice(i, 1); return encode(m); } });
    for (const a of nodes[i].attribute ?? []) {
      if (a.type !== onnx.AttributeProto.AttributeType.INT) continue;
      out.push({ name: `node ${nodes[i].name} attribute ${a.name} = 3`, graph: () => { const m = decode(); const at = m.graph!.node![i].attribute!.find((x) => x.name === a.name)!; at.i = 3; return encode(m); } });
    }
  }
  for (let k = 1; k <= 20; k++) {
    const cut = Math.floor((dataBytesLength() * k) / 21);
    out.push({ name: `external data cut to ${cut} bytes`, mustFail: true, graph: () => graphBytes, data: () => dataBytes.slice(0, cut) });
    const gcut = Math.floor((graphBytes.length * k) / 21);
    out.push({ name: `graph cut to ${gcut} bytes`, mustFail: true, graph: () => graphBytes.slice(0, gcut) });
  }
  for (let k = 0; k < 40; k++) {
    out.push({
      name: `graph byte flipped #${k}`,
      graph: () => {
        const g = graphBytes.slice();
        const at = Math.floor(((k * 7919) % 1000) / 1000 * g.length);
        g[at] ^= 0xa5;
        return g;
      },
    });
  }
  return out;
}

function dataBytesLength(): number {
  return dataBytes.length;
}

describe('malformed models give typed errors [gpu]', () => {
  it('at least 200 broken variants of a tiny Phi-3 each fail with a code or still run', async () => {
    const cases = mutations();
    expect(cases.length).toBeGreaterThanOrEqual(200);
    const codes = new Map<string, number>();
    let ran = 0;
    for (const c of cases) {
      const outcome = await attempt(c.graph(), c.data ? c.data() : dataBytes);
      if (outcome.ok) {
        if (c.mustFail) throw new Error(`${c.name}: loaded and ran, but this damage must be detected`);
        ran++;
        if (process.env.SHOW_RAN) console.log(`ran: ${c.name}`);
      } else codes.set(outcome.code, (codes.get(outcome.code) ?? 0) + 1);
    }
    console.log(`[node/webgpu] ${cases.length} malformed models: ${ran} still ran; typed errors ${JSON.stringify(Object.fromEntries(codes))}`);
    expect(ran).toBeLessThan(cases.length);
  }, 900_000);
});

describe('GroupQueryAttention attributes and inputs the kernels do not follow are refused [gpu]', () => {
  /** The base model with one more (or a changed) attribute on its GroupQueryAttention node. */
  const withAttribute = (a: proto.IAttributeProto) => {
    const m = decode();
    const node = m.graph!.node!.find((n) => n.opType === 'GroupQueryAttention')!;
    node.attribute = [...(node.attribute ?? []).filter((x) => x.name !== a.name), a];
    return encode(m);
  };
  const FLOAT = onnx.AttributeProto.AttributeType.FLOAT;
  const INT = onnx.AttributeProto.AttributeType.INT;
  for (const [what, attribute] of [
    ['softcap 30', { name: 'softcap', type: FLOAT, f: 30 }],
    ['smooth_softmax 1', { name: 'smooth_softmax', type: INT, i: 1 }],
    ['local_window_size 0', { name: 'local_window_size', type: INT, i: 0 }],
  ] as const) {
    it(what, async () => {
      expect(await attempt(withAttribute(attribute), dataBytes)).toEqual({ ok: false, code: 'MODEL_UNSUPPORTED_GRAPH' });
    });
  }
  /** The base model's GroupQueryAttention reading `name` at input `slot` (empty names before it). */
  const withInput = (slot: number, name: string) => {
    const m = decode();
    const node = m.graph!.node!.find((n) => n.opType === 'GroupQueryAttention')!;
    const inputs = [...(node.input ?? [])];
    while (inputs.length <= slot) inputs.push('');
    inputs[slot] = name;
    node.input = inputs;
    return encode(m);
  };
  for (const [what, slot] of [['an attention bias', 10], ['attention sinks', 11], ['a q norm', 14], ['a k norm', 15]] as const) {
    it(`${what} (input ${slot})`, async () => {
      const norm = decode().graph!.initializer!.find((t) => /norm/i.test(t.name ?? ''))!.name!;
      expect(await attempt(withInput(slot, norm), dataBytes)).toEqual({ ok: false, code: 'MODEL_UNSUPPORTED_GRAPH' });
    });
  }
  it('their neutral values (softcap 0, smooth_softmax 0, local_window_size -1 or past the rotary caches) and a small window load and run', async () => {
    for (const attribute of [{ name: 'softcap', type: FLOAT, f: 0 }, { name: 'smooth_softmax', type: INT, i: 0 }, { name: 'local_window_size', type: INT, i: -1 }, { name: 'local_window_size', type: INT, i: 262144 }, { name: 'local_window_size', type: INT, i: 1 }]) {
      expect(await attempt(withAttribute(attribute), dataBytes), attribute.name).toEqual({ ok: true });
    }
  });
});

describe('LongRoPE caches of two float types are refused [gpu]', () => {
  it('long caches stored as fp16 beside f32 short ones: MODEL_BAD_WEIGHT, naming the cache', async () => {
    const m = await generateTinyModel(join(root, 'longrope'), { layout: 'gqa-packed', context: '128k', maxPositions: 64, originalMaxPositions: 16, layers: 1, hidden: 64, heads: 4, kvHeads: 4, intermediate: 96, vocab: 300 });
    const graph = onnx.ModelProto.decode(new Uint8Array(readFileSync(m.onnxPath))) as proto.IModelProto;
    const ifNode = graph.graph!.node!.find((n) => n.opType === 'If')!;
    const longBranch = ifNode.attribute!.find((a) => a.name === 'then_branch')!.g!;
    for (const node of longBranch.node!) {
      const t = node.attribute!.find((a) => a.name === 'value')!.t!;
      const raw = t.rawData!;
      t.rawData = new Uint8Array(float32ToFloat16Bits(new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength))).buffer);
      t.dataType = onnx.TensorProto.DataType.FLOAT16;
    }
    const ctx = await testGpu();
    const failure = await loadModelFiles(ctx, filesOf(encode(graph), new Uint8Array(readFileSync(m.dataPath))), { maxContext: 32 }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(AppError);
    expect((failure as AppError).code).toBe('MODEL_BAD_WEIGHT');
    expect((failure as AppError).message).toMatch(/long rotary cos cache \("cos_cache_large"\) has ONNX dtype 10; expected one of 1/);
  });
});
