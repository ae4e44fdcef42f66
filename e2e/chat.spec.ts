/**
 * The chat app without a model: conversations in IndexedDB (create, rename, search, delete,
 * reload), settings validation, import/export, keyboard-only use of the composer, and a phone
 * viewport. Generation itself is exercised by the integration spec with the real engine; here a
 * sent message gets whatever the app really answers without a loaded model (an error notice).
 * Screenshots go to $SCREENSHOT_DIR (default test-results/screenshots).
 */
import { expect, test, type Page } from '@playwright/test';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { recordedPositions, recordPositions } from './layout';

const SHOTS = process.env.SCREENSHOT_DIR ?? 'test-results/screenshots';

const conversations = (page: Page) => page.getByRole('list', { name: 'Saved conversations' });
const rowButtons = (page: Page) => conversations(page).locator('button.conv-open');
const userText = (page: Page) => page.getByTestId('message-user').locator('.user-text');
const composer = (page: Page) => page.getByRole('textbox', { name: 'Message' });

async function send(page: Page, text: string) {
  await composer(page).fill(text);
  await composer(page).press('Enter');
  await expect(userText(page).last()).toContainText(text.split('\n')[0]);
}

test('conversations: create, rename, search, delete, and they survive a reload', async ({ page }) => {
  await page.goto('./');
  await expect(page.getByRole('heading', { name: 'Phi-3 WebGPU Chat' })).toBeVisible();
  await expect(page.getByText('No conversations yet.')).toBeVisible();

  await page.getByRole('button', { name: 'New chat' }).click();
  await send(page, 'How do subgroups speed up reductions?');
  // Without a model the app says so on the answer instead of inventing one.
  await expect(page.getByTestId('message-assistant').getByRole('alert')).toBeVisible();
  await expect(rowButtons(page)).toHaveText(['How do subgroups speed up reductions?']);
  // The model column is in view on a desktop, so the line above the composer is there but hidden.
  await expect(page.getByTestId('model-strip')).toHaveCount(1);
  await expect(page.getByTestId('model-strip')).toBeHidden();

  await page.getByRole('button', { name: 'New chat' }).click();
  await send(page, 'Write a haiku about tensors');
  await page.getByRole('button', { name: 'Rename "Write a haiku about tensors"' }).click();
  const title = page.getByRole('textbox', { name: 'New title for "Write a haiku about tensors"' });
  await title.fill('   ');
  await title.press('Enter');
  await expect(page.getByRole('alert').filter({ hasText: 'A title cannot be empty.' })).toBeVisible();
  await title.fill('Poetry');
  await title.press('Enter');
  await expect(rowButtons(page)).toHaveText(['Poetry', 'How do subgroups speed up reductions?']);
  await expect(page.getByRole('button', { name: 'Poetry', exact: true })).toHaveAttribute('aria-current', 'page');

  await page.getByRole('button', { name: 'New chat' }).click();
  await send(page, 'Third one about kernels');

  // Search matches titles and message text.
  const search = page.getByRole('searchbox', { name: 'Search conversations' });
  await search.fill('tensors');
  await expect(rowButtons(page)).toHaveText(['Poetry']);
  await search.fill('SUBGROUPS');
  await expect(rowButtons(page)).toHaveText(['How do subgroups speed up reductions?']);
  await search.fill('nothing like this');
  await expect(page.getByText('No conversation matches.')).toBeVisible();
  await search.fill('');
  await expect(rowButtons(page)).toHaveCount(3);

  // Delete asks first; "Keep" keeps it.
  await page.getByRole('button', { name: 'Delete "Third one about kernels"' }).click();
  await page.getByRole('button', { name: 'Keep', exact: true }).click();
  await expect(rowButtons(page)).toHaveCount(3);
  await page.getByRole('button', { name: 'Delete "Third one about kernels"' }).click();
  await page.getByRole('button', { name: 'Delete', exact: true }).click();
  await expect(rowButtons(page)).toHaveText(['Poetry', 'How do subgroups speed up reductions?']);

  await page.reload();
  await expect(rowButtons(page)).toHaveText(['Poetry', 'How do subgroups speed up reductions?']);
  await page.getByRole('button', { name: 'How do subgroups speed up reductions?', exact: true }).click();
  await expect(userText(page)).toHaveText('How do subgroups speed up reductions?');
  const stored = await page.evaluate(
    () =>
      new Promise<string[]>((resolve, reject) => {
        const req = indexedDB.open('phi3-chat');
        req.onerror = () => reject(req.error);
        req.onsuccess = () => {
          const get = req.result.transaction('conversations').objectStore('conversations').getAll();
          get.onsuccess = () => resolve((get.result as { title: string }[]).map((c) => c.title).sort());
        };
      }),
  );
  expect(stored).toEqual(['How do subgroups speed up reductions?', 'Poetry']);
});

