/**
 * Node only: whether the Node benchmark can run onnxruntime-web's WebGPU EP on this model and this
 * GPU, decided before any file is read, with the reason recorded in the report when it cannot
 * (`engines.ort = { missing }`):
 * - fp16 (q4f16) files need `shader-f16` on the adapter onnxruntime gets (SwiftShader has none);
 * - every model file must fit in one buffer of at most 2 GiB (onnxruntime-web takes files whole).
 *   For a generated full-width model the reason names the largest `--layers N` that fits, so both
 *   engines can run the same N-layer model and the ratio stays meaningful.
 * OrtEngine.load checks both again (it is the authority); this only avoids reading gigabytes per
 * round to learn what the adapter and file sizes already say.
 * Rule: pure decisions over what the caller measured (adapter features, file sizes), no loading.
 */
import { ORT_MAX_FILE_BYTES } from '../../src/engine/ort/ort-engine';
import { estimateModelBytes } from './model';
import type { BenchReport } from './report';

/** Largest layer count whose whole full-width model stays within one onnxruntime-web buffer. */
export function maxOrtLayers(dtype: 'q4' | 'q4f16'): number {
  let n = 0;
  while (estimateModelBytes(n + 1, dtype) <= ORT_MAX_FILE_BYTES) n++;
  return n;
}

export interface OrtCheckInput {
  model: BenchReport['model'];
  /** bytes of each model file onnxruntime must take whole (the .onnx and its external data) */
  fileBytes: Record<string, number>;
  /** features of the adapter `navigator.gpu.requestAdapter()` returns (the one onnxruntime uses) */
  adapterFeatures: ReadonlySet<string>;
}

/** Why onnxruntime-web's WebGPU EP cannot run this model here, or null when it can. */
export function ortSkipReason({ model, fileBytes, adapterFeatures }: OrtCheckInput): string | null {
  if (model.dtype === 'q4f16' && !adapterFeatures.has('shader-f16')) {
    return 'the model is fp16 (q4f16) and this adapter has no shader-f16, which onnxruntime-web\'s WebGPU EP needs for fp16 files (the native engine converts them to f32); pass --dtype q4 to compare both engines on f32 files';
  }
  const tooBig = Object.entries(fileBytes).filter(([, bytes]) => bytes > ORT_MAX_FILE_BYTES);
  if (tooBig.length > 0) {
    const files = tooBig.map(([path, bytes]) => `${path} (${(bytes / 2 ** 30).toFixed(2)} GiB)`).join(', ');
    const fullWidth = model.generated && model.hidden === 3072 && (model.dtype === 'q4' || model.dtype === 'q4f16');
    const hint = fullWidth
      ? `; run both engines on a smaller model of the same width instead: --layers ${maxOrtLayers(model.dtype as 'q4' | 'q4f16')} or fewer (the report then says both ran that many layers)`
      : '';
    return `onnxruntime-web takes each model file as one buffer of at most 2 GiB, and ${files} is larger${hint}`;
  }
  return null;
}
