import { describe, expect, it } from 'vitest';
import { AppError } from '../errors';
import { bytesSource } from './sources';
import { dtypeByteSize, elementCount, float16ToFloat32, readTensorBytes, streamTensorBytes, tensorByteLength } from './tensor-data';
import { OnnxDataType, type OnnxTensorInfo } from './types';

/** fp16 → f32 by bit manipulation, independent of the module's arithmetic table. */
function f16BitsToF32Bits(h: number): number {
  const s = (h >> 15) & 1;
  const e = (h >> 10) & 31;
  const m = h & 1023;
  if (e === 0) {
    if (m === 0) return (s << 31) >>> 0;
    let e2 = -1;
    let mm = m;
    do {
      e2++;
      mm <<= 1;
    } while ((mm & 1024) === 0);
    return ((s << 31) | ((127 - 15 - e2) << 23) | ((mm & 1023) << 13)) >>> 0;
  }
  if (e === 31) return ((s << 31) | 0x7f800000 | (m << 13)) >>> 0;
  return ((s << 31) | ((e - 15 + 127) << 23) | (m << 13)) >>> 0;
}

describe('float16ToFloat32', () => {
  it('converts all 65536 bit patterns exactly', () => {
    const all = new Uint16Array(65536);
    for (let i = 0; i < 65536; i++) all[i] = i;
    const f32 = float16ToFloat32(all);
    const bits = new Uint32Array(f32.buffer);
    let mismatches = 0;
    for (let h = 0; h < 65536; h++) {
      const want = f16BitsToF32Bits(h);
      const isNaN16 = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      if (isNaN16 ? !Number.isNaN(f32[h]) : bits[h] !== want) mismatches++;
    }
    expect(mismatches).toBe(0);
  });

  it('gives the familiar values', () => {
    const out = float16ToFloat32(Uint16Array.from([0x3c00, 0xc000, 0x7bff, 0x0001, 0x8000, 0x7c00, 0xfc00, 0x3555]));
    expect(Array.from(out.slice(0, 7))).toEqual([1, -2, 65504, 2 ** -24, -0, Infinity, -Infinity]);
    expect(out[7]).toBeCloseTo(1 / 3, 3);
  });
});

describe('dtype sizes', () => {
  it('knows every numeric ONNX type', () => {
    expect(dtypeByteSize(OnnxDataType.FLOAT)).toBe(4);
    expect(dtypeByteSize(OnnxDataType.FLOAT16)).toBe(2);
    expect(dtypeByteSize(OnnxDataType.BFLOAT16)).toBe(2);
    expect(dtypeByteSize(OnnxDataType.UINT8)).toBe(1);
    expect(dtypeByteSize(OnnxDataType.BOOL)).toBe(1);
    expect(dtypeByteSize(OnnxDataType.INT64)).toBe(8);
    expect(dtypeByteSize(OnnxDataType.DOUBLE)).toBe(8);
    expect(dtypeByteSize(OnnxDataType.COMPLEX128)).toBe(16);
    expect(dtypeByteSize(OnnxDataType.INT4)).toBe(0.5);
    expect(tensorByteLength(OnnxDataType.UINT4, [3, 3])).toBe(5);
    expect(tensorByteLength(OnnxDataType.FLOAT16, [32064, 3072])).toBe(32064 * 3072 * 2);
    expect(tensorByteLength(OnnxDataType.FLOAT, [2 ** 30, 2 ** 30])).toBeNull();
    expect(elementCount([])).toBe(1);
    expect(elementCount([3, 0, 5])).toBe(0);
    expect(elementCount([-1])).toBeNull();
  });

  it('rejects STRING and unknown types with ONNX_UNSUPPORTED', () => {
    for (const t of [OnnxDataType.STRING, 0, 99]) {
      expect(() => dtypeByteSize(t)).toThrow(AppError);
      try {
        dtypeByteSize(t);
      } catch (e) {
        expect((e as AppError).code).toBe('ONNX_UNSUPPORTED');
      }
    }
  });
});

describe('reading tensor bytes', () => {
  const file = Uint8Array.from({ length: 1000 }, (_, i) => i & 0xff);
  const inline: OnnxTensorInfo = { name: 'w', dataType: OnnxDataType.UINT8, dims: [100], location: { kind: 'inline', offset: 10, length: 100 } };
  const ext: OnnxTensorInfo = { name: 'e', dataType: OnnxDataType.FLOAT, dims: [5], location: { kind: 'external', file: 'd', offset: 900, length: 20 } };
  const emb: OnnxTensorInfo = { name: 'b', dataType: OnnxDataType.UINT8, dims: [5], location: { kind: 'embedded', bytes: Uint8Array.from([1, 2, 3, 4, 5]) } };
  const resolve = (f: string | null) => (f === null ? bytesSource(file) : bytesSource(file.subarray(0, f === 'd' ? 1000 : 905)));

  it('reads inline, external and embedded tensors', async () => {
    expect(Array.from(await readTensorBytes(inline, resolve))).toEqual(Array.from(file.subarray(10, 110)));
    expect(Array.from(await readTensorBytes(ext, resolve))).toEqual(Array.from(file.subarray(900, 920)));
    expect(Array.from(await readTensorBytes(emb, resolve))).toEqual([1, 2, 3, 4, 5]);
  });

  it('streams in chunks of the requested size', async () => {
    const sizes: number[] = [];
    const got: number[] = [];
    for await (const c of streamTensorBytes(inline, resolve, 32)) {
      sizes.push(c.byteLength);
      got.push(...c);
    }
    expect(sizes).toEqual([32, 32, 32, 4]);
    expect(got).toEqual(Array.from(file.subarray(10, 110)));
    const embSizes: number[] = [];
    for await (const c of streamTensorBytes(emb, resolve, 2)) embSizes.push(c.byteLength);
    expect(embSizes).toEqual([2, 2, 1]);
  });

  it('reports a short file as ONNX_TRUNCATED and a bad chunk size as BAD_ARGUMENT', async () => {
    const short = { ...ext, location: { kind: 'external' as const, file: 'short', offset: 900, length: 20 } };
    await expect(readTensorBytes(short, resolve)).rejects.toMatchObject({ code: 'ONNX_TRUNCATED' });
    const consume = async (chunk: number) => {
      for await (const _ of streamTensorBytes(inline, resolve, chunk)) void _;
    };
    await expect(consume(0)).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
    // a source that returns fewer bytes than it claims to hold
    const liar = () => ({ size: 1000, read: async () => new Uint8Array(3) });
    await expect(readTensorBytes(inline, liar)).rejects.toMatchObject({ code: 'ONNX_TRUNCATED' });
  });
});
