/**
 * The tokenizer module's public surface: load Phi-3's tokenizer from its files, encode, decode,
 * format chats, and stream generated text. Rule: callers import from here, not from the files.
 */
export { loadTokenizer } from './tokenizer';
export type {
  Phi3Tokenizer,
  TokenizerFiles,
  EncodeOptions,
  DecodeOptions,
  ChatTemplateOptions,
  SystemRole,
  StreamDecoder,
  StreamDecoderOptions,
} from './tokenizer';
export { createStreamDecoder } from './stream-decoder';
