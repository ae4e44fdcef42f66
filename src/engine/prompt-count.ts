/**
 * What each message of a conversation adds to its prompt, in tokens, for the context policy
 * (conversations/contextPolicy.ts), in time linear in the conversation's length.
 *
 * The exact definition: perMessage[i] = count(messages[0..i]) - count(messages[0..i)), where
 * count is the prompt's length as the engine encodes it (`ChatEngine.countChatTokens`), and
 * overhead = count([]). Computed that way, every message re-encodes everything before it: a
 * 100-message conversation took 9 s before each answer on the build machine, 200 messages 32 s.
 *
 * Chat templates render each message on its own, and the tokenizer never joins text across a
 * special token, so a message's share depends only on the message before it: perMessage[i] =
 * count([m(i-1), m(i)]) - count([m(i-1)]). Those two-message windows are encoded once and
 * remembered. Every call checks the result against one exact encoding of the whole conversation
 * (overhead + the sum must equal it); a template for which that fails is counted the exact way
 * from then on. Rule: the total stays exact; only the split into messages rests on the windows.
 */
import type { ChatMessage } from './types';

export interface MessageCounts {
  perMessage: number[];
  overhead: number;
}

/** How many window differences are remembered (the oldest are dropped first). */
const REMEMBERED_WINDOWS = 4096;

/** Two FNV-1a hashes of a string and its length: a compact key (a collision only mis-splits a count). */
function keyOf(text: string): string {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  return `${(a >>> 0).toString(36)}.${(b >>> 0).toString(36)}.${text.length}`;
}

export class PromptCounter {
  private windows = new Map<string, number>();
  /** False once a conversation's windows did not add up to its exact count. */
  private local = true;

  /** `count`: the prompt's length for a conversation, as the engine will encode it. */
  constructor(private readonly count: (messages: readonly ChatMessage[]) => number) {}

  counts(messages: readonly ChatMessage[]): MessageCounts {
    const overhead = this.count([]);
    if (this.local) {
      const perMessage = messages.map((m, i) => this.share(i === 0 ? [] : [messages[i - 1]], m));
      if (overhead + perMessage.reduce((a, b) => a + b, 0) === this.count(messages)) return { perMessage, overhead };
      this.local = false;
    }
    return exactCounts(this.count, messages);
  }

  /** count(before + [m]) - count(before), remembered by the window's text. */
  private share(before: readonly ChatMessage[], m: ChatMessage): number {
    const key = keyOf(JSON.stringify([...before, m]));
    let n = this.windows.get(key);
    if (n === undefined) {
      n = this.count([...before, m]) - this.count(before);
      if (this.windows.size >= REMEMBERED_WINDOWS) this.windows.delete(this.windows.keys().next().value!);
    } else {
      // Most recently used last, so the oldest is the first key.
      this.windows.delete(key);
    }
    this.windows.set(key, n);
    return n;
  }
}

/** The definition itself: every prefix encoded (quadratic; the fallback and the tests' reference). */
export function exactCounts(count: (messages: readonly ChatMessage[]) => number, messages: readonly ChatMessage[]): MessageCounts {
  const prefixes = [count([]), ...messages.map((_, i) => count(messages.slice(0, i + 1)))];
  return { perMessage: messages.map((_, i) => prefixes[i + 1] - prefixes[i]), overhead: prefixes[0] };
}
