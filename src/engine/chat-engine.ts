/**
 * What both engines share above their token runtime: the tokenizer and chat template, end-of-
 * sequence ids, token counting, the prompt's ids (the last encoding kept, and the ids the model
 * was fed and wrote reused: fed-pieces.ts), and the streamed chat loop with its statistics. An
 * engine only supplies a `TokenRuntime` (forward pass + KV cache + token selection).
 * Rule: nothing here may depend on how tokens are computed (GPU kernels or onnxruntime).
 */
import { AppError } from './errors';
import { commonPrefix, generate, runsCacheAgain, type GenerationTimings, type TokenRuntime } from './generate';
import { loadTokenizer, type Phi3Tokenizer } from './tokenizer';
import { PromptCounter, type MessageCounts } from './prompt-count';
import { FedPieces, type PlannedPrompt } from './fed-pieces';
import type { Phi3Plan } from './phi3/plan';
import { GREEDY_SAMPLING, type ChatMessage, type GenerateOptions, type GenerationStats, type ModelInfo, type PrefillReport, type TokenEvent } from './types';

/** Phi-3's stop ids when the model ships no generation_config.json (DESIGN.md §3). */
const PHI3_EOS = [32000, 32001, 32007];

/**
 * Tokens `prepare` feeds per step: small enough that a request arriving meanwhile waits for at
 * most one such step (about a second on a slow integrated GPU), large enough to keep prefill's
 * matrix products wide.
 */
export const PREPARE_CHUNK_TOKENS = 256;

/** What `prepare` left in the KV cache. */
export interface PrepareResult {
  /** Tokens of the next prompt that the cache now holds (the whole prefix `prepare` aimed at). */
  preparedTokens: number;
  /** Of those, the tokens this call ran through the model (the rest were cached already). */
  ranTokens: number;
  /** The prefix was not finished: a signal stopped it, or another request changed the cache. */
  stopped: boolean;
}

export interface ModelTextFiles {
  tokenizer?: unknown;
  tokenizerConfig?: unknown;
  generation?: Record<string, unknown>;
}

/** The tokenizer (when the model has its files) and the ids that end generation. */
export function loadTextSide(files: ModelTextFiles): { tokenizer: Phi3Tokenizer | undefined; eosTokenIds: ReadonlySet<number> } {
  const { tokenizer: tokenizerJson, tokenizerConfig, generation } = files;
  const tokenizer = tokenizerJson && tokenizerConfig ? loadTokenizer({ tokenizerJson, tokenizerConfig, generationConfig: generation }) : undefined;
  return { tokenizer, eosTokenIds: new Set(tokenizer?.eosTokenIds ?? eosFrom(generation) ?? PHI3_EOS) };
}

function eosFrom(generation: Record<string, unknown> | undefined): number[] | undefined {
  const e = generation?.eos_token_id;
  if (typeof e === 'number') return [e];
  if (Array.isArray(e) && e.every((x) => typeof x === 'number')) return e as number[];
  return undefined;
}

export abstract class ChatEngine {
  constructor(
    readonly tokenizer: Phi3Tokenizer | undefined,
    readonly eosTokenIds: ReadonlySet<number>,
  ) {}

  abstract get runtime(): TokenRuntime;

  /** Tokens of the conversation as the model will see it (for context meters and policies). */
  countChatTokens(messages: readonly ChatMessage[]): number {
    return this.encodePrompt(messages).length;
  }

  /** The last prompt encoded, by its rendered text (encodePrompt). */
  private lastEncoded: { rendered: string; ids: number[] } | undefined;
  /** The last request's text and ids, for the next prompt to repeat (fed-pieces.ts). */
  private readonly fed = new FedPieces();
  private readonly promptCounter = new PromptCounter((messages) => this.countChatTokens(messages));

  /** What each message adds to the prompt, and the template's own tokens (prompt-count.ts). */
  countMessages(messages: readonly ChatMessage[]): MessageCounts {
    return this.promptCounter.counts(messages);
  }

  /**
   * The prompt's ids: the conversation and the assistant's turn opener, or, when the conversation
   * ends with an assistant message, the conversation up to the end of that message's text, so the
   * model continues it (an answer cut off by the token limit or Stop).
   */
  private encodePrompt(messages: readonly ChatMessage[]): number[] {
    return this.encodeRendered(this.renderPrompt(messages));
  }

  private renderPrompt(messages: readonly ChatMessage[]): string {
    const continueFinalMessage = messages.at(-1)?.role === 'assistant';
    return this.requireTokenizer().applyChatTemplate(messages, { addGenerationPrompt: true, continueFinalMessage });
  }

