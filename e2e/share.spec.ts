import { deflateRawSync } from 'node:zlib';
import { expect, test, type Page } from '@playwright/test';

// Share links, end to end in the production build: `?model=&prompt=` fills the composer and
// never sends; "Share conversation" packs the selected branch into `#share=`; the link opens
// read-only and "Continue this chat" makes a new conversation; hostile links show an error and
// run nothing.

const NOW = 1_760_000_000_000;
const HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>';

function conversation(id: string, title: string, texts: string[]) {
  const messages = texts.map((content, i) => ({ id: `${id}-m${i}`, parentId: i ? `${id}-m${i - 1}` : null, role: i % 2 ? 'assistant' : 'user', content, createdAt: NOW + i }));
  const activeChild: Record<string, string> = {};
  for (const m of messages) activeChild[m.parentId ?? 'root'] = m.id;
  return { id, title, createdAt: NOW, updatedAt: NOW, settings: { systemPrompt: 'You are a helpful assistant.', temperature: 0.7, topK: 40, topP: 0.9, repetitionPenalty: 1.1, seed: 42, maxNewTokens: 512 }, messages, activeChild };
}

const exportFile = (conversations: unknown[]) => JSON.stringify({ format: 'phi3-webgpu-chat/conversations', version: 1, exportedAt: NOW, conversations });
const b64url = (b: Buffer) => b.toString('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

async function importJson(page: Page, json: string) {
  await page.getByLabel('Import conversations from a JSON file').setInputFiles({ name: 'c.json', mimeType: 'application/json', buffer: Buffer.from(json) });
  await expect(page.getByText(/Imported 1 conversation/)).toBeVisible();
}

/** Fails the test if any dialog opens (an executed payload would typically alert). */
function watchForDialogs(page: Page): string[] {
  const dialogs: string[] = [];
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  return dialogs;
}

test('?model= and ?prompt= select the model and fill the composer without sending', async ({ page }) => {
  await page.goto('./?model=phi-3-mini-4k-q4&prompt=' + encodeURIComponent('Explain WebGPU in one line.\nThen stop.'));
  await expect(page.getByRole('textbox', { name: 'Message' })).toHaveValue('Explain WebGPU in one line.\nThen stop.');
  await expect(page.locator('.model-panel select').first()).toHaveValue('phi-3-mini-4k-q4');
  await page.waitForTimeout(1000);
  await expect(page.getByTestId('message-user')).toHaveCount(0);
  // The draft is used once: it leaves the address bar, the model stays.
  expect(new URL(page.url()).searchParams.get('prompt')).toBeNull();
  expect(new URL(page.url()).searchParams.get('model')).toBe('phi-3-mini-4k-q4');
});

test('"Share conversation" puts the selected branch in the fragment; the link opens read-only and continues as a new chat', async ({ context, page }) => {
  const dialogs = watchForDialogs(page);
  await page.goto('./');
  await importJson(page, exportFile([conversation('c1', 'Hostile but harmless', ['What does this do? ' + HOSTILE, 'It is **inert** text: ' + HOSTILE + ' [link](javascript:alert(3))'])]));
  await page.getByRole('button', { name: 'Share conversation' }).click();
  const link = await page.getByTestId('share-link').inputValue();
  const url = new URL(link);
  expect(url.search).toBe('');
  expect(url.hash.startsWith('#share=')).toBe(true);
  expect(url.hash.slice(7)).toMatch(/^[A-Za-z0-9_-]+$/);
  console.log(`share link: ${link.length} characters`);

  const other = await context.newPage();
  const otherDialogs = watchForDialogs(other);
  const requests: string[] = [];
  other.on('request', (r) => requests.push(r.url()));
  await other.goto(link);
  await expect(other.getByTestId('share-readonly')).toBeVisible();
  await expect(other.getByTestId('shared-user')).toContainText('What does this do? <img src=x onerror="window.__pwned=1">');
  await expect(other.getByTestId('shared-assistant').locator('strong')).toHaveText('inert');
  await expect(other.getByTestId('shared-assistant').locator('a')).toHaveCount(0);
  await expect(other.getByRole('textbox', { name: 'Message' })).toHaveCount(0);
  expect(await other.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
  // The payload never left the page: no request carries it.
  expect(requests.filter((r) => r.includes(url.hash.slice(7, 40)))).toEqual([]);

  await other.getByRole('button', { name: 'Continue this chat' }).click();
  await expect(other.getByTestId('share-readonly')).toHaveCount(0);
  expect(new URL(other.url()).hash).toBe('');
  await expect(other.getByTestId('message-user')).toContainText('What does this do?');
  await expect(other.getByRole('textbox', { name: 'Message' })).toBeVisible();
  await expect(other.locator('.conv-list li')).toHaveCount(2);
  expect(await other.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
  expect([...dialogs, ...otherDialogs]).toEqual([]);
});

test('a conversation too long for a link gets a clear message instead of a link', async ({ page }) => {
  await page.goto('./');
  // Incompressible text: about 90 KB packs far over the 32 KB limit.
  const noise = (n: number, seed: number) => Array.from({ length: n }, (_, i) => String.fromCharCode(33 + ((i * 7919 + seed * 104729 + ((i * i) % 9973)) % 90))).join('');
  await importJson(page, exportFile([conversation('big', 'Long one', [noise(45_000, 1), noise(45_000, 2)])]));
  await page.getByRole('button', { name: 'Share conversation' }).click();
  await expect(page.getByTestId('share-too-large')).toContainText(/too long to share as a link: it packs to \d+\.\d KB and a link carries at most 32\.0 KB\. Use Export → Export JSON/);
  await expect(page.getByTestId('share-link')).toHaveCount(0);
});

const hostile: [string, string, RegExp][] = [
  ['bad base64', '%3Cscript%3Ewindow.__pwned%3D1%3C%2Fscript%3E', /not a base64url character/],
  ['bad deflate', b64url(Buffer.from('this is not deflate at all')), /not valid compressed data/],
  ['bad JSON', b64url(deflateRawSync(Buffer.from('window.__pwned=1'))), /file: is not JSON/],
  ['wrong shape', b64url(deflateRawSync(Buffer.from(JSON.stringify({ html: HOSTILE })))), /unknown field "html"/],
  ['huge', 'A'.repeat(40_000), /carries 39\.1 KB of data; links made by this app carry at most 32\.0 KB/],
  ['deflate bomb', b64url(deflateRawSync(Buffer.alloc(16 * 1024 * 1024, 0x20), { level: 9 })), /unpacks to more than 4096\.0 KB/],
];

for (const [name, payload, message] of hostile) {
  test(`a share link with ${name} shows a clear error and runs nothing`, async ({ page }) => {
    const dialogs = watchForDialogs(page);
    await page.goto(`./#share=${payload}`);
    await expect(page.getByTestId('share-error')).toContainText('This share link could not be opened.');
    await expect(page.getByTestId('share-error')).toContainText(message);
    await expect(page.getByRole('button', { name: 'Continue this chat' })).toHaveCount(0);
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(dialogs).toEqual([]);
    await page.getByRole('button', { name: 'Close' }).click();
    await expect(page.getByRole('textbox', { name: 'Message' })).toBeVisible();
  });
}
