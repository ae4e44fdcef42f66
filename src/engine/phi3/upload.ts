/**
 * Streaming weights from their byte sources into GPU buffers.
 *
 * Every tensor goes to the GPU in chunks of `CHUNK_BYTES` (read → writeBuffer → dropped), so the
 * JS heap holds at most a chunk or two whatever the model size. Small f32-only tensors (norm
 * weights) are converted from fp16 on the CPU; large fp16 tensors (embedding, scales, rotary
 * caches, the last as interleaved rotary tables) are uploaded as raw fp16 bits and unpacked by the
 * kernels with `unpack2x16float`. Large f32 tensors that the f16 path keeps as fp16 (a q4 file's
 * block scales, embedding and rotary caches: `concat`, `rows` and `rotaryTable` with `packF16`)
 * stream through the GPU packer (kernels/f16-pack.ts): each f32 chunk is written to a staging
 * buffer and packed into the tensor's buffer there; `packedOutOfRange` says afterwards whether any
 * value did not fit fp16.
 * Rule: never call readTensorBytes on a tensor that may be large; stream it.
 */
import { AppError } from '../errors';
import { writeBuffer } from '../gpu/buffers';
import { createF16Packer, packedF16Bytes, type F16Packer } from '../kernels/f16-pack';
import { interleaveRotaryTable } from '../kernels/rotary';
import { float16ToFloat32, readTensorBytes, streamTensorBytes, tensorByteLength, type SourceResolver } from '../onnx/tensor-data';
import { OnnxDataType, type OnnxTensorInfo } from '../onnx/types';

/** 8 MiB: large enough to keep writeBuffer overhead low, small enough to bound the heap. */
export const CHUNK_BYTES = 8 << 20;

export interface UploadProgress {
  /** Called after each chunk with the bytes uploaded so far by this uploader. */
  (bytesDone: number): void;
}

export class WeightUploader {
  bytesDone = 0;
  readonly buffers: GPUBuffer[] = [];
  private packer: F16Packer | undefined;

  constructor(
    private device: GPUDevice,
    private resolve: SourceResolver,
    private onProgress?: UploadProgress,
  ) {}

  private create(size: number, label: string): GPUBuffer {
    const buffer = this.device.createBuffer({
      label,
      size: Math.max(16, Math.ceil(size / 16) * 16),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
    });
    this.buffers.push(buffer);
    return buffer;
  }

  /**
   * A buffer for `bytes` of tensor data and how to write a chunk of it at a byte offset of that
   * data: as is, or (`packF16`, f32 data only) packed to fp16 at half the offset and size.
   */
  private target(bytes: number, label: string, packF16: boolean): { buffer: GPUBuffer; write(at: number, chunk: Uint8Array): void } {
    if (!packF16) {
      const buffer = this.create(bytes, label);
      return { buffer, write: (at, chunk) => writeBuffer(this.device, buffer, at, chunk) };
    }
    const buffer = this.create(packedF16Bytes(bytes / 4), label);
    const packer = (this.packer ??= createF16Packer(this.device, CHUNK_BYTES));
    return { buffer, write: (at, chunk) => packer.write(buffer, at / 4, chunk) };
  }

  private advance(n: number): void {
    this.bytesDone += n;
    this.onProgress?.(this.bytesDone);
  }

  /** The tensor's bytes from its dims; `f32Only` (data to be packed to fp16) refuses any other dtype. */
  private expectedLength(t: OnnxTensorInfo, f32Only = false): number {
    if (f32Only && t.dataType !== OnnxDataType.FLOAT) throw new AppError('MODEL_BAD_WEIGHT', `Tensor "${t.name}" has dtype ${t.dataType}; only float32 data is packed to fp16.`);
    const n = tensorByteLength(t.dataType, t.dims);
    if (n === null) throw new AppError('MODEL_BAD_WEIGHT', `Tensor "${t.name}" has impossible dims [${t.dims.join(', ')}].`);
    return n;
  }

  /** Uploads a tensor's bytes unchanged (packed int4 weights, zero points, fp16/f32 data). */
  async raw(t: OnnxTensorInfo, label = t.name): Promise<GPUBuffer> {
    const size = this.expectedLength(t);
    const buffer = this.create(size, label);
    let at = 0;
    for await (const chunk of streamTensorBytes(t, this.resolve, CHUNK_BYTES)) {
      writeBuffer(this.device, buffer, at, chunk);
      at += chunk.byteLength;
      this.advance(chunk.byteLength);
    }
    if (at !== size) throw new AppError('MODEL_BAD_WEIGHT', `Tensor "${t.name}" holds ${at} bytes; its dims need ${size}.`);
    return buffer;
  }

  /**
   * Uploads several tensors back to back into one buffer (e.g. q, k and v projections, whose
   * MatMulNBits rows concatenate along N into one packed qkv matmul). Each part must start on a
   * 4-byte boundary (writeBuffer's rule); small misaligned parts are joined on the CPU.
   * `packF16`: f32 tensors stored as fp16, two per u32 word (kernels/f16-pack.ts); progress still
   * counts the f32 bytes read, as the stored size does.
   */
  async concat(parts: readonly OnnxTensorInfo[], label: string, packF16 = false): Promise<GPUBuffer> {
    const sizes = parts.map((t) => this.expectedLength(t, packF16));
    const total = sizes.reduce((a, b) => a + b, 0);
    const aligned = sizes.every((n, i) => i === sizes.length - 1 || n % 4 === 0);
    if (aligned) {
      const { buffer, write } = this.target(total, label, packF16);
      let at = 0;
      for (const [i, t] of parts.entries()) {
        let done = 0;
        for await (const chunk of streamTensorBytes(t, this.resolve, CHUNK_BYTES)) {
          write(at + done, chunk);
          done += chunk.byteLength;
          this.advance(chunk.byteLength);
        }
        if (done !== sizes[i]) throw new AppError('MODEL_BAD_WEIGHT', `Tensor "${t.name}" holds ${done} bytes; its dims need ${sizes[i]}.`);
        at += done;
      }
      return buffer;
    }
    const buffer = this.create(total, label);
    if (total > CHUNK_BYTES * 4) throw new AppError('MODEL_UNSUPPORTED_GRAPH', `Cannot join ${parts.map((t) => t.name).join(', ')}: parts are not 4-byte aligned and too large to join in memory.`);
    const joined = new Uint8Array(total);
    let at = 0;
    for (const t of parts) {
      const bytes = await readTensorBytes(t, this.resolve);
      joined.set(bytes, at);
      at += bytes.byteLength;
    }
    writeBuffer(this.device, buffer, 0, joined);
    this.advance(total);
    return buffer;
  }

