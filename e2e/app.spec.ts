/**
 * The whole app with the real engine: a generated tiny Phi-3 (2 layers, Phi-3's vocabulary and
 * chat template, random weights — so the text is gibberish but every token is real) is served by
 * the local Hub stand-in, downloaded into IndexedDB through the worker, loaded to the GPU by the
 * native engine (SwiftShader in CI) and chatted with through the UI.
 * Screenshots (desktop light, desktop dark, phone) go to $SCREENSHOT_DIR, default
 * test-results/screenshots; refresh README's pictures with SCREENSHOT_DIR=docs/screenshots.
 */
import { expect, test, type BrowserContext, type Page } from '@playwright/test';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { answers, lastAnswerPrompt } from './answers';
import { recordedPositions, recordPositions } from './layout';
import { setMaxNewTokens } from './settings';
import { serveTinyChat, TINY_MODEL } from './tiny-hub';

const MODEL = TINY_MODEL;
const SHOTS = process.env.SCREENSHOT_DIR ?? 'test-results/screenshots';

const hub = serveTinyChat('e2e-app-tiny');

const appUrl = (extra = '') => `./?hub=${encodeURIComponent(hub().url)}${extra}`;
const status = (page: Page) => page.getByTestId('model-status');
const composer = (page: Page) => page.getByRole('textbox', { name: 'Message' });
const stopButton = (page: Page) => page.getByRole('button', { name: 'Stop' });

/** Every request to the Hub (and its CDN host) fails from now on; returns the list of tries. */
async function blockHub(context: BrowserContext): Promise<string[]> {
  const hosts = [new URL(hub().url).host, new URL(hub().cdnUrl).host];
  const blocked: string[] = [];
  await context.route(
    (url) => hosts.includes(url.host),
    (route) => {
      blocked.push(route.request().url());
      return route.abort('internetdisconnected');
    },
  );
  return blocked;
}

/** Waits until the streaming answer has text, then checks it grows while the Stop button shows. */
async function expectStreaming(page: Page) {
  const last = answers(page).last();
  await expect(stopButton(page)).toBeVisible();
  await expect.poll(async () => (await last.innerText()).length, { timeout: 60_000 }).toBeGreaterThan(20);
  const a = (await last.innerText()).length;
  await expect.poll(async () => (await last.innerText()).length, { timeout: 30_000 }).toBeGreaterThan(a + 10);
  await expect(stopButton(page)).toBeVisible();
}

async function downloadAndLoad(page: Page) {
  // Pick the model by its Hub repo id, then download it; it loads to the GPU by itself.
  await page.getByRole('textbox', { name: 'Hub repo id' }).fill(MODEL);
  await page.getByRole('button', { name: 'Use repo' }).click();
  await page.getByRole('button', { name: /Download/ }).click();
  await expect(status(page)).toHaveText('Ready', { timeout: 90_000 });
  await expect(page.getByTestId('model-info')).toContainText('2 layers, hidden 128');
  // The context cache starts at 512 of the 4096 positions: an eighth of its most. f16 on every
  // GPU, SwiftShader too: 2 layers × K and V × 128 × 2 bytes a position.
  await expect(page.getByTestId('gpu-memory')).toHaveText(/^ · GPU memory: \d+\.\d MB for the model, 0\.5 MB for the context, growing with the chat up to 4\.2 MB$/);
  // SwiftShader is a CPU: the app keeps the default decode kernels there instead of measuring them.
  await expect(page.getByTestId('decode-tuning')).toHaveText(' · kernels: defaults');
  await expect(page.getByTestId('decode-tuning')).toHaveAttribute('data-source', 'skipped');
}

