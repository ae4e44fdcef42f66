/**
 * Rotary position embedding (shaders/rotary.wgsl), non-interleaved, in place, and its reference.
 *
 * Positions are pastLen + t from the shared step uniform. LongRoPE (Phi-3 128K) has two cos/sin
 * cache pairs; one bind group per pair is built at create time and `encode` picks one with
 * `cacheIndex`. The caller decides it from the total length exactly as onnxruntime's `If` does
 * (long caches when the attention-mask length exceeds the original 4096 positions).
 * Rule: `encode` never writes buffers; everything that varies per step lives in the step uniform.
 */
import source from '../../../shaders/rotary.wgsl?raw';
import { AppError } from '../errors';
import { createUniformBuffer, packUniform, workgroupGrid } from '../gpu/buffers';
import { getComputePipeline } from '../gpu/pipelines';

export interface RotaryLayout {
  seqLen: number;
  pastLen: number;
  heads: number;
  headDim: number;
  /** Rotated leading dimensions of each head (= headDim for Phi-3). */
  rotaryDim: number;
  /** Elements per token row; [heads, headDim] starts at `offset` inside each row. */
  rowStride: number;
  offset: number;
}

/** Reference: returns a rotated copy of `x` (rows of `rowStride`); cos/sin are [maxPos, rotaryDim/2]. */
export function rotaryReference(x: Float32Array, cos: Float32Array, sin: Float32Array, l: RotaryLayout): Float32Array {
  const out = x.slice();
  const half = l.rotaryDim / 2;
  for (let t = 0; t < l.seqLen; t++) {
    const pos = l.pastLen + t;
    for (let h = 0; h < l.heads; h++) {
      const base = t * l.rowStride + l.offset + h * l.headDim;
      for (let i = 0; i < half; i++) {
        const c = cos[pos * half + i];
        const s = sin[pos * half + i];
        const x1 = x[base + i];
        const x2 = x[base + i + half];
        out[base + i] = x1 * c - x2 * s;
        out[base + i + half] = x2 * c + x1 * s;
      }
    }
  }
  return out;
}

/**
 * cos/sin caches [maxPos, rotaryDim/2]: angle = pos · inv_freq[i] / factors[i] with
 * inv_freq[i] = theta^(-2i/rotaryDim), values multiplied by `scale`. Phi-3 128K (LongRoPE) builds
 * its short and long pairs from short_factor / long_factor, both with
 * scale = sqrt(1 + ln(131072/4096) / ln(4096)) ≈ 1.190238.
 */
export function buildRotaryCache(
  maxPos: number,
  rotaryDim: number,
  theta: number,
  factors?: readonly number[],
  scale = 1,
): { cos: Float32Array; sin: Float32Array } {
  const half = rotaryDim / 2;
  const cos = new Float32Array(maxPos * half);
  const sin = new Float32Array(maxPos * half);
  for (let i = 0; i < half; i++) {
    const invFreq = 1 / (Math.pow(theta, (2 * i) / rotaryDim) * (factors ? factors[i] : 1));
    for (let p = 0; p < maxPos; p++) {
      const a = p * invFreq;
      cos[p * half + i] = Math.cos(a) * scale;
      sin[p * half + i] = Math.sin(a) * scale;
    }
  }
  return { cos, sin };
}

export interface RotaryCachePair {
  /** [maxPositions, rotaryDim/2], f32 values or raw fp16 bits (see `dtype`). */
  cos: GPUBuffer;
  sin: GPUBuffer;
}

export interface RotaryBindings {
  heads: number;
  headDim: number;
  rotaryDim: number;
  rowStride: number;
  offset: number;
  /** Rows in each cache (4096 for Phi-3; 131072 for 128K). Positions past it are clamped. */
  maxPositions: number;
  /** 'f16': caches hold raw fp16 bits, unpacked in the shader (no shader-f16 needed). */
  dtype: 'f32' | 'f16';
  step: GPUBuffer;
  /** In/out: q or k (or both, contiguous inside a packed qkv row). */
  x: GPUBuffer;
  /** One pair, or two for LongRoPE: [short, long]. */
  caches: readonly [RotaryCachePair] | readonly [RotaryCachePair, RotaryCachePair];
}

export interface RotaryKernel {
  encode(pass: GPUComputePassEncoder, seqLen: number, cacheIndex?: 0 | 1): void;
}

const WG = 64;

export function createRotary(device: GPUDevice, b: RotaryBindings): RotaryKernel {
  if (b.rotaryDim % 2 !== 0 || b.rotaryDim > b.headDim) {
    throw new AppError('BAD_ARGUMENT', `rotary: rotaryDim ${b.rotaryDim} must be even and <= headDim ${b.headDim}`);
  }
  const pipeline = getComputePipeline(device, 'rotary', source, { WG, F16: b.dtype === 'f16' ? 1 : 0 });
  const params = createUniformBuffer(
    device,
    packUniform([{ u32: b.heads }, { u32: b.headDim }, { u32: b.rotaryDim }, { u32: b.rowStride }, { u32: b.offset }, { u32: b.maxPositions }]),
    'rotary.params',
  );
  const bindGroups = b.caches.map((pair, i) =>
    device.createBindGroup({
      label: `rotary.cache${i}`,
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: params } },
        { binding: 1, resource: { buffer: b.step } },
        { binding: 2, resource: { buffer: b.x } },
        { binding: 3, resource: { buffer: pair.cos } },
        { binding: 4, resource: { buffer: pair.sin } },
      ],
    }),
  );
  const perToken = b.heads * (b.rotaryDim / 2);
  const maxDim = device.limits.maxComputeWorkgroupsPerDimension;
  return {
    encode(pass, seqLen, cacheIndex = 0) {
      const bindGroup = bindGroups[cacheIndex];
      if (!bindGroup) throw new AppError('BAD_ARGUMENT', `rotary: cacheIndex ${cacheIndex} but only ${bindGroups.length} cache pair(s) bound`);
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      const [x, y] = workgroupGrid(Math.ceil((seqLen * perToken) / WG), maxDim);
      pass.dispatchWorkgroups(x, y);
    },
  };
}
