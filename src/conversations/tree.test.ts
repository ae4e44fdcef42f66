import { describe, expect, it } from 'vitest';
import { addMessage, createConversation, pathTo, selectBranch, selectedPath, siblingsOf, titleFrom } from './tree';
import { prepareSearch, searchConversations } from './search';
import type { Conversation, MessageNode } from './types';

const msg = (id: string, parentId: string | null, role: MessageNode['role'], content = id): MessageNode => ({ id, parentId, role, content, createdAt: 1 });

function sample(): Conversation {
  let c = createConversation(1, 'c1');
  for (const m of [msg('u1', null, 'user'), msg('a1', 'u1', 'assistant'), msg('a2', 'u1', 'assistant'), msg('u2', 'a2', 'user'), msg('a3', 'u2', 'assistant')]) {
    c = addMessage(c, m, 2);
  }
  return c;
}

describe('conversation tree', () => {
  it('follows the newest selection down the tree', () => {
    expect(selectedPath(sample()).map((m) => m.id)).toEqual(['u1', 'a2', 'u2', 'a3']);
  });

  it('flips between sibling answers and remembers the choice below each', () => {
    const c = selectBranch(sample(), 'a1');
    expect(selectedPath(c).map((m) => m.id)).toEqual(['u1', 'a1']);
    expect(siblingsOf(c, 'a1')).toMatchObject({ index: 0, siblings: [{ id: 'a1' }, { id: 'a2' }] });
    expect(selectedPath(selectBranch(c, 'a2')).map((m) => m.id)).toEqual(['u1', 'a2', 'u2', 'a3']);
  });

  it('never mutates its input', () => {
    const c = sample();
    const snapshot = structuredClone(c);
    selectBranch(c, 'a1');
    addMessage(c, msg('u3', 'a3', 'user'), 9);
    expect(c).toEqual(snapshot);
  });

  it('finds the path to any message', () => {
    expect(pathTo(sample(), 'u2').map((m) => m.id)).toEqual(['u1', 'a2', 'u2']);
  });

  it('makes short titles from the first line', () => {
    expect(titleFrom('  Hello\nworld')).toBe('Hello');
    expect(titleFrom('Explain the difference between prefill and decode in transformer inference please')).toBe('Explain the difference between prefill and…');
    expect(titleFrom('   ')).toBe('New chat');
  });

  it('titles read as plain text: no Markdown marks, no code fence', () => {
    expect(titleFrom('Write a **long** answer with a list:\n- one')).toBe('Write a long answer with a list:');
    expect(titleFrom('## Fix the `render()` bug in _main.ts_')).toBe('Fix the render() bug in main.ts');
    expect(titleFrom('```js\nconsole.log(1)\n```')).toBe('console.log(1)');
    expect(titleFrom('- [the docs](https://example.com) say *what*?')).toBe('the docs say what?');
    expect(titleFrom('> quoted\nrest')).toBe('quoted');
    // Marks that are not emphasis stay.
    expect(titleFrom('2 * 3 * 4 = snake_case_name')).toBe('2 * 3 * 4 = snake_case_name');
    expect(titleFrom('**')).toBe('New chat');
  });
});

describe('search', () => {
  it('matches titles and message text in any branch, case- and accent-insensitively', () => {
    const a = { ...sample(), id: 'a', title: 'Café notes', updatedAt: 5 };
    const b = { ...createConversation(1, 'b'), title: 'Kernels', updatedAt: 9 };
    expect(searchConversations([a, b], '').map((c) => c.id)).toEqual(['b', 'a']);
    expect(searchConversations([a, b], 'cafe').map((c) => c.id)).toEqual(['a']);
    expect(searchConversations([a, b], 'A1').map((c) => c.id)).toEqual(['a']);
    expect(searchConversations([a, b], 'kernels a1')).toEqual([]);
    expect(searchConversations([a, b], 'KERN').map((c) => c.id)).toEqual(['b']);
  });

  it('finds what a conversation says now: a changed conversation is a new object, searched afresh', () => {
    const a = { ...sample(), id: 'a', title: 'Notes', updatedAt: 5 };
    prepareSearch([a]);
    expect(searchConversations([a], 'tiling')).toEqual([]);
    const grown = addMessage(a, msg('u3', 'a3', 'user', 'What about tiling?'), 6);
    expect(searchConversations([grown], 'tiling').map((c) => c.id)).toEqual(['a']);
    const renamed = { ...grown, title: 'Tiles' };
    expect(searchConversations([renamed], 'tiles').map((c) => c.id)).toEqual(['a']);
    expect(searchConversations([a], 'tiling')).toEqual([]);
  });
});
