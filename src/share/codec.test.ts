import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { addMessage, createConversation, selectedPath } from '../conversations/tree';
import { EXPORT_FORMAT, EXPORT_VERSION, type Conversation, type MessageNode } from '../conversations/types';
import { SHARE_LIMITS, ShareError, decodeShare, encodeShare, fromBase64Url, payloadFromHash, shareUrl, toBase64Url } from './codec';

const NOW = 1_760_000_000_000;

function msg(id: string, parentId: string | null, role: MessageNode['role'], content: string): MessageNode {
  return { id, parentId, role, content, createdAt: NOW };
}

/** u1 -> a1 -> u2 -> {a2, a2b (selected)}, plus an abandoned first question u0. */
function branchy(): Conversation {
  let c = createConversation(NOW, 'conv-1');
  c = { ...c, title: 'Rust vs C' };
  c = addMessage(c, msg('u0', null, 'user', 'abandoned question'), NOW);
  c = addMessage(c, msg('u1', null, 'user', 'Compare Rust and C in one line.'), NOW);
  c = addMessage(c, msg('a1', 'u1', 'assistant', 'Rust: safety by default; C: control by default.'), NOW);
  c = addMessage(c, msg('u2', 'a1', 'user', 'And <script>alert(1)</script>?'), NOW);
  c = addMessage(c, msg('a2', 'u2', 'assistant', 'first answer'), NOW);
  c = addMessage(c, msg('a2b', 'u2', 'assistant', 'regenerated **answer** [x](javascript:alert(1))'), NOW);
  return c;
}

const packText = (text: string) => toBase64Url(deflateRawSync(Buffer.from(text)));
const packJson = (value: unknown) => packText(JSON.stringify(value));
const file = (conversations: unknown[]) => ({ format: EXPORT_FORMAT, version: EXPORT_VERSION, exportedAt: NOW, conversations });

async function shareError(payload: string): Promise<ShareError> {
  try {
    await decodeShare(payload);
  } catch (err) {
    expect(err).toBeInstanceOf(ShareError);
    return err as ShareError;
  }
  throw new Error(`decodeShare accepted ${payload.slice(0, 40)}`);
}

describe('share codec', () => {
  it('round-trips the selected branch only, as plain data', async () => {
    const conv = branchy();
    const payload = await encodeShare(conv, NOW);
    expect(payload).toMatch(/^[A-Za-z0-9_-]+$/);
    // The payload is standard raw deflate: zlib reads what CompressionStream wrote.
    const json = JSON.parse(inflateRawSync(fromBase64Url(payload)).toString('utf8'));
    expect(json.format).toBe(EXPORT_FORMAT);
    const back = await decodeShare(payload);
    expect(back.messages.map((m) => m.id)).toEqual(['u1', 'a1', 'u2', 'a2b']);
    expect(selectedPath(back).map((m) => m.content)).toEqual(selectedPath(conv).map((m) => m.content));
    expect(back.messages[2].content).toBe('And <script>alert(1)</script>?');
    expect(back.title).toBe('Rust vs C');
    console.log(`share payload: ${payload.length} chars for ${JSON.stringify(json).length} bytes of JSON`);
  });

  it('refuses a conversation over the link size limit with a clear message', async () => {
    let c = createConversation(NOW, 'long');
    let parent: string | null = null;
    // Random text does not compress: about 60 KB of it cannot fit in 32 KB of base64url.
    const noise = (n: number) => Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => String.fromCharCode(33 + (b % 90))).join('');
    for (let i = 0; i < 20; i++) {
      const m = msg(`m${i}`, parent, i % 2 ? 'assistant' : 'user', noise(3000));
      c = addMessage(c, m, NOW);
      parent = m.id;
    }
    const err = await encodeShare(c, NOW).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShareError);
    expect((err as ShareError).code).toBe('SHARE_TOO_LARGE');
    expect((err as ShareError).message).toMatch(/too long to share as a link: it packs to \d+\.\d KB and a link carries at most 32\.0 KB/);
    // And a long but repetitive conversation still fits: the limit is on the compressed size.
    const repetitive = addMessage(createConversation(NOW, 'rep'), msg('u', null, 'user', 'la '.repeat(40_000)), NOW);
    expect((await encodeShare(repetitive, NOW)).length).toBeLessThan(SHARE_LIMITS.fragmentChars);
  });

  it('reads the payload from a hash and builds links without query or old fragment', () => {
    expect(payloadFromHash('#share=abc_-')).toBe('abc_-');
    expect(payloadFromHash('#other')).toBeNull();
    expect(payloadFromHash('')).toBeNull();
    expect(shareUrl('https://example.com/phi3/chat/?model=x&prompt=hi#share=old', 'AAA')).toBe('https://example.com/phi3/chat/#share=AAA');
  });

  it.each([
    ['an empty payload', '', /is empty/],
    ['characters outside base64url', 'abc<script>alert(1)</script>', /contains "<", which is not a base64url character/],
    ['percent-escapes', 'abc%20def', /contains "%"/],
    ['standard base64 padding', 'AAAA==', /contains "="/],
    ['an impossible length', 'AAAAA', /5 characters long/],
    ['bytes that are not deflate', toBase64Url(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x00, 0x13])), /not valid compressed data/],
    ['truncated deflate', packJson(file([])).slice(0, 10), /not valid compressed data|damaged/],
    ['deflate of invalid UTF-8', toBase64Url(deflateRawSync(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]))), /not UTF-8 text/],
    ['deflate of something that is not JSON', toBase64Url(deflateRawSync(Buffer.from('alert(document.cookie)'))), /does not hold a valid conversation: file: is not JSON/],
    ['JSON of the wrong shape', packJson({ hello: 'world' }), /does not hold a valid conversation: file: unknown field "hello"/],
    ['an export of another app', packJson({ ...file([]), format: 'evil/format' }), /this is not a Phi-3 WebGPU Chat export/],
    ['no conversation', packJson(file([])), /holds 0 conversations; a share link holds exactly one/],
    ['a message with an extra field', packJson(file([{ ...branchy(), messages: [{ ...msg('u1', null, 'user', 'hi'), onload: 'alert(1)' }], activeChild: {} }])), /unknown field "onload"/],
    ['a prototype-polluting key', packText(JSON.stringify(file([{ ...branchy(), messages: [msg('u1', null, 'user', 'hi')], activeChild: {} }])).replace('"activeChild":{}', '"activeChild":{"__proto__":"u1"}')), /activeChild\["__proto__"\]: "u1" is not a child of "__proto__"/],
  ])('rejects %s with a clear message', async (_name, payload, message) => {
    const err = await shareError(payload);
    expect(err.code).toBe('SHARE_INVALID');
    expect(err.message).toMatch(message);
  });

  it('rejects an oversized fragment before decoding it', async () => {
    const err = await shareError('A'.repeat(SHARE_LIMITS.fragmentChars + 4));
    expect(err.code).toBe('SHARE_TOO_LARGE');
    expect(err.message).toMatch(/carries 32\.0 KB of data; links made by this app carry at most 32\.0 KB/);
  });

  it('stops a deflate bomb at the decompressed size limit', async () => {
    const bomb = toBase64Url(deflateRawSync(Buffer.alloc(16 * 1024 * 1024, 0x20), { level: 9 }));
    expect(bomb.length).toBeLessThan(SHARE_LIMITS.fragmentChars);
    const err = await shareError(bomb);
    expect(err.code).toBe('SHARE_TOO_LARGE');
    expect(err.message).toMatch(/unpacks to more than 4096\.0 KB/);
  });
});
