/**
 * The native engine: a loaded Phi-3 (our WGSL kernels) plus its tokenizer and chat template,
 * behind the engine interface the worker uses. Generation reuses the KV cache across turns
 * (`generate` keeps the longest common token prefix).
 * Rule: no DOM, no storage; files arrive as `ModelFiles`, so this runs in a worker and in Node.
 */
import { AppError } from './errors';
import type { GpuContext } from './gpu/device';
import { generate, type GenerationTimings } from './generate';
import { loadModelFiles, type LoadedModel, type ModelFiles } from './phi3/files';
import type { LoadOptions } from './phi3/model';
import { loadTokenizer, type Phi3Tokenizer } from './tokenizer';
import type { ChatMessage, GenerateOptions, GenerationStats, ModelInfo, TokenEvent } from './types';

/** Phi-3's stop ids when the model ships no generation_config.json (DESIGN.md §3). */
const PHI3_EOS = [32000, 32001, 32007];

export class NativeEngine {
  readonly kind = 'native' as const;

  private constructor(
    private loaded: LoadedModel,
    readonly tokenizer: Phi3Tokenizer | undefined,
    readonly eosTokenIds: ReadonlySet<number>,
    readonly info: ModelInfo,
  ) {}

  static async load(ctx: GpuContext, files: ModelFiles, opts: LoadOptions = {}): Promise<NativeEngine> {
    const loaded = await loadModelFiles(ctx, files, opts);
    const { tokenizer: tokenizerJson, tokenizerConfig, generation } = loaded.configs;
    const tokenizer = tokenizerJson && tokenizerConfig ? loadTokenizer({ tokenizerJson, tokenizerConfig, generationConfig: generation }) : undefined;
    const eos = new Set(tokenizer?.eosTokenIds ?? eosFrom(generation) ?? PHI3_EOS);
    const c = loaded.plan.config;
    const info: ModelInfo = {
      layers: c.layers,
      hidden: c.hidden,
      heads: c.heads,
      kvHeads: c.kvHeads,
      headDim: c.headDim,
      intermediate: c.intermediate,
      vocab: c.vocab,
      maxPositions: c.maxPositions,
      contextLimit: loaded.runtime.contextLimit,
      layout: loaded.plan.layout,
      precision: 'f32',
    };
    return new NativeEngine(loaded, tokenizer, eos, info);
  }

  get runtime() {
    return this.loaded.runtime;
  }

  /** Tokens of the conversation as the model will see it (for context meters and policies). */
  countChatTokens(messages: readonly ChatMessage[]): number {
    return this.requireTokenizer().encodeChat(messages, { addGenerationPrompt: true }).length;
  }

  private requireTokenizer(): Phi3Tokenizer {
    if (!this.tokenizer) throw new AppError('TOKENIZER_ERROR', 'This model has no tokenizer.json/tokenizer_config.json, so it can only run raw token ids (--input-ids).');
    return this.tokenizer;
  }

  /** Generates from raw ids: yields each new token id, returns the timings. */
  generateIds(promptIds: readonly number[], opts: GenerateOptions, signal?: AbortSignal): AsyncGenerator<number, GenerationTimings, undefined> {
    return generate(this.loaded.runtime, { promptIds, maxNewTokens: opts.maxNewTokens, eosTokenIds: this.eosTokenIds, sampling: opts.sampling, signal });
  }

  /** Chat: renders the template, generates, and streams text deltas. Returns the stats. */
  async *chat(messages: readonly ChatMessage[], opts: GenerateOptions, signal?: AbortSignal): AsyncGenerator<TokenEvent, GenerationStats, undefined> {
    const tokenizer = this.requireTokenizer();
    const started = performance.now();
    const ids = tokenizer.encodeChat(messages, { addGenerationPrompt: true });
    const decoder = tokenizer.createStreamDecoder({ skipSpecialTokens: true });
    const gen = this.generateIds(ids, opts, signal);
    let firstAt = 0;
    for (;;) {
      const r = await gen.next();
      if (r.done) {
        const tail = decoder.flush();
        if (tail) yield { tokenId: -1, text: tail };
        return toStats(r.value, firstAt ? firstAt - started : performance.now() - started);
      }
      firstAt ||= performance.now();
      yield { tokenId: r.value, text: decoder.push(r.value) };
    }
  }

  destroy(): void {
    this.loaded.runtime.destroy();
  }
}

function eosFrom(generation: Record<string, unknown> | undefined): number[] | undefined {
  const e = generation?.eos_token_id;
  if (typeof e === 'number') return [e];
  if (Array.isArray(e) && e.every((x) => typeof x === 'number')) return e as number[];
  return undefined;
}

export function toStats(t: GenerationTimings, timeToFirstTokenMs: number): GenerationStats {
  return {
    promptTokens: t.promptTokens,
    newTokens: t.newTokens,
    timeToFirstTokenMs,
    prefillTokensPerSec: t.prefillMs > 0 ? (t.prefillTokens / t.prefillMs) * 1000 : 0,
    // The first token comes out of prefill; decode steps produce the rest.
    decodeTokensPerSec: t.decodeMs > 0 && t.newTokens > 1 ? ((t.newTokens - 1) / t.decodeMs) * 1000 : 0,
    stopReason: t.stopReason,
  };
}
