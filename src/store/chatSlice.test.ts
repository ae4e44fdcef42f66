import { describe, expect, it, vi } from 'vitest';
import { answerSeed, canContinue, CUT_OFF, deltaBatcher, IN_OTHER_TAB } from './chatSlice';
import type { ModelStatus } from './modelSlice';
import { createAppStore } from './index';
import { MemoryAnswerLocks, ScriptedEngine, testServices } from './testing';
import { DEFAULT_SETTINGS, selectedPath, siblingsOf, updateMessage } from '../conversations/tree';
import { draftFrom } from './settingsSlice';
import { BroadcastConversationSync } from '../conversations/repo';

/** A store whose model is ready: the scripted engine stands for the loaded model. */
function setup(replies: string[], contextLimit = 4096) {
  const engine = new ScriptedEngine(replies, contextLimit);
  const services = testServices(engine);
  const store = createAppStore(services);
  setModelStatus(store, 'ready');
  return { engine, services, store };
}

function setModelStatus(store: ReturnType<typeof createAppStore>, status: ModelStatus) {
  store.setState((s) => ({ model: { ...s.model, status } }));
}

const path = (store: ReturnType<typeof setup>['store']) => {
  const s = store.getState();
  return selectedPath(s.conversations[s.activeId!]).map((m) => `${m.role}:${m.content}`);
};

