/**
 * Phi-3 Mini's tokenizer files, rebuilt offline for the tiny test models.
 *
 * Phi-3 Mini uses the Llama-2 SentencePiece BPE (32000 pieces, byte fallback) plus eleven added
 * tokens at ids 32000-32010. The llama-tokenizer-js package ships Llama-2's vocabulary (in id
 * order) and its merges (in rank order, extracted from Llama-2's own tokenizer.json), so the
 * tokenizer.json written here is Llama-2's, with Phi-3's added tokens, normalizer, decoder and
 * post-processor as Microsoft publishes them, and tokenizer_config.json carries Phi-3 Mini 4K
 * Instruct's chat template (the July 2024 revision, which has a system role and `rstrip: false`
 * on the added tokens).
 *
 * Rule: this mirrors the published files; the engine must read everything (special tokens,
 * template, bos/eos) from them. Do not add project-specific fields here that the real Hugging Face
 * files lack, or the tiny models stop being a faithful stand-in for the real ones. Keep the module
 * free of static Node imports: browser tests build the same files in Chromium.
 */
import llamaTokenizer from 'llama-tokenizer-js';

/** One entry of tokenizer.json's `added_tokens` (snake_case: it is the file format). */
interface AddedTokenEntry {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

/** Phi-3 Mini 4K Instruct's added tokens, with the flags of its published tokenizer files. */
const PHI3_ADDED_TOKENS: ReadonlyArray<{ id: number; content: string; special: boolean }> = [
  { id: 0, content: '<unk>', special: true },
  { id: 1, content: '<s>', special: true },
  { id: 2, content: '</s>', special: true },
  { id: 32000, content: '<|endoftext|>', special: true },
  { id: 32001, content: '<|assistant|>', special: true },
  { id: 32002, content: '<|placeholder1|>', special: true },
  { id: 32003, content: '<|placeholder2|>', special: true },
  { id: 32004, content: '<|placeholder3|>', special: true },
  { id: 32005, content: '<|placeholder4|>', special: true },
  { id: 32006, content: '<|system|>', special: true },
  { id: 32007, content: '<|end|>', special: true },
  { id: 32008, content: '<|placeholder5|>', special: true },
  { id: 32009, content: '<|placeholder6|>', special: true },
  { id: 32010, content: '<|user|>', special: true },
];

/** Phi-3 Mini 4K Instruct's chat template, as published in its tokenizer_config.json. */
export const PHI3_CHAT_TEMPLATE =
  "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}" +
  "{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}" +
  "{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}" +
  "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}";

/**
 * The chat_template of microsoft/Phi-3-mini-4k-instruct's tokenizer_config.json as first published
 * (spring 2024, quoted in transformers issue #30545): user and assistant turns only, so a system
 * message is dropped. Copies of the files made before the June 2024 update keep it; tests serve it
 * to check that the system prompt still reaches the model.
 */
export const PHI3_CHAT_TEMPLATE_NO_SYSTEM =
  "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') %}{{'<|user|>' + '\\n' + message['content'] + '<|end|>' + '\\n' + '<|assistant|>' + '\\n'}}" +
  "{% elif (message['role'] == 'assistant') %}{{message['content'] + '<|end|>' + '\\n'}}{% endif %}{% endfor %}";

const SPACE_PIECE = '\u2581'; // SentencePiece's "▁"

function addedTokenEntries(): AddedTokenEntry[] {
  return PHI3_ADDED_TOKENS.map(({ id, content, special }) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special,
  }));
}

/** Llama-2's vocabulary as `{piece: id}` and its merges as `"left right"` strings in rank order. */
function llamaModelTables(): { vocab: Record<string, number>; merges: string[] } {
  const pieces = llamaTokenizer.vocabById;
  if (pieces.length !== 32000) {
    throw new Error(`llama-tokenizer-js vocabulary has ${pieces.length} pieces, expected 32000`);
  }
  const vocab: Record<string, number> = {};
  pieces.forEach((piece, id) => {
    vocab[piece] = id;
  });
  // The Map's insertion order is the merge rank (its values are 1, 3, 5, ... increasing).
  const merges = [...llamaTokenizer.merges.keys()];
  for (const merge of merges) {
    const parts = merge.split(' ');
    if (parts.length !== 2 || !(parts[0] in vocab) || !(parts[1] in vocab) || !(parts.join('') in vocab)) {
      throw new Error(`llama-tokenizer-js merge ${JSON.stringify(merge)} does not join two vocabulary pieces`);
    }
  }
  return { vocab, merges };
}

/** The four tokenizer files of Phi-3 Mini 4K Instruct, as plain JSON objects. */
export function buildTokenizerFiles(): {
  tokenizerJson: object;
  tokenizerConfig: object;
  specialTokensMap: object;
  addedTokens: object;
} {
  const { vocab, merges } = llamaModelTables();
  const added = addedTokenEntries();

  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: SPACE_PIECE },
        { type: 'Replace', pattern: { String: ' ' }, content: SPACE_PIECE },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<s>', type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: SPACE_PIECE }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      vocab,
      merges,
    },
  };

  const addedTokensDecoder: Record<string, Omit<AddedTokenEntry, 'id'>> = {};
  for (const { id, ...rest } of added) {
    addedTokensDecoder[String(id)] = {
      content: rest.content,
      lstrip: rest.lstrip,
      normalized: rest.normalized,
      rstrip: rest.rstrip,
      single_word: rest.single_word,
      special: rest.special,
    };
  }

  const tokenizerConfig = {
    add_bos_token: true,
    add_eos_token: false,
    added_tokens_decoder: addedTokensDecoder,
    bos_token: '<s>',
    chat_template: PHI3_CHAT_TEMPLATE,
    clean_up_tokenization_spaces: false,
    eos_token: '<|endoftext|>',
    legacy: false,
    model_max_length: 4096,
    pad_token: '<|endoftext|>',
    padding_side: 'left',
    sp_model_kwargs: {},
    tokenizer_class: 'LlamaTokenizer',
    unk_token: '<unk>',
    use_default_system_prompt: false,
  };

  const specialToken = (content: string) => ({
    content,
    lstrip: false,
    normalized: false,
    rstrip: false,
    single_word: false,
  });
  const specialTokensMap = {
    bos_token: specialToken('<s>'),
    eos_token: specialToken('<|endoftext|>'),
    pad_token: specialToken('<|endoftext|>'),
    unk_token: specialToken('<unk>'),
  };

  const addedTokens: Record<string, number> = {};
  for (const { id, content } of [...added].filter((t) => t.id >= 32000).sort((a, b) => (a.content < b.content ? -1 : 1))) {
    addedTokens[content] = id;
  }

  return { tokenizerJson, tokenizerConfig, specialTokensMap, addedTokens };
}

/**
 * Writes tokenizer.json, tokenizer_config.json, special_tokens_map.json and added_tokens.json into
 * `dir` (created if missing), laid out as in the Hugging Face repository.
 */
export async function writeTokenizerFiles(dir: string): Promise<void> {
  const { mkdir, writeFile } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const files = buildTokenizerFiles();
  await mkdir(dir, { recursive: true });
  const write = (name: string, value: object) =>
    writeFile(join(dir, name), JSON.stringify(value, null, 2) + '\n', 'utf8');
  await Promise.all([
    write('tokenizer.json', files.tokenizerJson),
    write('tokenizer_config.json', files.tokenizerConfig),
    write('special_tokens_map.json', files.specialTokensMap),
    write('added_tokens.json', files.addedTokens),
  ]);
}
