/**
 * Conversation search over titles and every message's text (all branches), case- and
 * accent-insensitive. Pure, so the sidebar filter and its tests share one definition.
 */
import type { Conversation } from './types';

function fold(s: string): string {
  return s.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase();
}

/** Conversations matching every word of `query`, newest first. An empty query matches all. */
export function searchConversations(conversations: Conversation[], query: string): Conversation[] {
  const words = fold(query).split(/\s+/).filter(Boolean);
  const sorted = [...conversations].sort((a, b) => b.updatedAt - a.updatedAt);
  if (words.length === 0) return sorted;
  return sorted.filter((c) => {
    const hay = fold([c.title, ...c.messages.map((m) => m.content)].join('\n'));
    return words.every((w) => hay.includes(w));
  });
}