describe('chat slice', () => {
  it('sends, streams into the answer, records stats and titles the conversation', async () => {
    const { store, engine, services } = setup(['Hello there, friend.']);
    const seen: string[] = [];
    const tokens = new Set<string>();
    const unsub = store.subscribe((s) => {
      if (!s.chat.streaming) return;
      seen.push(s.chat.streaming.text);
      if (s.chat.streaming.tokens) tokens.add(JSON.stringify(s.chat.streaming.tokens));
    });
    await store.getState().send('  Hi!  ');
    unsub();
    expect(seen).toContain('Hello ');
    expect(seen).toContain('Hello there, ');
    // The context meter's live figure: the counted prompt, then one more per token written.
    expect([...tokens]).toEqual([0, 1, 2, 3].map((generated) => JSON.stringify({ prompt: 16, generated })));
    expect(path(store)).toEqual(['user:Hi!', 'assistant:Hello there, friend.']);
    const s = store.getState();
    const conv = s.conversations[s.activeId!];
    expect(conv.title).toBe('Hi!');
    expect(conv.messages[1].stats).toEqual({ promptTokens: 16, newTokens: 3, timeToFirstTokenMs: 12, prefillTokensPerSec: 900, decodeTokensPerSec: 30, stopReason: 'eos' });
    expect(s.chat).toEqual({ streaming: null, prepared: null, error: null, context: { used: 19, limit: 4096, droppedMessages: 0 } });
    expect(engine.calls[0]).toEqual({
      messages: [
        { role: 'system', content: 'You are a helpful assistant.' },
        { role: 'user', content: 'Hi!' },
      ],
      options: { sampling: { temperature: 0.7, topK: 40, topP: 0.9, repetitionPenalty: 1.1, seed: 42 }, maxNewTokens: 512 },
    });
    expect((await services.repo.list())[0].messages.map((m) => m.content)).toEqual(['Hi!', 'Hello there, friend.']);
  });

  it("follows a long prompt's reading until the first token", async () => {
    const { store, engine } = setup(['Read it.']);
    engine.prefillSteps = [512, 1024];
    const seen: unknown[] = [];
    const unsub = store.subscribe((s) => seen.push(s.chat.streaming?.prefill));
    await store.getState().send('a long document');
    unsub();
    const shown = seen.map((p) => JSON.stringify(p) ?? 'none').filter((p, i, all) => i === 0 || p !== all[i - 1]);
    expect(shown).toEqual(['none', '{"done":512,"total":1025}', '{"done":1024,"total":1025}', 'none']);
  });

  it('mid-answer, follows the whole chat read again until the next token', async () => {
    const { store, engine } = setup(['one two three']);
    engine.againSteps = [512, 1024];
    const seen: string[] = [];
    const unsub = store.subscribe((s) => seen.push(`${s.chat.streaming?.text ?? '-'} ${JSON.stringify(s.chat.streaming?.prefill) ?? 'none'}`));
    await store.getState().send('go on');
    unsub();
    const shown = seen.filter((p, i, all) => i === 0 || p !== all[i - 1]);
    expect(shown).toEqual(['- none', ' none', 'one  none', 'one  {"done":512,"total":1025,"again":true}', 'one  {"done":1024,"total":1025,"again":true}', 'one two  none', 'one two three none', '- none']);
  });

  it('stops mid-answer and keeps the text so far', async () => {
    const { store, engine } = setup(['one two three four five six']);
    let release!: () => void;
    engine.gate = new Promise((r) => (release = r));
    const sending = store.getState().send('count');
    await new Promise((r) => setTimeout(r, 5));
    expect(store.getState().chat.streaming).toMatchObject({ text: '' });
    engine.gate = null;
    const unsub = store.subscribe((s) => {
      if (s.chat.streaming?.text === 'one two ') store.getState().stop();
    });
    release();
    await sending;
    unsub();
    expect(path(store)).toEqual(['user:count', 'assistant:one two ']);
    const s = store.getState();
    expect(s.conversations[s.activeId!].messages[1].stats?.stopReason).toBe('aborted');
    expect(s.chat.streaming).toBeNull();
    expect(s.chat.error).toBeNull();
  });

  it('saves the text so far while it streams, as an answer cut off that Continue can finish; its end clears the note', async () => {
    const engine = new ScriptedEngine(['one two three four five six']);
    // The clock moves one ms per call, so a 3 ms period saves after every few tokens.
    const services = { ...testServices(engine), streamSaveMs: 3 };
    const store = createAppStore(services);
    setModelStatus(store, 'ready');
    const stored = async () => (await services.repo.list())[0]?.messages[1];
    const seen: { content: string; error?: string }[] = [];
    const unsub = store.subscribe(() => {
      void stored().then((m) => m && seen.push({ content: m.content, error: m.error }));
    });
    await store.getState().send('count');
    unsub();
    // Mid-answer the stored copy held part of the text with the note: what a reload would find,
    // and a message Continue accepts.
    const partial = seen.find((m) => m.error === CUT_OFF && m.content !== '');
    expect(partial).toBeDefined();
    expect('one two three four five six'.startsWith(partial!.content)).toBe(true);
    expect(canContinue({ id: 'a', parentId: 'u', role: 'assistant', createdAt: 0, content: partial!.content, error: partial!.error })).toBe(true);
    // The end replaced it: the whole text, no note.
    const final = await stored();
    expect(final?.content).toBe('one two three four five six');
    expect(final?.error).toBeUndefined();
    expect(final?.stats?.stopReason).toBe('eos');
  });

  it("changes another tab makes to a chat while this tab answers in it survive this tab's saves", async () => {
    const engine = new ScriptedEngine(['one two three four five six']);
    const channel = `sync-test-${Math.random()}`;
    const services = { ...testServices(engine), sync: new BroadcastConversationSync(channel), streamSaveMs: 3 };
    const a = createAppStore(services);
    setModelStatus(a, 'ready');
    await a.getState().loadConversations();
    const otherSync = new BroadcastConversationSync(channel);
    const b = createAppStore({ ...testServices(), conversations: services.repo, sync: otherSync });
    try {
      let release!: () => void;
      engine.gate = new Promise((r) => (release = r));
      const sending = a.getState().send('count');
      await vi.waitFor(() => expect(a.getState().chat.streaming).not.toBeNull());
      const id = a.getState().activeId!;
      await b.getState().loadConversations();
      // Tab B renames the chat, and its copy of the answer is what A saved before (empty).
      expect(await b.getState().renameConversation(id, 'Renamed in B')).toBeNull();
      await vi.waitFor(() => expect(a.getState().conversations[id].title).toBe('Renamed in B'));
      engine.gate = null;
      release();
      await sending;
      const stored = await services.repo.get(id);
      expect(stored?.title).toBe('Renamed in B');
      expect(stored?.messages.map((m) => m.content)).toEqual(['count', 'one two three four five six']);
      expect(path(a)).toEqual(['user:count', 'assistant:one two three four five six']);
    } finally {
      services.sync.close();
      otherSync.close();
    }
  });

  it('holds the answer lock while it streams and lets it go after the last save', async () => {
    const engine = new ScriptedEngine(['one two three']);
    const locks = new MemoryAnswerLocks();
    const services = { ...testServices(engine), answerLocks: locks };
    const store = createAppStore(services);
    setModelStatus(store, 'ready');
    const heldWhileStreaming: boolean[] = [];
    const unsub = store.subscribe((s) => {
      const id = s.chat.streaming?.messageId;
      if (id) void locks.held(id).then((h) => heldWhileStreaming.push(h));
    });
    let atRelease: unknown;
    locks.onRelease = () => void services.repo.list().then((l) => (atRelease = l[0].messages[1]));
    await store.getState().send('count');
    unsub();
    await new Promise((r) => setTimeout(r, 0));
    expect(heldWhileStreaming.length).toBeGreaterThan(2);
    expect(heldWhileStreaming.every(Boolean)).toBe(true);
    const answer = store.getState().conversations[store.getState().activeId!].messages[1];
    expect(await locks.held(answer.id)).toBe(false);
    // What another tab reads once the lock goes: the finished answer, not a cut-off one.
    expect(atRelease).toMatchObject({ content: 'one two three', stats: { stopReason: 'eos' } });
    expect((atRelease as { error?: string }).error).toBeUndefined();
  });

  it('another tab sees an answer written elsewhere as such until it ends there, then reads it whole', async () => {
    const locks = new MemoryAnswerLocks();
    const services = { ...testServices(new ScriptedEngine([])), answerLocks: locks };
    const store = createAppStore(services);
    await store.getState().loadConversations();
    const id = await store.getState().newConversation();
    const c0 = store.getState().conversations[id];
    const cut = { ...c0, messages: [{ id: 'u', parentId: null, role: 'user' as const, content: 'q', createdAt: 1 }, { id: 'a', parentId: 'u', role: 'assistant' as const, content: 'so far', error: CUT_OFF, createdAt: 2 }] };
    await store.getState().commit(cut);
    // The writer: the lock, then its last save in storage, then the lock goes.
    const release = locks.hold('a');
    const seen: boolean[] = [];
    const watching = store.getState().watchAnswer(id, 'a', (on) => seen.push(on), new AbortController().signal);
    await new Promise((r) => setTimeout(r, 0));
    expect(seen).toEqual([true]);
    await services.repo.put(updateMessage(cut, 'a', { content: 'so far and the rest', error: undefined }, 9));
    release();
    await watching;
    expect(seen).toEqual([true, false]);
    expect(store.getState().conversations[id].messages[1]).toMatchObject({ content: 'so far and the rest' });
    expect(store.getState().conversations[id].messages[1].error).toBeUndefined();

    // Nobody writing it: false at once; and a watch stopped early says nothing more.
    const free: boolean[] = [];
    await store.getState().watchAnswer(id, 'a', (on) => free.push(on), new AbortController().signal);
    expect(free).toEqual([false]);
    const releaseAgain = locks.hold('a');
    const ctrl = new AbortController();
    const stopped: boolean[] = [];
    const watch = store.getState().watchAnswer(id, 'a', (on) => stopped.push(on), ctrl.signal);
    await new Promise((r) => setTimeout(r, 0));
    ctrl.abort();
    releaseAgain();
    await watch;
    expect(stopped).toEqual([true]);
  });

  it('continues a stopped answer in place: the model sees the text so far and the rest is appended', async () => {
    const { store, engine } = setup(['one two three four five six', 'three four.']);
    const unsub = store.subscribe((s) => {
      if (s.chat.streaming?.text === 'one two ') store.getState().stop();
    });
    await store.getState().send('count');
    unsub();
    const answer = () => store.getState().conversations[store.getState().activeId!].messages[1];
    expect(canContinue(answer())).toBe(true);
    const seen: string[] = [];
    const unsub2 = store.subscribe((s) => s.chat.streaming && seen.push(s.chat.streaming.text));
    await store.getState().continueAnswer(answer().id);
    unsub2();
    // The streamed text starts from the answer so far; no second answer (branch) appears.
    expect(seen[0]).toBe('one two ');
    expect(seen).toContain('one two three ');
    expect(path(store)).toEqual(['user:count', 'assistant:one two three four.']);
    expect(store.getState().conversations[store.getState().activeId!].messages).toHaveLength(2);
    expect(engine.calls[1].messages).toEqual([
      { role: 'system', content: 'You are a helpful assistant.' },
      { role: 'user', content: 'count' },
      { role: 'assistant', content: 'one two ' },
    ]);
    expect(answer().stats?.stopReason).toBe('eos');
    expect(canContinue(answer())).toBe(false);
  });

  it('a continuation that fails keeps the text and says why; one that then succeeds clears the error', async () => {
    const { store, engine } = setup(['one two three', 'never sent', 'four five']);
    const unsub = store.subscribe((s) => {
      if (s.chat.streaming?.text === 'one two ') store.getState().stop();
    });
    await store.getState().send('count');
    unsub();
    const answer = () => store.getState().conversations[store.getState().activeId!].messages[1];
    // The engine fails before its first token.
    const failure = Promise.reject(new Error('No model is loaded.'));
    failure.catch(() => {});
    engine.gate = failure;
    await store.getState().continueAnswer(answer().id);
    expect(answer()).toMatchObject({ content: 'one two ', error: 'No model is loaded.' });
    expect(answer().stats?.stopReason).toBe('aborted');
    expect(canContinue(answer())).toBe(true);
    engine.gate = null;
    await store.getState().continueAnswer(answer().id);
    expect(answer().content).toBe('one two four five');
    expect(answer().error).toBeUndefined();
  });

  it('continues only an answer that was cut off', async () => {
    const { store, engine } = setup(['done.']);
    await store.getState().send('q');
    const [question, answer] = store.getState().conversations[store.getState().activeId!].messages;
    expect(canContinue(answer)).toBe(false);
    await store.getState().continueAnswer(answer.id);
    await store.getState().continueAnswer(question.id);
    expect(engine.calls).toHaveLength(1);
    for (const stopReason of ['max-tokens', 'aborted', 'context-full'] as const) expect(canContinue({ ...answer, stats: { ...answer.stats!, stopReason } })).toBe(true);
    // Failed midway: no stats, but the text so far can be continued.
    expect(canContinue({ ...answer, stats: undefined, error: 'The GPU device was lost' })).toBe(true);
    expect(canContinue({ ...answer, content: ' ', stats: { ...answer.stats!, stopReason: 'aborted' } })).toBe(false);
    expect(canContinue({ ...answer, stats: undefined })).toBe(false);
  });

  it('a message sent while the model loads waits for it, saying so, then is answered', async () => {
    const { store, engine } = setup(['Ready now.']);
    setModelStatus(store, 'checking');
    const sending = store.getState().send('early question');
    await new Promise((r) => setTimeout(r, 5));
    expect(store.getState().chat.streaming).toMatchObject({ text: '', waitingForModel: true });
    setModelStatus(store, 'loading');
    await new Promise((r) => setTimeout(r, 5));
    expect(store.getState().chat.streaming?.waitingForModel).toBe(true);
    expect(engine.calls).toHaveLength(0);
    setModelStatus(store, 'ready');
    await sending;
    expect(path(store)).toEqual(['user:early question', 'assistant:Ready now.']);
    expect(store.getState().chat.streaming).toBeNull();
  });

  it('stops waiting when the model stops elsewhere (the engine then says why), or on Stop', async () => {
    const { store, engine } = setup(['unused']);
    setModelStatus(store, 'downloading');
    const sending = store.getState().send('q1');
    await new Promise((r) => setTimeout(r, 5));
    setModelStatus(store, 'paused');
    await sending;
    // The scripted engine answers whatever the status; the real one rejects with "No model is loaded".
    expect(engine.calls).toHaveLength(1);

    setModelStatus(store, 'loading');
    const second = store.getState().send('q2');
    await new Promise((r) => setTimeout(r, 5));
    store.getState().stop();
    await second;
    expect(engine.calls).toHaveLength(1);
    const answer = selectedPath(store.getState().conversations[store.getState().activeId!]).at(-1)!;
    expect(answer).toMatchObject({ role: 'assistant', content: '' });
    expect(answer.error).toBeUndefined();
    expect(store.getState().chat.streaming).toBeNull();
  });

  it('regenerates as a sibling branch and flips between answers', async () => {
    const { store } = setup(['first answer', 'second answer']);
    await store.getState().send('q');
    const firstId = store.getState().conversations[store.getState().activeId!].messages[1].id;
    await store.getState().regenerate(firstId);
    expect(path(store)).toEqual(['user:q', 'assistant:second answer']);
    const conv = store.getState().conversations[store.getState().activeId!];
    expect(siblingsOf(conv, firstId).siblings.map((m) => m.content)).toEqual(['first answer', 'second answer']);
    await store.getState().selectBranch(firstId);
    expect(path(store)).toEqual(['user:q', 'assistant:first answer']);
  });

  it('each version of an answer samples with its own seed, so Regenerate writes a new answer that still repeats', async () => {
    const { store, engine } = setup(['first ', 'second ', 'third ']);
    await store.getState().send('q');
    const answerIds = () => store.getState().conversations[store.getState().activeId!].messages.filter((m) => m.role === 'assistant').map((m) => m.id);
    await store.getState().regenerate(answerIds()[0]);
    await store.getState().regenerate(answerIds()[1]);
    expect(engine.calls.map((c) => c.options.sampling.seed)).toEqual([42, 43, 44]);
    // Continuing the second version keeps that version's seed.
    await store.getState().selectBranch(answerIds()[1]);
    const second = store.getState().conversations[store.getState().activeId!].messages.find((m) => m.id === answerIds()[1])!;
    await store.getState().commit(updateMessage(store.getState().conversations[store.getState().activeId!], second.id, { stats: { ...second.stats!, stopReason: 'max-tokens' } }, 1));
    await store.getState().continueAnswer(second.id);
    expect(engine.calls.at(-1)!.options.sampling.seed).toBe(43);
    expect(answerSeed(4294967295, 1)).toBe(0);
  });

  it('edits a question as a new branch, sending only the edited path', async () => {
    const { store, engine } = setup(['A1', 'A2', 'A3']);
    await store.getState().send('first');
    await store.getState().send('second');
    const conv = store.getState().conversations[store.getState().activeId!];
    const second = conv.messages.find((m) => m.content === 'second')!;
    await store.getState().edit(second.id, 'second, edited');
    expect(path(store)).toEqual(['user:first', 'assistant:A1', 'user:second, edited', 'assistant:A3']);
    expect(engine.calls[2].messages.map((m) => m.content)).toEqual(['You are a helpful assistant.', 'first', 'A1', 'second, edited']);
    const after = store.getState().conversations[store.getState().activeId!];
    expect(siblingsOf(after, second.id).siblings.map((m) => m.content)).toEqual(['second', 'second, edited']);
  });

  it('drops the oldest turns to fit the context and says so on the answer', async () => {
    // Each message costs words + 4 tokens; overhead 2; the system prompt is 9. With 20 tokens
    // reserved, 11 + 10 + 5 + 10 + 20 = 56 > 50, so the first turn (2 messages) goes.
    const { store, engine } = setup(['ok'], 50);
    await store.getState().saveSettings({ systemPrompt: 'You are a helpful assistant.', temperature: '0.7', topK: '40', topP: '0.9', repetitionPenalty: '1.1', maxNewTokens: '20', seed: '42' });
    await store.getState().send('one two three four five six');
    await store.getState().send('seven eight nine ten eleven twelve');
    const last = engine.calls.at(-1)!;
    expect(last.messages.map((m) => m.role)).toEqual(['system', 'user']);
    expect(last.messages[1].content).toBe('seven eight nine ten eleven twelve');
    const conv = store.getState().conversations[store.getState().activeId!];
    expect(conv.messages.at(-1)!.context).toEqual({ droppedMessages: 2, promptTokens: 21, contextLimit: 50 });
    expect(store.getState().chat.context).toEqual({ used: 22, limit: 50, droppedMessages: 2 });
  });

  it('shows the engine error on the answer and in the chat state', async () => {
    const services = testServices({
      countTokens: () => Promise.reject(new Error('No model is loaded: pick one in the model panel.')),
    });
    const store = createAppStore(services);
    setModelStatus(store, 'idle');
    await store.getState().send('hello');
    const conv = store.getState().conversations[store.getState().activeId!];
    expect(conv.messages[1]).toMatchObject({ role: 'assistant', content: '', error: 'No model is loaded: pick one in the model panel.' });
    expect(store.getState().chat.error).toBe('No model is loaded: pick one in the model panel.');
  });

  it('says the model is on the GPU in another tab, and what to do, rather than "No model is loaded"', async () => {
    const { store, engine } = setup(['unused']);
    store.setState((s) => ({ model: { ...s.model, status: 'cached', inOtherTab: true } }));
    await store.getState().send('Anyone there?');
    const s = store.getState();
    expect(s.chat.error).toBe(IN_OTHER_TAB);
    expect(s.conversations[s.activeId!].messages[1]).toMatchObject({ role: 'assistant', content: '', error: IN_OTHER_TAB });
    expect(engine.calls).toHaveLength(0);
  });

  it('refuses a message too long for the context, with the numbers', async () => {
    const { store, engine } = setup(['never'], 30);
    await store.getState().send(Array.from({ length: 20 }, (_, i) => `w${i}`).join(' '));
    expect(engine.calls).toHaveLength(0);
    expect(store.getState().chat.error).toBe(
      "The message and system prompt take 35 tokens, which leaves no room for an answer in this model's 30-token context. Shorten the message or the system prompt.",
    );
  });

  it('ignores a send while an answer streams', async () => {
    const { store, engine } = setup(['a b c']);
    const first = store.getState().send('one');
    await new Promise((r) => setTimeout(r, 0));
    await store.getState().send('two');
    await first;
    expect(engine.calls).toHaveLength(1);
    expect(path(store)).toEqual(['user:one', 'assistant:a b c']);
  });
});

