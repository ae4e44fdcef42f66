/**
 * Saved chats for the benchmarks that need many (bench:search, bench:startup): `n` conversations
 * of `pairs` questions and answers (accented text, about 1.7 KB a pair), made with the app's own
 * conversation functions. Chat c was changed last at time c · 1000 + its last message, so
 * "Chat n−1" is the newest. Rule: deterministic; nothing random.
 */
import { addMessage, createConversation } from '../src/conversations/tree';
import type { Conversation } from '../src/conversations/types';

const para = 'Décode speed is bound by memory bandwidth; prefill is bound by compute. Naïve kernels read every weight once per token. ';

export function benchChats(n: number, pairs = 10): Conversation[] {
  const out: Conversation[] = [];
  for (let c = 0; c < n; c++) {
    let conv = { ...createConversation(c * 1000, `c${c}`), title: `Chat ${c}` };
    let parent: string | null = null;
    for (let i = 0; i < 2 * pairs; i++) {
      const id = `m${i}`;
      conv = addMessage(conv, { id, parentId: parent, role: i % 2 ? 'assistant' : 'user', content: `${c}.${i} ${para.repeat(i % 2 ? 12 : 2)}`, createdAt: c * 1000 + i }, c * 1000 + i);
      parent = id;
    }
    out.push(conv);
  }
  return out;
}
