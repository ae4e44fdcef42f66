/**
 * Phi-3's tokenizer and chat template, driven entirely by the model's own files.
 *
 * Tokenising is @huggingface/tokenizers on tokenizer.json; the prompt format is the Jinja
 * `chat_template` of tokenizer_config.json rendered with @huggingface/jinja; stop tokens come from
 * generation_config.json. Runs in the worker and in Node: no DOM. A rendered chat is encoded by
 * segments, each remembered (segment-encoder.ts), so a grown conversation encodes only its new turn.
 *
 * Rule: never hard-code a prompt format, a special token or an id here. Everything model-specific
 * is read from the files, so that a new revision of the files (or another Llama-style model) works
 * unchanged. A missing or malformed file is an AppError('TOKENIZER_ERROR') that names it. The one
 * policy of our own: a template that drops system messages gets the system prompt at the start of
 * the first user message (`systemRole`).
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { Template } from '@huggingface/jinja';
import { AppError } from '../errors';
import { cutsAtSpaces, SegmentEncoder } from './segment-encoder';
import type { ChatMessage } from '../types';
import { createStreamDecoder as createStreamDecoderFor, type StreamDecoder } from './stream-decoder';

export type { StreamDecoder } from './stream-decoder';

export interface TokenizerFiles {
  /** Parsed tokenizer.json. */
  tokenizerJson: unknown;
  /** Parsed tokenizer_config.json. */
  tokenizerConfig: unknown;
  /** Parsed generation_config.json, when the model has one (its `eos_token_id` wins). */
  generationConfig?: unknown;
}

export interface EncodeOptions {
  /** Add what the tokenizer adds around a text (`<s>` for Phi-3). Default true. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Drop special tokens (`<s>`, `<|end|>`, ...) from the text. Default false. */
  skipSpecialTokens?: boolean;
}

export interface ChatTemplateOptions {
  /** End with the assistant's turn opener so the model answers. Default true. */
  addGenerationPrompt?: boolean;
  /**
   * The last message is an assistant's answer to be continued (one cut off by a token limit or a
   * stop): the rendering ends right after its text, without the turn's end marker, so the model
   * goes on writing it. Ignores `addGenerationPrompt`.
   */
  continueFinalMessage?: boolean;
}

export interface StreamDecoderOptions extends DecodeOptions {
  /**
   * Ids just before the first generated one, whose text is already shown (the end of an answer
   * being continued). Decoding starts from them, so the first delta keeps the space or the bytes
   * that join it to that text, as decode(context + generated) would.
   */
  context?: readonly number[];
}

export type SystemRole = 'template' | 'first-user-message';

export interface Phi3Tokenizer {
  /** Ids that end generation: generation_config.json's `eos_token_id`, else the tokenizer's eos. */
  readonly eosTokenIds: readonly number[];
  /** The beginning-of-sequence id, when the tokenizer has one. */
  readonly bosTokenId: number | undefined;
  encode(text: string, options?: EncodeOptions): number[];
  decode(ids: readonly number[], options?: DecodeOptions): string;
  /**
   * Whether the chat template writes a system message ('template') or drops it, as Phi-3 Mini's
   * templates before the June 2024 update do ('first-user-message': the system prompt is then put
   * before the first user message, so it still reaches the model). Undefined without a template.
   */
  systemRole(): SystemRole | undefined;
  /** The conversation rendered with the model's chat template. */
  applyChatTemplate(messages: readonly ChatMessage[], options?: ChatTemplateOptions): string;
  /** The rendered conversation as ids: special tokens map to their ids, `<s>` appears once. */
  encodeChat(messages: readonly ChatMessage[], options?: ChatTemplateOptions): number[];
  /** `encodeChat` of a conversation already rendered by `applyChatTemplate`. */
  encodeRendered(rendered: string): number[];
  /** Id of an exact token string (a vocabulary piece or an added token), if there is one. */
  tokenToId(token: string): number | undefined;
  /** Turns generated ids into text deltas whose concatenation is `decode(allIds)`. */
  createStreamDecoder(options?: StreamDecoderOptions): StreamDecoder;
}

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function fail(message: string): never {
  throw new AppError('TOKENIZER_ERROR', message);
}

/** A special token in tokenizer_config.json is a string or an AddedToken object `{content}`. */
function specialTokenText(config: JsonObject, key: string): string | undefined {
  const value = config[key];
  if (typeof value === 'string') return value;
  if (isObject(value) && typeof value.content === 'string') return value.content;
  return undefined;
}

/** `chat_template` is a string, or (newer files) a list of `{name, template}` with a "default". */
function chatTemplateSource(config: JsonObject): string | undefined {
  const value = config.chat_template;
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const named = value.filter(isObject);
    const chosen = named.find((t) => t.name === 'default') ?? named[0];
    if (chosen && typeof chosen.template === 'string') return chosen.template;
  }
  return undefined;
}

