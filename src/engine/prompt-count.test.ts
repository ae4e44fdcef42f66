/**
 * PromptCounter against the definition (every prefix encoded) on Phi-3's tokenizer: random
 * conversations under the Phi-3 template, a template without a system role and a trimming one
 * give the same counts; a template that numbers its turns (not local) falls back to the
 * definition; and a conversation that grows by one message costs a few encodings, not one per
 * message.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { buildTokenizerFiles, PHI3_CHAT_TEMPLATE, PHI3_CHAT_TEMPLATE_NO_SYSTEM } from '../../tools/tiny-model/tokenizer-files';
import { ChatEngine } from './chat-engine';
import { exactCounts, PromptCounter } from './prompt-count';
import { loadTokenizer } from './tokenizer';
import { generateTestStrings } from './tokenizer/test-strings';
import type { TokenRuntime } from './generate';
import type { ChatMessage } from './types';

/** The chat side of an engine with no model behind it: counting needs only the tokenizer. */
class CountingEngine extends ChatEngine {
  encodings = 0;
  get runtime(): TokenRuntime {
    throw new Error('counting only');
  }
  override countChatTokens(messages: readonly ChatMessage[]): number {
    this.encodings++;
    return super.countChatTokens(messages);
  }
}

let files: ReturnType<typeof buildTokenizerFiles>;
const engine = (chatTemplate = PHI3_CHAT_TEMPLATE) =>
  new CountingEngine(loadTokenizer({ tokenizerJson: files.tokenizerJson, tokenizerConfig: { ...files.tokenizerConfig, chat_template: chatTemplate } }), new Set([32000]));

function conversation(seed: number, turns: number, options: { system: boolean; continuing: boolean }): ChatMessage[] {
  const texts = generateTestStrings(2 * turns + 1, seed).map((t) => t.trim() || 'ok');
  const messages: ChatMessage[] = options.system ? [{ role: 'system', content: texts[2 * turns] }] : [];
  for (let t = 0; t < turns; t++) messages.push({ role: 'user', content: texts[2 * t] }, { role: 'assistant', content: texts[2 * t + 1] });
  if (!options.continuing) messages.pop();
  return messages;
}

beforeAll(() => {
  files = buildTokenizerFiles();
});

describe('PromptCounter', () => {
  it('gives the exact counts for random conversations under the Phi-3, system-less and trimming templates', () => {
    const templates = { phi3: PHI3_CHAT_TEMPLATE, 'no system role': PHI3_CHAT_TEMPLATE_NO_SYSTEM, trimming: PHI3_CHAT_TEMPLATE.replaceAll("message['content']", "message['content'] | trim") };
    for (const [name, template] of Object.entries(templates)) {
      const e = engine(template);
      for (let seed = 1; seed <= 6; seed++) {
        const messages = conversation(seed, 1 + (seed % 4), { system: seed % 2 === 0, continuing: seed % 3 === 0 });
        expect(e.countMessages(messages), `${name}, seed ${seed}`).toEqual(exactCounts((m) => e.countChatTokens(m), messages));
      }
    }
  });

  it('falls back to the definition for a template whose messages depend on their place', () => {
    const numbered = "{% for message in messages %}{{ 'Turn ' + (loop.index * 997) | string + ' ' + message['role'] + ': ' + message['content'] + '\\n' }}{% endfor %}";
    const e = engine(numbered);
    const messages = conversation(9, 12, { system: true, continuing: false });
    const windows = new PromptCounter((m) => e.countChatTokens(m));
    expect(windows.counts(messages)).toEqual(exactCounts((m) => e.countChatTokens(m), messages));
    // It did fall back: the windows alone do not add up here.
    expect((windows as unknown as { local: boolean }).local).toBe(false);
  });

  it('a conversation that grows by one message costs a few encodings, not one per message', () => {
    const e = engine();
    const messages = conversation(3, 30, { system: true, continuing: false });
    e.countMessages(messages.slice(0, -2));
    e.encodings = 0;
    e.countMessages(messages);
    // count([]), two windows of two encodings each, and the whole conversation once.
    expect(e.encodings).toBe(6);
    expect(messages.length).toBeGreaterThan(50);
  });
});
