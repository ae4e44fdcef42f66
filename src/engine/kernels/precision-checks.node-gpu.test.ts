/**
 * Model-level checks of both numeric paths: the native engine on the tiny models of
 * tools/device/checks-models.ts against onnxruntime-node (CPU) run live on the same files, 64
 * greedy steps each, through the same `checkModel` the GPU machine's script uses (where the
 * reference is shipped instead). Both paths run on every device (the f16 cache is packed into u32
 * words), SwiftShader included; 'auto' is the f16 path. Tolerances and their reasons: checks-models.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateTinyModel } from '../../../tools/tiny-model/generate';
import { runReference } from '../../../tools/reference/ort-reference';
import { EXACT_DECODE, MODEL_CHECKS, MODEL_VARIANTS, modelTolerance, promptFor, type ModelCheckSpec, type ModelCheckVariantSpec } from '../../../tools/device/checks-models';
import { nodeModelFiles } from '../node/model-dir';
import { testGpu } from '../gpu/testing';
import { loadModelFiles } from '../phi3/files';
import { checkModel, formatCheck, type ModelReference } from './precision-checks';
import type { Precision } from './precision-wgsl';

const root = mkdtempSync(join(tmpdir(), 'phi3-precision-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The tiny model and onnxruntime's greedy run on it, made once per spec. */
const prepared = new Map<string, Promise<{ dir: string; ref: ModelReference }>>();
function prepare(spec: ModelCheckSpec): Promise<{ dir: string; ref: ModelReference }> {
  let p = prepared.get(spec.id);
  if (!p) {
    p = (async () => {
      const dir = join(root, spec.id);
      await generateTinyModel(dir, spec.options);
      const prompt = promptFor(spec);
      const r = await runReference(dir, { inputIds: prompt, steps: spec.steps });
      return { dir, ref: { prompt, tokens: r.tokens, logits: r.logits } };
    })();
    prepared.set(spec.id, p);
  }
  return p;
}

/**
 * One model check, which must run (SwiftShader runs every variant, dp4a included: a skip would hide
 * a regression) and pass: the defaults (decode GEMVs on the staged shader: EXACT_DECODE) with every greedy token the reference's, a variant
 * (MODEL_VARIANTS) with its own tolerance and agreement, on the decode shader it names. The one
 * exception: a variant that needs shader-f16, on a device without it (SwiftShader), must report
 * itself skipped for that reason (lavapipe, which CI's Node GPU stage runs on, has it).
 */
async function run(spec: ModelCheckSpec, precision: Precision, v?: ModelCheckVariantSpec): Promise<void> {
  const { dir, ref } = await prepare(spec);
  const files = nodeModelFiles(dir);
  try {
    const tolerance = v ? v.tolerance : modelTolerance(spec, precision);
    const ctx = await testGpu();
    const r = await checkModel(ctx, files, ref, precision, tolerance, `model ${spec.description}${v ? `, ${v.label}` : ''}`, v ?? EXACT_DECODE);
    console.log(`[node/webgpu] ${formatCheck(r)}`);
    if (v?.load?.matMulTuning?.gemmF16 && !ctx.features.shaderF16) {
      expect(r.skipped).toMatch(/no shader-f16/);
      return;
    }
    expect(r.skipped).toBeUndefined();
    expect(r.maxError).toBeLessThanOrEqual(tolerance);
    if (!v) expect(r.note).toContain(`identical ${spec.steps}/${spec.steps}`);
    if (v?.decodePath) expect(r.note).toContain(`decode matmuls on ${v.decodePath}`);
    // Every device that runs these checks here has the storage buffers warmNext needs (SwiftShader: 12).
    if (v?.load?.matMulTuning?.warmNext) expect(r.note).toMatch(/; [1-9]\d* bytes read ahead per step \(warmNext\)/);
    expect(r.pass).toBe(true);
  } finally {
    await files.close();
  }
}

describe('native engine precision paths vs onnxruntime [gpu]', () => {
  for (const spec of MODEL_CHECKS) {
    it(`f32: ${spec.description}, ${spec.steps} steps`, () => run(spec, 'f32'));
    it(`f16: ${spec.description}, ${spec.steps} steps`, () => run(spec, 'f16'));
  }

  for (const v of MODEL_VARIANTS) {
    const spec = MODEL_CHECKS.find((m) => m.id === v.model)!;
    it(`${v.precision ?? 'f32'}, ${v.label}: ${spec.description}, ${spec.steps} steps`, () => run(spec, v.precision ?? 'f32', v));
  }

  it('checks with the exact kernels\' tolerances pin the staged decode GEMV (else NVIDIA, whose default is dp4a, fails them)', () => {
    expect(EXACT_DECODE.load?.matMulTuning?.gemv).toBe('staged');
    for (const v of MODEL_VARIANTS.filter((x) => x.tolerance < 0.1)) expect([v.label, v.load?.matMulTuning?.gemv]).toEqual([v.label, 'staged']);
    for (const v of MODEL_VARIANTS.filter((x) => x.load?.matMulTuning?.gemv === 'dp4a')) expect(v.decodePath).toBe('gemv-dp4a');
  });

  it('the model check fails on a reference that is off by more than the tolerance, and names a token mismatch', async () => {
    const spec = MODEL_CHECKS[0];
    const { dir, ref } = await prepare(spec);
    // One logit of step 5 moved by 0.5, and the last step's token replaced (nothing is fed after
    // it, so the sequences stay the same): both must be caught.
    const logits = ref.logits.map((row) => row.slice());
    logits[5][0] += 0.5;
    const last = ref.tokens.length - 1;
    const tokens = ref.tokens.map((t, i) => (i === last ? (t + 1) % logits[i].length : t));
    const files = nodeModelFiles(dir);
    try {
      const r = await checkModel(await testGpu(), files, { ...ref, tokens, logits }, 'f32', modelTolerance(spec, 'f32'), 'tampered reference');
      console.log(`[node/webgpu] ${formatCheck(r)}`);
      expect(r.pass).toBe(false);
      expect(r.maxError).toBeGreaterThanOrEqual(0.5 - 1e-3);
      expect(r.note).toContain(`identical ${spec.steps - 1}/${spec.steps}`);
      expect(r.note).toContain(`first mismatch at step ${last}`);
    } finally {
      await files.close();
    }
  });

  it("'auto' (no option) loads the f16 cache on this device too, at half the f32 path's bytes per position", async () => {
    const spec = MODEL_CHECKS[0];
    const { dir } = await prepare(spec);
    const files = nodeModelFiles(dir);
    try {
      const ctx = await testGpu();
      const auto = (await loadModelFiles(ctx, files)).runtime;
      const f32 = (await loadModelFiles(ctx, files, { precision: 'f32' })).runtime;
      expect([auto.precision, f32.precision]).toEqual(['f16', 'f32']);
      expect(auto.kvBytesPerPosition * 2).toBe(f32.kvBytesPerPosition);
      expect(auto.gpuBytes().kvCache * 2).toBe(f32.gpuBytes().kvCache);
      auto.destroy();
      f32.destroy();
    } finally {
      await files.close();
    }
  });
});
