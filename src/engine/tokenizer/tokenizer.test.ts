import { beforeAll, describe, expect, it } from 'vitest';
import llamaTokenizer from 'llama-tokenizer-js';
import { buildTokenizerFiles, PHI3_CHAT_TEMPLATE, PHI3_CHAT_TEMPLATE_NO_SYSTEM } from '../../../tools/tiny-model/tokenizer-files';
import { AppError } from '../errors';
import type { ChatMessage } from '../types';
import { loadTokenizer, type Phi3Tokenizer } from './index';
import { generateTestStrings } from './test-strings';

const STRING_COUNT = 1200;

function expectTokenizerError(fn: () => unknown, pattern: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(AppError);
  expect((caught as AppError).code).toBe('TOKENIZER_ERROR');
  expect((caught as AppError).message).toMatch(pattern);
}

describe('Phi-3 tokenizer', () => {
  let files: ReturnType<typeof buildTokenizerFiles>;
  let tokenizer: Phi3Tokenizer;
  const strings = generateTestStrings(STRING_COUNT, 20240423);

  beforeAll(() => {
    files = buildTokenizerFiles();
    tokenizer = loadTokenizer({ tokenizerJson: files.tokenizerJson, tokenizerConfig: files.tokenizerConfig });
  });

  it(`encodes ${STRING_COUNT} generated strings to the same ids as llama-tokenizer-js`, () => {
    // llama-tokenizer-js's encode(text, addBos=true, addPrecedingSpace=true) is SentencePiece's
    // convention: `<s>` then the text with one space prepended, which is what Phi-3's tokenizer.json
    // does with addSpecialTokens (TemplateProcessing `<s>` + Prepend "▁" normalizer).
    const mismatches: string[] = [];
    for (const [i, text] of strings.entries()) {
      const ours = tokenizer.encode(text, { addSpecialTokens: true });
      const reference = llamaTokenizer.encode(text, true, true);
      if (JSON.stringify(ours) !== JSON.stringify(reference)) {
        mismatches.push(`#${i} ${JSON.stringify(text)}\n  ours ${ours.join(',')}\n  ref  ${reference.join(',')}`);
      }
    }
    expect(mismatches.slice(0, 5).join('\n')).toBe('');
    expect(mismatches).toHaveLength(0);
  });

  it('covers what the generator promises (CJK, emoji, combining marks, whitespace runs, byte fallback)', () => {
    const all = strings.join('');
    expect(all).toMatch(/\p{Script=Han}/u);
    expect(all).toMatch(/\p{Extended_Pictographic}/u);
    expect(all).toMatch(/\p{M}/u);
    expect(all).toMatch(/ {3}|\t\t|\n\n/);
    // Byte-fallback ids are 3..258; most strings should use them somewhere.
    const withBytes = strings.filter((s) => tokenizer.encode(s).some((id) => id >= 3 && id <= 258));
    expect(withBytes.length).toBeGreaterThan(STRING_COUNT / 4);
  });

  it('decodes every generated string back to itself', () => {
    for (const text of strings) {
      expect(tokenizer.decode(tokenizer.encode(text), { skipSpecialTokens: true })).toBe(text);
    }
  });

  it('without special tokens, encodes like llama-tokenizer-js without bos', () => {
    for (const text of strings.slice(0, 200)) {
      expect(tokenizer.encode(text, { addSpecialTokens: false })).toEqual(llamaTokenizer.encode(text, false, true));
    }
  });

  it('maps each Phi-3 added token to its single id', () => {
    const expected: Record<string, number> = {
      '<unk>': 0,
      '<s>': 1,
      '</s>': 2,
      '<|endoftext|>': 32000,
      '<|assistant|>': 32001,
      '<|placeholder1|>': 32002,
      '<|placeholder2|>': 32003,
      '<|placeholder3|>': 32004,
      '<|placeholder4|>': 32005,
      '<|system|>': 32006,
      '<|end|>': 32007,
      '<|placeholder5|>': 32008,
      '<|placeholder6|>': 32009,
      '<|user|>': 32010,
    };
    for (const [text, id] of Object.entries(expected)) {
      expect(tokenizer.encode(text, { addSpecialTokens: false }), text).toEqual([id]);
      expect(tokenizer.tokenToId(text)).toBe(id);
      expect(tokenizer.decode([id])).toBe(text);
    }
    expect(tokenizer.decode([1, 32010, 32007, 32001], { skipSpecialTokens: true })).toBe('');
    expect(tokenizer.bosTokenId).toBe(1);
  });

  describe('chat template', () => {
    const conversation: ChatMessage[] = [
      { role: 'system', content: 'You are a terse assistant.' },
      { role: 'user', content: 'What is 2+2?' },
      { role: 'assistant', content: '4.' },
      { role: 'user', content: 'And 🦙 in Spanish?' },
    ];
    const expectedText =
      '<|system|>\nYou are a terse assistant.<|end|>\n' +
      '<|user|>\nWhat is 2+2?<|end|>\n' +
      '<|assistant|>\n4.<|end|>\n' +
      '<|user|>\nAnd 🦙 in Spanish?<|end|>\n' +
      '<|assistant|>\n';

    it('renders Phi-3 Mini’s published prompt format', () => {
      expect(tokenizer.applyChatTemplate(conversation, { addGenerationPrompt: true })).toBe(expectedText);
      expect(tokenizer.applyChatTemplate(conversation, { addGenerationPrompt: false })).toBe(
        expectedText.slice(0, -'<|assistant|>\n'.length) + '<|endoftext|>',
      );
    });

    it('encodes the rendered chat with special ids and a single <s>', () => {
      const ids = tokenizer.encodeChat(conversation, { addGenerationPrompt: true });
      expect(ids.slice(0, 2)).toEqual([1, 32006]);
      expect(ids.filter((id) => id === 1)).toHaveLength(1);
      // Independent reference: split at the special tokens; each text piece is encoded by
      // llama-tokenizer-js as its own SentencePiece text (the Prepend normalizer runs per piece).
      const specials = new Map([
        ['<|system|>', 32006],
        ['<|user|>', 32010],
        ['<|assistant|>', 32001],
        ['<|end|>', 32007],
        ['<|endoftext|>', 32000],
      ]);
      const expected = [1];
      for (const piece of expectedText.split(/(<\|[a-z]+\|>)/).filter((p) => p.length > 0)) {
        const special = specials.get(piece);
        if (special !== undefined) expected.push(special);
        else expected.push(...llamaTokenizer.encode(piece, false, true));
      }
      expect(ids).toEqual(expected);
      // "<|assistant|>\n": the Prepend normalizer runs on the "\n" piece too, giving "▁" + <0x0A>.
      expect(ids.slice(-3)).toEqual([32001, 29871, 13]);
      expect(tokenizer.encodeChat(conversation, { addGenerationPrompt: false }).at(-1)).toBe(32000);
    });

    it('does not duplicate <s> when the template writes bos_token itself', () => {
      const withBos = loadTokenizer({
        tokenizerJson: files.tokenizerJson,
        tokenizerConfig: { ...files.tokenizerConfig, chat_template: '{{ bos_token }}' + PHI3_CHAT_TEMPLATE },
      });
      const ids = withBos.encodeChat(conversation);
      expect(ids).toEqual(tokenizer.encodeChat(conversation));
      expect(withBos.applyChatTemplate(conversation).startsWith('<s><|system|>')).toBe(true);
    });

    it('follows the template in the files, not a built-in format', () => {
      const custom = loadTokenizer({
        tokenizerJson: files.tokenizerJson,
        tokenizerConfig: {
          ...files.tokenizerConfig,
          chat_template: "{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}{% endfor %}{{ eos_token }}",
        },
      });
      expect(custom.applyChatTemplate(conversation.slice(0, 2))).toBe(
        '[system]You are a terse assistant.[user]What is 2+2?<|endoftext|>',
      );
    });
  });

  describe('a template without a system role (Phi-3 Mini as first published)', () => {
    const withTemplate = (chat_template: string) => loadTokenizer({ tokenizerJson: files.tokenizerJson, tokenizerConfig: { ...files.tokenizerConfig, chat_template } });
    const chat: ChatMessage[] = [
      { role: 'system', content: 'Answer in French.' },
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Salut.' },
      { role: 'user', content: 'Why?' },
    ];

    it('puts the system prompt before the first user message, so it still reaches the model', () => {
      const old = withTemplate(PHI3_CHAT_TEMPLATE_NO_SYSTEM);
      expect(old.systemRole()).toBe('first-user-message');
      expect(old.applyChatTemplate(chat)).toBe('<s><|user|>\nAnswer in French.\n\nHi<|end|>\n<|assistant|>\nSalut.<|end|>\n<|user|>\nWhy?<|end|>\n<|assistant|>\n');
      // A system prompt alone becomes the first user message.
      expect(old.applyChatTemplate(chat.slice(0, 1))).toBe('<s><|user|>\nAnswer in French.<|end|>\n<|assistant|>\n');
      expect(old.applyChatTemplate(chat.slice(1))).toBe('<s><|user|>\nHi<|end|>\n<|assistant|>\nSalut.<|end|>\n<|user|>\nWhy?<|end|>\n<|assistant|>\n');
      expect(old.applyChatTemplate([...chat.slice(0, 2), { role: 'assistant', content: 'Sal' }], { continueFinalMessage: true })).toBe('<s><|user|>\nAnswer in French.\n\nHi<|end|>\n<|assistant|>\nSal');
    });

    it('a template with a system role writes it as it is; one that refuses it gets it folded too', () => {
      expect(tokenizer.systemRole()).toBe('template');
      expect(tokenizer.applyChatTemplate(chat).startsWith('<|system|>\nAnswer in French.<|end|>\n<|user|>\nHi<|end|>')).toBe(true);
      const refusing = withTemplate("{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}" + PHI3_CHAT_TEMPLATE_NO_SYSTEM);
      expect(refusing.systemRole()).toBe('first-user-message');
      expect(refusing.applyChatTemplate(chat).startsWith('<s><|user|>\nAnswer in French.\n\nHi')).toBe(true);
      const { chat_template: _t, ...noTemplate } = files.tokenizerConfig as Record<string, unknown>;
      expect(loadTokenizer({ tokenizerJson: files.tokenizerJson, tokenizerConfig: noTemplate }).systemRole()).toBeUndefined();
    });
  });

  describe('continuing an answer', () => {
    const question: ChatMessage[] = [
      { role: 'system', content: 'You are a terse assistant.' },
      { role: 'user', content: 'Name a llama 🦙 fact.' },
    ];
    const cut: ChatMessage = { role: 'assistant', content: 'Llamas hum to' };

    it('renders up to the end of the answer’s text, without closing its turn', () => {
      expect(tokenizer.applyChatTemplate([...question, cut], { continueFinalMessage: true })).toBe(
        '<|system|>\nYou are a terse assistant.<|end|>\n<|user|>\nName a llama 🦙 fact.<|end|>\n<|assistant|>\nLlamas hum to',
      );
    });

    it('encodes as the closed conversation less its closing tokens, so the model sees its own text', () => {
      const continued = tokenizer.encodeChat([...question, cut], { continueFinalMessage: true });
      const closed = tokenizer.encodeChat([...question, cut], { addGenerationPrompt: false });
      // "<|end|>", "▁" + "\n" (the Prepend normalizer), "<|endoftext|>".
      expect(closed).toEqual([...continued, 32007, 29871, 13, 32000]);
      // The answer follows the generation prompt exactly as a generated answer would.
      const prompt = tokenizer.encodeChat(question, { addGenerationPrompt: true });
      expect(continued.slice(0, prompt.length)).toEqual(prompt);
      expect(tokenizer.decode(continued.slice(prompt.length), { skipSpecialTokens: true })).toBe('Llamas hum to');
    });

    it('ends with the answer as it is, even one that could be read inside the closing markup', () => {
      // "e" also occurs in "<|end|>" and "<|endoftext|>", which the template writes after it.
      expect(tokenizer.applyChatTemplate([...question, { role: 'assistant', content: 'e' }], { continueFinalMessage: true }).endsWith('<|assistant|>\ne')).toBe(true);
      const trimming = loadTokenizer({
        tokenizerJson: files.tokenizerJson,
        tokenizerConfig: { ...files.tokenizerConfig, chat_template: PHI3_CHAT_TEMPLATE.replaceAll("message['content']", "message['content'] | trim") },
      });
      expect(trimming.applyChatTemplate([...question, { role: 'assistant', content: 'Llamas hum to\n' }], { continueFinalMessage: true }).endsWith('<|assistant|>\nLlamas hum to\n')).toBe(true);
    });

    it('refuses what cannot be continued, saying why', () => {
      expectTokenizerError(() => tokenizer.encodeChat(question, { continueFinalMessage: true }), /only an assistant message with text can be continued/);
      expectTokenizerError(() => tokenizer.encodeChat([...question, { role: 'assistant', content: '  ' }], { continueFinalMessage: true }), /only an assistant message/);
      const shouting = loadTokenizer({
        tokenizerJson: files.tokenizerJson,
        tokenizerConfig: { ...files.tokenizerConfig, chat_template: PHI3_CHAT_TEMPLATE.replaceAll("message['content']", "message['content'] | upper") },
      });
      expectTokenizerError(() => shouting.encodeChat([...question, cut], { continueFinalMessage: true }), /does not write an answer's text as it is/);
    });
  });

  describe('eos ids', () => {
    it('come from tokenizer_config.json without a generation config', () => {
      expect(tokenizer.eosTokenIds).toEqual([32000]);
    });
    it('come from generation_config.json when given', () => {
      const t = loadTokenizer({ ...files, generationConfig: { eos_token_id: [32000, 32001, 32007] } });
      expect(t.eosTokenIds).toEqual([32000, 32001, 32007]);
      expect(loadTokenizer({ ...files, generationConfig: { eos_token_id: 32007 } }).eosTokenIds).toEqual([32007]);
    });
  });

  describe('stream decoder', () => {
    function streamed(ids: readonly number[], skipSpecialTokens: boolean): { deltas: string[]; text: string } {
      const decoder = tokenizer.createStreamDecoder({ skipSpecialTokens });
      const deltas = ids.map((id) => decoder.push(id));
      deltas.push(decoder.flush());
      return { deltas, text: deltas.join('') };
    }

    it('deltas concatenate to decode(allIds) for every generated string', () => {
      for (const text of strings) {
        const ids = tokenizer.encode(text);
        expect(streamed(ids, true).text).toBe(tokenizer.decode(ids, { skipSpecialTokens: true }));
        expect(streamed(ids, false).text).toBe(tokenizer.decode(ids));
      }
    });

    it('does the same across a whole chat, special tokens included', () => {
      const ids = tokenizer.encodeChat([
        { role: 'user', content: 'Hi  there\n\tyou 🦙' },
        { role: 'assistant', content: ' 镇 🇫🇷 e\u0301' },
      ]);
      expect(streamed(ids, false).text).toBe(tokenizer.decode(ids));
      expect(streamed(ids, true).text).toBe(tokenizer.decode(ids, { skipSpecialTokens: true }));
    });

    it('holds back an emoji split across byte-fallback tokens until it is complete', () => {
      const ids = tokenizer.encode('Hi 🦙!', { addSpecialTokens: false });
      const llamaBytes = [243, 162, 169, 156]; // <0xF0> <0x9F> <0xA6> <0x99>
      const start = ids.indexOf(llamaBytes[0]);
      expect(ids.slice(start, start + 4)).toEqual(llamaBytes);
      const { deltas } = streamed(ids, true);
      expect(deltas.slice(start, start + 3)).toEqual(['', '', '']);
      expect(deltas[start + 3]).toBe('🦙');
      expect(deltas.join('')).toBe('Hi 🦙!');
      expect(deltas.every((d) => !d.includes('\uFFFD'))).toBe(true);
    });

    it('keeps the space between words but drops the first one, as decode does', () => {
      const ids = tokenizer.encode('Hello world', { addSpecialTokens: false });
      expect(streamed(ids, true).deltas.filter((d) => d !== '')).toEqual(['Hello', ' world']);
    });

    it('with a context, streams what the ids add to its text, for every generated string', () => {
      let checked = 0;
      for (const text of strings) {
        const ids = tokenizer.encode(text, { addSpecialTokens: false });
        const k = Math.floor(ids.length / 2);
        const whole = tokenizer.decode(ids);
        const shown = tokenizer.decode(ids.slice(0, k));
        // A cut inside a character's bytes shows U+FFFD, which a continued answer never ends with.
        if (k === 0 || shown.includes('\uFFFD') || !whole.startsWith(shown)) continue;
        const decoder = tokenizer.createStreamDecoder({ context: ids.slice(0, k) });
        const streamedText = ids.slice(k).map((id) => decoder.push(id)).join('') + decoder.flush();
        expect(streamedText).toBe(whole.slice(shown.length));
        checked++;
      }
      expect(checked).toBeGreaterThan(STRING_COUNT / 2);
    });

    it('keeps the space before the first word that continues a text', () => {
      const [hello, world] = tokenizer.encode('Hello world', { addSpecialTokens: false });
      expect(streamed([world], true).text).toBe('world');
      const decoder = tokenizer.createStreamDecoder({ skipSpecialTokens: true, context: [32001, 29871, 13, hello] });
      expect(decoder.push(world) + decoder.flush()).toBe(' world');
    });

    it('flushes an incomplete byte sequence at the end as decode does', () => {
      const ids = [...tokenizer.encode('ok', { addSpecialTokens: false }), 243, 162];
      const { text, deltas } = streamed(ids, true);
      expect(text).toBe(tokenizer.decode(ids, { skipSpecialTokens: true }));
      expect(deltas.at(-1)).not.toBe('');
    });
  });

  describe('errors', () => {
    it('names a bad tokenizer.json', () => {
      expectTokenizerError(() => loadTokenizer({ tokenizerJson: null, tokenizerConfig: {} }), /tokenizer\.json must be a JSON object/);
      expectTokenizerError(() => loadTokenizer({ tokenizerJson: {}, tokenizerConfig: {} }), /no "model"/);
      expectTokenizerError(
        () => loadTokenizer({ tokenizerJson: { model: { type: 'BPE', vocab: {} } }, tokenizerConfig: {} }),
        /no "merges"/,
      );
      expectTokenizerError(() => loadTokenizer({ tokenizerJson: files.tokenizerJson, tokenizerConfig: 'x' }), /tokenizer_config\.json/);
    });

    it('names a missing or broken chat_template', () => {
      const { chat_template: _unused, ...noTemplate } = files.tokenizerConfig as Record<string, unknown>;
      const t = loadTokenizer({ tokenizerJson: files.tokenizerJson, tokenizerConfig: noTemplate });
      expect(t.encode('still encodes')).toEqual(llamaTokenizer.encode('still encodes', true, true));
      expectTokenizerError(() => t.applyChatTemplate([{ role: 'user', content: 'hi' }]), /no chat_template/);
      const broken = loadTokenizer({
        tokenizerJson: files.tokenizerJson,
        tokenizerConfig: { ...files.tokenizerConfig, chat_template: '{% for m in messages %}' },
      });
      expectTokenizerError(() => broken.encodeChat([{ role: 'user', content: 'hi' }]), /chat_template/);
      const raising = loadTokenizer({
        tokenizerJson: files.tokenizerJson,
        tokenizerConfig: { ...files.tokenizerConfig, chat_template: "{{ raise_exception('no system role') }}" },
      });
      expectTokenizerError(() => raising.applyChatTemplate([]), /no system role/);
    });

    it('names bad ids and a bad generation config', () => {
      expectTokenizerError(() => tokenizer.decode([1, -3]), /-3/);
      expectTokenizerError(() => tokenizer.decode([1.5]), /1\.5/);
      expectTokenizerError(
        () => loadTokenizer({ ...files, generationConfig: { eos_token_id: 'x' } }),
        /eos_token_id/,
      );
      expectTokenizerError(
        () => loadTokenizer({ ...files, tokenizerConfig: { ...files.tokenizerConfig, eos_token: '<nope>' } }),
        /eos_token "<nope>"/,
      );
    });
  });
});
