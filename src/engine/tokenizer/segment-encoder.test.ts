/**
 * SegmentEncoder against encoding the whole text, on Phi-3's tokenizer files (the tiny model's)
 * and Phi-3's chat template: the same ids for varied conversations, including text that writes
 * added tokens itself, while it still encodes by segments (so the equality is not a fallback's);
 * and long texts cut at spaces, with the tokenizers that allow it told from those that do not.
 */
import { describe, expect, it } from 'vitest';
import { Tokenizer } from '@huggingface/tokenizers';
import { buildTokenizerFiles } from '../../../tools/tiny-model/tokenizer-files';
import { loadTokenizer } from './index';
import { cutsAtSpaces, SegmentEncoder } from './segment-encoder';
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

  describe('long segments cut at spaces', () => {
    const json = files.tokenizerJson as Record<string, unknown>;
    const model = json.model as Record<string, unknown>;

    /** A long text from the varied strings, with the whitespace and '▁' cases a cut must respect. */
    function document(seed: number, chars: number): string {
      const random = seededRandom(seed);
      const odd = [' ', '  ', ' \u2581', '\u2581 ', '\u2581\u2581 x', ' \n', '\t ', ' ', ' ', ' '];
      let text = '';
      for (const part of generateTestStrings(Math.ceil(chars / 20), seed)) {
        text += part + odd[Math.floor(random() * odd.length)];
        if (text.length >= chars) break;
      }
      return text;
    }

    it("Phi-3's tokenizer allows it; one with another normalizer, a pre-tokenizer or a token that joins across a space does not", () => {
      expect(cutsAtSpaces(json)).toBe(true);
      expect(cutsAtSpaces({ ...json, normalizer: null, pre_tokenizer: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first', split: false } })).toBe(false);
      expect(cutsAtSpaces({ ...json, pre_tokenizer: { type: 'ByteLevel' } })).toBe(false);
      const normalizers = (json.normalizer as { normalizers: unknown[] }).normalizers;
      expect(cutsAtSpaces({ ...json, normalizer: { type: 'Sequence', normalizers: normalizers.slice(1) } })).toBe(false);
      expect(cutsAtSpaces({ ...json, model: { ...model, vocab: { ...(model.vocab as object), 'a\u2581b': 40000 } } })).toBe(false);
      expect(cutsAtSpaces({ ...json, model: { ...model, merges: [...(model.merges as string[]), 'x \u2581y'] } })).toBe(false);
      expect(cutsAtSpaces({ ...json, model: { ...model, type: 'Unigram' } })).toBe(false);
      expect(cutsAtSpaces(null)).toBe(false);
    });

    it('gives the whole encoding for long varied texts, alone and as messages of a chat, still cutting them', () => {
      const encoder = new SegmentEncoder(addedTokens, encodeWhole, true);
      // Past the length checked against the whole encoding (16K characters) too: those ids are the pieces' own.
      for (const [seed, chars] of [[1, 500], [2, 3000], [3, 12000], [4, 40000], [5, 30000]]) {
        const text = document(seed, chars);
        expect(encoder.encode(text), `seed ${seed}`).toEqual(encodeWhole(text));
        const rendered = phi3.applyChatTemplate([{ role: 'system', content: 'You are terse.' }, { role: 'user', content: text }, { role: 'assistant', content: document(seed + 10, 2000) }, { role: 'user', content: `  ${text} ` }]);
        expect(encoder.encode(rendered), `seed ${seed}, in a chat`).toEqual(encodeWhole(rendered));
      }
      expect(encoder.byPieces).toBe(true);
      expect(encoder.bySegments).toBe(true);
    });

    it('where added tokens strip the whitespace after them, no cut falls in what they strip', () => {
      const rstripJson = {
        ...(files.tokenizerJson as object),
        added_tokens: addedTokens.map((t) => ((t as { id: number }).id >= 32000 ? { ...(t as object), rstrip: true } : t)),
      };
      const rstrip = new Tokenizer(rstripJson, files.tokenizerConfig as object);
      const whole = (text: string) => rstrip.encode(text, { add_special_tokens: false }).ids;
      const encoder = new SegmentEncoder(rstripJson.added_tokens, whole, cutsAtSpaces(rstripJson));
      const spaces = ' '.repeat(100);
      for (const text of [`<|user|>${spaces}${document(6, 800)}<|end|>`, `<|user|>\n${spaces}x ${document(7, 20000)}<|end|>\n<|assistant|>\n`]) {
        expect(encoder.encode(text)).toEqual(whole(text));
      }
      expect(encoder.byPieces).toBe(true);
    });

    it('a tokenizer whose pieces do not add up fails a check and is then encoded whole, by segments still', () => {
      // Stands for a tokenizer that gives a text encoded alone another start: each id is the offset in the text.
      const positional = (text: string) => [...text].map((_, i) => i);
      const encoder = new SegmentEncoder(addedTokens, positional, true);
      const text = document(8, 1000);
      expect(encoder.encode(text)).toEqual(positional(text));
      expect(encoder.byPieces).toBe(false);
      expect(encoder.bySegments).toBe(true);
    });

    it('Phi3Tokenizer cuts long messages: a pasted document encodes as it does whole', () => {
      const text = document(9, 50000);
      const messages: ChatMessage[] = [{ role: 'user', content: text }];
      expect(phi3.encodeChat(messages)).toEqual([1, ...encodeWhole(phi3.applyChatTemplate(messages))]);
    });
  });
});
