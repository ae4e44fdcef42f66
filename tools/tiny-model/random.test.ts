import { describe, expect, it } from 'vitest';
import { floatBytes, fromHalfBits, Rng, toHalfBits } from './random';

describe('binary16 conversion', () => {
  it('rounds to nearest even, with subnormals, overflow and signed zero', () => {
    const cases: Array<[number, number]> = [
      [0, 0x0000], [-0, 0x8000], [1, 0x3c00], [-2, 0xc000], [65504, 0x7bff], [65520, 0x7c00], [1e6, 0x7c00], [-Infinity, 0xfc00],
      [2 ** -14, 0x0400], [2 ** -24, 0x0001], [2 ** -25, 0x0000], [3 * 2 ** -26, 0x0001], [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02],
      [0.1, 0x2e66], [1 / 3, 0x3555],
    ];
    for (const [value, bits] of cases) expect(toHalfBits(value), String(value)).toBe(bits);
    expect(toHalfBits(NaN) & 0x7c00).toBe(0x7c00);
    for (let h = 0; h < 0x7c00; h += 37) expect(toHalfBits(fromHalfBits(h))).toBe(h);
  });

  it('writes the same bits in bulk as one at a time', () => {
    const v = new Rng(5, 'half').fill(new Float32Array(1000), 100);
    const bulk = new Uint16Array(floatBytes(v, true).buffer);
    for (let i = 0; i < v.length; i++) expect(bulk[i]).toBe(toHalfBits(v[i]));
  });
});

describe('Rng', () => {
  it('is a function of (seed, stream) with the requested spread', () => {
    const a = new Rng(1, 'w').fill(new Float32Array(20000), 0.5, 1);
    const b = new Rng(1, 'w').fill(new Float32Array(20000), 0.5, 1);
    const c = new Rng(2, 'w').fill(new Float32Array(20000), 0.5, 1);
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    const mean = a.reduce((s, x) => s + x, 0) / a.length;
    const std = Math.sqrt(a.reduce((s, x) => s + (x - mean) ** 2, 0) / a.length);
    expect(mean).toBeCloseTo(1, 1);
    expect(std).toBeGreaterThan(0.48);
    expect(std).toBeLessThan(0.52);
  });
});
