/**
 * Embedding gather (shaders/embedding.wgsl), the table split across several buffers when it is
 * larger than one storage binding may be (the fp16 Phi-3 table is 197 MB, fp32 394 MB; users'
 * devices may allow only 128 MiB per binding), and its plain TypeScript reference.
 *
 * `planEmbeddingParts` decides the split; the uploader fills one buffer per part with that part's
 * rows (byteOffset/byteLength into the table's bytes, padded to 4 bytes); `createEmbedding` builds
 * one bind group per part and `encode` dispatches one pass per part over the same tokens. Each
 * pass writes only the tokens whose id falls inside its rows; the last one writes zeros for ids
 * ≥ vocab.
 *
 * Rule: parts must be contiguous from row 0 and in order; a gap would leave tokens unwritten.
 */
import source from '../../../shaders/embedding.wgsl?raw';
import { STEP_WGSL } from './step';
import { AppError } from '../errors';
import { createUniformBuffer, packUniform } from '../gpu/buffers';

export interface EmbeddingPartPlan {
  firstRow: number;
  rows: number;
  /** where the part starts in the table's bytes: firstRow · hidden · bytesPerElement */
  byteOffset: number;
  /** rows · hidden · bytesPerElement (the GPU buffer rounds it up to 4) */
  byteLength: number;
}

/**
 * Splits a (vocab, hidden) table into as few, evenly sized row ranges as fit `maxBindingBytes`
 * each (buffer sizes rounded up to 4 bytes included).
 */
export function planEmbeddingParts(vocab: number, hidden: number, bytesPerElement: number, maxBindingBytes: number): EmbeddingPartPlan[] {
  if (!Number.isSafeInteger(vocab) || vocab < 1) throw new AppError('BAD_ARGUMENT', `planEmbeddingParts: vocab = ${vocab} must be a positive integer.`);
  if (!Number.isSafeInteger(hidden) || hidden < 1) throw new AppError('BAD_ARGUMENT', `planEmbeddingParts: hidden = ${hidden} must be a positive integer.`);
  if (bytesPerElement !== 2 && bytesPerElement !== 4) {
    throw new AppError('BAD_ARGUMENT', `planEmbeddingParts: bytesPerElement = ${bytesPerElement} must be 2 (fp16) or 4 (f32).`);
  }
  const rowBytes = hidden * bytesPerElement;
  const limit = Math.floor(maxBindingBytes / 4) * 4;
  // ceil4(rows · rowBytes) ≤ limit ⇔ rows · rowBytes ≤ limit, since limit is a multiple of 4.
  const maxRows = Math.floor(limit / rowBytes);
  if (maxRows < 1) {
    throw new AppError('BAD_ARGUMENT', `planEmbeddingParts: one row of ${rowBytes} bytes exceeds the ${maxBindingBytes}-byte binding limit.`);
  }
  const count = Math.ceil(vocab / maxRows);
  const perPart = Math.ceil(vocab / count);
  const parts: EmbeddingPartPlan[] = [];
  for (let firstRow = 0; firstRow < vocab; firstRow += perPart) {
    const rows = Math.min(perPart, vocab - firstRow);
    parts.push({ firstRow, rows, byteOffset: firstRow * rowBytes, byteLength: rows * rowBytes });
  }
  return parts;
}

/** out (ids.length, hidden): table rows, zeros for ids ≥ vocab. */
export function embeddingReference(table: Float32Array, hidden: number, ids: ArrayLike<number>): Float32Array {
  const vocab = table.length / hidden;
  const out = new Float32Array(ids.length * hidden);
  for (let t = 0; t < ids.length; t++) {
    if (ids[t] < vocab) out.set(table.subarray(ids[t] * hidden, (ids[t] + 1) * hidden), t * hidden);
  }
  return out;
}

export interface EmbeddingBindings {
  /** contiguous row ranges from row 0, in order, each buffer holding its rows (see planEmbeddingParts) */
  parts: ReadonlyArray<{ buffer: GPUBuffer; firstRow: number; rows: number }>;
  hidden: number;
  /** 'f16': the buffers hold raw fp16 bits, unpacked in the shader (no shader-f16 needed) */
  dtype: 'f32' | 'f16';
  /** u32 (maxSeq,) */
  ids: GPUBuffer;
  /** f32 (maxSeq, hidden) */
  out: GPUBuffer;
  /** the shared per-step uniform (step.ts); seqLen tokens are gathered */
  step: GPUBuffer;
}

const WG = 256;

export function createEmbedding(device: GPUDevice, b: EmbeddingBindings): { encode(pass: GPUComputePassEncoder, seqLen: number): void } {
  const bpe = b.dtype === 'f16' ? 2 : 4;
  if (b.parts.length === 0) throw new AppError('BAD_ARGUMENT', 'createEmbedding: no table parts given.');
  let next = 0;
  for (const [i, p] of b.parts.entries()) {
    if (p.firstRow !== next || p.rows < 1) {
      throw new AppError('BAD_ARGUMENT', `createEmbedding: part ${i} covers rows ${p.firstRow}..${p.firstRow + p.rows - 1}; expected it to start at row ${next}.`);
    }
    const need = Math.ceil((p.rows * b.hidden * bpe) / 4) * 4;
    if (p.buffer.size < need) {
      throw new AppError('MODEL_BAD_WEIGHT', `createEmbedding: part ${i} buffer has ${p.buffer.size} bytes; ${p.rows} rows of ${b.hidden} ${b.dtype} need ${need}.`);
    }
    next += p.rows;
  }
  const maxSeq = Math.floor(b.ids.size / 4);
  if (b.out.size < maxSeq * b.hidden * 4) {
    throw new AppError('BAD_ARGUMENT', `createEmbedding: out buffer has ${b.out.size} bytes; ${maxSeq} tokens × ${b.hidden} f32 need ${maxSeq * b.hidden * 4}.`);
  }
  const gridX = device.limits.maxComputeWorkgroupsPerDimension;
  const module = device.createShaderModule({ label: 'embedding', code: source + STEP_WGSL });
  const pipeline = device.createComputePipeline({
    label: `embedding.${b.dtype}`,
    layout: 'auto',
    compute: { module, entryPoint: 'main', constants: { WG, GRID_X: gridX, TABLE_F16: b.dtype === 'f16' ? 1 : 0 } },
  });
  const bindGroups = b.parts.map((p, i) => {
    const last = i === b.parts.length - 1;
    const params = createUniformBuffer(
      device,
      packUniform([{ u32: b.hidden }, { u32: p.firstRow }, { u32: p.rows }, { u32: last ? 1 : 0 }]),
      `embedding.params${i}`,
    );
    return device.createBindGroup({
      label: `embedding.part${i}`,
      layout: pipeline.getBindGroupLayout(0),
      entries: [params, b.step, b.ids, p.buffer, b.out].map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
  });
  return {
    encode(pass, seqLen) {
      if (!Number.isInteger(seqLen) || seqLen < 1 || seqLen > maxSeq) {
        throw new AppError('BAD_ARGUMENT', `embedding: seqLen = ${seqLen} must be an integer in 1..${maxSeq}.`);
      }
      pass.setPipeline(pipeline);
      for (const bindGroup of bindGroups) {
        pass.setBindGroup(0, bindGroup);
        pass.dispatchWorkgroups(Math.min(seqLen, gridX), Math.ceil(seqLen / gridX));
      }
    },
  };
}
