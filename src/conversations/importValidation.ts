/**
 * Strict validation of an imported JSON file. Nothing from the file is trusted: the format tag,
 * schema version, every field's type, string and array sizes, id syntax, uniqueness and the
 * tree's consistency (parents exist, no cycles, `activeChild` points at real children) are all
 * checked, and the first problem is reported with its location, e.g.
 * `conversations[2].messages[5].parentId: "x" is not a message of this conversation.`
 * Rule: return a fresh, fully-typed copy built field by field — never the parsed object itself,
 * so unknown or extra fields can never reach the store or IndexedDB.
 */
import { validateSettings } from './settings';
import { EXPORT_FORMAT, EXPORT_VERSION, ROOT, type Conversation, type MessageNode, type ContextNote } from './types';
import type { GenerationStats, StopReason } from '../engine/types';

export const IMPORT_LIMITS = {
  fileBytes: 50 * 1024 * 1024,
  conversations: 5000,
  messagesPerConversation: 20000,
  titleChars: 200,
  messageChars: 500_000,
  errorChars: 2000,
};

const ID = /^[A-Za-z0-9_-]{1,64}$/;
const STOP_REASONS: StopReason[] = ['eos', 'max-tokens', 'aborted', 'context-full'];

export class ImportError extends Error {
  override readonly name = 'ImportError';
  readonly code = 'IMPORT_INVALID' as const;
}

type Rec = Record<string, unknown>;

function fail(where: string, problem: string): never {
  throw new ImportError(`${where}: ${problem}`);
}

function show(v: unknown): string {
  const s = typeof v === 'string' ? JSON.stringify(v) : v === undefined ? 'missing' : JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}

function obj(v: unknown, where: string, keys: string[], optional: string[] = []): Rec {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(where, `expected an object, got ${show(v)}.`);
  const rec = v as Rec;
  for (const k of Object.keys(rec)) if (!keys.includes(k) && !optional.includes(k)) fail(where, `unknown field ${show(k)}.`);
  for (const k of keys) if (!(k in rec)) fail(`${where}.${k}`, 'is missing.');
  return rec;
}

function str(v: unknown, where: string, max: number): string {
  if (typeof v !== 'string') fail(where, `expected text, got ${show(v)}.`);
  if (v.length > max) fail(where, `is ${v.length} characters; the limit is ${max}.`);
  return v;
}

function num(v: unknown, where: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) fail(where, `expected a number from ${min} to ${max}, got ${show(v)}.`);
  return v;
}

function id(v: unknown, where: string): string {
  if (typeof v !== 'string' || !ID.test(v) || v === ROOT) fail(where, `${show(v)} is not a valid id (1-64 letters, digits, "-" or "_").`);
  return v;
}

function stats(v: unknown, where: string): GenerationStats {
  const r = obj(v, where, ['promptTokens', 'newTokens', 'timeToFirstTokenMs', 'prefillTokensPerSec', 'decodeTokensPerSec', 'stopReason'], ['cachedTokens']);
  if (!STOP_REASONS.includes(r.stopReason as StopReason)) fail(`${where}.stopReason`, `expected one of ${STOP_REASONS.join(', ')}, got ${show(r.stopReason)}.`);
  return {
    promptTokens: num(r.promptTokens, `${where}.promptTokens`),
    ...(r.cachedTokens !== undefined ? { cachedTokens: num(r.cachedTokens, `${where}.cachedTokens`) } : {}),
    newTokens: num(r.newTokens, `${where}.newTokens`),
    timeToFirstTokenMs: num(r.timeToFirstTokenMs, `${where}.timeToFirstTokenMs`),
    prefillTokensPerSec: num(r.prefillTokensPerSec, `${where}.prefillTokensPerSec`),
    decodeTokensPerSec: num(r.decodeTokensPerSec, `${where}.decodeTokensPerSec`),
    stopReason: r.stopReason as StopReason,
  };
}

function contextNote(v: unknown, where: string): ContextNote {
  const r = obj(v, where, ['droppedMessages', 'promptTokens', 'contextLimit']);
  return {
    droppedMessages: num(r.droppedMessages, `${where}.droppedMessages`),
    promptTokens: num(r.promptTokens, `${where}.promptTokens`),
    contextLimit: num(r.contextLimit, `${where}.contextLimit`),
  };
}

function message(v: unknown, where: string): MessageNode {
  const r = obj(v, where, ['id', 'parentId', 'role', 'content', 'createdAt'], ['stats', 'context', 'error']);
  if (r.role !== 'user' && r.role !== 'assistant') fail(`${where}.role`, `expected "user" or "assistant", got ${show(r.role)}.`);
  const m: MessageNode = {
    id: id(r.id, `${where}.id`),
    parentId: r.parentId === null ? null : id(r.parentId, `${where}.parentId`),
    role: r.role,
    content: str(r.content, `${where}.content`, IMPORT_LIMITS.messageChars),
    createdAt: num(r.createdAt, `${where}.createdAt`),
  };
  if (r.stats !== undefined) {
    if (m.role !== 'assistant') fail(`${where}.stats`, 'only assistant messages carry stats.');
    m.stats = stats(r.stats, `${where}.stats`);
  }
  if (r.context !== undefined) m.context = contextNote(r.context, `${where}.context`);
  if (r.error !== undefined) m.error = str(r.error, `${where}.error`, IMPORT_LIMITS.errorChars);
  return m;
}