test('keyboard only: Tab reaches the composer, Shift+Enter adds a line, Enter sends', async ({ page }) => {
  await page.goto('./');
  await expect(page.getByRole('heading', { name: 'Phi-3 WebGPU Chat' })).toBeVisible();
  const order: string[] = [];
  for (let i = 0; i < 40; i++) {
    await page.keyboard.press('Tab');
    const name = await page.evaluate(() => {
      const el = document.activeElement as HTMLElement | null;
      return `${el?.tagName.toLowerCase()}:${el?.getAttribute('aria-label') ?? el?.textContent?.trim() ?? ''}`;
    });
    order.push(name);
    if (name === 'textarea:Message') break;
  }
  expect(order.at(-1)).toBe('textarea:Message');
  // The sidebar comes before the chat, and the chat's settings before the composer.
  expect(order.indexOf('button:New chat')).toBeLessThan(order.indexOf('button:Settings'));
  expect(order.indexOf('button:Settings')).toBeLessThan(order.length - 1);

  await page.keyboard.type('first line');
  await page.keyboard.press('Shift+Enter');
  await page.keyboard.type('second line');
  await expect(composer(page)).toHaveValue('first line\nsecond line');
  await expect(page.getByRole('button', { name: 'Send' })).toBeEnabled();
  await page.keyboard.press('Enter');
  await expect(userText(page)).toHaveText('first line\nsecond line');
  await expect(composer(page)).toHaveValue('');
  await expect(composer(page)).toBeFocused();
  // The answer has ended (no model): the button is "Send" again, never a stuck "Stop".
  await expect(page.getByRole('button', { name: 'Stop' })).toHaveCount(0);
  await expect(page.getByRole('button', { name: 'Send' })).toBeDisabled();

  // Edit-and-resend from the keyboard makes a branch with arrows.
  await page.getByRole('button', { name: 'Edit' }).focus();
  await page.keyboard.press('Enter');
  const editBox = page.getByRole('textbox', { name: 'Edit message' });
  await expect(editBox).toBeFocused();
  await page.keyboard.press('ControlOrMeta+a');
  await page.keyboard.type('edited question');
  await page.keyboard.press('Enter');
  await expect(userText(page)).toHaveText('edited question');
  await expect(page.getByTestId('branch-position').first()).toHaveText('2 / 2');
  await page.getByRole('button', { name: 'Previous question version' }).click();
  await expect(userText(page)).toHaveText('first line\nsecond line');
  await expect(page.getByTestId('branch-position').first()).toHaveText('1 / 2');
});

test('the sidebar holds still while saved conversations load: Import JSON… keeps its place', async ({ page }) => {
  await page.goto('./');
  for (const text of ['First', 'Second', 'Third']) {
    await page.getByRole('button', { name: 'New chat' }).click();
    await send(page, text);
  }
  await expect(rowButtons(page)).toHaveCount(3);
  await recordPositions(page, '.sidebar button', 'Import JSON');
  await page.reload();
  await expect(rowButtons(page)).toHaveCount(3);
  await page.evaluate(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))));
  const at = await recordedPositions(page);
  const seen = at.filter((a) => a !== null);
  // One place from its first frame on (null only before the first render).
  expect(seen.length).toBeGreaterThan(0);
  expect(at.slice(at.indexOf(seen[0]))).toEqual([seen[0]]);
});

