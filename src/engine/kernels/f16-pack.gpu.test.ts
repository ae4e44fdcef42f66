import { describe, expect, it } from 'vitest';
import { createF16Packer, packedF16Bytes } from './f16-pack';
import { float32ToFloat16Bits } from './dequantize';
import { createStorageBuffer, readBuffer } from '../gpu/buffers';
import { withErrorScopes } from '../gpu/device';
import { seededRandom, testGpu } from '../gpu/testing';

/** Values of every kind the shader branches on: normals, ties, subnormals, underflow, signs. */
function edgeValues(): Float32Array {
  const v = [0, -0, 1, -1, 65504, -65504, 1 / 3, 0.1, 2 ** -14, 2 ** -15, 2 ** -24, 2 ** -25, 2 ** -25 * 1.0001, 2 ** -26, 1e-30, -6e-8, 6.1e-5, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 2047.5, 2048.5, 1e-3, -0.0625];
  // Halfway between two fp16 subnormals (ties to even both ways) and just either side of them.
  for (let k = 1; k < 6; k++) v.push((k + 0.5) * 2 ** -24, (k + 0.5) * 2 ** -24 * (1 + 2 ** -20), (k + 0.5) * 2 ** -24 * (1 - 2 ** -20));
  return new Float32Array(v);
}

/** The packed words as fp16 halves, elements [from, from + n). */
function halves(words: ArrayBuffer, from: number, n: number): Uint16Array {
  return new Uint16Array(words).slice(from, from + n);
}

describe('f16 packer [gpu]', () => {
  it('rounds each value as float32ToFloat16Bits does, bit for bit (ties to even, subnormals kept)', async () => {
    const { device } = await testGpu();
    const random = seededRandom(5000, 7, 0.08);
    const values = new Float32Array([...edgeValues(), ...random, ...random.map((x) => x * 1e-4), ...random.map((x) => x * 3e5)].filter((x) => Math.abs(x) <= 65504));
    const got = await withErrorScopes(device, async () => {
      const packer = createF16Packer(device, 1 << 16);
      const dst = createStorageBuffer(device, packedF16Bytes(values.length), 'dst');
      packer.write(dst, 0, new Uint8Array(values.buffer));
      const out = { words: await readBuffer(device, dst), outOfRange: await packer.outOfRange() };
      packer.destroy();
      dst.destroy();
      return out;
    });
    expect(got.outOfRange).toBe(false);
    expect(halves(got.words, 0, values.length)).toEqual(float32ToFloat16Bits(values));
  });

  it('packs parts back to back at odd and even element offsets, in chunks, keeping the halves around them', async () => {
    const { device } = await testGpu();
    // Three tensors of 7, 10 and 5 values after a 3-element head: boundaries at odd and even offsets.
    const parts = [seededRandom(3, 1, 1), seededRandom(7, 2, 1), seededRandom(10, 3, 1), seededRandom(5, 4, 1)];
    const all = new Float32Array(parts.reduce((n, p) => n + p.length, 0) + 1);
    let at = 0;
    for (const p of parts) {
      all.set(p, at);
      at += p.length;
    }
    all[at] = 0.75; // written beforehand in f16: the last word's upper half must survive
    const pre = new Uint16Array(packedF16Bytes(all.length) / 2);
    pre[all.length - 1] = float32ToFloat16Bits(new Float32Array([0.75]))[0];
    const got = await withErrorScopes(device, async () => {
      const packer = createF16Packer(device, 12); // 3 values per chunk
      const dst = createStorageBuffer(device, pre, 'dst');
      let elem = 0;
      for (const p of parts) {
        for (let i = 0; i < p.length; i += 3) packer.write(dst, elem + i, new Uint8Array(p.buffer, i * 4, Math.min(3, p.length - i) * 4));
        elem += p.length;
      }
      const words = await readBuffer(device, dst);
      packer.destroy();
      dst.destroy();
      return words;
    });
    expect(halves(got, 0, all.length)).toEqual(float32ToFloat16Bits(all));
  });

  it('flags a value beyond 65504, an infinity or a NaN, and nothing at 65504', async () => {
    const { device } = await testGpu();
    const flagged = async (x: number) =>
      withErrorScopes(device, async () => {
        const packer = createF16Packer(device, 16);
        const dst = createStorageBuffer(device, 16, 'dst');
        packer.write(dst, 1, new Uint8Array(new Float32Array([0.5, x, -1]).buffer));
        const r = await packer.outOfRange();
        packer.destroy();
        dst.destroy();
        return r;
      });
    const results: Record<string, boolean> = {};
    for (const x of [65504, -65504, 65505, -70000, 1e9, Infinity, -Infinity, NaN]) results[String(x)] = await flagged(x);
    expect(results).toEqual({ '65504': false, '-65504': false, '65505': true, '-70000': true, '1000000000': true, Infinity: true, '-Infinity': true, NaN: true });
  });

  it('refuses chunks that are not whole f32 values, too large, or do not fit the buffer', async () => {
    const { device } = await testGpu();
    const packer = createF16Packer(device, 16);
    const dst = createStorageBuffer(device, 8, 'dst');
    expect(() => packer.write(dst, 0, new Uint8Array(6))).toThrow(/multiple of 4 and at most 16/);
    expect(() => packer.write(dst, 0, new Uint8Array(20))).toThrow(/multiple of 4 and at most 16/);
    expect(() => packer.write(dst, 6, new Uint8Array(16))).toThrow(/elements 6\.\.10 do not fit dst/);
    expect(() => createF16Packer(device, 10)).toThrow(/positive multiple of 4/);
    packer.destroy();
    dst.destroy();
  });
});
