/**
 * The model's own token ids for text it has seen or written, so a later prompt repeats them.
 *
 * A chat's next prompt is rendered as text and encoded again, and text the model wrote does not
 * always encode back to the ids it wrote: a word written in pieces, bytes of a character written
 * one by one, or a split the tokenizer would not choose. Where the re-encoding differs, the KV
 * cache (which holds the written ids) stops matching the prompt, and everything after that point
 * is prefilled again: the rest of the answer and the new question, every turn. (llama.cpp, Ollama
 * and vLLM users report the same: ggml-org/llama.cpp#11970, ollama/ollama#12375.)
 *
 * `FedPieces` keeps the last request as pieces of text with the ids that stood for them: the
 * rendered prompt with its ids, then the answer's text with the ids the model wrote. A new prompt
 * that starts with some of those pieces, in order, gets their ids; only the rest is encoded, and
 * only when the rest encodes alone as it does inside the whole prompt (it then starts at a special
 * token such as `<|end|>`, since the tokenizer never joins text across one). Otherwise, and for a
 * prompt that shares no piece, the prompt's own encoding is used. Either way the ids stand for
 * exactly the prompt's text, so the answer is what the model would write after that text; it is
 * also what the model saw when it wrote the answer, which a re-encoding is not.
 * Rule: pure bookkeeping over text and ids; it never sees the runtime or the GPU.
 */

export interface Piece {
  /** Text of the rendered prompt, or of an answer as streamed. Never empty. */
  readonly text: string;
  /** The ids fed (or written) for it. */
  readonly ids: readonly number[];
}

export interface PlannedPrompt {
  ids: number[];
  /** The prompt as pieces: kept ones it starts with, then what was encoded for the rest. */
  pieces: Piece[];
  /** How many of `ids` came from kept pieces rather than from encoding the prompt's text. */
  keptIds: number;
}

function endsWith(ids: readonly number[], tail: readonly number[]): boolean {
  if (tail.length > ids.length) return false;
  const from = ids.length - tail.length;
  return tail.every((id, i) => ids[from + i] === id);
}

export class FedPieces {
  private pieces: readonly Piece[] = [];

  /**
   * The ids for `rendered`, whose own encoding is `encoded`. `encodeRest` encodes a text without
   * adding `<s>` (the tokenizer's `encode(text, { addSpecialTokens: false })`).
   */
  plan(rendered: string, encoded: readonly number[], encodeRest: (text: string) => number[]): PlannedPrompt {
    const kept: Piece[] = [];
    let at = 0;
    for (const piece of this.pieces) {
      if (!rendered.startsWith(piece.text, at)) break;
      kept.push(piece);
      at += piece.text.length;
    }
    const own = (): PlannedPrompt => ({ ids: [...encoded], pieces: rendered ? [{ text: rendered, ids: [...encoded] }] : [], keptIds: 0 });
    if (kept.length === 0) return own();
    const restText = rendered.slice(at);
    const rest = restText ? encodeRest(restText) : [];
    if (!endsWith(encoded, rest)) return own();
    const ids = kept.flatMap((p) => p.ids);
    const keptIds = ids.length;
    ids.push(...rest);
    return { ids, pieces: restText ? [...kept, { text: restText, ids: rest }] : kept, keptIds };
  }

  /** After a request: the prompt's pieces as fed, then the answer's text with the ids written. */
  remember(prompt: readonly Piece[], answer: Piece): void {
    this.pieces = answer.text ? [...prompt, answer] : [...prompt];
  }

  /** Forget everything (another model's ids, or a request whose pieces are unknown). */
  clear(): void {
    this.pieces = [];
  }
}
