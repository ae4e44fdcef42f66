/**
 * The context policy: what the model sees when a conversation outgrows its context window.
 *
 *   1. The system prompt is always kept.
 *   2. The newest user message is always kept.
 *   3. Whole turns (a user message and the answers that follow it) are dropped, oldest first,
 *      until the prompt plus room for `maxNewTokens` fits the context limit.
 *   4. If even the system prompt plus the newest message leave less than `maxNewTokens`, the
 *      answer gets whatever room is left (at least `MIN_ANSWER_TOKENS`), else the request fails.
 *   5. Continuing an answer (the list ends with an assistant message): its question stays with it,
 *      since the model cannot go on with an answer to a question it does not see; when the two
 *      leave no room, the request fails saying the answer cannot be continued.
 * The UI tells the user how many messages were left out (`ContextNote`). Pure over token counts,
 * so it is tested without a tokenizer; the counts come from the engine's `countTokens` service.
 */

/** Fewer tokens of room than this for the answer is treated as "does not fit". */
export const MIN_ANSWER_TOKENS = 16;

export interface ContextInput {
  /** Role of each message in prompt order; a system message may only come first. */
  roles: ('system' | 'user' | 'assistant')[];
  /** Tokens each message takes in the chat template, same order as `roles`. */
  counts: number[];
  /** Tokens the template adds outside the messages (BOS, the generation prompt). */
  overhead: number;
  contextLimit: number;
  maxNewTokens: number;
}

export type ContextPlan =
  | {
      fits: true;
      /** Indices into the input of the messages to send, in order. */
      keep: number[];
      droppedMessages: number;
      promptTokens: number;
      /** min(maxNewTokens, room left in the context). */
      maxNewTokens: number;
    }
  | { fits: false; promptTokens: number; message: string };

export function planContext(input: ContextInput): ContextPlan {
  const { roles, counts, overhead, contextLimit, maxNewTokens } = input;
  if (roles.length !== counts.length) throw new RangeError(`planContext: ${roles.length} roles but ${counts.length} counts`);
  const hasSystem = roles[0] === 'system';
  const first = hasSystem ? 1 : 0;
  const last = roles.length - 1;
  // Turn starts: indices of user messages after the system prompt; a turn runs to the next start.
  const starts: number[] = [];
  for (let i = first; i <= last; i++) if (roles[i] === 'user' || i === first) starts.push(i);
  const sum = (from: number, to: number) => counts.slice(from, to + 1).reduce((a, b) => a + b, 0);
  const fixed = overhead + (hasSystem ? counts[0] : 0);

  let from = first;
  let t = 0;
  // Drop whole turns while they are not the turn holding the newest message and it does not fit.
  while (fixed + sum(from, last) + maxNewTokens > contextLimit && t + 1 < starts.length) {
    t++;
    from = starts[t];
  }
  const continuing = roles[last] === 'assistant' && last > first;
  // The newest turn can still be too long (an answer after the last user message): keep the last message only.
  if (!continuing && fixed + sum(from, last) + maxNewTokens > contextLimit && from < last) from = last;
  const promptTokens = fixed + sum(from, last);
  const room = contextLimit - promptTokens;
  if (room < Math.min(MIN_ANSWER_TOKENS, maxNewTokens)) {
    return {
      fits: false,
      promptTokens,
      message: continuing
        ? `This answer, its question and the system prompt take ${promptTokens} tokens, which leaves no room to ` +
          `continue it in this model's ${contextLimit}-token context. Ask for the rest in a new message instead.`
        : `The message and system prompt take ${promptTokens} tokens, which leaves no room for an answer in ` +
          `this model's ${contextLimit}-token context. Shorten the message or the system prompt.`,
    };
  }
  const keep = [...(hasSystem ? [0] : []), ...Array.from({ length: last - from + 1 }, (_, i) => from + i)];
  return { fits: true, keep, droppedMessages: from - first, promptTokens, maxNewTokens: Math.min(maxNewTokens, room) };
}