describe('streamed text reaches the page at most once per frame', () => {
  it('deltaBatcher gathers deltas until its tick, and flush hands on the rest at once', () => {
    const ticks: Array<() => void> = [];
    const applied: Array<[string, number]> = [];
    const b = deltaBatcher((run) => ticks.push(run), (text, tokens) => applied.push([text, tokens]));
    b.push('Hel', 1);
    b.push('lo', 1);
    b.push('', 1);
    expect(applied).toEqual([]);
    expect(ticks).toHaveLength(1);
    ticks.shift()!();
    expect(applied).toEqual([['Hello', 3]]);
    b.push(' world', 1);
    b.flush();
    expect(applied).toEqual([['Hello', 3], [' world', 1]]);
    // The tick scheduled for ' world' finds nothing left.
    ticks.shift()!();
    expect(applied).toHaveLength(2);
    const now: Array<[string, number]> = [];
    const direct = deltaBatcher(undefined, (text, tokens) => now.push([text, tokens]));
    direct.push('a', 1);
    expect(now).toEqual([['a', 1]]);
  });

  it('an answer whose frames never come (a hidden tab) is still saved whole', async () => {
    const engine = new ScriptedEngine(['one two three four']);
    const frames: Array<() => void> = [];
    const store = createAppStore({ ...testServices(engine), nextFrame: (run) => frames.push(run) });
    store.setState((s) => ({ model: { ...s.model, status: 'ready' } }));
    const texts: string[] = [];
    const unsub = store.subscribe((s) => s.chat.streaming && texts.push(s.chat.streaming.text));
    await store.getState().send('count');
    unsub();
    // No frame ran: the page got no partial text, only the whole at the end; the answer is complete.
    expect([...new Set(texts)]).toEqual(['', 'one two three four']);
    expect(frames.length).toBeGreaterThan(0);
    expect(path(store)).toEqual(['user:count', 'assistant:one two three four']);
  });
});


