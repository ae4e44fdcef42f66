/**
 * Pure operations on a conversation's message tree. Every function returns a new conversation
 * and never mutates its input, so the store can hand the result straight to zustand and to
 * IndexedDB. Rule: the selected path is derived from `activeChild`; never store it twice.
 */
import { ROOT, type Conversation, type ConversationSettings, type MessageNode } from './types';
import { DEFAULT_SAMPLING } from '../engine/types';

export const DEFAULT_SETTINGS: ConversationSettings = {
  systemPrompt: 'You are a helpful assistant.',
  ...DEFAULT_SAMPLING,
  maxNewTokens: 512,
};

export const DEFAULT_TITLE = 'New chat';

export function newId(): string {
  return crypto.randomUUID();
}

export function createConversation(now: number, id = newId(), settings: ConversationSettings = DEFAULT_SETTINGS): Conversation {
  return { id, title: DEFAULT_TITLE, createdAt: now, updatedAt: now, settings: { ...settings }, messages: [], activeChild: {} };
}

export function childrenOf(conv: Conversation, parentId: string | null): MessageNode[] {
  return conv.messages.filter((m) => m.parentId === parentId);
}

/** The messages on the selected path, root first. At a fork without a choice, the newest child. */
export function selectedPath(conv: Conversation): MessageNode[] {
  const path: MessageNode[] = [];
  let parent: string | null = null;
  for (;;) {
    const kids = childrenOf(conv, parent);
    if (kids.length === 0) return path;
    const chosen = kids.find((k) => k.id === conv.activeChild[parent ?? ROOT]) ?? kids[kids.length - 1];
    path.push(chosen);
    parent = chosen.id;
  }
}

/** The path from the root down to `id` (inclusive). */
export function pathTo(conv: Conversation, id: string): MessageNode[] {
  const byId = new Map(conv.messages.map((m) => [m.id, m]));
  const path: MessageNode[] = [];
  let node = byId.get(id);
  while (node) {
    path.unshift(node);
    node = node.parentId === null ? undefined : byId.get(node.parentId);
  }
  return path;
}

/** A message's siblings (itself included, oldest first) and its index among them. */
export function siblingsOf(conv: Conversation, id: string): { siblings: MessageNode[]; index: number } {
  const node = conv.messages.find((m) => m.id === id);
  if (!node) return { siblings: [], index: -1 };
  const siblings = childrenOf(conv, node.parentId);
  return { siblings, index: siblings.findIndex((s) => s.id === id) };
}

/** Adds a message under `parentId` and makes it the selected child there. */
export function addMessage(conv: Conversation, node: MessageNode, now: number): Conversation {
  return {
    ...conv,
    updatedAt: now,
    messages: [...conv.messages, node],
    activeChild: { ...conv.activeChild, [node.parentId ?? ROOT]: node.id },
  };
}

export function updateMessage(conv: Conversation, id: string, patch: Partial<Omit<MessageNode, 'id' | 'parentId' | 'role'>>, now: number): Conversation {
  return { ...conv, updatedAt: now, messages: conv.messages.map((m) => (m.id === id ? { ...m, ...patch } : m)) };
}

/** Shows the sibling `id` at its fork (the branch arrows). */
export function selectBranch(conv: Conversation, id: string): Conversation {
  const node = conv.messages.find((m) => m.id === id);
  if (!node) return conv;
  return { ...conv, activeChild: { ...conv.activeChild, [node.parentId ?? ROOT]: id } };
}

/**
 * A line as it reads once rendered: without a heading, quote or list marker, emphasis and code
 * marks, or a link's address (titles are plain text; "**Fix** `foo`" reads "Fix foo").
 */
function plainText(line: string): string {
  return line
    .replace(/^\s*(?:#{1,6}\s+|>\s*|[-*+]\s+|\d+[.)]\s+)+/, '')
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/\*\*|__|~~|`+/g, '')
    .replace(/(^|[\s(])[*_](?=\S)(.*?\S)[*_](?=$|[\s).,;:!?])/g, '$1$2')
    .replace(/\s+/g, ' ')
    .trim();
}

/**
 * A title from the first user message: its first line with text (code fences skipped), as plain
 * text, cut at a word near 48 characters.
 */
export function titleFrom(text: string): string {
  const line = text
    .split('\n')
    .filter((l) => !/^\s*(```|~~~)/.test(l))
    .map(plainText)
    .find((l) => l !== '') ?? '';
  if (line.length <= 48) return line || DEFAULT_TITLE;
  const cut = line.slice(0, 48);
  const space = cut.lastIndexOf(' ');
  return `${space > 24 ? cut.slice(0, space) : cut}…`;
}
