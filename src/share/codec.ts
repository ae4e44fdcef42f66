/**
 * Share links. A conversation's selected branch travels inside the link's fragment
 * (`#share=<payload>`), which browsers never send to a server: payload = base64url(deflate-raw(
 * JSON export file with that one conversation)). Opening a link decodes it and validates it with
 * the same strict `parseImport` as a JSON file import.
 * Rule: a payload is hostile until `decodeShare` returns. Every step has a limit checked before
 * the next one runs (fragment length, alphabet, decompressed size, UTF-8, schema), and the result
 * is only ever data — nothing from a link is evaluated, rendered as HTML or fetched.
 */
import { parseImport } from '../conversations/importValidation';
import { selectedPath } from '../conversations/tree';
import { EXPORT_FORMAT, EXPORT_VERSION, ROOT, type Conversation, type ExportFile } from '../conversations/types';

export const SHARE_PREFIX = '#share=';

export const SHARE_LIMITS = {
  /** Characters of payload after `#share=`; links much longer than this break in chat apps and mail. */
  fragmentChars: 32 * 1024,
  /** Bytes of JSON a payload may inflate to (a deflate bomb stops here). */
  jsonBytes: 4 * 1024 * 1024,
};

export type ShareErrorCode = 'SHARE_TOO_LARGE' | 'SHARE_INVALID';

export class ShareError extends Error {
  override readonly name = 'ShareError';
  constructor(
    readonly code: ShareErrorCode,
    message: string,
  ) {
    super(message);
  }
}

const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`;

/** The conversation cut down to its selected branch: the messages shown, and only those. */
export function branchSnapshot(conv: Conversation): Conversation {
  const messages = selectedPath(conv);
  const activeChild: Record<string, string> = {};
  for (const m of messages) activeChild[m.parentId ?? ROOT] = m.id;
  return { ...conv, messages, activeChild };
}

export function toBase64Url(bytes: Uint8Array): string {
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** Strict: only the base64url alphabet, no padding, no length that base64 cannot produce. */
export function fromBase64Url(text: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) {
    const bad = text.match(/[^A-Za-z0-9_-]/)?.[0] ?? '';
    throw new ShareError('SHARE_INVALID', `The share link is damaged: it contains ${JSON.stringify(bad)}, which is not a base64url character. Ask for the link again and copy it whole.`);
  }
  if (text.length % 4 === 1) throw new ShareError('SHARE_INVALID', `The share link is damaged: its data is ${text.length} characters long, which base64url never produces (it was probably cut off). Ask for the link again.`);
  const bin = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

async function readAll(stream: ReadableStream<Uint8Array>, maxBytes: number): Promise<Uint8Array> {
  const reader = stream.getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new ShareError('SHARE_TOO_LARGE', `The share link unpacks to more than ${kb(maxBytes)}, more than any shared conversation can hold. It was not opened.`);
    }
    parts.push(value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

async function deflate(bytes: Uint8Array): Promise<Uint8Array> {
  return readAll(new Blob([bytes as BlobPart]).stream().pipeThrough(new CompressionStream('deflate-raw')), Number.MAX_SAFE_INTEGER);
}

async function inflate(bytes: Uint8Array, maxBytes: number): Promise<Uint8Array> {
  try {
    return await readAll(new Blob([bytes as BlobPart]).stream().pipeThrough(new DecompressionStream('deflate-raw')), maxBytes);
  } catch (err) {
    if (err instanceof ShareError) throw err;
    throw new ShareError('SHARE_INVALID', `The share link is damaged: its data is not valid compressed data (${err instanceof Error ? err.message : String(err)}). Ask for the link again.`);
  }
}

/**
 * The payload for `#share=`: the selected branch of `conv`. Throws `SHARE_TOO_LARGE` when the
 * compressed conversation would exceed `SHARE_LIMITS.fragmentChars`.
 */
export async function encodeShare(conv: Conversation, now: number, limit = SHARE_LIMITS.fragmentChars): Promise<string> {
  const file: ExportFile = { format: EXPORT_FORMAT, version: EXPORT_VERSION, exportedAt: now, conversations: [branchSnapshot(conv)] };
  const payload = toBase64Url(await deflate(new TextEncoder().encode(JSON.stringify(file))));
  if (payload.length > limit) {
    throw new ShareError(
      'SHARE_TOO_LARGE',
      `This conversation is too long to share as a link: it packs to ${kb(payload.length)} and a link carries at most ${kb(limit)}. Use Export → Export JSON and send the file instead, or share a shorter branch.`,
    );
  }
  return payload;
}

/** The payload in a location hash, or null when the hash is not a share link. */
export function payloadFromHash(hash: string): string | null {
  return hash.startsWith(SHARE_PREFIX) ? hash.slice(SHARE_PREFIX.length) : null;
}

/** A link to this page (no query, no other fragment) that carries `payload`. */
export function shareUrl(pageUrl: string, payload: string): string {
  const url = new URL(pageUrl);
  url.search = '';
  url.hash = '';
  return `${url.href}${SHARE_PREFIX}${payload}`;
}

/**
 * Decodes and validates a payload. Returns one conversation, freshly built by `parseImport`
 * (never the parsed object). Throws `ShareError` saying what is wrong.
 */
export async function decodeShare(payload: string): Promise<Conversation> {
  if (payload.length === 0) throw new ShareError('SHARE_INVALID', 'The share link is empty: nothing follows "#share=". Ask for the link again.');
  if (payload.length > SHARE_LIMITS.fragmentChars) {
    throw new ShareError('SHARE_TOO_LARGE', `The share link carries ${kb(payload.length)} of data; links made by this app carry at most ${kb(SHARE_LIMITS.fragmentChars)}. It was not opened.`);
  }
  const json = await inflate(fromBase64Url(payload), SHARE_LIMITS.jsonBytes);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(json);
  } catch {
    throw new ShareError('SHARE_INVALID', 'The share link is damaged: its data is not UTF-8 text. Ask for the link again.');
  }
  let conversations: Conversation[];
  try {
    conversations = parseImport(text);
  } catch (err) {
    throw new ShareError('SHARE_INVALID', `The share link does not hold a valid conversation: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (conversations.length !== 1) throw new ShareError('SHARE_INVALID', `The share link holds ${conversations.length} conversations; a share link holds exactly one.`);
  return conversations[0];
}
