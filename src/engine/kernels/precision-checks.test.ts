import { describe, expect, it } from 'vitest';
import { float32ToFloat16Bits } from './dequantize';
import { AppError } from '../errors';
import { formatCheck, guardedCheck, maxF16UlpError, ulp16 } from './precision-checks';
import { float16ToFloat32 } from '../onnx/tensor-data';

// The f16 KV-append check can only run on a device with shader-f16; its error measure is checked
// here on exact fp16 values so that a PASS there means what it says.
describe('fp16 ulp error measure', () => {
  it('ulp16 is the fp16 spacing: 2^-10 at 1, 2^-9 at 2..4, 2^-24 for subnormals', () => {
    expect(ulp16(1)).toBe(2 ** -10);
    expect(ulp16(-1.5)).toBe(2 ** -10);
    expect(ulp16(2)).toBe(2 ** -9);
    expect(ulp16(3.99)).toBe(2 ** -9);
    expect(ulp16(0.3)).toBe(2 ** -12);
    expect(ulp16(2 ** -14)).toBe(2 ** -24);
    expect(ulp16(2 ** -20)).toBe(2 ** -24);
    expect(ulp16(0)).toBe(2 ** -24);
  });

  it('counts the neighbouring fp16 value as 1 ulp, two steps as 2, NaN as infinite', () => {
    const want = float16ToFloat32(float32ToFloat16Bits(new Float32Array([0.3, -1.7, 2.5, 1e-6, 0])));
    expect(maxF16UlpError(want, want, 0)).toEqual({ ulps: 0, abs: 0 });
    const next = float16ToFloat32(float32ToFloat16Bits(want).map((b) => b + 1));
    expect(maxF16UlpError(next, want, 0).ulps).toBeCloseTo(1, 12);
    const twoAway = float16ToFloat32(float32ToFloat16Bits(want).map((b) => b + 2));
    expect(maxF16UlpError(twoAway, want, 0).ulps).toBeCloseTo(2, 12);
    expect(maxF16UlpError([NaN, 0, 0, 0, 0], want, 0).ulps).toBe(Infinity);
  });

  it('slack absorbs an absolute error where one ulp is smaller than it', () => {
    const want = [2 ** -20, 1];
    const got = [2 ** -20 + 1e-6, 1];
    expect(maxF16UlpError(got, want, 0).ulps).toBeGreaterThan(10);
    expect(maxF16UlpError(got, want, 2e-6).ulps).toBeLessThan(1);
    expect(maxF16UlpError(got, want, 2e-6).abs).toBeCloseTo(1e-6, 12);
  });
});

describe('guardedCheck', () => {
  it('turns a check that throws into a failed result carrying the message, so the other checks still run', async () => {
    const [r] = await guardedCheck('attention x', 'f16', 'max |Δ|', 1e-5, () => Promise.reject(new AppError('GPU_VALIDATION', 'WebGPU validation error: bad shader')));
    expect(r).toMatchObject({ name: 'attention x', precision: 'f16', pass: false, tolerance: 1e-5 });
    expect(r.note).toBe('threw AppError: WebGPU validation error: bad shader');
    expect(formatCheck(r)).toMatch(/^FAIL +f16 +attention x: max \|Δ\| = NaN \(tolerance 0\.00001\); threw AppError/);
  });
});
