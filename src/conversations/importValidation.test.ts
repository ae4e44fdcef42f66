import { describe, expect, it } from 'vitest';
import { parseImport, ImportError } from './importValidation';
import { exportJson, exportMarkdown, exportFileName } from './exportFormats';
import { addMessage, createConversation } from './tree';
import type { Conversation } from './types';

function conv(id = 'c1'): Conversation {
  let c = createConversation(10, id);
  c = addMessage(c, { id: 'u1', parentId: null, role: 'user', content: 'Hi | there', createdAt: 11 }, 11);
  c = addMessage(
    c,
    {
      id: 'a1',
      parentId: 'u1',
      role: 'assistant',
      content: 'Hello!',
      createdAt: 12,
      stats: { promptTokens: 9, cachedTokens: 4, newTokens: 2, timeToFirstTokenMs: 50, prefillTokensPerSec: 180, decodeTokensPerSec: 20, stopReason: 'eos' },
      context: { droppedMessages: 2, promptTokens: 9, contextLimit: 4096 },
    },
    12,
  );
  c = addMessage(c, { id: 'a2', parentId: 'u1', role: 'assistant', content: 'Hey.', createdAt: 13, error: 'stopped' }, 13);
  return { ...c, title: 'Greeting' };
}

const file = (conversations: unknown, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ format: 'phi3-webgpu-chat/conversations', version: 1, exportedAt: 5, conversations, ...extra });

/** A good export with one change applied to its first conversation. */
function broken(change: (c: Record<string, unknown> & { messages: Record<string, unknown>[] }) => void): string {
  const c = JSON.parse(JSON.stringify(conv()));
  change(c);
  return file([c]);
}

describe('JSON export and import', () => {
  it('round-trips every branch, stat and setting', () => {
    const all = [conv('c1'), conv('c2')];
    expect(parseImport(exportJson(all, 99))).toEqual(all);
  });

  it('returns fresh records without extra fields', () => {
    const parsed = parseImport(file([conv()]));
    expect(Object.keys(parsed[0]).sort()).toEqual(['activeChild', 'createdAt', 'id', 'messages', 'settings', 'title', 'updatedAt']);
  });

  const cases: [string, string, string][] = [
    ['not JSON', '{"format":', 'file: is not JSON'],
    ['an array', '[]', 'file: expected an object, got []'],
    ['another format', JSON.stringify({ format: 'x', version: 1, exportedAt: 1, conversations: [] }), 'format: expected "phi3-webgpu-chat/conversations", got "x"'],
    ['a newer version', JSON.stringify({ format: 'phi3-webgpu-chat/conversations', version: 2, exportedAt: 1, conversations: [] }), 'this app reads version 1, the file is version 2'],
    ['an unknown top-level field', file([], { extra: true }), 'file: unknown field "extra"'],
    ['conversations not a list', file({}), 'conversations: expected a list, got {}'],
    ['a bad conversation id', broken((c) => (c.id = 'no spaces allowed')), 'conversations[0].id: "no spaces allowed" is not a valid id'],
    ['the reserved id', broken((c) => (c.id = 'root')), 'conversations[0].id: "root" is not a valid id'],
    ['a long title', broken((c) => (c.title = 't'.repeat(201))), 'conversations[0].title: is 201 characters; the limit is 200'],
    ['a missing field', broken((c) => delete c.updatedAt), 'conversations[0].updatedAt: is missing'],
    ['a bad setting', broken((c) => ((c.settings as Record<string, unknown>).temperature = 'hot')), 'conversations[0].settings: Temperature must be a number from 0 to 2'],
    ['a bad role', broken((c) => (c.messages[0].role = 'system')), 'conversations[0].messages[0].role: expected "user" or "assistant", got "system"'],
    ['non-text content', broken((c) => (c.messages[0].content = 42)), 'conversations[0].messages[0].content: expected text, got 42'],
    ['a duplicate message id', broken((c) => (c.messages[2].id = 'a1')), 'conversations[0].messages[2].id: "a1" is used twice'],
    ['a missing parent', broken((c) => (c.messages[1].parentId = 'ghost')), 'conversations[0].messages[1].parentId: "ghost" is not a message of this conversation'],
    ['two user messages in a row', broken((c) => (c.messages[2].role = 'user')), 'conversations[0].messages[2]: a user message must follow an assistant message'],
    ['an assistant first', broken((c) => ((c.messages = [{ ...c.messages[0], role: 'assistant' }]), (c.activeChild = {}))), 'conversations[0].messages[0]: a conversation must start with a user message'],
    ['a cycle', broken((c) => (c.messages[0].parentId = 'a1')), 'its parents form a cycle'],
    ['activeChild to a stranger', broken((c) => (c.activeChild = { u1: 'u1' })), 'conversations[0].activeChild["u1"]: "u1" is not a child of "u1"'],
    ['activeChild to nothing', broken((c) => (c.activeChild = { root: 'zz' })), '"zz" is not a message of this conversation'],
    ['stats on a user message', broken((c) => (c.messages[0].stats = c.messages[1].stats)), 'only assistant messages carry stats'],
    ['a bad stop reason', broken((c) => ((c.messages[1].stats as Record<string, unknown>).stopReason = 'bored')), 'stopReason: expected one of eos, max-tokens, aborted, context-full, got "bored"'],
    ['a bad cached count', broken((c) => ((c.messages[1].stats as Record<string, unknown>).cachedTokens = 'all')), 'cachedTokens: expected a number from 0'],
    ['a negative count', broken((c) => ((c.messages[1].stats as Record<string, unknown>).newTokens = -1)), 'newTokens: expected a number from 0'],
    ['an unknown message field', broken((c) => (c.messages[0].html = '<b>x</b>')), 'conversations[0].messages[0]: unknown field "html"'],
    ['a duplicate conversation id', file([conv('same'), conv('same')]), 'conversations[1].id: "same" is used twice'],
  ];
  for (const [what, text, message] of cases) {
    it(`rejects ${what}`, () => {
      expect(() => parseImport(text)).toThrow(ImportError);
      expect(() => parseImport(text)).toThrow(message);
    });
  }

  it('rejects files over the size limit before parsing', () => {
    expect(() => parseImport(' '.repeat(50 * 1024 * 1024 + 1))).toThrow('the limit is 52428800');
  });
});

describe('Markdown export', () => {
  it('writes the selected path with headings', () => {
    const md = exportMarkdown([conv()]);
    expect(md).toContain('# Greeting');
    expect(md).toContain('## System\n\nYou are a helpful assistant.');
    expect(md).toContain('## User\n\nHi | there\n\n## Assistant\n\nHey.\n\n> Error: stopped');
    expect(md).not.toContain('Hello!');
  });

  it('makes safe file names', () => {
    expect(exportFileName('Über <script> / notes', 'md')).toBe('uber-script-notes.md');
    expect(exportFileName('***', 'json')).toBe('conversation.json');
  });
});
