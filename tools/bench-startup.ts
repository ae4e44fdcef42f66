/**
 * What a page start costs with many saved chats: the production app (built here, served by Vite's
 * preview, headless Chromium at 1280×800) imports `--chats` conversations of `--pairs` questions
 * and answers (tools/bench-chats.ts, as bench:search's), then each round reloads the page and
 * reports, from navigation start: when the first conversation row is on screen, when the newest
 * chat's newest answer is, when every chat is listed (the list offers "Show 100 more"
 * past 100 chats), and the main thread's long tasks (over 50 ms) until then:
 *   npm run bench:startup [-- --chats 2000 --pairs 10 --rounds 5]
 * Rule: not a test; nothing here asserts a time.
 */
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright';
import { build, preview } from 'vite';
import { CHROMIUM_ARGS, findChromium } from './chromium.mjs';
import { median } from './bench-sample-answer';
import { benchChats } from './bench-chats';

const ROOT = resolve(import.meta.dirname, '..');
const OUT_DIR = join(ROOT, '.tmp/bench-startup-dist');
const { values } = parseArgs({ options: { chats: { type: 'string', default: '2000' }, pairs: { type: 'string', default: '10' }, rounds: { type: 'string', default: '5' } } });
const count = Number(values.chats);
const pairs = Number(values.pairs);
const rounds = Number(values.rounds);

await build({ root: ROOT, logLevel: 'warn', build: { outDir: OUT_DIR, emptyOutDir: true } });
const server = await preview({ root: ROOT, logLevel: 'warn', build: { outDir: OUT_DIR }, preview: { host: '127.0.0.1', port: 0 } });
const url = server.resolvedUrls!.local[0];
const browser = await chromium.launch({ executablePath: findChromium(), args: CHROMIUM_ARGS, headless: true });
const rows: number[] = [];
const answers: number[] = [];
const listed: number[] = [];
const blocked: number[] = [];
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on('pageerror', (e) => console.error(`[page error] ${e.message}`));
  await page.addInitScript(() => {
    const w = window as unknown as { longTasks: number[] };
    w.longTasks = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) w.longTasks.push(e.duration);
    }).observe({ type: 'longtask', buffered: true });
  });
  await page.goto(url);
  const convs = benchChats(count, pairs);
  const json = JSON.stringify({ format: 'phi3-webgpu-chat/conversations', version: 1, exportedAt: 1, conversations: convs });
  console.log(`[bench:startup] importing ${count} chats of ${2 * pairs} messages (${(json.length / 1e6).toFixed(1)} MB of JSON)`);
  await page.getByTestId('import-file').setInputFiles({ name: 'many.json', mimeType: 'application/json', buffer: Buffer.from(json) });
  await page.getByTestId('import-result').waitFor({ timeout: 300_000 });
  // The newest chat's last answer (bench-chats.ts: chat c's message i starts "c.i ").
  const newest = `${count - 1}.${2 * pairs - 1} `;
  for (let r = 0; r < rounds; r++) {
    await page.goto(url);
    await page.waitForFunction(() => document.querySelector('button.conv-open') !== null, null, { polling: 'raf', timeout: 60_000 });
    const row = await page.evaluate(() => performance.now());
    await page.waitForFunction((last) => [...document.querySelectorAll('article.message')].some((a) => a.textContent?.includes(last)), newest, { polling: 'raf', timeout: 60_000 });
    const answerAt = await page.evaluate(() => performance.now());
    // Every chat is listed once the list offers the older ones ("Show 100 more"); 100 or fewer are read at once.
    if (count > 100) await page.waitForFunction(() => document.querySelector('button.show-more') !== null, null, { polling: 'raf', timeout: 60_000 });
    const res = await page.evaluate(() => ({ at: performance.now(), long: (window as unknown as { longTasks: number[] }).longTasks }));
    rows.push(row);
    answers.push(answerAt);
    listed.push(res.at);
    blocked.push(res.long.reduce((a, b) => a + b, 0));
    console.log(`[bench:startup] round ${r + 1}: first row at ${row.toFixed(0)} ms, newest answer at ${answerAt.toFixed(0)} ms, every chat listed at ${res.at.toFixed(0)} ms; long tasks until then ${res.long.map((d) => d.toFixed(0)).join(' + ') || 'none'} ms`);
  }
} finally {
  await browser.close();
  await new Promise<void>((done) => server.httpServer.close(() => done()));
}
console.log(
  `[bench:startup] ${count} chats, medians over ${rounds} rounds: first row ${median(rows).toFixed(0)} ms, newest answer ${median(answers).toFixed(0)} ms, ` +
    `every chat listed ${median(listed).toFixed(0)} ms, long tasks ${median(blocked).toFixed(0)} ms`,
);
