/**
 * Test services for the store: an in-memory conversation repo, a controllable clock and a
 * scripted engine. The scripted engine is a stand-in for the real model (which is not under test
 * in store tests): it counts one token per word plus 4 per message, streams a reply word by
 * word with a macrotask between tokens, and honours abort the way the real client must.
 * Rule: test-only — nothing in the app imports this file.
 */
import type { ChatMessage, GenerateOptions, GenerationStats, PrefillReport, TokenEvent } from '../engine/types';
import { MemoryConversationRepo, type ConversationRepo } from '../conversations/repo';
import type { EngineService, PrepareResult, PromptCount, Services } from './index';
import type { AnswerLocks } from './answerLocks';

export const wordTokens = (m: ChatMessage) => m.content.split(/\s+/).filter(Boolean).length + 4;

export interface GenerateCall {
  messages: ChatMessage[];
  options: GenerateOptions;
}

export class ScriptedEngine implements Omit<EngineService, 'probe'> {
  readonly calls: GenerateCall[] = [];
  /** Resolves when the next token is allowed out; tests can hold tokens with `gate`. */
  gate: Promise<void> | null = null;

  constructor(
    public replies: string[],
    public contextLimit = 4096,
  ) {}

  async countTokens(messages: ChatMessage[]): Promise<PromptCount> {
    return { perMessage: messages.map(wordTokens), overhead: 2, contextLimit: this.contextLimit };
  }

  readonly prepared: ChatMessage[][] = [];
  /** Set: `prepare` fails with it (after recording the call). */
  prepareError: Error | null = null;

  /** Records the conversation; "prepares" one token per word plus 4 per message, as it counts. */
  async prepare(messages: ChatMessage[]): Promise<PrepareResult> {
    this.prepared.push(messages);
    if (this.prepareError) throw this.prepareError;
    const tokens = messages.map(wordTokens).reduce((a, b) => a + b, 1);
    return { preparedTokens: tokens, ranTokens: tokens, stopped: false };
  }

  /** Set: `generate` reports a long prompt read in these steps (done counts) before its first token. */
  prefillSteps: number[] = [];
  /** Set: after the first token, `generate` reports the whole chat read again in these steps (`again`). */
  againSteps: number[] = [];

  async generate(messages: ChatMessage[], options: GenerateOptions, onToken: (e: TokenEvent) => void, signal: AbortSignal, onPrefill?: PrefillReport): Promise<GenerationStats> {
    this.calls.push({ messages, options });
    for (const done of this.prefillSteps) {
      await new Promise((r) => setTimeout(r, 0));
      onPrefill?.(done, this.prefillSteps.at(-1)! + 1);
    }
    const reply = this.replies[(this.calls.length - 1) % this.replies.length];
    const pieces = reply.split(/(?<= )/);
    let n = 0;
    let stopReason: GenerationStats['stopReason'] = 'eos';
    for (const piece of pieces) {
      if (this.gate) await this.gate;
      await new Promise((r) => setTimeout(r, 0));
      if (signal.aborted) {
        stopReason = 'aborted';
        break;
      }
      if (n >= options.maxNewTokens) {
        stopReason = 'max-tokens';
        break;
      }
      onToken({ tokenId: 100 + n, text: piece });
      n++;
      if (n === 1) {
        for (const done of this.againSteps) {
          await new Promise((r) => setTimeout(r, 0));
          onPrefill?.(done, this.againSteps.at(-1)! + 1, true);
        }
      }
    }
    const promptTokens = (await this.countTokens(messages)).perMessage.reduce((a, b) => a + b, 2);
    return { promptTokens, newTokens: n, timeToFirstTokenMs: 12, prefillTokensPerSec: 900, decodeTokensPerSec: 30, stopReason };
  }
}

export function testServices(engine: Partial<EngineService> = {}): Services & { repo: MemoryConversationRepo; clock: { t: number } } {
  const repo = new MemoryConversationRepo();
  const clock = { t: 1_700_000_000_000 };
  const missing = () => Promise.reject(new Error('not part of this test'));
  // Bound one by one: a class instance's methods live on its prototype, which a spread drops.
  const full: EngineService = {
    probe: engine.probe?.bind(engine) ?? missing,
    countTokens: engine.countTokens?.bind(engine) ?? missing,
    prepare: engine.prepare?.bind(engine) ?? missing,
    generate: engine.generate?.bind(engine) ?? missing,
  };
  return { engine: () => full, conversations: repo, now: () => ++clock.t, repo, clock };
}

/** `repo`'s methods, each bound, with `overrides` in place of some: a repo a test slows down or breaks. */
export function repoWith(repo: ConversationRepo, overrides: Partial<ConversationRepo>): ConversationRepo {
  return {
    list: () => repo.list(),
    listRecent: (limit) => repo.listRecent(limit),
    listPage: (after, limit) => repo.listPage(after, limit),
    get: (id) => repo.get(id),
    put: (c) => repo.put(c),
    putMany: (cs) => repo.putMany(cs),
    delete: (id) => repo.delete(id),
    ...overrides,
  };
}

/**
 * A Storage over a Map, for the slices that keep things in localStorage (Node has none). `full`
 * makes every write throw as a full or blocked storage does.
 */
export class MapStorage implements Storage {
  readonly items = new Map<string, string>();
  full = false;
  get length() {
    return this.items.size;
  }
  clear() {
    this.items.clear();
  }
  getItem(key: string) {
    return this.items.get(key) ?? null;
  }
  key(i: number) {
    return [...this.items.keys()][i] ?? null;
  }
  removeItem(key: string) {
    this.items.delete(key);
  }
  setItem(key: string, value: string) {
    if (this.full) throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
    this.items.set(key, value);
  }
}

/**
 * Answer locks in memory, shared by the stores of one test as the Web Locks API is by the tabs of
 * an origin (the real one is tested in answerLocks.browser.test.ts). `onRelease` runs as a lock
 * is let go.
 */
export class MemoryAnswerLocks implements AnswerLocks {
  private readonly holders = new Map<string, { waiters: (() => void)[] }>();
  onRelease: (messageId: string) => void = () => {};

  hold(messageId: string): () => void {
    const entry = { waiters: [] as (() => void)[] };
    this.holders.set(messageId, entry);
    return () => {
      if (this.holders.get(messageId) !== entry) return;
      this.onRelease(messageId);
      this.holders.delete(messageId);
      entry.waiters.forEach((w) => w());
    };
  }

  async held(messageId: string): Promise<boolean> {
    return this.holders.has(messageId);
  }

  whenFree(messageId: string, signal: AbortSignal): Promise<boolean> {
    const entry = this.holders.get(messageId);
    if (!entry) return Promise.resolve(true);
    return new Promise((resolve) => {
      entry.waiters.push(() => resolve(!signal.aborted));
      signal.addEventListener('abort', () => resolve(false));
    });
  }
}