test('settings are validated with the bad value quoted, and saved per conversation', async ({ page }) => {
  await page.goto('./');
  await page.getByRole('button', { name: 'New chat' }).click();
  await page.getByRole('button', { name: 'Settings' }).click();
  const dialog = page.getByRole('dialog', { name: 'Conversation settings' });
  await expect(dialog).toBeVisible();
  await expect(dialog.getByLabel('Temperature')).toHaveValue('0.7');
  await dialog.getByLabel('Temperature').fill('hot');
  await dialog.getByLabel('Top-p').fill('1.5');
  await dialog.getByRole('button', { name: 'Save' }).click();
  await expect(dialog.getByText('Temperature must be a number from 0 to 2 (0 is greedy; higher is more random); got "hot".')).toBeVisible();
  await expect(dialog.getByText('got "1.5".')).toBeVisible();
  await expect(dialog.getByLabel('Temperature')).toHaveAttribute('aria-invalid', 'true');
  await dialog.getByLabel('Temperature').fill('0');
  await dialog.getByLabel('Top-p').fill('0.95');
  await dialog.getByLabel('System prompt').fill('Answer in one sentence.');
  await dialog.getByRole('button', { name: 'Save' }).click();
  await expect(dialog).toBeHidden();
  await page.reload();
  await page.getByRole('button', { name: 'Settings' }).click();
  await expect(dialog.getByLabel('Temperature')).toHaveValue('0');
  await expect(dialog.getByLabel('Top-p')).toHaveValue('0.95');
  await expect(dialog.getByLabel('System prompt')).toHaveValue('Answer in one sentence.');
  await page.keyboard.press('Escape');
  await expect(dialog).toBeHidden();
});

test('settings saved for new chats start every new chat, after a reload too, until reset', async ({ page }) => {
  await page.goto('./');
  const dialog = page.getByRole('dialog', { name: 'Conversation settings' });
  // The sidebar's button; saved chats titled "New chat" have buttons of that name too.
  const newChat = () => page.locator('button.new-chat').click();
  const openSettings = async () => {
    await page.getByRole('button', { name: 'Settings' }).click();
    await expect(dialog).toBeVisible();
  };
  await newChat();
  await openSettings();
  await expect(dialog.getByText('New chats now start from the defaults.')).toBeVisible();
  await dialog.getByLabel('System prompt').fill('Answer like a pirate.');
  await dialog.getByLabel('Max new tokens').fill('64');
  const box = dialog.getByRole('checkbox', { name: 'Also use these for new chats' });
  await expect(box).not.toBeChecked();
  await box.check();
  await dialog.getByRole('button', { name: 'Save' }).click();
  await expect(dialog).toBeHidden();

  await newChat();
  await openSettings();
  await expect(dialog.getByLabel('System prompt')).toHaveValue('Answer like a pirate.');
  await expect(dialog.getByLabel('Max new tokens')).toHaveValue('64');
  await expect(dialog.getByText('New chats now start from settings you saved for them.')).toBeVisible();
  // Changed here only: the next new chat still starts from the saved ones.
  await dialog.getByLabel('System prompt').fill('Only in this chat.');
  await dialog.getByRole('button', { name: 'Save' }).click();

  await page.reload();
  await newChat();
  await openSettings();
  await expect(dialog.getByLabel('System prompt')).toHaveValue('Answer like a pirate.');
  // Reset to defaults, saved for new chats, goes back to the built-in ones.
  await dialog.getByRole('button', { name: 'Reset to defaults' }).click();
  await expect(dialog.getByLabel('System prompt')).toHaveValue('You are a helpful assistant.');
  await dialog.getByRole('checkbox', { name: 'Also use these for new chats' }).check();
  await dialog.getByRole('button', { name: 'Save' }).click();
  await newChat();
  await openSettings();
  await expect(dialog.getByLabel('Max new tokens')).toHaveValue('512');
  await expect(dialog.getByText('New chats now start from the defaults.')).toBeVisible();
});

const SAMPLE = {
  format: 'phi3-webgpu-chat/conversations',
  version: 1,
  exportedAt: 1_764_000_000_000,
  conversations: [
    {
      id: 'sample-1',
      title: 'Imported sample (not model output)',
      createdAt: 1_764_000_000_000,
      updatedAt: 1_764_000_000_000,
      settings: { systemPrompt: 'You are a helpful assistant.', temperature: 0.7, topK: 40, topP: 0.9, repetitionPenalty: 1.1, maxNewTokens: 512, seed: 42 },
      messages: [
        { id: 'u1', parentId: null, role: 'user', content: 'Compare prefill and decode, with a table and a code example.', createdAt: 1_764_000_000_001 },
        {
          id: 'a1',
          parentId: 'u1',
          role: 'assistant',
          content:
            '| phase | work | bound by |\n|---|---|---|\n| prefill | all prompt tokens at once | compute |\n| decode | one token per step | memory bandwidth |\n\n```ts\nconst tokensPerSec = bandwidth / bytesPerToken;\n```\n\nSee [the WebGPU spec](https://www.w3.org/TR/webgpu/).',
          createdAt: 1_764_000_000_002,
          stats: { promptTokens: 24, newTokens: 61, timeToFirstTokenMs: 180, prefillTokensPerSec: 410.5, decodeTokensPerSec: 38.2, stopReason: 'eos' },
        },
      ],
      activeChild: { root: 'u1', u1: 'a1' },
    },
  ],
};