  /**
   * A turn encodes the same prompt twice: the context policy's count checks its sum against it
   * (prompt-count.ts), then the answer is generated from it. The last encoding is kept, by its
   * rendered text.
   */
  private encodeRendered(rendered: string): number[] {
    if (this.lastEncoded?.rendered !== rendered) this.lastEncoded = { rendered, ids: this.requireTokenizer().encodeRendered(rendered) };
    return [...this.lastEncoded.ids];
  }

  protected requireTokenizer(): Phi3Tokenizer {
    if (!this.tokenizer) throw new AppError('TOKENIZER_ERROR', 'This model has no tokenizer.json/tokenizer_config.json, so it can only run raw token ids (--input-ids).');
    return this.tokenizer;
  }

  /**
   * Generates from raw ids: yields each new token id, returns the timings. `firstStep` is the RNG
   * step of the first new token (generate.ts), the answer tokens already in `promptIds`.
   */
  generateIds(promptIds: readonly number[], opts: GenerateOptions, signal?: AbortSignal, firstStep = 0, onPrefill?: PrefillReport): AsyncGenerator<number, GenerationTimings, undefined> {
    return generate(this.runtime, { promptIds, maxNewTokens: opts.maxNewTokens, eosTokenIds: this.eosTokenIds, sampling: opts.sampling, signal, firstStep, onPrefill });
  }

  /**
   * The prompt's ids, reusing the ids the model was fed and wrote for the text the prompt repeats
   * (fed-pieces.ts): a follow-up then matches the KV cache up to the new turn even where the
   * answer's text would encode differently. Falls back to the prompt's own encoding where that
   * would not fit the context (the context policy counts the own encoding).
   */
  private planPrompt(messages: readonly ChatMessage[]): PlannedPrompt {
    const tokenizer = this.requireTokenizer();
    const rendered = this.renderPrompt(messages);
    const encoded = this.encodeRendered(rendered);
    const planned = this.fed.plan(rendered, encoded, (text) => tokenizer.encode(text, { addSpecialTokens: false }));
    if (planned.ids.length < this.runtime.contextLimit || encoded.length >= this.runtime.contextLimit) return planned;
    return { ids: encoded, pieces: [{ text: rendered, ids: encoded }], keptIds: 0 };
  }

  /**
   * The ids every next request on `history` starts with: for a conversation that ends with an
   * answer, what a new question's prompt and a continuation's prompt share (found by planning the
   * prompt with two different one-letter questions, so no template or tokenizer detail is
   * assumed); for one that ends with a question, the prompt that answers it (Regenerate).
   */
  private nextPromptPrefix(history: readonly ChatMessage[]): number[] {
    if (history.length === 0) return [];
    if (history.at(-1)?.role === 'user') return this.planPrompt(history).ids;
    const a = this.planPrompt([...history, { role: 'user', content: 'a' }]).ids;
    const b = this.planPrompt([...history, { role: 'user', content: 'b' }]).ids;
    return a.slice(0, commonPrefix(a, b));
  }

  /**
   * Reads a conversation into the KV cache before its next message is written, so that message's
   * answer prefills only the message: the first token of a reopened long chat then comes as fast
   * as in a chat that never closed. `history` is the conversation as the next request will send
   * it, before the new message (the context policy applied). Only the part the cache does not hold
   * yet runs, `PREPARE_CHUNK_TOKENS` at a time; the generator yields after each chunk so that the
   * caller can let other requests in between, and stops at the next chunk once `signal` aborts or
   * the cache no longer ends where this left it (another request used the engine). Whatever the
   * next request turns out to be, `generate` keeps only the cache's prefix that matches its own
   * ids, so a prepared cache changes how many of its prompt's ids are run, never which (the cache,
   * computed in other chunk sizes, can differ in rounding).
   */
  async *prepare(history: readonly ChatMessage[], signal?: AbortSignal, chunkTokens = PREPARE_CHUNK_TOKENS): AsyncGenerator<number, PrepareResult, undefined> {
    const runtime = this.runtime;
    if (signal?.aborted) return { preparedTokens: 0, ranTokens: 0, stopped: true };
    // One token is left for generate, which always re-runs the prompt's last token.
    const target = this.nextPromptPrefix(history).slice(0, runtime.contextLimit - 1);
    let at = commonPrefix(runtime.cachedIds, target);
    let ran = 0;
    const result = (stopped: boolean): PrepareResult => ({ preparedTokens: at, ranTokens: ran, stopped });
    if (at === target.length) return result(false);
    runtime.truncate(at);
    while (at < target.length) {
      if (signal?.aborted) return result(true);
      const end = Math.min(target.length, at + chunkTokens);
      // Every chunk is rotated as for the whole target (reach): on Phi-3 128K a target past the
      // LongRoPE switch then takes the long factors from its first chunk, where chunks rotated by
      // their own end ran every token before the switch again at the chunk crossing it. A runtime
      // that cannot (onnxruntime's graph) still runs the cached tokens again there.
      const runs = runsCacheAgain(runtime, end, target.length) ? end : end - at;
      try {
        // The signal also stops a step between its prefill chunks (such a rerun is one step).
        await runtime.step(target.slice(at, end), GREEDY_SAMPLING, 0, { signal, reach: target.length });
      } catch (err) {
        if (!signal?.aborted) throw err;
        at = commonPrefix(runtime.cachedIds, target);
        return result(true);
      }
      ran += runs;
      at = end;
      if (at === target.length) break;
      yield at;
      if (runtime.cachedIds.length !== at || commonPrefix(runtime.cachedIds, target) !== at) {
        at = commonPrefix(runtime.cachedIds, target);
        return result(true);
      }
    }
    return result(false);
  }