describe('reading the open conversation ahead (prepareDelayMs)', () => {
  const LOADED = { modelId: 'm', info: {} as never, loadMs: 1 };
  const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

  function setupAhead(contextLimit = 4096) {
    const engine = new ScriptedEngine(['Sure.'], contextLimit);
    const services = { ...testServices(engine), prepareDelayMs: 0 };
    const store = createAppStore(services);
    // The scripted engine answers from the start; reading ahead also waits for a loaded model's record.
    setModelStatus(store, 'ready');
    return { engine, store, ready: () => store.setState((s) => ({ model: { ...s.model, loaded: { ...LOADED } } })) };
  }

  it('reads the opened conversation once the model is ready, again after each answer, never while one streams', async () => {
    const { engine, store, ready } = setupAhead();
    await store.getState().send('Hi');
    await tick();
    // No model loaded yet (the scripted engine answers anyway): nothing read ahead.
    expect(engine.prepared).toEqual([]);
    ready();
    await tick();
    const system = { role: 'system', content: 'You are a helpful assistant.' };
    expect(engine.prepared).toEqual([[system, { role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Sure.' }]]);
    const id = store.getState().activeId!;
    expect(store.getState().chat.prepared).toEqual({ conversationId: id, tokens: 1 + 9 + 5 + 5 });

    const seen: Array<unknown> = [];
    const unsub = store.subscribe((s) => s.chat.streaming && seen.push(s.chat.prepared));
    await store.getState().send('More');
    unsub();
    // Streaming: the cache is the answer's, no longer the one read ahead.
    expect(seen.every((p) => p === null)).toBe(true);
    expect(engine.prepared).toHaveLength(1);
    await tick();
    expect(engine.prepared).toHaveLength(2);
    expect(engine.prepared[1].map((m) => m.content)).toEqual([system.content, 'Hi', 'Sure.', 'More', 'Sure.']);
  });

  it('paging through chats reads only the one the user stops at; a chat with no messages is not read', async () => {
    const engine = new ScriptedEngine(['Sure.']);
    const services = { ...testServices(engine), prepareDelayMs: 30 };
    const store = createAppStore(services);
    store.setState((s) => ({ model: { ...s.model, status: 'ready' } }));
    await store.getState().send('First chat');
    const a = store.getState().activeId!;
    await store.getState().newConversation();
    await store.getState().send('Second chat');
    const b = store.getState().activeId!;
    const empty = await store.getState().newConversation();
    // The clock is the test's from here: a busy machine must not fire a timer early in real time.
    vi.useFakeTimers();
    try {
      store.setState((s) => ({ model: { ...s.model, loaded: { ...LOADED } } }));
      for (const id of [a, b, a, b, empty]) store.getState().selectConversation(id);
      await vi.advanceTimersByTimeAsync(60);
      expect(engine.prepared).toEqual([]);
      store.getState().selectConversation(a);
      await vi.advanceTimersByTimeAsync(29);
      store.getState().selectConversation(b);
      await vi.advanceTimersByTimeAsync(60);
    } finally {
      vi.useRealTimers();
    }
    await tick();
    expect(engine.prepared.map((m) => m[1].content)).toEqual(['Second chat']);
    expect(store.getState().chat.prepared?.conversationId).toBe(b);
  });

  it('cuts the conversation as a send would: the oldest turns go, the system prompt stays', async () => {
    const { engine, store, ready } = setupAhead(600);
    for (let i = 0; i < 6; i++) await store.getState().send(`Question ${i} ${'word '.repeat(80)}`);
    await store.getState().saveSettings({ ...draftFrom(DEFAULT_SETTINGS), maxNewTokens: '100' });
    ready();
    await tick();
    const sent = engine.prepared.at(-1)!;
    expect(sent[0].role).toBe('system');
    // Six turns of 86 + 5 tokens do not fit beside 100 for the answer in 600.
    const words = sent.slice(1).map((m) => m.content.split(' ').slice(0, 2).join(' '));
    console.log(`read ahead: ${words.join(' | ')}`);
    expect(words[0]).not.toBe('Question 0');
    expect(words.at(-1)).toBe('Sure.');
    const count = (await engine.countTokens([...sent, { role: 'user', content: '…' }])).perMessage.reduce((x, y) => x + y, 2);
    expect(count + 100).toBeLessThanOrEqual(600);
  });

  it('the user can turn it off: nothing is read, a read under way stops, and the choice is saved and read at start', async () => {
    let stored: boolean | null = false;
    const saved: boolean[] = [];
    const readAhead = { read: () => stored ?? true, write: (on: boolean) => void saved.push((stored = on)) };
    const engine = new ScriptedEngine(['Sure.']);
    // Each read ahead waits until it is stopped, and records that it was.
    const stopped: boolean[] = [];
    engine.prepare = (messages, signal?: AbortSignal) => {
      engine.prepared.push(messages);
      return new Promise((resolve) =>
        signal!.addEventListener('abort', () => {
          stopped.push(true);
          resolve({ preparedTokens: 0, ranTokens: 0, stopped: true });
        }),
      );
    };
    const store = createAppStore({ ...testServices(engine), prepareDelayMs: 0, readAhead });
    expect(store.getState().readAhead).toBe(false);
    setModelStatus(store, 'ready');
    await store.getState().send('Hi');
    store.setState((s) => ({ model: { ...s.model, loaded: { ...LOADED } } }));
    await tick();
    expect(engine.prepared).toEqual([]);

    store.getState().setReadAhead(true);
    await tick();
    expect(engine.prepared).toHaveLength(1);
    expect(stopped).toEqual([]);
    store.getState().setReadAhead(false);
    await tick();
    expect(stopped).toEqual([true]);
    expect(saved).toEqual([true, false]);
    // A later page starts from the saved choice.
    expect(createAppStore({ ...testServices(engine), prepareDelayMs: 0, readAhead }).getState().readAhead).toBe(false);
  });

  it('a failed read ahead is silent: nothing shown, the next answer unaffected', async () => {
    const { engine, store, ready } = setupAhead();
    engine.prepareError = new Error('No model is loaded');
    await store.getState().send('Hi');
    ready();
    await tick();
    expect(engine.prepared).toHaveLength(1);
    expect(store.getState().chat.prepared).toBeNull();
    expect(store.getState().chat.error).toBeNull();
    await store.getState().send('Again');
    expect(path(store)).toEqual(['user:Hi', 'assistant:Sure.', 'user:Again', 'assistant:Sure.']);
  });
});