test('pick → download → Ready → streamed answer → stop → continue → regenerate → edit; a reload loads from cache offline', async ({ context, page }) => {
  await page.goto(appUrl());
  await downloadAndLoad(page);

  await page.getByRole('button', { name: 'New chat' }).click();
  await setMaxNewTokens(page, 4000);
  await composer(page).fill('Tell me a long story about GPUs.');
  await composer(page).press('Enter');
  await expectStreaming(page);
  // The context meter follows the answer as it streams: the prompt, then each token written.
  const meterTokens = async () => Number(/^(\d+) \//.exec(await page.getByTestId('context-meter-text').innerText())?.[1]);
  await expect.poll(meterTokens).toBeGreaterThan(10);
  const early = await meterTokens();
  await expect.poll(meterTokens).toBeGreaterThan(early);
  await stopButton(page).click();
  await expect(stopButton(page)).toHaveCount(0);
  await expect(answers(page).last().getByTestId('message-stats')).toContainText('stopped');
  const answerText = () => answers(page).last().locator('.markdown, .plain-text').first().innerText();
  const firstAnswer = await answerText();
  expect(firstAnswer.length).toBeGreaterThan(20);
  const firstPrompt = (await lastAnswerPrompt(page)).prompt;

  // Continue: the stopped answer goes on in place, from its text so far (no second version).
  await answers(page).last().getByRole('button', { name: 'Continue' }).click();
  await expect(composer(page)).toBeFocused();
  await expectStreaming(page);
  await stopButton(page).click();
  await expect(stopButton(page)).toHaveCount(0);
  await expect(answers(page)).toHaveCount(1);
  await expect(page.getByRole('group', { name: 'Answer versions' })).toHaveCount(0);
  const continued = await answerText();
  expect(continued.length).toBeGreaterThan(firstAnswer.length + 10);
  expect(continued.slice(0, 20)).toBe(firstAnswer.slice(0, 20));
  // The model saw the answer so far: the continuation's prompt holds it, as the ids it wrote,
  // which the KV cache still held: only the last one is run again.
  const continuedPrompt = await lastAnswerPrompt(page);
  expect(continuedPrompt.prompt).toBeGreaterThan(firstPrompt + 5);
  expect(continuedPrompt.cached).toBe(continuedPrompt.prompt - 1);

  // Regenerate: a second answer beside the first, as a branch, and a new one (its own seed).
  await answers(page).last().getByRole('button', { name: 'Regenerate' }).click();
  await expectStreaming(page);
  await stopButton(page).click();
  await expect(stopButton(page)).toHaveCount(0);
  await expect(page.getByRole('group', { name: 'Answer versions' })).toContainText('2 / 2');
  expect((await answerText()).slice(0, 20)).not.toBe(continued.slice(0, 20));

  mkdirSync(SHOTS, { recursive: true });
  await page.emulateMedia({ colorScheme: 'light', reducedMotion: 'reduce' });
  await page.screenshot({ path: path.join(SHOTS, 'desktop-light.png') });
  await page.emulateMedia({ colorScheme: 'dark', reducedMotion: 'reduce' });
  await page.screenshot({ path: path.join(SHOTS, 'desktop-dark.png') });
  await page.emulateMedia({ colorScheme: 'light', reducedMotion: 'no-preference' });

  // Edit the question: a new question branch with its own streamed answer.
  await page.getByTestId('message-user').last().getByRole('button', { name: 'Edit' }).click();
  await page.getByRole('textbox', { name: 'Edit message' }).fill('Tell me a short story about shaders.');
  await page.getByRole('button', { name: 'Send edit' }).click();
  await expectStreaming(page);
  await stopButton(page).click();
  await expect(stopButton(page)).toHaveCount(0);
  await expect(page.getByRole('group', { name: 'Question versions' })).toContainText('2 / 2');
  await expect(page.getByTestId('message-user').last()).toContainText('short story about shaders');
  // Versions by keyboard: each version is another message, yet focus stays on the arrows (the
  // other one, where the pressed one is at its end).
  await page.getByRole('button', { name: 'Previous question version' }).focus();
  await page.keyboard.press('Enter');
  await expect(page.getByRole('group', { name: 'Question versions' })).toContainText('1 / 2');
  await expect(page.getByRole('button', { name: 'Next question version' })).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(page.getByRole('group', { name: 'Question versions' })).toContainText('2 / 2');
  await expect(page.getByRole('button', { name: 'Previous question version' })).toBeFocused();
  // A cancelled edit gives focus back to Edit.
  await page.getByTestId('message-user').last().getByRole('button', { name: 'Edit' }).click();
  await expect(page.getByRole('textbox', { name: 'Edit message' })).toBeFocused();
  await page.keyboard.press('Escape');
  await expect(page.getByTestId('message-user').last().getByRole('button', { name: 'Edit' })).toBeFocused();

  // A reload with the Hub unreachable: the conversation is kept and the model loads from IndexedDB.
  const blocked = await blockHub(context);
  await page.reload();
  await expect(status(page)).toHaveText('Ready', { timeout: 90_000 });
  await expect(page.getByTestId('message-user').last()).toContainText('short story about shaders');
  await expect(answers(page)).toHaveCount(1);
  // The meter knows the loaded model's limit before this session's first answer.
  await expect(page.getByTestId('context-meter-text')).toHaveText(/^\d+ \/ 4096 tokens$/);
  await setMaxNewTokens(page, 16);
  // The model reads the reopened chat ahead, so the next answer runs only the new message.
  const meter = page.locator('.context-meter');
  await expect(meter).toHaveAttribute('data-prepared-tokens', /^\d+$/, { timeout: 60_000 });
  const prepared = Number(await meter.getAttribute('data-prepared-tokens'));
  await expect(meter).toHaveAttribute('title', new RegExp(`already read this chat \\(${prepared} tokens\\)`));
  const before = await answers(page).count();
  await composer(page).fill('And one more, please.');
  await composer(page).press('Enter');
  // Its own answer: the reopened chat's last one has stats too.
  await expect(answers(page)).toHaveCount(before + 1);
  await expect(answers(page).last().getByTestId('message-stats')).toContainText(/hit the max new tokens|finished/, { timeout: 60_000 });
  const reopened = await lastAnswerPrompt(page);
  console.log(`reopened chat: ${prepared} tokens read ahead; the answer's prompt ${reopened.prompt}, ${reopened.cached} cached`);
  expect(reopened.cached).toBe(prepared);
  expect(reopened.prompt - reopened.cached).toBeLessThan(20);

  // Turned off, reading ahead stays off after a reload: the reopened chat is not read.
  const readAhead = page.getByRole('checkbox', { name: /Read the open chat ahead/ });
  await expect(readAhead).toBeChecked();
  await readAhead.uncheck();
  await page.reload();
  await expect(status(page)).toHaveText('Ready', { timeout: 90_000 });
  await expect(readAhead).not.toBeChecked();
  await expect(page.getByTestId('context-meter-text')).toHaveText(/^\d+ \/ 4096 tokens$/);
  await page.waitForTimeout(2_000); // four times the read-ahead delay
  await expect(meter).not.toHaveAttribute('data-prepared-tokens');
  expect(blocked).toEqual([]);
});

test('the first load on a GPU is ready at once and measures its kernels in the background, answering meanwhile, and its attention once a chat is long; a reload takes the stored choices', async ({ page }) => {
  // SwiftShader is no GPU, so the app would skip this: ?autotune=always measures anyway.
  await page.goto(appUrl('&autotune=always'));
  await page.getByRole('textbox', { name: 'Hub repo id' }).fill(MODEL);
  await page.getByRole('button', { name: 'Use repo' }).click();
  await page.getByRole('button', { name: /Download/ }).click();
  await expect(status(page)).toHaveText('Ready', { timeout: 90_000 });
  const tuning = page.getByTestId('decode-tuning');
  await expect(tuning).toHaveAttribute('data-source', 'measuring');
  await expect(tuning).toHaveText(/^ · kernels: defaults while this GPU's are measured in the background \(\d+ of \d+\), first load only$/);
  // A message sent now is answered between two measurements.
  await page.getByRole('button', { name: 'New chat' }).click();
  await setMaxNewTokens(page, 16);
  await composer(page).fill('Hello there.');
  await composer(page).press('Enter');
  await expect(answers(page).last().getByTestId('message-stats')).toBeVisible({ timeout: 60_000 });
  await expect(tuning).toHaveAttribute('data-source', 'measured', { timeout: 120_000 });
  await expect(tuning).toHaveText(/^ · decode kernels: .+; prefill: .+ \(measured on this GPU\)$/);
  const timings = JSON.parse((await page.getByTestId('model-info').getAttribute('data-load-timings'))!);
  console.log(`autotune in the app: ${(await tuning.innerText()).trim()}; load timings ${JSON.stringify(timings)}`);

  // Attention waits for a long chat, then is measured once at its context, in the background too.
  const attention = page.getByTestId('attention-tuning');
  await expect(attention).toHaveAttribute('data-source', 'waiting');
  await expect(attention).toHaveText(' · attention: defaults until a chat reaches 2,048 tokens, then measured once on this GPU');
  await setMaxNewTokens(page, 4);
  // About 2,100 tokens (the long-prompt test's words: 880 make about 2,500).
  await composer(page).fill(Array.from({ length: 740 }, (_, i) => `word${i % 50}`).join(' '));
  await composer(page).press('Enter');
  await expect(answers(page)).toHaveCount(2);
  await expect(answers(page).last().getByTestId('message-stats')).toBeVisible({ timeout: 120_000 });
  await expect(attention).toHaveAttribute('data-source', 'measured', { timeout: 180_000 });
  await expect(attention).toHaveText(/^ · attention: .+; prefill: .+ \(measured on this GPU at 2,\d{3} tokens of context\)$/);
  console.log(`attention autotune in the app: ${(await attention.innerText()).trim()}`);
  // The chat kept its cache through the measurement: the next answer reads only its new message.
  const before = await answers(page).count();
  await composer(page).fill('And then?');
  await composer(page).press('Enter');
  // Its own answer, not the one before it (whose stats are already there).
  await expect(answers(page)).toHaveCount(before + 1);
  await expect(answers(page).last().getByTestId('message-stats')).toContainText(/\(\d+ cached\)/, { timeout: 60_000 });
  const after = await lastAnswerPrompt(page);
  expect(after.prompt - after.cached).toBeLessThan(20);

  await page.reload();
  await expect(status(page)).toHaveText('Ready', { timeout: 90_000 });
  await expect(tuning).toHaveAttribute('data-source', 'stored');
  await expect(tuning).toContainText('(measured on this GPU at an earlier load)');
  await expect(attention).toHaveAttribute('data-source', 'stored');
  await expect(attention).toContainText(/tokens of context, at an earlier load\)$/);
});

test('a reload mid-answer keeps the text so far, says it was cut off, and Continue finishes it', async ({ page }) => {
  await page.goto(appUrl(`&model=${encodeURIComponent(MODEL)}`));
  await page.getByRole('button', { name: /Download/ }).click();
  await expect(status(page)).toHaveText('Ready', { timeout: 90_000 });
  await setMaxNewTokens(page, 400);
  await composer(page).fill('Tell me a long story about GPUs.');
  await composer(page).press('Enter');
  await expectStreaming(page);
  // The answer is saved every 2 s while it streams; the reload comes after at least one save.
  await page.waitForTimeout(2500);
  await expect(stopButton(page)).toBeVisible();
  await page.reload();

  await expect(status(page)).toHaveText('Ready', { timeout: 90_000 });
  const answer = answers(page).last();
  await expect(answer.getByRole('alert')).toHaveText('This answer was cut off: the page closed or reloaded while it was being written. Continue writes the rest.');
  const kept = (await answer.locator('.answer-text').innerText()).trim();
  expect(kept.length).toBeGreaterThan(20);
  await setMaxNewTokens(page, 12);
  await answer.getByRole('button', { name: 'Continue' }).click();
  await expect(answers(page).last().getByTestId('message-stats')).toBeVisible({ timeout: 60_000 });
  // The same answer, longer, and no longer cut off.
  await expect(answers(page)).toHaveCount(1);
  await expect(answers(page).last().getByRole('alert')).toHaveCount(0);
  expect((await answers(page).last().locator('.answer-text').innerText()).trim().length).toBeGreaterThan(kept.length);
});

test('another tab shows an answer written elsewhere as such, not as cut off, until it ends there or its tab closes', async ({ context }) => {
  const url = appUrl(`&model=${encodeURIComponent(MODEL)}`);
  const a = await context.newPage();
  await a.goto(url);
  await a.getByRole('button', { name: /Download/ }).click();
  await expect(status(a)).toHaveText('Ready', { timeout: 90_000 });
  await setMaxNewTokens(a, 4000);
  await composer(a).fill('Tell me a long story about GPUs.');
  await composer(a).press('Enter');
  await expectStreaming(a);

  // Tab B opens the chat while A writes: the saves it reads carry the cut-off note, which B must not show.
  const b = await context.newPage();
  await b.goto(url);
  const inB = answers(b).last();
  await expect(inB.getByTestId('written-elsewhere')).toHaveText('Another tab is writing this answer; it shows here as it goes, every few seconds.', { timeout: 30_000 });
  await expect(inB.getByRole('alert')).toHaveCount(0);
  await expect(inB.getByRole('button', { name: 'Continue' })).toHaveCount(0);
  await expect(inB.getByRole('button', { name: 'Regenerate' })).toHaveCount(0);

  // A stops: B shows the finished answer, with its stats and its actions.
  await stopButton(a).click();
  await expect(inB.getByTestId('message-stats')).toContainText('stopped', { timeout: 30_000 });
  await expect(inB.getByTestId('written-elsewhere')).toHaveCount(0);
  await expect(inB.getByRole('alert')).toHaveCount(0);
  await expect(inB.locator('.answer-text')).toHaveText((await answers(a).last().locator('.answer-text').innerText()).trim());

  // A continues it and closes mid-answer: the answer was cut off, and B says so and offers Continue.
  await answers(a).last().getByRole('button', { name: 'Continue' }).click();
  await expectStreaming(a);
  await expect(inB.getByTestId('written-elsewhere')).toBeVisible({ timeout: 30_000 });
  await a.close();
  await expect(inB.getByRole('alert')).toHaveText('This answer was cut off: the page closed or reloaded while it was being written. Continue writes the rest.', { timeout: 30_000 });
  await expect(inB.getByTestId('written-elsewhere')).toHaveCount(0);
  await expect(inB.getByRole('button', { name: 'Continue' })).toBeVisible();
});

test('a long prompt says how far it has been read, and Stop stops it between chunks', async ({ page }) => {
  await page.goto(appUrl(`&model=${encodeURIComponent(MODEL)}`));
  await page.getByRole('button', { name: /Download/ }).click();
  await expect(status(page)).toHaveText('Ready', { timeout: 90_000 });
  // About 2,500 tokens: five prefill chunks of 512 (about 2 s each on SwiftShader).
  await composer(page).fill(Array.from({ length: 880 }, (_, i) => `word${i % 50}`).join(' '));
  await composer(page).press('Enter');
  const progress = answers(page).last().getByTestId('prefill-progress');
  await expect(progress).toHaveText(/^Reading the prompt: 512 of 2,\d{3} tokens…$/, { timeout: 60_000 });
  await stopButton(page).click();
  await expect(answers(page).last()).toContainText('No answer: it was stopped before the first token.', { timeout: 30_000 });
  await expect(progress).toHaveCount(0);
  // The chunks that ran (and what reading ahead added since) stay in the cache: Regenerate reads on from them.
  await setMaxNewTokens(page, 4);
  await answers(page).last().getByRole('button', { name: 'Regenerate' }).click();
  await expect(answers(page).last().getByTestId('message-stats')).toContainText(/\(\d+ cached\)/, { timeout: 120_000 });
});

test('keyboard only: Enter sends, Esc stops', async ({ page }) => {
  await page.goto(appUrl(`&model=${encodeURIComponent(MODEL)}`));
  await page.getByRole('button', { name: /Download/ }).focus();
  await page.keyboard.press('Enter');
  await expect(status(page)).toHaveText('Ready', { timeout: 90_000 });
  // Download, then Pause and Cancel, went away under the focus: it stayed in the model panel.
  await expect(page.getByRole('region', { name: 'Model panel' }).locator(':focus')).toHaveCount(1);

  await composer(page).focus();
  await page.keyboard.type('Hello from the keyboard');
  await page.keyboard.press('Enter');
  await expect(page.getByTestId('message-user').last()).toContainText('Hello from the keyboard');
  // Wait for streamed model text (not the pending placeholder); the default max new tokens
  // (a few hundred) leaves time to stop it mid-answer.
  await expectStreaming(page);
  await page.keyboard.press('Escape');
  await expect(stopButton(page)).toHaveCount(0);
  await expect(answers(page).last().getByTestId('message-stats')).toContainText(/stopped|finished|hit the max new tokens/);
  await expect(composer(page)).toBeFocused();
});

test('a message sent while the model downloads waits for it, says so, and is answered once it is ready', async ({ page }) => {
  hub().setFaults({ bytesPerSec: 4_000_000 }); // about 5 s for the tiny model's 21.6 MB
  await page.goto(appUrl(`&model=${encodeURIComponent(MODEL)}`));
  await setMaxNewTokens(page, 12);
  await page.getByRole('button', { name: /Download/ }).click();
  await expect(status(page)).toContainText('Downloading');
  await composer(page).fill('Are you there yet?');
  await composer(page).press('Enter');
  await expect(answers(page).last()).toContainText(/Waiting for the model to download \(\d+%\) and load/);
  // What a screen reader hears meanwhile, and at the end the answer itself.
  const announcement = page.getByTestId('answer-announcement');
  await expect(announcement).toHaveText('The answer starts once the model is ready.');
  await expect(answers(page).last()).toContainText('Waiting for the model to load to the GPU', { timeout: 60_000 });
  await expect(status(page)).toHaveText('Ready', { timeout: 90_000 });
  await expect(answers(page).last().getByTestId('message-stats')).toContainText(/\d+ new tokens/, { timeout: 60_000 });
  await expect(announcement).toHaveText(/^Phi-3: \S/);
  await expect(answers(page).last().locator('.error')).toHaveCount(0);
  await expect(answers(page)).toHaveCount(1);
});

test('a second tab does not load a second copy of the model; it loads once the first tab closes, or at once with Load here too', async ({ context }) => {
  const url = appUrl(`&model=${encodeURIComponent(MODEL)}`);
  const a = await context.newPage();
  await a.goto(url);
  await a.getByRole('button', { name: /Download/ }).click();
  await expect(status(a)).toHaveText('Ready', { timeout: 90_000 });

  const b = await context.newPage();
  await b.goto(url);
  await expect(status(b)).toHaveText('On the GPU in another tab');
  await expect(b.getByTestId('model-in-other-tab')).toContainText('this tab does not load a second copy');
  await expect(b.getByRole('button', { name: 'Load here too' })).toBeVisible();
  // A message sent here says where the model is and what to do, not "download one".
  await composer(b).fill('Is the model here?');
  await composer(b).press('Enter');
  await expect(answers(b).last().getByRole('alert')).toContainText('The model is on the GPU in another tab of this app');
  await a.close();
  await expect(status(b)).toHaveText('Ready', { timeout: 90_000 });
  await setMaxNewTokens(b, 6);
  await answers(b).last().getByRole('button', { name: 'Regenerate' }).click();
  await expect(answers(b).last().getByTestId('message-stats')).toContainText('new tokens', { timeout: 60_000 });

  const c = await context.newPage();
  await c.goto(url);
  await expect(status(c)).toHaveText('On the GPU in another tab');
  await c.getByRole('button', { name: 'Load here too' }).click();
  await expect(status(c)).toHaveText('Ready', { timeout: 90_000 });
});

test('the model panel holds still while the page starts: the Download button appears once and never moves', async ({ page }) => {
  await recordPositions(page, '[aria-label="Model panel"] button', 'Download');
  await page.goto(appUrl(`&model=${encodeURIComponent(MODEL)}`));
  // Everything that arrives by itself has arrived and gone: the WebGPU answer, the cache list, and
  // the "Ready to work offline" notice of a first visit (shown for 6 s).
  await expect(page.getByTestId('adapter-name')).toBeVisible({ timeout: 30_000 });
  await expect(status(page)).toHaveText('Not downloaded');
  await expect(page.getByTestId('pwa-notice')).toContainText('Ready to work offline', { timeout: 30_000 });
  await expect(page.getByTestId('pwa-notice')).toHaveCount(0, { timeout: 15_000 });
  const at = await recordedPositions(page);
  // Absent while the cache is checked, then in one place for good.
  expect(at).toHaveLength(2);
  expect(at[0]).toBeNull();
  expect(at[1]).toMatch(/^\d+,\d+ \d+x\d+$/);
  // The empty chat points at it; on a desktop the column is in view, so its button gets the focus.
  await page.getByTestId('model-hint').getByRole('button', { name: 'Open the model panel' }).click();
  await expect(page.getByRole('button', { name: /^Download / })).toBeFocused();
});

test('a lost GPU device: the model reloads from IndexedDB without the network and chats again', async ({ context, page }) => {
  await page.goto(appUrl(`&model=${encodeURIComponent(MODEL)}&test-hooks`));
  await page.getByRole('button', { name: /Download/ }).click();
  await expect(status(page)).toHaveText('Ready', { timeout: 90_000 });
  const blocked = await blockHub(context);

  await page.evaluate(() => (globalThis as unknown as { phi3TestHooks: { loseDevice(): Promise<void> } }).phi3TestHooks.loseDevice());
  await expect(page.getByTestId('device-lost')).toContainText('GPU device was lost');
  await expect(status(page)).toHaveText('Ready', { timeout: 90_000 });
  await expect(page.getByTestId('device-lost')).toHaveCount(0);

  await setMaxNewTokens(page, 24);
  await composer(page).fill('Still there?');
  await composer(page).press('Enter');
  await expect(answers(page).last().getByTestId('message-stats')).toContainText(/hit the max new tokens|finished/, { timeout: 90_000 });
  await expect(answers(page).last().getByRole('alert')).toHaveCount(0);
  expect(blocked).toEqual([]);
});

test('the engine switch: the same cached model answers on onnxruntime-web', async ({ page }) => {
  await page.goto(appUrl(`&model=${encodeURIComponent(MODEL)}`));
  await page.getByRole('button', { name: /Download/ }).click();
  await expect(status(page)).toHaveText('Ready', { timeout: 90_000 });
  await page.getByRole('combobox', { name: 'Engine' }).selectOption('ort');
  await expect(status(page)).toHaveText('Ready', { timeout: 90_000 });
  await expect(page.getByRole('combobox', { name: 'Engine' })).toHaveValue('ort');
  await setMaxNewTokens(page, 8);
  await composer(page).fill('Hello, onnxruntime');
  await composer(page).press('Enter');
  await expect(answers(page).last().getByTestId('message-stats')).toContainText(/8 new tokens|finished/, { timeout: 90_000 });
  await expect(answers(page).last().getByRole('alert')).toHaveCount(0);
});

test.describe('phone', () => {
  test.use({ viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true });

  test('a first visit on a phone: the empty chat says to download the model first and opens the drawer at its button', async ({ page }) => {
    await page.goto(appUrl(`&model=${encodeURIComponent(MODEL)}`));
    const hint = page.getByTestId('model-hint');
    await expect(hint).toContainText(`To chat, first download ${MODEL} in the model panel.`);
    await hint.getByRole('button', { name: 'Open the model panel' }).click();
    await expect(page.getByRole('button', { name: 'Model', exact: true })).toHaveAttribute('aria-expanded', 'true');
    await expect(page.getByRole('button', { name: /^Download / })).toBeFocused();
    await page.keyboard.press('Enter');
    await page.keyboard.press('Escape');
    await expect(hint).toContainText(/Downloading .*You can chat once it has loaded\.|Loading .* to the GPU/);
    await expect(page.getByText('Ask Phi-3 anything.')).toBeVisible({ timeout: 90_000 });
    await expect(status(page)).toHaveText('Ready');
  });

  test('a phone-sized viewport: download, Ready, and a streamed answer', async ({ page }) => {
    await page.goto(appUrl(`&model=${encodeURIComponent(MODEL)}`));
    await page.getByRole('button', { name: 'Model', exact: true }).click();
    await page.getByRole('button', { name: /Download/ }).click();
    await expect(status(page)).toHaveText('Ready', { timeout: 90_000 });
    await page.keyboard.press('Escape');
    await setMaxNewTokens(page, 48);
    await composer(page).fill('Hi from a phone');
    await composer(page).press('Enter');
    await expect(answers(page).last().getByTestId('message-stats')).toBeVisible({ timeout: 60_000 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, 'phone.png') });
  });
});
