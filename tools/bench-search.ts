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
import { benchChats } from './bench-chats';

const { values } = parseArgs({ options: { chats: { type: 'string', default: '100,500,2000' } } });
const time = (f: () => unknown) => {
  const t0 = performance.now();
  f();
  return performance.now() - t0;
};

console.log('| chats | text (MB) | folding every chat: before, each keystroke (ms) | each keystroke now (ms, "k" … "kernel 4") |');
console.log('|---|---|---|---|');
for (const n of values.chats!.split(',').map(Number)) {
  const convs = benchChats(n);
  const mb = convs.reduce((s, c) => s + c.messages.reduce((m, x) => m + x.content.length, 0), 0) / 1e6;
  const fold = time(() => prepareSearch(convs));
  const keys = ['k', 'ke', 'ker', 'kern', 'kerne', 'kernel', 'kernel ', 'kernel 4'].map((q) => time(() => searchConversations(convs, q)));
  console.log(`| ${n} | ${mb.toFixed(1)} | ${fold.toFixed(0)} | ${keys.map((t) => t.toFixed(1)).join(' / ')} |`);
}
