import { describe, expect, it } from 'vitest';
import { createEmbedding, embeddingReference, planEmbeddingParts } from './embedding';
import { float32ToFloat16Bits } from './dequantize';
import { float16ToFloat32 } from '../onnx/tensor-data';
import { createStepBuffer, writeStep } from './step';
import { createStorageBuffer, readBuffer } from '../gpu/buffers';
import { withErrorScopes } from '../gpu/device';
import { maxAbsDiff, runtimeName, seededRandom, testGpu } from '../gpu/testing';

// A gather copies values: f32 rows must match exactly, fp16 rows exactly after fp16 → f32.
const TOLERANCE = 0;
const SENTINEL = 12345;

/**
 * Runs the gather with the table split by `maxBindingBytes`. `tableBytes` is the whole table as
 * uploaded (f32 or fp16 bits); returns the first seqLen rows of out and the rows past seqLen.
 */
async function gather(opts: {
  tableBytes: Uint8Array;
  vocab: number;
  hidden: number;
  dtype: 'f32' | 'f16';
  maxBindingBytes: number;
  ids: Uint32Array;
  seqLen: number;
}): Promise<{ got: Float32Array; tail: Float32Array; parts: number }> {
  const { device } = await testGpu();
  const { hidden, ids, seqLen } = opts;
  const plan = planEmbeddingParts(opts.vocab, hidden, opts.dtype === 'f16' ? 2 : 4, opts.maxBindingBytes);
  return withErrorScopes(device, async () => {
    const parts = plan.map((p, i) => ({
      buffer: createStorageBuffer(device, opts.tableBytes.subarray(p.byteOffset, p.byteOffset + p.byteLength), `embedding.part${i}`),
      firstRow: p.firstRow,
      rows: p.rows,
    }));
    const idsBuf = createStorageBuffer(device, ids, 'ids');
    const out = createStorageBuffer(device, new Float32Array(ids.length * hidden).fill(SENTINEL), 'out');
    const step = createStepBuffer(device);
    writeStep(device, step, { seqLen, pastLen: 0 });
    const kernel = createEmbedding(device, { parts, hidden, dtype: opts.dtype, ids: idsBuf, out, step });
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    kernel.encode(pass, seqLen);
    pass.end();
    device.queue.submit([enc.finish()]);
    const all = new Float32Array(await readBuffer(device, out));
    for (const buf of [...parts.map((p) => p.buffer), idsBuf, out, step]) buf.destroy();
    return { got: all.subarray(0, seqLen * hidden), tail: all.subarray(seqLen * hidden), parts: plan.length };
  });
}

/** Ids at and around every part boundary, the first and last rows, and out-of-range ids. */
function boundaryIds(vocab: number, hidden: number, bpe: number, maxBindingBytes: number): number[] {
  const ids = [0, vocab - 1, vocab, vocab + 7, 0xffffffff];
  for (const p of planEmbeddingParts(vocab, hidden, bpe, maxBindingBytes)) ids.push(p.firstRow, p.firstRow + p.rows - 1, Math.max(0, p.firstRow - 1));
  return ids;
}

describe('planEmbeddingParts', () => {
  it('keeps each part within the binding limit, evenly sized, contiguous', () => {
    const parts = planEmbeddingParts(32064, 3072, 2, 128 * 2 ** 20);
    expect(parts.length).toBe(2);
    expect(parts.map((p) => p.rows)).toEqual([16032, 16032]);
    expect(parts[1]).toMatchObject({ firstRow: 16032, byteOffset: 16032 * 6144 });
    const f32 = planEmbeddingParts(32064, 3072, 4, 128 * 2 ** 20);
    expect(f32.length).toBe(3); // 394 MB in parts of at most 128 MiB
    for (const p of f32) expect(Math.ceil(p.byteLength / 4) * 4).toBeLessThanOrEqual(128 * 2 ** 20);
    expect(f32.reduce((n, p) => n + p.rows, 0)).toBe(32064);
    expect(() => planEmbeddingParts(10, 100, 4, 399)).toThrow(/exceeds/);
  });
});

describe('embedding kernel [gpu]', () => {
  for (const dtype of ['f32', 'f16'] as const) {
    it(`gathers from a ${dtype} table split into ≥ 3 parts, ids at part boundaries, out-of-range ids give zeros`, async () => {
      const vocab = 1000;
      const hidden = dtype === 'f16' ? 37 : 72; // odd hidden: fp16 rows straddle 32-bit words
      const bpe = dtype === 'f16' ? 2 : 4;
      const maxBindingBytes = 300 * hidden * bpe + 2;
      const values = seededRandom(vocab * hidden, 7, 3);
      const bits = dtype === 'f16' ? float32ToFloat16Bits(values) : undefined;
      const table = bits ? float16ToFloat32(bits) : values;
      const tableBytes = bits ? new Uint8Array(bits.buffer) : new Uint8Array(values.buffer);
      const idList = boundaryIds(vocab, hidden, bpe, maxBindingBytes);
      const ids = new Uint32Array([...idList, 3, 5]); // the last two lie past seqLen
      const seqLen = idList.length;
      const { got, tail, parts } = await gather({ tableBytes, vocab, hidden, dtype, maxBindingBytes, ids, seqLen });
      const want = embeddingReference(table, hidden, ids.subarray(0, seqLen));
      const err = maxAbsDiff(got, want);
      console.log(`[${runtimeName()}] embedding ${dtype} vocab=${vocab} hidden=${hidden} in ${parts} parts, ${seqLen} tokens: max |Δ| = ${err} (tolerance ${TOLERANCE})`);
      expect(parts).toBeGreaterThanOrEqual(3);
      expect(err).toBeLessThanOrEqual(TOLERANCE);
      expect(tail.every((v) => v === SENTINEL)).toBe(true); // tokens past seqLen untouched
    });
  }

  it('real shape: 32064 × 3072 fp16 table under a 128 MiB binding limit', async () => {
    const vocab = 32064;
    const hidden = 3072;
    // Cheap deterministic fp16 bits with exponent ≤ 14 (finite, |v| < 2).
    const bits = new Uint16Array(vocab * hidden);
    for (let i = 0; i < bits.length; i++) bits[i] = (Math.imul(i, 2654435761) >>> 16) & 0xbbff;
    const maxBindingBytes = 128 * 2 ** 20;
    const idList = [1, 32000, 32007, 32010, 32063, 32064, ...boundaryIds(vocab, hidden, 2, maxBindingBytes)];
    const ids = new Uint32Array(idList);
    const { got, parts } = await gather({
      tableBytes: new Uint8Array(bits.buffer),
      vocab,
      hidden,
      dtype: 'f16',
      maxBindingBytes,
      ids,
      seqLen: ids.length,
    });
    const want = new Float32Array(ids.length * hidden);
    ids.forEach((id, t) => {
      if (id < vocab) want.set(float16ToFloat32(bits.subarray(id * hidden, (id + 1) * hidden)), t * hidden);
    });
    const err = maxAbsDiff(got, want);
    console.log(`[${runtimeName()}] embedding f16 ${vocab}×${hidden} in ${parts} parts, ${ids.length} tokens: max |Δ| = ${err} (tolerance ${TOLERANCE})`);
    expect(parts).toBe(2);
    expect(err).toBeLessThanOrEqual(TOLERANCE);
  });
});
