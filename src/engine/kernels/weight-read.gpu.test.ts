import { describe, expect, it } from 'vitest';
import { createWeightRead, weightReadChecksum, weightReadSumsBytes } from './weight-read';
import { createStorageBuffer, readBuffer } from '../gpu/buffers';
import { withErrorScopes } from '../gpu/device';
import { runtimeName, testGpu } from '../gpu/testing';

/** Deterministic bytes (xorshift32), never all zero, so a skipped or doubled word changes the sum. */
function randomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = s & 0xff;
  }
  return out;
}

/** `data`, zeros to the end of its last 4-byte word, then `garbage` bytes of 0xff the kernel must not read. */
function padded(data: Uint8Array, garbage: number): Uint8Array {
  const out = new Uint8Array(Math.ceil(data.length / 4) * 4 + garbage).fill(0xff);
  out.fill(0, data.length, Math.ceil(data.length / 4) * 4);
  out.set(data);
  return out;
}

const cases = [
  // Phi-3 o_proj: 3072 rows of 96 blocks, fp16 scales, 4-bit zero points.
  { name: 'Phi-3 o_proj (3072 × 3072, f16 scales, zero points)', weights: 3072 * 96 * 16, scales: 3072 * 96 * 2, zeroPoints: 3072 * 48 },
  { name: 'no zero points, f32 scales (10 workgroups of packed words, 10 of scales)', weights: 300 * 64 * 16, scales: 300 * 64 * 4 },
  // 62 whole 16-byte words and an 8-byte tail that is not read; scales and zero points end mid-word.
  { name: 'partial words: 1000 packed bytes, 10 bytes of scales, 6 of zero points', weights: 1000, scales: 10, zeroPoints: 6, garbage: 24 },
];

describe('weight read kernel [gpu]', () => {
  for (const c of cases) {
    it(`reads every counted word once: ${c.name}`, async () => {
      const { device } = await testGpu();
      const weights = randomBytes(c.weights, 3);
      const scales = randomBytes(c.scales, 5);
      const zeroPoints = c.zeroPoints ? randomBytes(c.zeroPoints, 7) : undefined;
      const want = weightReadChecksum(weights, scales, zeroPoints);
      const { got, invocations } = await withErrorScopes(device, async () => {
        // The packed tail past the last whole 16-byte word is garbage too: the kernel reads whole words only.
        const wData = padded(weights, c.garbage ?? 0);
        wData.fill(0xff, Math.floor(c.weights / 16) * 16, c.weights);
        const made = [createStorageBuffer(device, wData, 'weights'), createStorageBuffer(device, padded(scales, c.garbage ?? 0), 'scales')];
        if (zeroPoints) made.push(createStorageBuffer(device, padded(zeroPoints, c.garbage ?? 0), 'zeroPoints'));
        const kernel = createWeightRead(device, {
          weights: { buffer: made[0], bytes: c.weights },
          scales: { buffer: made[1], bytes: c.scales },
          zeroPoints: zeroPoints ? { buffer: made[2], bytes: c.zeroPoints! } : undefined,
        });
        const enc = device.createCommandEncoder();
        const pass = enc.beginComputePass();
        kernel.encode(pass);
        pass.end();
        device.queue.submit([enc.finish()]);
        const sums = new Uint32Array(await readBuffer(device, kernel.sums));
        kernel.destroy();
        for (const b of made) b.destroy();
        return { got: sums.reduce((s, v) => (s + v) >>> 0, 0), invocations: sums.length };
      });
      console.log(`[${runtimeName()}] weight read ${c.name}: ${invocations} invocations, sum ${got.toString(16)} (want ${want.toString(16)})`);
      expect(got).toBe(want);
    });
  }

  it('with a chain (input and output bound, untouched) and a shared sums buffer: the same checksum, and the chained buffers unchanged', async () => {
    const { device } = await testGpu();
    const weights = randomBytes(4096 * 16 + 48, 11);
    const scales = randomBytes(4096 * 4, 13);
    const { got, input, output } = await withErrorScopes(device, async () => {
      const wBuf = createStorageBuffer(device, weights, 'weights');
      const sBuf = createStorageBuffer(device, scales, 'scales');
      const inBuf = createStorageBuffer(device, new Float32Array([1, 2, 3, 4]), 'chain.input');
      const outBuf = createStorageBuffer(device, new Float32Array([5, 6, 7, 8]), 'chain.output');
      const parts = { weights: { buffer: wBuf, bytes: weights.length }, scales: { buffer: sBuf, bytes: scales.length }, chain: { input: inBuf, output: outBuf } };
      const shared = device.createBuffer({ label: 'shared sums', size: weightReadSumsBytes(device, parts), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
      const tiny = createStorageBuffer(device, 64, 'tiny');
      expect(() => createWeightRead(device, parts, 'too small', tiny)).toThrow(/shared sums buffer holds 64 bytes; this read writes \d+/);
      tiny.destroy();
      const kernel = createWeightRead(device, parts, 'chained', shared);
      expect(kernel.sums).toBe(shared);
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      kernel.encode(pass);
      pass.end();
      device.queue.submit([enc.finish()]);
      const sums = new Uint32Array(await readBuffer(device, shared));
      const result = { got: sums.reduce((t, v) => (t + v) >>> 0, 0), input: new Float32Array(await readBuffer(device, inBuf)), output: new Float32Array(await readBuffer(device, outBuf)) };
      kernel.destroy();
      for (const b of [wBuf, sBuf, inBuf, outBuf, shared]) b.destroy();
      return result;
    });
    expect(got).toBe(weightReadChecksum(weights, scales));
    expect([...input]).toEqual([1, 2, 3, 4]);
    expect([...output]).toEqual([5, 6, 7, 8]);
  });

  it('refuses parts longer than their buffers, and packed weights without a whole 16-byte word', async () => {
    const { device } = await testGpu();
    const buffer = createStorageBuffer(device, 64, 'small');
    try {
      expect(() => createWeightRead(device, { weights: { buffer, bytes: 64 }, scales: { buffer, bytes: 68 } })).toThrow(/scales claims 68 bytes but its buffer holds 64/);
      expect(() => createWeightRead(device, { weights: { buffer, bytes: 12 }, scales: { buffer, bytes: 4 } })).toThrow(/hold no whole 16-byte word/);
    } finally {
      buffer.destroy();
    }
  });
});