  /**
   * Chat: renders the template, generates, and streams text deltas. Returns the stats. A
   * conversation that ends with an assistant message continues it: the deltas extend its text.
   * `onPrefill` follows a long prompt (generate.ts).
   */
  async *chat(messages: readonly ChatMessage[], opts: GenerateOptions, signal?: AbortSignal, onPrefill?: PrefillReport): AsyncGenerator<TokenEvent, GenerationStats, undefined> {
    const tokenizer = this.requireTokenizer();
    const started = performance.now();
    const prompt = this.planPrompt(messages);
    const ids = prompt.ids;
    const continuing = messages.at(-1)?.role === 'assistant';
    const decoder = tokenizer.createStreamDecoder({ skipSpecialTokens: true, context: continuing ? ids : [] });
    // A continuation samples from the RNG step after the answer's tokens so far, so Stop then
    // Continue (or a token limit raised, then Continue) writes what one run would have written.
    const firstStep = continuing ? Math.max(0, ids.length - this.planPrompt(messages.slice(0, -1)).ids.length) : 0;
    const gen = this.generateIds(ids, opts, signal, firstStep, onPrefill);
    const written: number[] = [];
    let text = '';
    let firstAt = 0;
    // Until the answer is complete, the pieces are unknown: a failed or abandoned request forgets them.
    this.fed.clear();
    for (;;) {
      const r = await gen.next();
      if (r.done) {
        const tail = decoder.flush();
        text += tail;
        this.fed.remember(prompt.pieces, { text, ids: written });
        if (tail) yield { tokenId: -1, text: tail };
        return toStats(r.value, firstAt ? firstAt - started : performance.now() - started);
      }
      firstAt ||= performance.now();
      const delta = decoder.push(r.value);
      written.push(r.value);
      text += delta;
      yield { tokenId: r.value, text: delta };
    }
  }
}

/**
 * What both engines report about a loaded model: the plan's hyper-parameters plus the engine's
 * own context limit and precision, and how its chat template takes a system prompt.
 */
export function modelInfo(plan: Phi3Plan, contextLimit: number, precision: ModelInfo['precision'], tokenizer: Phi3Tokenizer | undefined): ModelInfo {
  const c = plan.config;
  const systemRole = tokenizer?.systemRole();
  return {
    ...(systemRole ? { systemRole } : {}),
    ...(c.attentionWindow ? { attentionWindow: c.attentionWindow } : {}),
    layers: c.layers,
    hidden: c.hidden,
    heads: c.heads,
    kvHeads: c.kvHeads,
    headDim: c.headDim,
    intermediate: c.intermediate,
    vocab: c.vocab,
    maxPositions: c.maxPositions,
    contextLimit,
    layout: plan.layout,
    precision,
  };
}

export function toStats(t: GenerationTimings, timeToFirstTokenMs: number): GenerationStats {
  return {
    promptTokens: t.promptTokens,
    cachedTokens: t.promptTokens - t.prefillTokens,
    newTokens: t.newTokens,
    timeToFirstTokenMs,
    prefillTokensPerSec: t.prefillMs > 0 ? (t.prefillTokens / t.prefillMs) * 1000 : 0,
    // The first token comes out of prefill; decode steps produce the rest.
    decodeTokensPerSec: t.decodeMs > 0 && t.newTokens > 1 ? ((t.newTokens - 1) / t.decodeMs) * 1000 : 0,
    stopReason: t.stopReason,
  };
}
