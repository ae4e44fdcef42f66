// Runs in headless Chromium: proves the tokenizer, the Jinja chat template and the stream decoder
// work in the browser bundle (no Node built-ins), against llama-tokenizer-js in the same page.
import { describe, expect, it } from 'vitest';
import llamaTokenizer from 'llama-tokenizer-js';
import { buildTokenizerFiles } from '../../../tools/tiny-model/tokenizer-files';
import { loadTokenizer } from './index';
import { generateTestStrings } from './test-strings';

describe('Phi-3 tokenizer in the browser', () => {
  const files = buildTokenizerFiles();
  const tokenizer = loadTokenizer({
    tokenizerJson: JSON.parse(JSON.stringify(files.tokenizerJson)),
    tokenizerConfig: JSON.parse(JSON.stringify(files.tokenizerConfig)),
    generationConfig: { eos_token_id: [32000, 32001, 32007] },
  });

  it('runs in a browser', () => {
    expect(typeof window).toBe('object');
    expect(navigator.userAgent).toMatch(/Chrome/);
  });

  it('encodes like llama-tokenizer-js', () => {
    expect(tokenizer.encode('grabbed')).toEqual([1, 2646, 1327, 287]);
    expect(tokenizer.encode('🦙Ꙋ')).toEqual([1, 29871, 243, 162, 169, 156, 237, 156, 141]);
    for (const text of generateTestStrings(100, 7)) {
      expect(tokenizer.encode(text)).toEqual(llamaTokenizer.encode(text, true, true));
    }
  });

  it('renders and encodes a chat, and streams text back', () => {
    const messages = [
      { role: 'system' as const, content: 'Be brief.' },
      { role: 'user' as const, content: 'Hi 🦙' },
    ];
    expect(tokenizer.applyChatTemplate(messages)).toBe('<|system|>\nBe brief.<|end|>\n<|user|>\nHi 🦙<|end|>\n<|assistant|>\n');
    const ids = tokenizer.encodeChat(messages);
    expect(ids.slice(0, 2)).toEqual([1, 32006]);
    const decoder = tokenizer.createStreamDecoder();
    const text = ids.map((id) => decoder.push(id)).join('') + decoder.flush();
    expect(text).toBe(tokenizer.decode(ids));
    expect(tokenizer.eosTokenIds).toEqual([32000, 32001, 32007]);
  });
});
