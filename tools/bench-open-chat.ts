/**
 * What opening a long conversation costs the page: the production app (built here, served by
 * Vite's preview, headless Chromium at 1280×800) imports two chats of `--pairs` questions and
 * answers (each answer a paragraph, a list, a code block and a table), then each round reloads
 * the page and times a click on the other chat's row until its title and newest answer are on
 * screen (two frames after), and counts the messages rendered:
 *   npm run bench:open-chat [-- --pairs 200 --rounds 4]
 * Rule: not a test; nothing here asserts a time.
 */
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright';
import { build, preview } from 'vite';
import { CHROMIUM_ARGS, findChromium } from './chromium.mjs';
import { median } from './bench-sample-answer';

const ROOT = resolve(import.meta.dirname, '..');
const OUT_DIR = join(ROOT, '.tmp/bench-open-chat-dist');
const { values } = parseArgs({ options: { pairs: { type: 'string', default: '200' }, rounds: { type: 'string', default: '4' } } });
const pairs = Number(values.pairs);
const rounds = Number(values.rounds);

const answer = (i: number) =>
  `Here is point ${i}, with **bold** text, a list and code.\n\n- first item about GPUs\n- second item about memory bandwidth\n- third item\n\n` +
  `\`\`\`ts\nconst tokensPerSec${i} = bandwidth / bytesPerToken;\nfor (let k = 0; k < 10; k++) console.log(k * ${i});\n\`\`\`\n\n` +
  `| phase | bound by |\n|---|---|\n| prefill | compute |\n| decode | bandwidth |\n\n` +
  'The decode step reads every weight once per token. '.repeat(12);

function chat(id: string, title: string, t0: number) {
  const messages: object[] = [];
  const activeChild: Record<string, string> = {};
  let parent: string | null = null;
  for (let i = 0; i < pairs; i++) {
    const [u, a] = [`${id}u${i}`, `${id}a${i}`];
    messages.push({ id: u, parentId: parent, role: 'user', content: `Question ${i}: why is decode bound by bandwidth?`, createdAt: t0 + 2 * i });
    messages.push({ id: a, parentId: u, role: 'assistant', content: answer(i), createdAt: t0 + 2 * i + 1 });
    activeChild[parent ?? 'root'] = u;
    activeChild[u] = a;
    parent = a;
  }
  return { id, title, createdAt: t0, updatedAt: t0 + 2 * pairs, settings: { systemPrompt: '', temperature: 0.7, topK: 40, topP: 0.9, repetitionPenalty: 1.1, maxNewTokens: 512, seed: 1 }, messages, activeChild };
}

await build({ root: ROOT, logLevel: 'warn', build: { outDir: OUT_DIR, emptyOutDir: true } });
const server = await preview({ root: ROOT, logLevel: 'warn', build: { outDir: OUT_DIR }, preview: { host: '127.0.0.1', port: 0 } });
const url = server.resolvedUrls!.local[0];
const browser = await chromium.launch({ executablePath: findChromium(), args: CHROMIUM_ARGS, headless: true });
const times: number[] = [];
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on('pageerror', (e) => console.error(`[page error] ${e.message}`));
  await page.goto(url);
  const file = { format: 'phi3-webgpu-chat/conversations', version: 1, exportedAt: 1, conversations: [chat('A', 'Long chat A', 1_000_000), chat('B', 'Long chat B', 2_000_000)] };
  await page.getByTestId('import-file').setInputFiles({ name: 'long.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(file)) });
  await page.getByTestId('import-result').waitFor();
  for (let r = 0; r < rounds; r++) {
    await page.goto(url);
    await page.waitForFunction(() => document.querySelectorAll('button.conv-open').length === 2 && document.querySelectorAll('article.message').length > 0, null, { timeout: 60_000, polling: 20 });
    await page.waitForTimeout(500);
    const current = await page.locator('.chat-title').innerText();
    const target = current === 'Long chat A' ? 'Long chat B' : 'Long chat A';
    // No named functions inside evaluate: tsx would wrap them in a helper the page lacks.
    await page.evaluate((title) => {
      const row = [...document.querySelectorAll<HTMLButtonElement>('button.conv-open')].find((b) => b.textContent?.includes(title))!;
      (window as unknown as { openAt: number }).openAt = performance.now();
      row.click();
    }, target);
    await page.waitForFunction(
      ({ title, last }) => document.querySelector('.chat-title')?.textContent === title && [...document.querySelectorAll('article.message')].some((a) => a.textContent?.includes(last)),
      { title: target, last: `Question ${pairs - 1}:` },
      { polling: 'raf', timeout: 60_000 },
    );
    const res = await page.evaluate(async () => {
      await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
      return { ms: performance.now() - (window as unknown as { openAt: number }).openAt, rendered: document.querySelectorAll('article.message').length };
    });
    times.push(res.ms);
    console.log(`[bench:open-chat] round ${r + 1}: opening a ${2 * pairs}-message chat took ${res.ms.toFixed(0)} ms, ${res.rendered} messages rendered`);
  }
} finally {
  await browser.close();
  await new Promise<void>((done) => server.httpServer.close(() => done()));
}
console.log(`[bench:open-chat] median ${median(times).toFixed(0)} ms (best ${Math.min(...times).toFixed(0)} ms) over ${rounds} rounds`);
