/**
 * SegmentEncoder against encoding the whole text, on Phi-3's tokenizer files (the tiny model's)
 * and Phi-3's chat template: the same ids for varied conversations, including text that writes
 * added tokens itself, while it still encodes by segments (so the equality is not a fallback's).
 */
import { describe, expect, it } from 'vitest';
import { Tokenizer } from '@huggingface/tokenizers';
import { buildTokenizerFiles } from '../../../tools/tiny-model/tokenizer-files';
import { loadTokenizer } from './index';
import { SegmentEncoder } from './segment-encoder';
import { generateTestStrings, seededRandom } from './test-strings';
import type { ChatMessage } from '../types';

const files = buildTokenizerFiles();
const hf = new Tokenizer(files.tokenizerJson as object, files.tokenizerConfig as object);
const encodeWhole = (text: string) => hf.encode(text, { add_special_tokens: false }).ids;
const addedTokens = (files.tokenizerJson as { added_tokens: unknown[] }).added_tokens;
const phi3 = loadTokenizer({ tokenizerJson: files.tokenizerJson, tokenizerConfig: files.tokenizerConfig });

/** A conversation of `turns` questions and answers from the varied strings, some writing added tokens. */
function conversation(seed: number, turns: number): ChatMessage[] {
  const random = seededRandom(seed);
  const strings = generateTestStrings(turns * 2, seed);
  const messages: ChatMessage[] = [{ role: 'system', content: 'You are terse.' }];
  strings.forEach((s, i) => {
    const extra = random() < 0.2 ? ' <|end|> and <s> written out ' : random() < 0.1 ? '\n\n  ' : '';
    messages.push({ role: i % 2 ? 'assistant' : 'user', content: s + extra });
  });
  return messages;
}

describe('SegmentEncoder', () => {
  it('gives the whole encoding for varied conversations, growing turn by turn', () => {
    const encoder = new SegmentEncoder(addedTokens, encodeWhole);
    for (let seed = 1; seed <= 12; seed++) {
      const messages = conversation(seed, 12);
      for (let n = 1; n <= messages.length; n++) {
        const rendered = phi3.applyChatTemplate(messages.slice(0, n), { addGenerationPrompt: n % 2 === 0 });
        expect(encoder.encode(rendered), `seed ${seed}, ${n} messages`).toEqual(encodeWhole(rendered));
      }
    }
    expect(encoder.bySegments).toBe(true);
  });

  it("gives the whole encoding where added tokens strip the whitespace after them (Phi-3's chat tokens in some revisions)", () => {
    const rstripJson = {
      ...(files.tokenizerJson as object),
      added_tokens: addedTokens.map((t) => ((t as { id: number }).id >= 32000 ? { ...(t as object), rstrip: true } : t)),
    };
    const rstrip = new Tokenizer(rstripJson, files.tokenizerConfig as object);
    const whole = (text: string) => rstrip.encode(text, { add_special_tokens: false }).ids;
    const encoder = new SegmentEncoder(rstripJson.added_tokens, whole);
    for (let seed = 1; seed <= 4; seed++) {
      const rendered = phi3.applyChatTemplate(conversation(seed, 8));
      expect(encoder.encode(rendered)).toEqual(whole(rendered));
    }
    expect(encoder.bySegments).toBe(true);
  });

  it('text with no added token, or opening with one, is encoded as it is', () => {
    const encoder = new SegmentEncoder(addedTokens, encodeWhole);
    for (const text of ['', 'plain text only', '<|user|>', '<|end|><|user|>\nhi<|end|>', ' <|assistant|>\n']) {
      expect(encoder.encode(text)).toEqual(encodeWhole(text));
    }
  });

  it('encodes every text whole where an added token can reach into the segment before it', () => {
    const lstrip = addedTokens.map((t, i) => (i === 3 ? { ...(t as object), lstrip: true } : t));
    expect(new SegmentEncoder(lstrip, encodeWhole).bySegments).toBe(false);
    expect(new SegmentEncoder([], encodeWhole).bySegments).toBe(false);
  });

  it('a tokenizer that joins across added tokens fails a check and is then encoded whole', () => {
    // Stands for a tokenizer whose ids depend on what came before: each id is the offset in the text.
    const positional = (text: string) => [...text].map((_, i) => i);
    const encoder = new SegmentEncoder(addedTokens, positional);
    const text = '<|user|>\nhi<|end|>\n<|assistant|>\n';
    expect(encoder.encode(text)).toEqual(positional(text));
    expect(encoder.bySegments).toBe(false);
  });

  it('Phi3Tokenizer.encodeChat still matches its ids from before (whole encoding of the rendering)', () => {
    const messages = conversation(99, 20);
    const rendered = phi3.applyChatTemplate(messages);
    expect(phi3.encodeChat(messages)).toEqual([1, ...encodeWhole(rendered)]);
  });
});
