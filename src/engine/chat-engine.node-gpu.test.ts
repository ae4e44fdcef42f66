/**
 * Continuing an answer (ChatEngine.chat with a conversation that ends with an assistant message)
 * on the native engine and a generated tiny Phi-3 with Phi-3's tokenizer: generation cut after k
 * tokens and continued from the cut text gives the same ids and the same text as one uninterrupted
 * run, greedy and sampled with one seed (the continuation draws from the RNG step its first token
 * would have had), and the continuation's first delta keeps the space that joins it to the text.
 * The cut points are chosen where re-encoding the text gives back the generated ids (checked, not
 * assumed): a model may write a word in pieces that encoding the text would not choose, and then
 * the continued prompt differs from the uninterrupted one by design. A random model sampled hot
 * writes such pieces often, so the sampled case looks through several seeds for its cut points.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateTinyModel } from '../../tools/tiny-model/generate';
import { testGpu } from './gpu/testing';
import { NativeEngine } from './native-engine';
import { nodeModelFiles } from './node/model-dir';
import type { ChatMessage, SamplingOptions } from './types';

const GREEDY: SamplingOptions = { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, seed: 0 };
const QUESTION: ChatMessage[] = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Tell me one thing about llamas.' },
];
/** Hot enough that most tokens are not the argmax: a draw from the wrong RNG step shows at once. */
const SAMPLED: SamplingOptions = { temperature: 1.5, topK: 0, topP: 1, repetitionPenalty: 1, seed: 0 };
const STEPS = 24;

