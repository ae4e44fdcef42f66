/**
 * FedPieces over Phi-3's real tokenizer (the generated tiny model's files): which ids a prompt
 * gets. The engine-level effect (a follow-up prefilled from the new turn on) is tested on the GPU
 * in chat-engine.node-gpu.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { FedPieces } from './fed-pieces';
import { loadTokenizer } from './tokenizer';
import { buildTokenizerFiles } from '../../tools/tiny-model/tokenizer-files';
import type { ChatMessage } from './types';

const files = buildTokenizerFiles();
const tokenizer = loadTokenizer({ tokenizerJson: files.tokenizerJson, tokenizerConfig: files.tokenizerConfig });
const render = (messages: ChatMessage[], continueFinalMessage = false) => tokenizer.applyChatTemplate(messages, { continueFinalMessage });
const encode = (messages: ChatMessage[], continueFinalMessage = false) => tokenizer.encodeChat(messages, { continueFinalMessage });
const encodeRest = (text: string) => tokenizer.encode(text, { addSpecialTokens: false });
const plan = (fed: FedPieces, messages: ChatMessage[], continueFinalMessage = false) =>
  fed.plan(render(messages, continueFinalMessage), encode(messages, continueFinalMessage), encodeRest);

const QUESTION: ChatMessage[] = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Name a colour.' },
];
/** "Blue." as a model might write it, in pieces that encoding the text would not choose. */
const ANSWER = 'Blue.';
const written = [...'Blue.'].map((c) => tokenizer.tokenToId(`<0x${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}>`)!);

/** The first request: the question fed as encoded, then the answer as written. */
function afterFirstAnswer(): FedPieces {
  const fed = new FedPieces();
  const first = plan(fed, QUESTION);
  expect(first.keptIds).toBe(0);
  expect(first.ids).toEqual(encode(QUESTION));
  fed.remember(first.pieces, { text: ANSWER, ids: written });
  return fed;
}

describe('FedPieces', () => {
  it('the written ids are not what encoding the text gives (the case it exists for)', () => {
    expect(tokenizer.decode(written)).toBe(ANSWER);
    expect(encodeRest(ANSWER)).not.toEqual(written);
  });

  it('a follow-up gets the question and answer as fed and written, then the new turn as encoded', () => {
    const fed = afterFirstAnswer();
    const followUp: ChatMessage[] = [...QUESTION, { role: 'assistant', content: ANSWER }, { role: 'user', content: 'Another.' }];
    const planned = plan(fed, followUp);
    const opener = encode(QUESTION);
    expect(planned.ids.slice(0, opener.length + written.length)).toEqual([...opener, ...written]);
    expect(planned.keptIds).toBe(opener.length + written.length);
    // The rest is exactly how the whole prompt's own encoding ends.
    const own = encode(followUp);
    const rest = planned.ids.slice(planned.keptIds);
    expect(own.slice(own.length - rest.length)).toEqual(rest);
    expect(tokenizer.decode(rest)).toMatch(/^<\|end\|>/);
    // The same text either way.
    expect(tokenizer.decode(planned.ids)).toBe(tokenizer.decode(own).replace('Blue.', ANSWER));
  });

  it('a continuation gets the answer as written; regenerating gets the question as fed', () => {
    const fed = afterFirstAnswer();
    const continuing = plan(fed, [...QUESTION, { role: 'assistant', content: ANSWER }], true);
    expect(continuing.ids).toEqual([...encode(QUESTION), ...written]);
    expect(continuing.pieces.map((p) => p.text).join('')).toBe(render([...QUESTION, { role: 'assistant', content: ANSWER }], true));
    expect(plan(fed, QUESTION).ids).toEqual(encode(QUESTION));
  });

  it('text that differs from the kept pieces gets its own encoding from where it differs', () => {
    const fed = afterFirstAnswer();
    // Another answer in its place (edited away, or another conversation with the same question).
    const other = plan(fed, [...QUESTION, { role: 'assistant', content: 'Red.' }, { role: 'user', content: 'Why?' }]);
    const own = encode([...QUESTION, { role: 'assistant', content: 'Red.' }, { role: 'user', content: 'Why?' }]);
    // The question matched, but "Red.…" does not encode alone as it does after it: all its own.
    expect(other.ids).toEqual(own);
    expect(other.keptIds).toBe(0);
    // Another system prompt: nothing is kept.
    const elsewhere = plan(fed, [{ role: 'system', content: 'You are verbose.' }, ...QUESTION.slice(1)]);
    expect(elsewhere).toMatchObject({ ids: encode([{ role: 'system', content: 'You are verbose.' }, ...QUESTION.slice(1)]), keptIds: 0 });
  });

  it('an answer with no text is not kept, and clear() forgets everything', () => {
    const fed = new FedPieces();
    const first = plan(fed, QUESTION);
    fed.remember(first.pieces, { text: '', ids: [32007] });
    expect(plan(fed, QUESTION).ids).toEqual(encode(QUESTION));
    fed.remember(first.pieces, { text: ANSWER, ids: written });
    fed.clear();
    expect(plan(fed, [...QUESTION, { role: 'assistant', content: ANSWER }], true).keptIds).toBe(0);
  });
});