function checkTokenizerJson(json: unknown): JsonObject {
  if (!isObject(json)) fail(`tokenizer.json must be a JSON object, got ${json === null ? 'null' : typeof json}`);
  const model = json.model;
  if (!isObject(model)) fail('tokenizer.json has no "model" object');
  if (!isObject(model.vocab) && !Array.isArray(model.vocab)) fail('tokenizer.json model has no "vocab"');
  if (model.type === 'BPE' && !Array.isArray(model.merges)) fail('tokenizer.json BPE model has no "merges" list');
  if (json.added_tokens !== undefined && !Array.isArray(json.added_tokens)) {
    fail('tokenizer.json "added_tokens" must be a list');
  }
  // The library iterates added_tokens unconditionally.
  return json.added_tokens === undefined ? { ...json, added_tokens: [] } : json;
}

function eosIdsFromGenerationConfig(generationConfig: unknown): number[] | undefined {
  if (generationConfig === undefined || generationConfig === null) return undefined;
  if (!isObject(generationConfig)) fail('generation_config.json must be a JSON object');
  const eos = generationConfig.eos_token_id;
  if (eos === undefined || eos === null) return undefined;
  const ids = Array.isArray(eos) ? eos : [eos];
  if (ids.length === 0 || !ids.every((id) => Number.isInteger(id) && (id as number) >= 0)) {
    fail(`generation_config.json eos_token_id must be a non-negative integer or a list of them, got ${JSON.stringify(eos)}`);
  }
  return ids as number[];
}

function checkIds(ids: readonly number[]): void {
  if (!Array.isArray(ids)) fail('token ids must be an array of integers');
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0) fail(`token id ${String(id)} is not a non-negative integer`);
  }
}

