/**
 * Time to the first token of a message sent in a chat that the KV cache does not hold (reopened
 * after a reload, or picked from the sidebar after another chat), without and with the chat read
 * ahead first (`ChatEngine.prepare`, which the app runs shortly after a chat is opened). The
 * native engine on a generated small Phi-3 with Phi-3's tokenizer, in Node (Dawn; SwiftShader
 * without a GPU, where the times measure this machine's CPUs, not a GPU: compare the columns as a
 * ratio). Each round starts from an empty cache; "read ahead" is the time the prepare took in the
 * background, which the user does not wait for unless they send before it ends.
 *   npm run bench:reopen [-- --sizes 256,1024,3072 --rounds 3 --hidden 256 --layers 2]
 * `--full` generates Phi-3 Mini's shape instead (32 layers, hidden 3072, 32 heads, intermediate
 * 8192, q4 with fp16 activations where the GPU has shader-f16): for a GPU machine, where the device
 * bundle runs it as `bash tools/device/run.sh reopen`.
 * Rule: not a test; nothing here asserts a time.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { nodeGPU } from '../src/engine/gpu/node-webgpu';
import { acquireDevice } from '../src/engine/gpu/device';
import { NativeEngine } from '../src/engine/native-engine';
import { nodeModelFiles } from '../src/engine/node/model-dir';
import type { ChatMessage, SamplingOptions } from '../src/engine/types';
import { generateTinyModel } from './tiny-model/generate';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '256,1024,3072' },
    rounds: { type: 'string', default: '3' },
    hidden: { type: 'string', default: '256' },
    layers: { type: 'string', default: '2' },
    full: { type: 'boolean', default: false },
  },
});
const GREEDY: SamplingOptions = { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, seed: 0 };
const para = 'The GPU reads each weight once per token, so decode speed is bound by memory bandwidth; prefill is bound by compute. ';
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const dir = mkdtempSync(join(tmpdir(), 'bench-reopen-'));
try {
  const hidden = values.full ? 3072 : Number(values.hidden);
  const layers = values.full ? 32 : Number(values.layers);
  const ctx = await acquireDevice(await nodeGPU());
  const f16 = values.full && ctx.features.shaderF16;
  await generateTinyModel(dir, values.full ? { layers, hidden, heads: 32, intermediate: 8192, dtype: f16 ? 'q4f16' : 'q4' } : { layers, hidden, heads: hidden / 32, intermediate: hidden * 3 });
  const engine = await NativeEngine.load(ctx, nodeModelFiles(dir));
  const tokenizer = engine.tokenizer!;

  /** A conversation of about `tokens` tokens that ends with an answer. */
  function conversation(tokens: number): ChatMessage[] {
    const conv: ChatMessage[] = [{ role: 'system', content: 'You are a helpful assistant.' }];
    for (let i = 0; tokenizer.encodeChat(conv).length < tokens; i++) {
      conv.push({ role: 'user', content: `Question ${i}: ${para}` }, { role: 'assistant', content: `Answer ${i}: ${para.repeat(3)}` });
    }
    return conv;
  }

  async function firstToken(messages: ChatMessage[]): Promise<{ ms: number; prompt: number; cached: number }> {
    const t0 = performance.now();
    const gen = engine.chat(messages, { sampling: GREEDY, maxNewTokens: 2 });
    await gen.next();
    const ms = performance.now() - t0;
    let r = await gen.next();
    while (!r.done) r = await gen.next();
    return { ms, prompt: r.value.promptTokens, cached: r.value.cachedTokens ?? 0 };
  }

  const a = ctx.adapterInfo;
  console.log(`Adapter: ${[a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' / ')}`);
  console.log(`Model: ${layers} layers, hidden ${hidden}, vocab 32064${f16 ? ', q4f16' : ''}; ${values.rounds} rounds, medians (ms).`);
  console.log('| prompt tokens | first token, cold | read ahead (background) | first token, read ahead | cached then | cold ÷ read ahead |');
  console.log('|---|---|---|---|---|---|');
  for (const size of values.sizes!.split(',').map(Number)) {
    const history = conversation(Math.min(size, engine.info.contextLimit - 64));
    const next: ChatMessage[] = [...history, { role: 'user', content: 'And what bounds the first token?' }];
    const cold: number[] = [];
    const ahead: number[] = [];
    const warm: number[] = [];
    let last = { ms: 0, prompt: 0, cached: 0 };
    for (let r = 0; r < Number(values.rounds); r++) {
      engine.runtime.truncate(0);
      cold.push((await firstToken(next)).ms);
      engine.runtime.truncate(0);
      const t0 = performance.now();
      const gen = engine.prepare(history);
      while (!(await gen.next()).done);
      ahead.push(performance.now() - t0);
      last = await firstToken(next);
      warm.push(last.ms);
    }
    const [c, a, w] = [median(cold), median(ahead), median(warm)];
    console.log(`| ${last.prompt} | ${c.toFixed(0)} | ${a.toFixed(0)} | ${w.toFixed(0)} | ${last.cached} | ${(c / w).toFixed(1)}× |`);
  }
  // A decode step encoded ahead may still be on the queue; Dawn must finish it before exiting.
  await ctx.device.queue.onSubmittedWorkDone();
  engine.destroy();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