let dir: string;
let engine: NativeEngine;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'chat-engine-test-'));
  await generateTinyModel(dir, { layers: 1, hidden: 64, heads: 4, intermediate: 96 });
  engine = await NativeEngine.load(await testGpu(), nodeModelFiles(dir));
}, 120_000);
afterAll(() => {
  engine?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

async function run(messages: ChatMessage[], maxNewTokens: number, sampling: SamplingOptions) {
  const gen = engine.chat(messages, { sampling, maxNewTokens });
  const ids: number[] = [];
  const deltas: string[] = [];
  let r = await gen.next();
  for (; !r.done; r = await gen.next()) {
    if (r.value.tokenId >= 0) ids.push(r.value.tokenId);
    deltas.push(r.value.text);
  }
  return { ids, text: deltas.join(''), deltas, stats: r.value };
}

/**
 * Cuts `sampling`'s uninterrupted answer at each k whose text re-encodes to its ids, continues it,
 * and checks the continuation against the rest; returns how many cut points it checked (at most
 * `wanted`).
 */
async function checkCutPoints(sampling: SamplingOptions, wanted: number): Promise<number> {
  const tokenizer = engine.tokenizer!;
  const whole = await run(QUESTION, STEPS, sampling);
  expect(whole.ids).toHaveLength(STEPS);
  const prompt = tokenizer.encodeChat(QUESTION);
  let checked = 0;
  for (let k = 1; k < STEPS && checked < wanted; k++) {
    const soFar = tokenizer.decode(whole.ids.slice(0, k), { skipSpecialTokens: true });
    const continuing: ChatMessage[] = [...QUESTION, { role: 'assistant', content: soFar }];
    if (!soFar.trim() || !whole.text.startsWith(soFar)) continue;
    const ids = tokenizer.encodeChat(continuing, { continueFinalMessage: true });
    if (ids.join() !== [...prompt, ...whole.ids.slice(0, k)].join()) continue;
    const rest = await run(continuing, STEPS - k, sampling);
    expect(rest.ids, `seed ${sampling.seed}, cut after ${k} tokens`).toEqual(whole.ids.slice(k));
    expect(soFar + rest.text).toBe(whole.text);
    expect(rest.stats.promptTokens).toBe(prompt.length + k);
    expect(engine.countChatTokens(continuing)).toBe(prompt.length + k);
    checked++;
  }
  console.log(`seed ${sampling.seed}: continued at ${checked} cut points; whole answer ${JSON.stringify(whole.text)}`);
  return checked;
}

describe('ChatEngine: continuing an answer', () => {
  it('stopped by the token limit and continued, sampled: the uninterrupted answer at every cut point, whatever its text encodes to', async () => {
    const tokenizer = engine.tokenizer!;
    const prompt = tokenizer.encodeChat(QUESTION);
    let wouldDiffer = 0;
    for (const seed of [1, 2]) {
      const sampling = { ...SAMPLED, seed };
      const whole = await run(QUESTION, STEPS, sampling);
      for (const k of [1, 5, 12, 23]) {
        const cut = await run(QUESTION, k, sampling);
        expect(cut.ids).toEqual(whole.ids.slice(0, k));
        const continuing: ChatMessage[] = [...QUESTION, { role: 'assistant', content: cut.text }];
        // Encoding the cut text often gives other ids than the model wrote (a random model writes
        // pieces a tokenizer would not choose); the continuation is fed the written ones.
        if (tokenizer.encodeChat(continuing, { continueFinalMessage: true }).join() !== [...prompt, ...cut.ids].join()) wouldDiffer++;
        const rest = await run(continuing, STEPS - k, sampling);
        expect([...cut.ids, ...rest.ids], `seed ${seed}, cut after ${k} tokens`).toEqual(whole.ids);
        expect(rest.stats.promptTokens).toBe(prompt.length + k);
        // Only the last written token, which a cut answer never fed, is run again.
        expect(rest.stats.cachedTokens).toBe(prompt.length + k - 1);
        if (!cut.text.includes('\uFFFD')) expect(cut.text + rest.text).toBe(whole.text);
      }
    }
    console.log(`${wouldDiffer} of 8 cut answers encode to other ids than the model wrote`);
    expect(wouldDiffer).toBeGreaterThan(0);
  });

  it('cut and continued, greedy generation gives the uninterrupted ids and text', async () => {
    expect(await checkCutPoints(GREEDY, 3)).toBe(3);
  });

  it('cut and continued, sampled generation with one seed gives the uninterrupted ids and text', async () => {
    let checked = 0;
    for (let seed = 1; seed <= 40 && checked < 3; seed++) checked += await checkCutPoints({ ...SAMPLED, seed }, 3 - checked);
    expect(checked).toBe(3);
  });
});

describe('ChatEngine: a follow-up question', () => {
  it("is prefilled from the new turn on: the cache keeps the answer's own ids", async () => {
    const tokenizer = engine.tokenizer!;
    const sampling = { ...SAMPLED, seed: 5 };
    const first = await run(QUESTION, STEPS, sampling);
    const prompt = tokenizer.encodeChat(QUESTION);
    const followUp: ChatMessage[] = [...QUESTION, { role: 'assistant', content: first.text }, { role: 'user', content: 'Say more.' }];
    const own = tokenizer.encodeChat(followUp);
    const written = [...prompt, ...first.ids];
    let sameAsEncoded = 0;
    while (own[sameAsEncoded] === written[sameAsEncoded]) sameAsEncoded++;
    const second = await run(followUp, 4, sampling);
    // The cut answer's last token was never fed: everything before it is reused.
    expect(second.stats.cachedTokens).toBe(written.length - 1);
    console.log(
      `follow-up of ${second.stats.promptTokens} prompt tokens: ${second.stats.cachedTokens} reused from the cache; ` +
        `re-encoding the answer would have matched the cache for ${sameAsEncoded} (of ${written.length - 1})`,
    );
    // Without the written ids this answer's text diverges early, and most of it would be run again.
    expect(sameAsEncoded).toBeLessThan(written.length - 1);
  });
});

describe('ChatEngine: a turn in a long conversation', () => {
  it('encodes the whole prompt once: counting for the context policy and generating share it', async () => {
    const tokenizer = engine.tokenizer!;
    const conversation: ChatMessage[] = [...QUESTION];
    for (let i = 0; i < 30; i++) conversation.push({ role: 'assistant', content: `Answer ${i}: llamas hum.` }, { role: 'user', content: `Question ${i + 1}?` });
    const whole = tokenizer.encodeChat(conversation).length;
    const encodeRendered = tokenizer.encodeRendered;
    const wholeEncodings: number[] = [];
    tokenizer.encodeRendered = (rendered) => {
      const ids = encodeRendered(rendered);
      if (ids.length === whole) wholeEncodings.push(ids.length);
      return ids;
    };
    try {
      const counts = engine.countMessages(conversation);
      expect(counts.overhead + counts.perMessage.reduce((a, b) => a + b, 0)).toBe(whole);
      const answer = await run(conversation, 2, GREEDY);
      expect(answer.stats.promptTokens).toBe(whole);
    } finally {
      tokenizer.encodeRendered = encodeRendered;
    }
    expect(wholeEncodings).toHaveLength(1);
  });
});


describe('ChatEngine.prepare: reading a conversation into the cache before its next message', () => {
  /** A conversation of several turns, about 400 tokens: prepared in several chunks of 64. */
  const HISTORY: ChatMessage[] = [...QUESTION];
  for (let i = 0; i < 8; i++) {
    HISTORY.push({ role: 'assistant', content: `Answer ${i}: llamas hum softly when they are curious, and they spit only at each other.` });
    HISTORY.push({ role: 'user', content: `Question ${i + 1}: what else do llamas do on a cold morning?` });
  }
  HISTORY.push({ role: 'assistant', content: 'They wait for the sun.' });
  const NEXT: ChatMessage[] = [...HISTORY, { role: 'user', content: 'And at night?' }];

  async function drain(gen: AsyncGenerator<number, import('./chat-engine').PrepareResult, undefined>, between?: (at: number) => Promise<void>) {
    const yields: number[] = [];
    for (let r = await gen.next(); ; r = await gen.next()) {
      if (r.done) return { result: r.value, yields };
      yields.push(r.value);
      await between?.(r.value);
    }
  }

  it('after it, a reopened conversation prefills only the new message, and answers with the same ids', async () => {
    engine.runtime.truncate(0);
    const cold = await run(NEXT, 8, GREEDY);
    expect(cold.stats.cachedTokens).toBe(0);

    engine.runtime.truncate(0);
    const { result, yields } = await drain(engine.prepare(HISTORY, undefined, 64));
    const newTurn = engine.tokenizer!.encodeChat(NEXT).length - result.preparedTokens;
    console.log(`prepared ${result.preparedTokens} tokens in ${yields.length + 1} chunks; the next prompt adds ${newTurn}`);
    expect(result).toEqual({ preparedTokens: result.ranTokens, ranTokens: result.ranTokens, stopped: false });
    expect(yields).toEqual(Array.from({ length: Math.ceil(result.preparedTokens / 64) - 1 }, (_, i) => 64 * (i + 1)));
    expect(result.preparedTokens).toBeGreaterThan(300);
    // What it prepared is the prompt's start up to the new question's text.
    expect(newTurn).toBeGreaterThan(3);
    expect(newTurn).toBeLessThan(12);

    const warm = await run(NEXT, 8, GREEDY);
    expect(warm.stats.promptTokens).toBe(cold.stats.promptTokens);
    expect(warm.stats.cachedTokens).toBe(result.preparedTokens);
    expect(warm.ids).toEqual(cold.ids);
  });

  it('runs nothing when the cache holds the prefix already, and only the turn markers right after an answer', async () => {
    engine.runtime.truncate(0);
    const again = await drain(engine.prepare(HISTORY));
    const twice = await drain(engine.prepare(HISTORY));
    expect(twice.result).toEqual({ preparedTokens: again.result.preparedTokens, ranTokens: 0, stopped: false });

    // Right after an answer the cache holds the answer's written ids; only the last written token
    // (never fed) and the markers that close the turn and open the next are new: `<|end|>`, the
    // newline (two ids, "▁" and "\n", with this tokenizer), `<|user|>` and its newline.
    const answered = await run(QUESTION, STEPS, { ...SAMPLED, seed: 5 });
    const after = await drain(engine.prepare([...QUESTION, { role: 'assistant', content: answered.text }]));
    expect(after.result.stopped).toBe(false);
    expect(after.result.ranTokens).toBeGreaterThan(0);
    expect(after.result.ranTokens).toBeLessThanOrEqual(7);
    expect(after.result.preparedTokens).toBe(answered.stats.promptTokens + answered.ids.length - 1 + after.result.ranTokens);
  });

  it('for a conversation ending with a question, prepares the prompt that answers it (Regenerate)', async () => {
    engine.runtime.truncate(0);
    const { result } = await drain(engine.prepare(NEXT, undefined, 64));
    const regenerated = await run(NEXT, 2, GREEDY);
    expect(result.preparedTokens).toBe(regenerated.stats.promptTokens);
    // generate always runs the prompt's last token again for fresh logits.
    expect(regenerated.stats.cachedTokens).toBe(regenerated.stats.promptTokens - 1);
  });

  it('on Phi-3 128K, a conversation past the LongRoPE switch is read with the long factors from its first chunk: nothing runs twice, even when stopped early; the answer after it is the cold one', async () => {
    const longDir = mkdtempSync(join(tmpdir(), 'chat-engine-128k-'));
    await generateTinyModel(longDir, { layers: 1, hidden: 64, heads: 4, intermediate: 96, context: '128k', maxPositions: 1024, originalMaxPositions: 100 });
    const long = await NativeEngine.load(await testGpu(), nodeModelFiles(longDir));
    const answer = async () => {
      const gen = long.chat(NEXT, { sampling: GREEDY, maxNewTokens: 8 });
      const ids: number[] = [];
      for (let r = await gen.next(); ; r = await gen.next()) {
        if (r.done) return { ids, stats: r.value };
        if (r.value.tokenId >= 0) ids.push(r.value.tokenId);
      }
    };
    try {
      const cold = await answer();
      expect(cold.stats.cachedTokens).toBe(0);
      long.runtime.truncate(0);
      const { result } = await drain(long.prepare(HISTORY, undefined, 64));
      // Chunks end at 64, 128, …, past the switch at 100: each is rotated as for the whole
      // conversation (PrefillFeed.reach), so the one crossing 100 runs only its own 64.
      expect(result.preparedTokens).toBeGreaterThan(300);
      expect(result).toEqual({ preparedTokens: result.preparedTokens, ranTokens: result.preparedTokens, stopped: false });
      const warm = await answer();
      expect(warm.stats.cachedTokens).toBe(result.preparedTokens);
      expect(warm.ids).toEqual(cold.ids);

      // Stopped after its first chunk, below the switch: the answer keeps those 64 all the same.
      long.runtime.truncate(0);
      const ctrl = new AbortController();
      const stopped = await drain(long.prepare(HISTORY, ctrl.signal, 64), async () => ctrl.abort());
      expect(stopped.result).toEqual({ preparedTokens: 64, ranTokens: 64, stopped: true });
      const after = await answer();
      expect(after.stats.cachedTokens).toBe(64);
      expect(after.ids).toEqual(cold.ids);
    } finally {
      long.destroy();
      rmSync(longDir, { recursive: true, force: true });
    }
  });

  it('stops at the next chunk when its signal aborts, or when another request used the engine meanwhile', async () => {
    engine.runtime.truncate(0);
    const ctrl = new AbortController();
    const aborted = await drain(engine.prepare(HISTORY, ctrl.signal, 64), async () => ctrl.abort());
    expect(aborted.result).toEqual({ preparedTokens: 64, ranTokens: 64, stopped: true });
    expect(engine.runtime.cachedIds).toHaveLength(64);

    engine.runtime.truncate(0);
    const interrupted = await drain(engine.prepare(HISTORY, undefined, 64), async (at) => {
      if (at === 128) await run(QUESTION, 2, GREEDY);
    });
    expect(interrupted.result.stopped).toBe(true);
    expect(interrupted.yields).toEqual([64, 128]);
    // The other request shares the system prompt and first question with this conversation.
    expect(interrupted.result.preparedTokens).toBeLessThan(64);
    expect(interrupted.result.preparedTokens).toBeGreaterThan(5);

    // Whatever it left, the next answer is the same.
    const cold = await (async () => {
      engine.runtime.truncate(0);
      return run(NEXT, 8, GREEDY);
    })();
    expect((await run(NEXT, 8, GREEDY)).ids).toEqual(cold.ids);
  });
});