export function loadTokenizer(files: TokenizerFiles): Phi3Tokenizer {
  const json = checkTokenizerJson(files.tokenizerJson);
  if (!isObject(files.tokenizerConfig)) fail('tokenizer_config.json must be a JSON object');
  const config = files.tokenizerConfig;

  let tokenizer: Tokenizer;
  try {
    tokenizer = new Tokenizer(json, config);
  } catch (err) {
    fail(`tokenizer.json could not be loaded: ${err instanceof Error ? err.message : String(err)}`);
  }

  const bosToken = specialTokenText(config, 'bos_token');
  const eosToken = specialTokenText(config, 'eos_token');
  const bosTokenId = bosToken === undefined ? undefined : tokenizer.token_to_id(bosToken);
  const eosTokenId = eosToken === undefined ? undefined : tokenizer.token_to_id(eosToken);
  if (bosToken !== undefined && bosTokenId === undefined) fail(`bos_token ${JSON.stringify(bosToken)} is not in tokenizer.json`);
  if (eosToken !== undefined && eosTokenId === undefined) fail(`eos_token ${JSON.stringify(eosToken)} is not in tokenizer.json`);

  const eosTokenIds = eosIdsFromGenerationConfig(files.generationConfig) ?? (eosTokenId === undefined ? [] : [eosTokenId]);
  if (eosTokenIds.length === 0) fail('no end-of-sequence token: neither generation_config.json nor tokenizer_config.json names one');

  // LlamaTokenizer(Fast) semantics: add_bos_token / add_eos_token in tokenizer_config.json decide
  // what surrounds a text; without them, tokenizer.json's post-processor does.
  const addBos = typeof config.add_bos_token === 'boolean' ? config.add_bos_token : undefined;
  const addEos = typeof config.add_eos_token === 'boolean' ? config.add_eos_token : undefined;
  const flagsDecide = addBos !== undefined || addEos !== undefined;

  const cleanUp = config.clean_up_tokenization_spaces === true;

  let template: Template | undefined;
  const templateSource = chatTemplateSource(config);
  const specialTokensForTemplate: Record<string, string> = {};
  for (const key of ['bos_token', 'eos_token', 'unk_token', 'pad_token', 'sep_token', 'cls_token', 'mask_token']) {
    const text = specialTokenText(config, key);
    if (text !== undefined) specialTokensForTemplate[key] = text;
  }

  function encodeText(text: string, addSpecialTokens: boolean): number[] {
    if (typeof text !== 'string') fail(`text to encode must be a string, got ${typeof text}`);
    if (!addSpecialTokens || !flagsDecide) {
      return tokenizer.encode(text, { add_special_tokens: addSpecialTokens }).ids;
    }
    const ids = tokenizer.encode(text, { add_special_tokens: false }).ids;
    if (addBos && bosTokenId !== undefined) ids.unshift(bosTokenId);
    if (addEos && eosTokenId !== undefined) ids.push(eosTokenId);
    return ids;
  }

  function decode(ids: readonly number[], options: DecodeOptions = {}): string {
    checkIds(ids);
    if (ids.length === 0) return '';
    return tokenizer.decode([...ids], {
      skip_special_tokens: options.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: cleanUp,
    });
  }

  function compiledTemplate(): Template {
    if (templateSource === undefined) {
      fail('tokenizer_config.json has no chat_template: this model cannot format a conversation');
    }
    if (template === undefined) {
      try {
        template = new Template(templateSource);
      } catch (err) {
        fail(`tokenizer_config.json chat_template does not parse: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    return template;
  }

  /** Stands in for the text of an answer being continued (applyChatTemplate). */
  const CONTINUE_MARKER = 'continue-final-message-marker-3b9d';

  let role: SystemRole | undefined;
  /** Renders a probe system message once: a template that drops it (or refuses it) has no system role. */
  function systemRole(): SystemRole | undefined {
    if (templateSource === undefined) return undefined;
    if (role === undefined) {
      const probe = 'system-role-probe-7f3a';
      let rendered = '';
      try {
        rendered = render(
          [
            { role: 'system', content: probe },
            { role: 'user', content: 'x' },
          ],
          true,
        );
      } catch {
        // A template that raises on a system message has no system role either.
      }
      role = rendered.includes(probe) ? 'template' : 'first-user-message';
    }
    return role;
  }

  /** For a template without a system role: the system prompt opens the first user message. */
  function foldSystemMessage(messages: readonly ChatMessage[]): readonly ChatMessage[] {
    const [first, ...rest] = messages;
    if (first?.role !== 'system') return messages;
    if (rest[0]?.role !== 'user') return [{ role: 'user', content: first.content }, ...rest];
    return [{ role: 'user', content: `${first.content}\n\n${rest[0].content}` }, ...rest.slice(1)];
  }

  function applyChatTemplate(chat: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    const messages = systemRole() === 'template' ? chat : foldSystemMessage(chat);
    if (options.continueFinalMessage !== true) return render(messages, options.addGenerationPrompt ?? true);
    const final = messages.at(-1);
    if (final?.role !== 'assistant' || !final.content.trim()) {
      fail('only an assistant message with text can be continued: the conversation must end with one');
    }
    // Rendered with a marker in place of the answer's text, cut at the marker, then the text:
    // whatever closes the turn is left out, and the cut never lands inside that closing markup.
    const rendered = render([...messages.slice(0, -1), { role: 'assistant', content: CONTINUE_MARKER }], false);
    const at = rendered.indexOf(CONTINUE_MARKER);
    if (at < 0) fail("chat_template does not write an answer's text as it is, so the answer cannot be continued");
    return rendered.slice(0, at) + final.content;
  }

  function render(messages: readonly ChatMessage[], addGenerationPrompt: boolean): string {
    try {
      return compiledTemplate().render({
        messages: messages.map((m) => ({ role: m.role, content: m.content })),
        add_generation_prompt: addGenerationPrompt,
        ...specialTokensForTemplate,
      });
    } catch (err) {
      // Includes the template's own raise_exception(...), which @huggingface/jinja provides.
      fail(`chat_template failed to render: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  // A grown conversation re-encodes only its new segments, and a long one is cut at spaces (segment-encoder.ts).
  const segments = new SegmentEncoder(json.added_tokens as unknown[], (text) => tokenizer.encode(text, { add_special_tokens: false }).ids, cutsAtSpaces(json));

  function encodeChat(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): number[] {
    return encodeRendered(applyChatTemplate(messages, options));
  }

  function encodeRendered(rendered: string): number[] {
    // Special tokens in the rendered text are matched as added tokens by the library. Some
    // templates write `{{ bos_token }}` themselves; others rely on the tokenizer adding it.
    const ids = segments.encode(rendered);
    const wantsBos = flagsDecide
      ? addBos === true
      : tokenizer.encode('', { add_special_tokens: true }).ids[0] === bosTokenId;
    if (wantsBos && bosTokenId !== undefined && ids[0] !== bosTokenId) ids.unshift(bosTokenId);
    return ids;
  }

  return {
    eosTokenIds,
    bosTokenId,
    encode: (text, options = {}) => encodeText(text, options.addSpecialTokens ?? true),
    decode,
    applyChatTemplate,
    encodeChat,
    encodeRendered,
    systemRole,
    tokenToId: (token) => tokenizer.token_to_id(token),
    createStreamDecoder: (options = {}) => createStreamDecoderFor((ids) => decode(ids, options), options.context),
  };
}
