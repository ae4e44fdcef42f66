/**
 * Host time a chat turn spends before generation starts, by the conversation's length: the
 * worker's count for the context policy (`ChatEngine.countMessages`) and `ChatEngine.chat`'s
 * prompt (rendering, encoding, the ids kept from earlier turns). The native engine on a generated
 * tiny Phi-3 with Phi-3's tokenizer, in Node (Dawn; SwiftShader without a GPU). The conversation
 * before the turn has been counted, as at the turn before; each round adds a message, so every
 * round renders a new prompt. Conversations longer than the tiny model's context stop right after
 * the prompt is planned (CONTEXT_OVERFLOW), which is all this times.
 *   npm run bench:turn [-- --sizes 40,200,800 --rounds 3]
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

const { values } = parseArgs({ options: { sizes: { type: 'string', default: '40,200,800' }, rounds: { type: 'string', default: '3' } } });
const GREEDY: SamplingOptions = { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, seed: 0 };
const para = 'The GPU reads each weight once per token, so decode speed is bound by memory bandwidth; prefill is bound by compute. ';

const dir = mkdtempSync(join(tmpdir(), 'bench-turn-'));
try {
  await generateTinyModel(dir, { layers: 1, hidden: 64, heads: 4, intermediate: 96 });
  const engine = await NativeEngine.load(await acquireDevice(await nodeGPU()), nodeModelFiles(dir));
  console.log('| messages | prompt tokens | host time per turn, each round (ms) |');
  console.log('|---|---|---|');
  for (const n of values.sizes!.split(',').map(Number)) {
    const conv: ChatMessage[] = [{ role: 'system', content: 'You are a helpful assistant.' }];
    for (let i = 0; i < n; i++) conv.push({ role: i % 2 ? 'assistant' : 'user', content: `${i}: ${para.repeat(i % 2 ? 8 : 2)}` });
    engine.countMessages(conv.slice(0, -2));
    const times: number[] = [];
    for (let r = 0; r < Number(values.rounds); r++) {
      const t0 = performance.now();
      engine.countMessages(conv);
      try {
        await engine.chat(conv, { sampling: GREEDY, maxNewTokens: 1 }).next();
      } catch {
        // Longer than the tiny model's context: generation stops right after the prompt is planned.
      }
      times.push(performance.now() - t0);
      conv.push({ role: 'user', content: `And round ${r + 1}?` });
    }
    console.log(`| ${n} | ${engine.countChatTokens(conv)} | ${times.map((t) => t.toFixed(0)).join(' / ')} |`);
  }
  engine.destroy();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
