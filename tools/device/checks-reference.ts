/**
 * Pack-time half of the model-level precision checks: writes each model of checks-models.ts
 * (generated from its seed by the tiny-model generator) and onnxruntime-node's greedy reference on
 * it into a folder that travels with the device bundle, because the GPU machine has no
 * onnxruntime. Per model `<out>/<id>/`: onnx/*.onnx(+_data), config.json, genai_config.json
 * (tokenizer files are dropped: the check feeds token ids), reference.json (prompt, tokens,
 * vocab) and logits.f32 (steps × vocab little-endian f32).
 *   node --import tsx tools/device/checks-reference.ts <outDir>
 * Rule: everything here is a pure function of checks-models.ts; never edit the output by hand.
 */
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateTinyModel } from '../tiny-model/generate';
import { runReference } from '../reference/ort-reference';
import { MODEL_CHECKS, promptFor } from './checks-models';

const KEEP = new Set(['onnx', 'config.json', 'genai_config.json']);

export interface ShippedReference {
  id: string;
  prompt: number[];
  tokens: number[];
  vocab: number;
}

async function main(): Promise<void> {
  const out = process.argv[2];
  if (!out) throw new Error('usage: node --import tsx tools/device/checks-reference.ts <outDir>');
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  let bytes = 0;
  for (const spec of MODEL_CHECKS) {
    const dir = join(out, spec.id);
    await generateTinyModel(dir, spec.options);
    for (const f of readdirSync(dir)) if (!KEEP.has(f)) rmSync(join(dir, f), { recursive: true });
    const prompt = promptFor(spec);
    const ref = await runReference(dir, { inputIds: prompt, steps: spec.steps });
    const logits = new Float32Array(ref.logits.length * ref.vocab);
    ref.logits.forEach((row, i) => logits.set(row, i * ref.vocab));
    const meta: ShippedReference = { id: spec.id, prompt, tokens: ref.tokens, vocab: ref.vocab };
    writeFileSync(join(dir, 'reference.json'), `${JSON.stringify(meta)}\n`);
    writeFileSync(join(dir, 'logits.f32'), new Uint8Array(logits.buffer));
    const size = (p: string): number => (statSync(p).isDirectory() ? readdirSync(p).reduce((n, f) => n + size(join(p, f)), 0) : statSync(p).size);
    bytes += size(dir);
    console.log(`checks reference ${spec.id}: ${prompt.length}-token prompt, ${ref.tokens.length} greedy tokens, vocab ${ref.vocab}`);
  }
  console.log(`wrote ${out} (${(bytes / 2 ** 20).toFixed(2)} MiB)`);
}

await main();
