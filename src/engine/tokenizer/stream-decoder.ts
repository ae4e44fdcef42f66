/**
 * Streaming detokenisation: generated ids in, text deltas out.
 *
 * Decoding token by token is wrong for SentencePiece-style tokenizers: the decoder strips the
 * first leading space of a text ("▁Hello" alone is "Hello", but " Hello" after another word), and
 * characters outside the vocabulary arrive as several byte-fallback tokens that are only valid
 * UTF-8 together. So each step decodes a short window of recent ids and emits what it adds to the
 * window's already-emitted text (the scheme of Hugging Face tokenizers' DecodeStream): the window
 * always starts with a token whose text was emitted, so the leading-space rule applies to the same
 * token in both decodings, and a delta is held back while the text ends in an incomplete UTF-8
 * sequence (U+FFFD).
 *
 * Rule: the concatenation of every `push` and the final `flush` must equal `decode(allIds)`
 * (with a `context`: decode(context + allIds) less decode(context)); the tests check exactly
 * that. Never emit text the decoder could still rewrite.
 */

export interface StreamDecoder {
  /** Adds one generated id; returns the text it completes (often '', never a partial character). */
  push(id: number): string;
  /** Returns whatever is still held back (an incomplete byte sequence at the very end). */
  flush(): string;
}

const REPLACEMENT_CHAR = '\uFFFD';

/** How many ids of a continued text's end prime the window: enough to span one character's bytes. */
const CONTEXT_IDS = 4;

/**
 * `context`: ids whose text is already shown (the end of an answer being continued). The window
 * starts with their last few, so the first delta is what the generated ids add to that text.
 */
export function createStreamDecoder(decode: (ids: readonly number[]) => string, context: readonly number[] = []): StreamDecoder {
  // ids: the window. Its first `prefixLength` ids decode to `prefix`, text already emitted.
  let ids: number[] = context.slice(-CONTEXT_IDS);
  let prefix = decode(ids);
  let prefixLength = ids.length;

  return {
    push(id: number): string {
      ids.push(id);
      const text = decode(ids);
      if (text.length <= prefix.length || text.endsWith(REPLACEMENT_CHAR) || !text.startsWith(prefix)) {
        return '';
      }
      const delta = text.slice(prefix.length);
      // Keep only the ids of this delta: the next window starts with an emitted token.
      ids = ids.slice(prefixLength);
      prefix = decode(ids);
      prefixLength = ids.length;
      return delta;
    },
    flush(): string {
      const text = decode(ids);
      const delta = text.startsWith(prefix) ? text.slice(prefix.length) : '';
      ids = [];
      prefix = '';
      prefixLength = 0;
      return delta;
    },
  };
}