function conversation(v: unknown, where: string): Conversation {
  const r = obj(v, where, ['id', 'title', 'createdAt', 'updatedAt', 'settings', 'messages', 'activeChild']);
  const settings = validateSettings(r.settings);
  if (!settings.ok) fail(`${where}.settings`, Object.values(settings.errors)[0] ?? 'invalid.');
  if (!Array.isArray(r.messages)) fail(`${where}.messages`, `expected a list, got ${show(r.messages)}.`);
  if (r.messages.length > IMPORT_LIMITS.messagesPerConversation) fail(`${where}.messages`, `has ${r.messages.length} messages; the limit is ${IMPORT_LIMITS.messagesPerConversation}.`);
  const messages = r.messages.map((m, i) => message(m, `${where}.messages[${i}]`));
  const byId = new Map<string, MessageNode>();
  messages.forEach((m, i) => {
    if (byId.has(m.id)) fail(`${where}.messages[${i}].id`, `${show(m.id)} is used twice.`);
    byId.set(m.id, m);
  });
  messages.forEach((m, i) => {
    if (m.parentId === null) return;
    const parent = byId.get(m.parentId);
    if (!parent) fail(`${where}.messages[${i}].parentId`, `${show(m.parentId)} is not a message of this conversation.`);
    if (parent.role === m.role) fail(`${where}.messages[${i}]`, m.role === 'user' ? 'a user message must follow an assistant message.' : 'an assistant message must follow a user message.');
  });
  messages.forEach((m, i) => {
    if (m.parentId === null && m.role !== 'user') fail(`${where}.messages[${i}]`, 'a conversation must start with a user message.');
    // Cycle check: walking up from any node must reach a root within messages.length steps.
    let steps = 0;
    for (let p = m.parentId; p !== null; p = byId.get(p)?.parentId ?? null) {
      if (++steps > messages.length) fail(`${where}.messages[${i}]`, 'its parents form a cycle.');
    }
  });
  const rawActive = r.activeChild;
  if (typeof rawActive !== 'object' || rawActive === null || Array.isArray(rawActive)) fail(`${where}.activeChild`, `expected an object, got ${show(rawActive)}.`);
  const active = rawActive as Rec;
  const activeChild: Record<string, string> = {};
  for (const [parent, child] of Object.entries(active)) {
    const at = `${where}.activeChild[${show(parent)}]`;
    const node = byId.get(id(child, at));
    if (!node) fail(at, `${show(child)} is not a message of this conversation.`);
    if ((node.parentId ?? ROOT) !== parent) fail(at, `${show(child)} is not a child of ${show(parent)}.`);
    activeChild[parent] = node.id;
  }
  const createdAt = num(r.createdAt, `${where}.createdAt`);
  return {
    id: id(r.id, `${where}.id`),
    title: str(r.title, `${where}.title`, IMPORT_LIMITS.titleChars),
    createdAt,
    updatedAt: num(r.updatedAt, `${where}.updatedAt`),
    settings: settings.settings,
    messages,
    activeChild,
  };
}

/**
 * Parses and validates an export file. Throws `ImportError` naming the first problem; returns
 * fresh conversation records on success.
 */
export function parseImport(text: string): Conversation[] {
  if (text.length > IMPORT_LIMITS.fileBytes) fail('file', `is ${text.length} characters; the limit is ${IMPORT_LIMITS.fileBytes}.`);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    fail('file', `is not JSON (${err instanceof Error ? err.message : String(err)}).`);
  }
  const r = obj(data, 'file', ['format', 'version', 'exportedAt', 'conversations']);
  if (r.format !== EXPORT_FORMAT) fail('format', `expected ${show(EXPORT_FORMAT)}, got ${show(r.format)}: this is not a Phi-3 WebGPU Chat export.`);
  if (r.version !== EXPORT_VERSION) fail('version', `this app reads version ${EXPORT_VERSION}, the file is version ${show(r.version)}.`);
  num(r.exportedAt, 'exportedAt');
  if (!Array.isArray(r.conversations)) fail('conversations', `expected a list, got ${show(r.conversations)}.`);
  if (r.conversations.length > IMPORT_LIMITS.conversations) fail('conversations', `has ${r.conversations.length} entries; the limit is ${IMPORT_LIMITS.conversations}.`);
  const out = r.conversations.map((c, i) => conversation(c, `conversations[${i}]`));
  const seen = new Set<string>();
  out.forEach((c, i) => {
    if (seen.has(c.id)) fail(`conversations[${i}].id`, `${show(c.id)} is used twice.`);
    seen.add(c.id);
  });
  return out;
}
