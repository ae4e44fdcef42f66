/**
 * The records a conversation is made of, as stored in IndexedDB and written to JSON exports.
 * A conversation is a tree of messages: regenerating an answer or editing a question adds a
 * sibling instead of overwriting, and `activeChild` records which sibling is shown at each
 * fork. Rule: these are plain serialisable records (no class instances, no Dates) — bump
 * `EXPORT_VERSION` and teach `importValidation.ts` the old shape if you change them.
 */
import type { GenerationStats, SamplingOptions } from '../engine/types';

/** Key of `activeChild` for the messages that have no parent. Never a valid message id. */
export const ROOT = 'root';

export interface ConversationSettings extends SamplingOptions {
  systemPrompt: string;
  maxNewTokens: number;
}

/** Why and how much of a conversation was left out of the prompt to fit the context. */
export interface ContextNote {
  droppedMessages: number;
  promptTokens: number;
  contextLimit: number;
}

export interface MessageNode {
  id: string;
  /** null for a first message; otherwise the id of the message this one answers or follows. */
  parentId: string | null;
  role: 'user' | 'assistant';
  content: string;
  createdAt: number;
  /** Assistant messages: the engine's figures for this answer. */
  stats?: GenerationStats;
  /** Assistant messages: present when older turns were dropped to fit the context. */
  context?: ContextNote;
  /** Assistant messages: why generation failed, in words for the user. */
  error?: string;
}

export interface Conversation {
  id: string;
  title: string;
  createdAt: number;
  updatedAt: number;
  settings: ConversationSettings;
  messages: MessageNode[];
  /** For each parent id (or `ROOT`), the child shown on the selected path. */
  activeChild: Record<string, string>;
}

/** The JSON export file. */
export const EXPORT_FORMAT = 'phi3-webgpu-chat/conversations';
export const EXPORT_VERSION = 1;

export interface ExportFile {
  format: typeof EXPORT_FORMAT;
  version: typeof EXPORT_VERSION;
  exportedAt: number;
  conversations: Conversation[];
}
