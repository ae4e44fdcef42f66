/**
 * What counting a conversation's tokens for the context policy costs before each answer, by the
 * conversation's length: every prefix encoded (the definition, what the worker did before)
 * against PromptCounter (src/engine/prompt-count.ts), cold (a conversation opened after a reload)
 * and warm (the same conversation grown by a question and its answer); then one pasted document
 * of each size, encoded whole by the library against Phi3Tokenizer, which cuts it at spaces
 * (segment-encoder.ts; the ids are checked equal). Phi-3's tokenizer and chat template, in Node:
 *   npm run bench:prompt-count [-- --sizes 10,40,100,200 --documents 10000,40000,100000]
 * Rule: not a test; nothing here asserts a time.
 */
import { parseArgs } from 'node:util';
import { buildTokenizerFiles } from './tiny-model/tokenizer-files';
import { exactCounts, PromptCounter } from '../src/engine/prompt-count';
import { loadTokenizer } from '../src/engine/tokenizer';
import { seededRandom } from '../src/engine/tokenizer/test-strings';
import { Tokenizer } from '@huggingface/tokenizers';
import type { ChatMessage } from '../src/engine/types';

const { values } = parseArgs({ options: { sizes: { type: 'string', default: '10,40,100,200' }, documents: { type: 'string', default: '10000,40000,100000' } } });
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

/**
 * A pasted document of about `words` words: a Zipf-distributed pick from 5,000 made-up words of
 * 1–4 syllables, with punctuation and paragraph breaks (deterministic).
 */
function documentText(words: number): string {
  const random = seededRandom(7);
  const syllables = ['ka', 'ren', 'to', 'mi', 'sa', 'lor', 'en', 'qui', 'dan', 'te', 'po', 'ul', 'ver', 'is', 'ga', 'mon', 'ri', 'che', 'al', 'bo'];
  const lexicon = Array.from({ length: 5000 }, () => Array.from({ length: 1 + Math.floor(random() * 4) }, () => syllables[Math.floor(random() * syllables.length)]).join(''));
  const out: string[] = [];
  for (let i = 0; i < words; i++) {
    let w = lexicon[Math.min(lexicon.length - 1, Math.floor(1 / (random() + 1e-4)) - 1)];
    if (random() < 0.08) w += random() < 0.5 ? ',' : '.';
    out.push(w);
    if (random() < 0.01) out.push('\n\n');
  }
  return out.join(' ').replace(/ \n\n /g, '\n\n');
}

// A long message is one segment between two added tokens, which the library's BPE takes as one
// word; Phi3Tokenizer cuts it at spaces (segment-encoder.ts). Each figure is a fresh tokenizer's.
console.log('');
console.log('| pasted document (words) | prompt tokens | library, whole (ms) | Phi3Tokenizer (ms) | ratio |');
console.log('|---|---|---|---|---|');
for (const words of values.documents!.split(',').map(Number)) {
  const messages: ChatMessage[] = [{ role: 'user', content: documentText(words) }];
  const phi3 = loadTokenizer({ tokenizerJson: files.tokenizerJson, tokenizerConfig: files.tokenizerConfig });
  const rendered = phi3.applyChatTemplate(messages, { addGenerationPrompt: true });
  const library = new Tokenizer(files.tokenizerJson as object, files.tokenizerConfig as object);
  let whole: number[] = [];
  const wholeMs = time(() => (whole = library.encode(rendered, { add_special_tokens: false }).ids));
  let cut: number[] = [];
  const cutMs = time(() => (cut = phi3.encodeRendered(rendered)));
  if (cut.length !== whole.length + 1 || whole.some((id, i) => id !== cut[i + 1])) throw new Error(`${words} words: the ids differ from the whole encoding`);
  console.log(`| ${words} | ${cut.length} | ${wholeMs.toFixed(0)} | ${cutMs.toFixed(0)} | ${(wholeMs / cutMs).toFixed(1)}× |`);
}
