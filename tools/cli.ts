/**
 * Node runner for the native engine:
 *   npm run cli -- --model <dir or .onnx file> [--prompt "…" | --input-ids 1,2,3] [--max-tokens N] [--greedy] [--precision f16|f32] [--f32-weights] [--json]
 * `--precision f32` keeps the KV cache in f32 (twice the memory; the default f16 cache rounds each
 * cached value once), and with it a q4 file's block scales, embedding and rotary caches, which the f16 path packs
 * to fp16; `--f32-weights` keeps only those in f32 (LoadOptions.f16Weights false). Both are there
 * to compare answers and `gpuBytes` with the default.
 * Uses the `webgpu` package (Dawn); on a machine without a GPU driver it falls back to Debian
 * Chromium's SwiftShader by itself, so no environment variables are needed.
 */
import { parseArgs } from 'node:util';
import { AppError } from '../src/engine/errors';
import { acquireDevice } from '../src/engine/gpu/device';
import { nodeGPU } from '../src/engine/gpu/node-webgpu';
import { nodeModelFiles } from '../src/engine/node/model-dir';
import { NativeEngine, toStats } from '../src/engine/native-engine';
import { DEFAULT_SAMPLING, type GenerateOptions } from '../src/engine/types';

const USAGE = 'usage: npm run cli -- --model <dir or .onnx file> [--prompt "text" | --input-ids 1,2,3] [--max-tokens N] [--greedy] [--temperature T --top-k K --top-p P --seed S] [--precision f16|f32] [--f32-weights] [--json]';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string' },
      prompt: { type: 'string' },
      'input-ids': { type: 'string' },
      'max-tokens': { type: 'string', default: '32' },
      greedy: { type: 'boolean', default: false },
      temperature: { type: 'string' },
      'top-k': { type: 'string' },
      'top-p': { type: 'string' },
      seed: { type: 'string' },
      precision: { type: 'string', default: 'f16' },
      'f32-weights': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return void console.log(USAGE);
  if (!values.model) throw new AppError('BAD_ARGUMENT', `--model is required.\n${USAGE}`);
  if ((values.prompt === undefined) === (values['input-ids'] === undefined)) throw new AppError('BAD_ARGUMENT', `Give exactly one of --prompt or --input-ids.\n${USAGE}`);
  const precision = values.precision;
  if (precision !== 'f16' && precision !== 'f32') throw new AppError('BAD_ARGUMENT', `--precision must be f16 or f32, got "${precision}".`);
  const maxNewTokens = Number(values['max-tokens']);
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) throw new AppError('BAD_ARGUMENT', `--max-tokens must be a positive integer, got "${values['max-tokens']}".`);
  const num = (name: 'temperature' | 'top-k' | 'top-p' | 'seed', fallback: number) => {
    const v = values[name];
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isFinite(n)) throw new AppError('BAD_ARGUMENT', `--${name} must be a number, got "${v}".`);
    return n;
  };
  const opts: GenerateOptions = {
    maxNewTokens,
    sampling: {
      temperature: values.greedy ? 0 : num('temperature', DEFAULT_SAMPLING.temperature),
      topK: num('top-k', DEFAULT_SAMPLING.topK),
      topP: num('top-p', DEFAULT_SAMPLING.topP),
      repetitionPenalty: values.greedy ? 1 : DEFAULT_SAMPLING.repetitionPenalty,
      seed: num('seed', DEFAULT_SAMPLING.seed),
    },
  };

  const t0 = performance.now();
  const ctx = await acquireDevice(await nodeGPU());
  const files = nodeModelFiles(values.model);
  const engine = await NativeEngine.load(ctx, files, { precision, f16Weights: !values['f32-weights'] });
  const loadMs = performance.now() - t0;
  let inputIds: number[];
  if (values['input-ids'] !== undefined) {
    inputIds = values['input-ids'].split(',').map((s) => {
      const n = Number(s.trim());
      if (!Number.isInteger(n) || n < 0 || n >= engine.info.vocab) throw new AppError('BAD_ARGUMENT', `--input-ids: "${s}" is not a token id in [0, ${engine.info.vocab}).`);
      return n;
    });
  } else {
    if (!engine.tokenizer) throw new AppError('TOKENIZER_ERROR', 'This model has no tokenizer files; use --input-ids.');
    inputIds = engine.tokenizer.encodeChat([{ role: 'user', content: values.prompt ?? '' }], { addGenerationPrompt: true });
  }
  const started = performance.now();
  const outputIds: number[] = [];
  const gen = engine.generateIds(inputIds, opts);
  let firstAt = 0;
  const decoder = engine.tokenizer?.createStreamDecoder({ skipSpecialTokens: true });
  for (;;) {
    const r = await gen.next();
    if (r.done) {
      const stats = toStats(r.value, (firstAt || performance.now()) - started);
      const text = engine.tokenizer ? engine.tokenizer.decode(outputIds, { skipSpecialTokens: true }) : undefined;
      if (values.json) {
        console.log(JSON.stringify({ inputIds, outputIds, text, timings: { loadMs: Math.round(loadMs), ...stats }, model: engine.info, adapter: ctx.adapterInfo, gpuBytes: engine.runtime.gpuBytes() }));
      } else {
        if (decoder) process.stdout.write(decoder.flush() + '\n');
        else console.log(outputIds.join(','));
        console.error(`[${stats.newTokens} tokens, stop: ${stats.stopReason}; load ${(loadMs / 1000).toFixed(2)} s, first token ${stats.timeToFirstTokenMs.toFixed(0)} ms, prefill ${stats.prefillTokensPerSec.toFixed(1)} tok/s, decode ${stats.decodeTokensPerSec.toFixed(1)} tok/s on ${ctx.adapterInfo.description || ctx.adapterInfo.vendor}]`);
      }
      break;
    }
    firstAt ||= performance.now();
    outputIds.push(r.value);
    if (!values.json && decoder) process.stdout.write(decoder.push(r.value));
  }
  engine.destroy();
  await files.close();
  ctx.device.destroy();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    const e = err instanceof AppError ? `${err.code}: ${err.message}` : err instanceof Error ? (err.stack ?? err.message) : String(err);
    console.error(e);
    process.exit(1);
  },
);
