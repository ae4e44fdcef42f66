/**
 * Conversation search over titles and every message's text (all branches), case- and
 * accent-insensitive. Pure apart from a cache of each conversation's folded text (keyed by the
 * conversation object, which is never changed in place), so the sidebar filter and its tests share
 * one definition.
 */
import type { Conversation } from './types';

function fold(s: string): string {
  return s.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase();
}

/**
 * Each conversation's folded text, kept while the conversation object lives. Conversations are
 * never changed in place (every edit makes a new object), so an entry never goes stale; folding
 * every conversation's text again on each keystroke took 78 ms for 500 chats of 8.5 MB in Node.
 */
const folded = new WeakMap<Conversation, string>();

function haystack(c: Conversation): string {
  let hay = folded.get(c);
  if (hay === undefined) {
    hay = fold([c.title, ...c.messages.map((m) => m.content)].join('\n'));
    folded.set(c, hay);
  }
  return hay;
}

/** Folds the conversations' text ahead of a search (the sidebar does it when its box gets focus). */
export function prepareSearch(conversations: Iterable<Conversation>): void {
  for (const c of conversations) haystack(c);
}

/** Conversations matching every word of `query`, newest first. An empty query matches all. */
export function searchConversations(conversations: Conversation[], query: string): Conversation[] {
  const words = fold(query).split(/\s+/).filter(Boolean);
  const sorted = [...conversations].sort((a, b) => b.updatedAt - a.updatedAt);
  if (words.length === 0) return sorted;
  return sorted.filter((c) => {
    const hay = haystack(c);
    return words.every((w) => hay.includes(w));
  });
}
