/**
 * Getting an initializer's bytes once the reader has said where they are.
 *
 * `readTensorBytes` returns one tensor in one buffer: use it only for tensors that fit in memory
 * (norms, scales, rotary caches, or a piece of a large weight). `streamTensorBytes` yields a large
 * tensor as consecutive chunks so that the uploader never holds a whole 100 MB weight at once.
 * Rule: never read past what the location says, and check the source is long enough before
 * reading, so that a short `_data` file is reported as such instead of as garbage weights.
 */
import { AppError } from '../errors';
import { OnnxDataType, type ByteSource, type OnnxTensorInfo, type TensorLocation } from './types';

/** Resolves a file named by a tensor location: `null` is the `.onnx` itself, a string an external data file. */
export type SourceResolver = (file: string | null) => ByteSource;

/**
 * Bytes per element of an ONNX data type. The 4-bit types (UINT4, INT4) return 0.5: use
 * `tensorByteLength` to size a buffer. STRING and unknown types throw ONNX_UNSUPPORTED.
 */
export function dtypeByteSize(dataType: number): number {
  switch (dataType) {
    case OnnxDataType.UINT8:
    case OnnxDataType.INT8:
    case OnnxDataType.BOOL:
    case OnnxDataType.FLOAT8E4M3FN:
    case OnnxDataType.FLOAT8E4M3FNUZ:
    case OnnxDataType.FLOAT8E5M2:
    case OnnxDataType.FLOAT8E5M2FNUZ:
      return 1;
    case OnnxDataType.UINT16:
    case OnnxDataType.INT16:
    case OnnxDataType.FLOAT16:
    case OnnxDataType.BFLOAT16:
      return 2;
    case OnnxDataType.FLOAT:
    case OnnxDataType.INT32:
    case OnnxDataType.UINT32:
      return 4;
    case OnnxDataType.INT64:
    case OnnxDataType.UINT64:
    case OnnxDataType.DOUBLE:
    case OnnxDataType.COMPLEX64:
      return 8;
    case OnnxDataType.COMPLEX128:
      return 16;
    case OnnxDataType.UINT4:
    case OnnxDataType.INT4:
      return 0.5;
    case OnnxDataType.STRING:
      throw new AppError('ONNX_UNSUPPORTED', 'STRING tensors are not supported as weights; this model cannot be run.');
    default:
      throw new AppError(
        'ONNX_UNSUPPORTED',
        `ONNX data type ${dataType} is not supported; this model cannot be run by this app.`,
      );
  }
}

/** Number of elements of a tensor with these dims, or null when it is not a safe integer. */
export function elementCount(dims: readonly number[]): number | null {
  let n = 1;
  for (const d of dims) {
    if (!Number.isSafeInteger(d) || d < 0) return null;
    n *= d;
    if (!Number.isSafeInteger(n)) return null;
  }
  return n;
}

/** Byte length of a dense tensor (4-bit types are packed two per byte, rounded up). Null if too large. */
export function tensorByteLength(dataType: number, dims: readonly number[]): number | null {
  const count = elementCount(dims);
  if (count === null) return null;
  const size = dtypeByteSize(dataType);
  const bytes = size === 0.5 ? Math.ceil(count / 2) : count * size;
  return Number.isSafeInteger(bytes) ? bytes : null;
}

/** Byte length of the data at a location. */
export function locationByteLength(location: TensorLocation): number {
  return location.kind === 'embedded' ? location.bytes.byteLength : location.length;
}

function describe(info: OnnxTensorInfo): string {
  const loc = info.location;
  if (loc.kind === 'external') return `'${info.name}' (${loc.length} bytes at offset ${loc.offset} of '${loc.file}')`;
  if (loc.kind === 'inline') return `'${info.name}' (${loc.length} bytes at offset ${loc.offset} of the .onnx file)`;
  return `'${info.name}'`;
}

/** Source and checked byte range of a non-embedded tensor. */
function rangeOf(
  info: OnnxTensorInfo,
  resolve: SourceResolver,
): { source: ByteSource; offset: number; length: number } {
  const loc = info.location;
  if (loc.kind === 'embedded') throw new Error('unreachable: embedded tensors have no range');
  const source = resolve(loc.kind === 'external' ? loc.file : null);
  if (loc.offset + loc.length > source.size) {
    const file = loc.kind === 'external' ? `external data file '${loc.file}'` : 'the .onnx file';
    throw new AppError(
      'ONNX_TRUNCATED',
      `Tensor ${describe(info)} ends at byte ${loc.offset + loc.length} but ${file} has only ${source.size} bytes. ` +
        'The model files are incomplete or do not belong together; delete them and download the model again.',
    );
  }
  return { source, offset: loc.offset, length: loc.length };
}

async function readExactly(source: ByteSource, offset: number, length: number, info: OnnxTensorInfo): Promise<Uint8Array> {
  const bytes = await source.read(offset, length);
  if (bytes.byteLength !== length) {
    throw new AppError(
      'ONNX_TRUNCATED',
      `Reading tensor ${describe(info)} returned ${bytes.byteLength} of ${length} bytes at offset ${offset}. ` +
        'The model file is incomplete; delete it and download the model again.',
    );
  }
  return bytes;
}

/**
 * All bytes of one tensor, little-endian in its own dtype. The result may be a view into a larger
 * buffer (e.g. of `bytesSource`): copy it before mutating.
 */
export async function readTensorBytes(info: OnnxTensorInfo, resolve: SourceResolver): Promise<Uint8Array> {
  if (info.location.kind === 'embedded') return info.location.bytes;
  const { source, offset, length } = rangeOf(info, resolve);
  if (length === 0) return new Uint8Array(0);
  return readExactly(source, offset, length, info);
}

/**
 * A tensor's bytes as consecutive chunks of `chunkBytes` (the last one shorter), never the whole
 * tensor at once. Pick a multiple of 4 when the chunks go to `GPUQueue.writeBuffer`.
 */
export async function* streamTensorBytes(
  info: OnnxTensorInfo,
  resolve: SourceResolver,
  chunkBytes: number,
): AsyncGenerator<Uint8Array, void, undefined> {
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes <= 0) {
    throw new AppError('BAD_ARGUMENT', `streamTensorBytes: chunkBytes must be a positive integer, got ${chunkBytes}.`);
  }
  if (info.location.kind === 'embedded') {
    const bytes = info.location.bytes;
    for (let at = 0; at < bytes.byteLength; at += chunkBytes) yield bytes.subarray(at, at + chunkBytes);
    return;
  }
  const { source, offset, length } = rangeOf(info, resolve);
  for (let at = 0; at < length; at += chunkBytes) {
    yield await readExactly(source, offset + at, Math.min(chunkBytes, length - at), info);
  }
}

let f16Table: Float32Array | null = null;

function halfBitsToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // zero and subnormals
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/**
 * IEEE fp16 bit patterns to f32 values (exact: every fp16 value is an f32). Uses a 256 KB table
 * built on first use, since the fp32 path converts whole embedding tables this way.
 */
export function float16ToFloat32(u16: Uint16Array): Float32Array {
  if (f16Table === null) {
    const table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) table[h] = halfBitsToFloat(h);
    f16Table = table;
  }
  const table = f16Table;
  const out = new Float32Array(u16.length);
  for (let i = 0; i < u16.length; i++) out[i] = table[u16[i]];
  return out;
}