/** Drops files built from `files` (name → text) on `selector`, as a browser drops them. */
async function dropFiles(page: Page, selector: string, files: Record<string, string>) {
  await page.evaluate(
    ({ selector, files }) => {
      const dt = new DataTransfer();
      for (const [name, text] of Object.entries(files)) dt.items.add(new File([text], name, { type: name.endsWith('.json') ? 'application/json' : '' }));
      const target = document.querySelector(selector)!;
      for (const type of ['dragenter', 'dragover', 'drop']) target.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
    },
    { selector, files },
  );
}

test('an export dropped on the list imports like Import JSON…; other files and bad exports change nothing and say why', async ({ page }) => {
  await page.goto('./');
  await expect(page.getByText('No conversations yet.')).toBeVisible();
  await dropFiles(page, '.conv-scroll', { 'notes.txt': 'hello' });
  await expect(page.getByTestId('import-result')).toHaveText('notes.txt is not a JSON export of conversations, so nothing was imported from it. Model files go on the model panel.');
  const bad = structuredClone(SAMPLE);
  bad.conversations[0].messages[1].parentId = 'ghost';
  const second = structuredClone(SAMPLE);
  second.conversations[0].id = 'second-import';
  second.conversations[0].title = 'Second import';
  // Each file is checked whole before anything of it is stored; the files before a bad one stay imported.
  await dropFiles(page, '.conv-scroll', { 'good.json': JSON.stringify(SAMPLE), 'bad.json': JSON.stringify(bad) });
  await expect(page.getByTestId('import-result')).toHaveText(
    'bad.json: Nothing was imported. conversations[0].messages[1].parentId: "ghost" is not a message of this conversation. (1 conversation from the files before it was imported.)',
  );
  await expect(rowButtons(page)).toHaveCount(1);
  await dropFiles(page, '.conv-scroll', { 'second.json': JSON.stringify(second) });
  await expect(page.getByTestId('import-result')).toHaveText('Imported 1 conversation.');
  await expect(rowButtons(page)).toHaveCount(2);
  await expect(rowButtons(page).filter({ hasText: 'Second import' })).toHaveCount(1);
});

test('what is typed and not sent is kept per chat, through chat switches and reloads; sending or deleting the chat forgets it', async ({ page }) => {
  await page.goto('./');
  await expect(page.getByText('No conversations yet.')).toBeVisible();
  const drafts = () => page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('phi3-chat:draft:')).length);
  // Typed before any chat exists; a reload (a discarded tab, the update prompt's Reload) keeps it.
  await composer(page).fill('A question I was still writing');
  await page.reload();
  await expect(composer(page)).toHaveValue('A question I was still writing');
  // New chat takes it along, and sending forgets it.
  await page.getByRole('button', { name: 'New chat' }).click();
  await expect(composer(page)).toHaveValue('A question I was still writing');
  await composer(page).press('Enter');
  await expect(userText(page).last()).toHaveText('A question I was still writing');
  await expect(composer(page)).toHaveValue('');
  expect(await drafts()).toBe(0);

  // Each chat keeps its own.
  await composer(page).fill('Follow-up in the first chat');
  await page.getByRole('button', { name: 'New chat' }).click();
  await expect(composer(page)).toHaveValue('');
  await send(page, 'Second chat');
  await composer(page).fill('Draft of the second chat');
  await page.getByRole('button', { name: 'A question I was still writing', exact: true }).click();
  await expect(composer(page)).toHaveValue('Follow-up in the first chat');
  await page.getByRole('button', { name: 'Second chat', exact: true }).click();
  await expect(composer(page)).toHaveValue('Draft of the second chat');
  await page.reload();
  await page.getByRole('button', { name: 'A question I was still writing', exact: true }).click();
  await expect(composer(page)).toHaveValue('Follow-up in the first chat');
  expect(await drafts()).toBe(2);

  // A deleted chat's draft goes with it.
  await page.getByRole('button', { name: 'Delete "Second chat"' }).click();
  await page.getByRole('button', { name: 'Delete', exact: true }).click();
  await expect(rowButtons(page)).toHaveText(['A question I was still writing']);
  expect(await drafts()).toBe(1);
});

