/**
 * What counting a conversation's tokens for the context policy costs before each answer, by the
 * conversation's length: every prefix encoded (the definition, what the worker did before)
 * against PromptCounter (src/engine/prompt-count.ts), cold (a conversation opened after a reload)
 * and warm (the same conversation grown by a question and its answer). Phi-3's tokenizer and chat
 * template, in Node:
 *   npm run bench:prompt-count [-- --sizes 10,40,100,200]
 * Rule: not a test; nothing here asserts a time.
 */
import { parseArgs } from 'node:util';
import { buildTokenizerFiles } from './tiny-model/tokenizer-files';
import { exactCounts, PromptCounter } from '../src/engine/prompt-count';
import { loadTokenizer } from '../src/engine/tokenizer';
import type { ChatMessage } from '../src/engine/types';

const { values } = parseArgs({ options: { sizes: { type: 'string', default: '10,40,100,200' } } });
const files = buildTokenizerFiles();
/**
 * A fresh tokenizer's count, so no column profits from segments another one encoded
 * (segment-encoder.ts remembers them per tokenizer).
 */
const freshCount = () => {
  const tokenizer = loadTokenizer({ tokenizerJson: files.tokenizerJson, tokenizerConfig: files.tokenizerConfig });
  return (messages: readonly ChatMessage[]) => tokenizer.encodeChat(messages, { addGenerationPrompt: true }).length;
};

const para = 'The GPU reads each weight once per token, so decode speed is bound by memory bandwidth; prefill is bound by compute. ';
function conversation(n: number): ChatMessage[] {
  const messages: ChatMessage[] = [{ role: 'system', content: 'You are a helpful assistant.' }];
  for (let i = 0; i < n; i++) messages.push({ role: i % 2 ? 'assistant' : 'user', content: `${i}: ${para.repeat(i % 2 ? 8 : 2)}` });
  return messages;
}
const time = (f: () => unknown) => {
  const t0 = performance.now();
  f();
  return performance.now() - t0;
};

console.log('| messages | prompt tokens | every prefix (ms) | PromptCounter, cold (ms) | PromptCounter, grown by 2 (ms) |');
console.log('|---|---|---|---|---|');
for (const n of values.sizes!.split(',').map(Number)) {
  const messages = conversation(n + 1);
  const earlier = messages.slice(0, -2);
  const count = freshCount();
  const exact = time(() => exactCounts(count, messages));
  const counter = new PromptCounter(freshCount());
  const cold = time(() => counter.counts(earlier));
  const warm = time(() => counter.counts(messages));
  console.log(`| ${n} | ${count(messages)} | ${exact.toFixed(0)} | ${cold.toFixed(0)} | ${warm.toFixed(0)} |`);
}