  /**
   * After the last packed upload: whether any value was outside fp16's finite range (the data
   * must then be loaded in f32). Frees the packer; false when nothing was packed.
   */
  async packedOutOfRange(): Promise<boolean> {
    const packer = this.packer;
    if (!packer) return false;
    this.packer = undefined;
    try {
      return await packer.outOfRange();
    } finally {
      packer.destroy();
    }
  }

  /**
   * Uploads a cos/sin pair as one rotary table (kernels/rotary.ts `interleaveRotaryTable`: (cos,
   * sin) of each entry side by side), streaming both in step; the GPU holds the pair only in this
   * form. `packF16` (f32 caches only): stored as fp16, which makes each (cos, sin) one word, the
   * fp16 table's layout. Counts both tensors' bytes in `bytesDone`. The plan has checked that cos
   * and sin are float32 or float16 of one dtype and shape (plan.ts validateWeights).
   */
  async rotaryTable(cos: OnnxTensorInfo, sin: OnnxTensorInfo, label: string, packF16 = false): Promise<GPUBuffer> {
    const dtype = cos.dataType === OnnxDataType.FLOAT16 ? 'f16' : 'f32';
    const size = this.expectedLength(cos, packF16);
    const { buffer, write } = this.target(2 * size, label, packF16);
    const piece = CHUNK_BYTES / 2; // a multiple of either element size
    for (let at = 0; at < size; at += piece) {
      const n = Math.min(piece, size - at);
      const joined = interleaveRotaryTable(await readRange(cos, this.resolve, at, n), await readRange(sin, this.resolve, at, n), dtype);
      write(2 * at, joined);
      this.advance(joined.byteLength);
    }
    return buffer;
  }

  /** Uploads a small float tensor as f32, converting from fp16 when needed. */
  async f32(t: OnnxTensorInfo, label = t.name): Promise<GPUBuffer> {
    const values = await this.readF32(t);
    const buffer = this.create(values.byteLength, label);
    writeBuffer(this.device, buffer, 0, values);
    this.advance(values.byteLength);
    return buffer;
  }

  /** Reads a small float tensor into memory as f32 (norm weights, scalars). */
  async readF32(t: OnnxTensorInfo): Promise<Float32Array> {
    const bytes = await readTensorBytes(t, this.resolve);
    const copy = bytes.slice();
    if (t.dataType === OnnxDataType.FLOAT) return new Float32Array(copy.buffer, 0, copy.byteLength / 4);
    if (t.dataType === OnnxDataType.FLOAT16) return float16ToFloat32(new Uint16Array(copy.buffer, 0, copy.byteLength / 2));
    throw new AppError('MODEL_BAD_WEIGHT', `Tensor "${t.name}" has dtype ${t.dataType}; expected float32 or float16.`);
  }

  /**
   * Uploads rows [firstRow, firstRow + rows) of a 2-D tensor into its own buffer (embedding table
   * parts that must stay under the binding-size limit). Streams; never holds the whole part.
   * `packF16`: an f32 table stored as fp16, as `concat` does.
   */
  async rows(t: OnnxTensorInfo, firstRow: number, rows: number, label: string, packF16 = false): Promise<GPUBuffer> {
    const rowBytes = this.expectedLength(t, packF16) / t.dims[0];
    const { buffer, write } = this.target(rows * rowBytes, label, packF16);
    const rowsPerChunk = Math.max(1, Math.floor(CHUNK_BYTES / rowBytes));
    for (let r = 0; r < rows; r += rowsPerChunk) {
      const n = Math.min(rowsPerChunk, rows - r);
      const piece = await readRange(t, this.resolve, (firstRow + r) * rowBytes, n * rowBytes);
      write(r * rowBytes, piece);
      this.advance(piece.byteLength);
    }
    return buffer;
  }

  destroyAll(): void {
    for (const b of this.buffers) b.destroy();
    this.buffers.length = 0;
    this.packer?.destroy();
    this.packer = undefined;
  }
}

/** Reads `length` bytes starting `offset` bytes into a tensor's data. */
async function readRange(t: OnnxTensorInfo, resolve: SourceResolver, offset: number, length: number): Promise<Uint8Array> {
  const loc = t.location;
  if (loc.kind === 'embedded') return loc.bytes.subarray(offset, offset + length);
  const source = resolve(loc.kind === 'inline' ? null : loc.file);
  const bytes = await source.read(loc.offset + offset, length);
  if (bytes.byteLength !== length) {
    throw new AppError('MODEL_BAD_WEIGHT', `Tensor "${t.name}" is cut short: wanted ${length} bytes at ${loc.offset + offset}, got ${bytes.byteLength}. The model file is incomplete; download it again.`);
  }
  return bytes;
}