test('a long chat opens on its newest 40 messages; earlier ones come 40 at a time, the one read stays in place', async ({ page }) => {
  await page.goto('./');
  const messages = [];
  const activeChild: Record<string, string> = {};
  let parent: string | null = null;
  for (let i = 0; i < 50; i++) {
    const [u, a] = [`u${i}`, `a${i}`];
    messages.push({ id: u, parentId: parent, role: 'user', content: `Question ${i}`, createdAt: 1_764_000_000_000 + 2 * i });
    messages.push({ id: a, parentId: u, role: 'assistant', content: `Answer ${i}\n\nwith a second paragraph.`, createdAt: 1_764_000_000_001 + 2 * i });
    activeChild[parent ?? 'root'] = u;
    activeChild[u] = a;
    parent = a;
  }
  const long = { ...SAMPLE, conversations: [{ ...SAMPLE.conversations[0], id: 'long', title: 'Long chat', messages, activeChild }] };
  await page.getByTestId('import-file').setInputFiles({ name: 'long.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(long)) });
  await expect(page.getByTestId('import-result')).toHaveText('Imported 1 conversation.');
  const log = page.getByRole('log', { name: 'Messages' });
  const shown = log.getByRole('article');
  await expect(shown).toHaveCount(40);
  await expect(shown.first()).toContainText('Question 30');
  await expect(shown.last()).toContainText('Answer 49');
  const earlier = log.getByRole('button', { name: /earlier messages/ });
  await expect(earlier).toHaveText('Show 40 earlier messages (60 not shown)');
  const first = shown.filter({ hasText: 'Question 30' });
  // As a reader would: scrolled up to the top of the log, where the button is.
  await earlier.scrollIntoViewIfNeeded();
  const before = (await first.boundingBox())!.y;
  await earlier.click();
  await expect(shown).toHaveCount(80);
  // The message that was first is where it was on screen; the earlier ones are above it.
  expect(Math.abs((await first.boundingBox())!.y - before)).toBeLessThan(2);
  await expect(earlier).toHaveText('Show 20 earlier messages (20 not shown)');
  await earlier.click();
  await expect(shown).toHaveCount(100);
  await expect(earlier).toHaveCount(0);
  // The button went away under the keyboard's focus: it lands on the log, not the page's start.
  await expect(log).toBeFocused();
  await expect(shown.first()).toContainText('Question 0');
});

test('import: a bad file changes nothing; a good file renders Markdown; export downloads JSON', async ({ page }) => {
  await page.goto('./');
  await expect(page.getByText('No conversations yet.')).toBeVisible();
  const settingsAt = await page.getByRole('button', { name: 'Settings' }).boundingBox();
  await page.getByRole('button', { name: 'New chat' }).click();
  await send(page, 'Keep me');
  // Export arrived with the conversation; Settings stayed where the pointer may already be.
  await expect(page.locator('.chat-header summary', { hasText: 'Export' })).toBeVisible();
  expect(await page.getByRole('button', { name: 'Settings' }).boundingBox()).toEqual(settingsAt);
  const importAt = await page.getByRole('button', { name: 'Import JSON…' }).boundingBox();
  const fileInput = page.getByTestId('import-file');
  const bad = structuredClone(SAMPLE);
  bad.conversations[0].messages[1].parentId = 'ghost';
  await fileInput.setInputFiles({ name: 'bad.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(bad)) });
  await expect(page.getByTestId('import-result')).toHaveText(
    'Nothing was imported. conversations[0].messages[1].parentId: "ghost" is not a message of this conversation.',
  );
  await expect(rowButtons(page)).toHaveText(['Keep me']);
  // The result line arrived above the sidebar's foot buttons, which stayed put.
  expect(await page.getByRole('button', { name: 'Import JSON…' }).boundingBox()).toEqual(importAt);
  await fileInput.setInputFiles({ name: 'x.json', mimeType: 'application/json', buffer: Buffer.from('{"format": "something else"') });
  await expect(page.getByTestId('import-result')).toContainText('Nothing was imported. file: is not JSON');
  await expect(rowButtons(page)).toHaveText(['Keep me']);

  await fileInput.setInputFiles({ name: 'good.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(SAMPLE)) });
  await expect(page.getByTestId('import-result')).toHaveText('Imported 1 conversation.');
  await expect(rowButtons(page)).toHaveCount(2);
  const answer = page.getByTestId('message-assistant');
  await expect(answer.getByRole('table')).toBeVisible();
  await expect(answer.getByRole('columnheader')).toHaveText(['phase', 'work', 'bound by']);
  await expect(answer.locator('pre code .hljs-keyword').first()).toHaveText('const');
  await expect(answer.getByRole('button', { name: 'Copy ts code' })).toBeVisible();
  await expect(answer.getByRole('link', { name: 'the WebGPU spec' })).toHaveAttribute('rel', 'noopener noreferrer');
  await expect(answer.getByTestId('message-stats')).toContainText('first token 180 ms');
  await expect(answer.getByTestId('message-stats')).toContainText('decode 38.2 tok/s');
  await expect(answer.getByTestId('message-stats')).toContainText('24 prompt + 61 new tokens');
  await expect(page.getByTestId('context-meter-text')).toHaveText('85 tokens (load a model to see the limit)');

  const downloading = page.waitForEvent('download');
  await page.getByText('Export', { exact: true }).click();
  await page.getByRole('button', { name: 'Export JSON' }).click();
  const download = await downloading;
  expect(download.suggestedFilename()).toBe('imported-sample-not-model-output.json');
  const { readFile } = await import('node:fs/promises');
  const exported = JSON.parse(await readFile((await download.path())!, 'utf8'));
  expect(exported.conversations).toEqual(SAMPLE.conversations);

  mkdirSync(SHOTS, { recursive: true });
  await page.emulateMedia({ colorScheme: 'light', reducedMotion: 'reduce' });
  await page.screenshot({ path: path.join(SHOTS, 'desktop-light.png') });
  await page.emulateMedia({ colorScheme: 'dark', reducedMotion: 'reduce' });
  await page.screenshot({ path: path.join(SHOTS, 'desktop-dark.png') });
});

test.describe('phone', () => {
  test.use({ viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true });

  test('a phone-sized viewport: drawers, no sideways scrolling, composer usable', async ({ page }) => {
    await page.goto('./');
    await expect(page.getByRole('heading', { name: 'Phi-3 WebGPU Chat' })).toBeVisible();
    const toggle = page.getByRole('button', { name: 'Conversations', exact: true });
    await expect(toggle).toBeVisible();
    await expect(page.getByRole('navigation', { name: 'Conversations' })).toBeHidden();
    await toggle.click();
    await expect(toggle).toHaveAttribute('aria-expanded', 'true');
    await page.getByRole('button', { name: 'New chat' }).click();
    await expect(page.getByRole('navigation', { name: 'Conversations' })).toBeHidden();
    await expect(composer(page)).toBeVisible();
    await send(page, 'Hello from a phone');
    await expect(page.getByRole('button', { name: 'Send' })).toBeVisible();
    // No model here: above the composer a line says what to do first, since the panel is a drawer.
    await expect(page.getByTestId('model-strip')).toContainText('To chat, first download');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await page.getByTestId('model-strip').getByRole('button', { name: 'Open the model panel' }).click();
    await expect(page.getByRole('button', { name: 'Model', exact: true })).toHaveAttribute('aria-expanded', 'true');
    await expect(page.getByTestId('webgpu-status')).toBeVisible();
    await page.keyboard.press('Escape');
    await expect(page.getByTestId('webgpu-status')).toBeHidden();
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, 'phone.png') });
  });
});

test('two tabs stay in step', async ({ context }) => {
  const a = await context.newPage();
  const b = await context.newPage();
  await a.goto('./');
  await b.goto('./');
  await a.getByRole('button', { name: 'New chat' }).click();
  await send(a, 'Shared between tabs');
  await expect(rowButtons(b)).toHaveText(['Shared between tabs']);
  await b.getByRole('button', { name: 'Rename "Shared between tabs"' }).click();
  await b.getByRole('textbox', { name: /^New title for/ }).fill('Renamed in tab B');
  await b.getByRole('textbox', { name: /^New title for/ }).press('Enter');
  await expect(rowButtons(a)).toHaveText(['Renamed in tab B']);
  await expect(a.locator('.chat-title')).toHaveText('Renamed in tab B');
});

test("a draft typed in one tab shows in another tab on the same chat, so typing there does not write over it", async ({ context }) => {
  const a = await context.newPage();
  const b = await context.newPage();
  await a.goto('./');
  await b.goto('./');
  await a.getByRole('button', { name: 'New chat' }).click();
  await send(a, 'Two tabs, one draft');
  await expect(rowButtons(b)).toHaveText(['Two tabs, one draft']);
  await rowButtons(b).first().click();
  await expect(userText(b)).toHaveText(['Two tabs, one draft']);
  await composer(a).fill('Half a question typed in A');
  // B has the chat open and its box not focused: it takes A's draft as it is typed.
  await expect(composer(b)).toHaveValue('Half a question typed in A');
  // Typing on in B goes on from it; A, whose box still has the focus, keeps what it shows.
  await composer(b).press('End');
  await composer(b).pressSequentially(', finished in B');
  await expect(composer(b)).toHaveValue('Half a question typed in A, finished in B');
  await expect(composer(a)).toHaveValue('Half a question typed in A');
  await a.getByRole('heading', { name: 'Phi-3 WebGPU Chat' }).click(); // A's box loses the focus
  await composer(b).press('Space');
  await expect(composer(a)).toHaveValue('Half a question typed in A, finished in B ');
  // Sent from B (no model: the answer fails, the message stays): A's box empties too.
  await composer(b).press('Enter');
  await expect(composer(a)).toHaveValue('');
  await b.reload();
  await expect(composer(b)).toHaveValue('');
});

test('a long list shows its newest 100 chats and pages through the rest; a search pages its own matches', async ({ page }) => {
  await page.goto('./');
  await expect(page.getByText('No conversations yet.')).toBeVisible();
  // 250 chats; chat i was last changed at t0 + i, so the newest is "Chat 249".
  const chat = (i: number) => ({
    ...SAMPLE.conversations[0],
    id: `c${i}`,
    title: `Chat ${i}${i % 2 ? ' odd' : ''}`,
    updatedAt: SAMPLE.conversations[0].updatedAt + i,
  });
  const file = { ...SAMPLE, conversations: [...Array(250).keys()].map(chat) };
  await page.getByTestId('import-file').setInputFiles({ name: 'many.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(file)) });
  await expect(page.getByTestId('import-result')).toHaveText('Imported 250 conversations.');
  await expect(rowButtons(page)).toHaveCount(100);
  await expect(rowButtons(page).first()).toHaveText('Chat 249 odd');
  await expect(rowButtons(page).last()).toHaveText('Chat 150');
  const more = page.getByRole('button', { name: /^Show \d+ more/ });
  await expect(more).toHaveText('Show 100 more (150 older conversations)');
  // A page start reads the 100 updated last first and the other 150 in pages after them.
  await page.reload();
  await expect(rowButtons(page)).toHaveCount(100);
  await expect(rowButtons(page).first()).toHaveText('Chat 249 odd');
  await expect(more).toHaveText('Show 100 more (150 older conversations)');
  await expect(page.getByRole('button', { name: 'Export all (JSON)' })).toBeEnabled();
  await more.click();
  await expect(rowButtons(page)).toHaveCount(200);
  await expect(more).toHaveText('Show 50 more (50 older conversations)');
  await more.click();
  await expect(rowButtons(page)).toHaveCount(250);
  await expect(rowButtons(page).last()).toHaveText('Chat 0');
  await expect(more).toHaveCount(0);
  // The button went away under the focus: it is on the first row the last page added.
  await expect(rowButtons(page).nth(200)).toBeFocused();

  // A search starts from its newest 100 matches (125 odd chats), and clearing it pages afresh.
  await page.getByRole('searchbox', { name: 'Search conversations' }).fill('odd');
  await expect(rowButtons(page)).toHaveCount(100);
  await expect(more).toHaveText('Show 25 more (25 older matches)');
  await more.click();
  await expect(rowButtons(page)).toHaveCount(125);
  await expect(rowButtons(page).last()).toHaveText('Chat 1 odd');
  await page.getByRole('searchbox', { name: 'Search conversations' }).fill('');
  await expect(rowButtons(page)).toHaveCount(100);
});
