/**
 * rotary.ts on the CPU: the layout of the rotary table (`interleaveRotaryTable`, read by
 * shaders/rotary_table.wgsl): (cos, sin) of every entry side by side, for f32 and fp16 bits, and
 * streaming in element-aligned pieces gives the same bytes as one call; and `buildRotaryCache`'s
 * closed form. The kernels that read the tables are checked in kv-append.gpu.test.ts and
 * matmul-rope-append.gpu.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { buildRotaryCache, interleaveRotaryTable } from './rotary';

const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

describe('interleaveRotaryTable', () => {
  it('f32: [rows, half] cos and sin become [rows, half, 2]', () => {
    const cos = new Float32Array([1, 2, 3, 4, 5, 6]); // 2 rows of 3 (an odd half)
    const sin = new Float32Array([-1, -2, -3, -4, -5, -6]);
    const out = interleaveRotaryTable(bytes(cos), bytes(sin), 'f32');
    expect(Array.from(new Float32Array(out.buffer))).toEqual([1, -1, 2, -2, 3, -3, 4, -4, 5, -5, 6, -6]);
  });

  it('fp16: each (cos, sin) pair is one u32 word, cos in the low half (unpack2x16float order)', () => {
    const cos = new Uint16Array([0x3c00, 0x4000, 0x4200]); // 1, 2, 3 (one row of an odd half)
    const sin = new Uint16Array([0xbc00, 0xc000, 0xc200]);
    const out = interleaveRotaryTable(bytes(cos), bytes(sin), 'f16');
    expect(Array.from(new Uint32Array(out.buffer))).toEqual([0xbc003c00, 0xc0004000, 0xc2004200]);
  });

  it('is element by element, so element-aligned pieces can be streamed', () => {
    const cos = new Uint16Array(Array.from({ length: 10 }, (_, i) => i));
    const sin = new Uint16Array(Array.from({ length: 10 }, (_, i) => 100 + i));
    const whole = interleaveRotaryTable(bytes(cos), bytes(sin), 'f16');
    const pieces = [interleaveRotaryTable(bytes(cos.subarray(0, 4)), bytes(sin.subarray(0, 4)), 'f16'), interleaveRotaryTable(bytes(cos.subarray(4)), bytes(sin.subarray(4)), 'f16')];
    expect(Array.from(new Uint8Array([...pieces[0], ...pieces[1]]))).toEqual(Array.from(whole));
  });

  it('refuses tables of different or partial lengths, naming the sizes', () => {
    expect(() => interleaveRotaryTable(new Uint8Array(8), new Uint8Array(4), 'f32')).toThrow(/cos \(8 bytes\) and sin \(4 bytes\) must be equal whole numbers of f32 elements/);
    expect(() => interleaveRotaryTable(new Uint8Array(6), new Uint8Array(6), 'f32')).toThrow(/whole numbers of f32 elements/);
  });
});

describe('buildRotaryCache', () => {
  it('matches closed-form values, with per-frequency factors and a scale', () => {
    const { cos, sin } = buildRotaryCache(10, 8, 10000, [1, 2, 3, 4], 2);
    // pos 3, i 2: inv_freq = 10000^(-4/8) / 3 = 0.01 / 3
    expect(cos[3 * 4 + 2]).toBeCloseTo(2 * Math.cos(0.01), 6);
    expect(sin[3 * 4 + 2]).toBeCloseTo(2 * Math.sin(0.01), 6);
  });
});
