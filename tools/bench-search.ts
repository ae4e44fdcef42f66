/**
 * What the sidebar's search costs per keystroke with many saved chats: `searchConversations` over
 * generated conversations (20 messages each, accented text), typing a query one letter at a time.
 * The first keystroke folds every conversation's text (what every keystroke cost before the folded
 * text was kept, src/conversations/search.ts); the sidebar now does that when the box gets focus.
 *   npm run bench:search [-- --chats 100,500,2000]
 * Rule: not a test; nothing here asserts a time.
 */
import { parseArgs } from 'node:util';
import { prepareSearch, searchConversations } from '../src/conversations/search';
import { addMessage, createConversation } from '../src/conversations/tree';
import type { Conversation } from '../src/conversations/types';

const { values } = parseArgs({ options: { chats: { type: 'string', default: '100,500,2000' } } });
const para = 'Décode speed is bound by memory bandwidth; prefill is bound by compute. Naïve kernels read every weight once per token. ';

function chats(n: number): Conversation[] {
  const out: Conversation[] = [];
  for (let c = 0; c < n; c++) {
    let conv = { ...createConversation(c, `c${c}`), title: `Chat ${c}` };
    let parent: string | null = null;
    for (let i = 0; i < 20; i++) {
      const id = `m${i}`;
      conv = addMessage(conv, { id, parentId: parent, role: i % 2 ? 'assistant' : 'user', content: `${c}.${i} ${para.repeat(i % 2 ? 12 : 2)}`, createdAt: i }, i);
      parent = id;
    }
    out.push(conv);
  }
  return out;
}

const time = (f: () => unknown) => {
  const t0 = performance.now();
  f();
  return performance.now() - t0;
};

console.log('| chats | text (MB) | folding every chat: before, each keystroke (ms) | each keystroke now (ms, "k" … "kernel 4") |');
console.log('|---|---|---|---|');
for (const n of values.chats!.split(',').map(Number)) {
  const convs = chats(n);
  const mb = convs.reduce((s, c) => s + c.messages.reduce((m, x) => m + x.content.length, 0), 0) / 1e6;
  const fold = time(() => prepareSearch(convs));
  const keys = ['k', 'ke', 'ker', 'kern', 'kerne', 'kernel', 'kernel ', 'kernel 4'].map((q) => time(() => searchConversations(convs, q)));
  console.log(`| ${n} | ${mb.toFixed(1)} | ${fold.toFixed(0)} | ${keys.map((t) => t.toFixed(1)).join(' / ')} |`);
}
