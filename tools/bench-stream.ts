/**
 * What showing a streamed answer costs the page at the token rates fast GPUs reach: the app's chat
 * column with ten answered questions above, an answer of `--tokens` deltas arriving from a worker
 * at each `--rates` tokens per second, handed to the store once per token (what the app did
 * before) or once per frame (`deltaBatcher` + `nextFrame` in src/store/chatSlice.ts, what it does
 * now), the two modes alternating each round, side by side in one run:
 *   npm run bench:stream [-- --rounds 2 --rates 50,150,500 --tokens 800 --out file.json]
 * Builds tools/bench-stream/ with Vite (production React), opens it in headless Chromium at
 * 1280×800, and prints per rate and mode the medians of: store updates, how long after the last
 * token was sent the page received it and showed the whole answer, frames painted per second and
 * the longest frame while it streamed. Rule: not a test; nothing here asserts a time.
 */
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright';
import { build, preview } from 'vite';
import react from '@vitejs/plugin-react';
import { CHROMIUM_ARGS, findChromium } from './chromium.mjs';
import type { StreamResult } from './bench-stream/main';
import { median, sampleAnswer as answer } from './bench-sample-answer';

const ROOT = resolve(import.meta.dirname, '..');
const PAGE_DIR = join(ROOT, 'tools/bench-stream');
const OUT_DIR = join(ROOT, '.tmp/bench-stream-page');

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '2' }, rates: { type: 'string', default: '50,150,500' }, tokens: { type: 'string', default: '800' }, out: { type: 'string' } },
});
const rounds = Number(values.rounds);
const rates = values.rates!.split(',').map(Number);
const tokens = Number(values.tokens);
const text = answer(tokens * 4);
const deltas = Array.from({ length: tokens }, (_, i) => text.slice(i * 4, i * 4 + 4));
const history = answer(1500);

await build({ configFile: false, root: PAGE_DIR, base: './', logLevel: 'warn', mode: 'production', plugins: [react()], build: { outDir: OUT_DIR, emptyOutDir: true, target: 'es2022', reportCompressedSize: false, chunkSizeWarningLimit: 4096 } });
const server = await preview({ configFile: false, root: PAGE_DIR, logLevel: 'warn', build: { outDir: OUT_DIR }, preview: { host: '127.0.0.1', port: 0 } });
const url = server.resolvedUrls!.local[0];
const browser = await chromium.launch({ executablePath: findChromium(), args: CHROMIUM_ARGS, headless: true });
type Mode = 'token' | 'frame';
const rows: Array<{ tokensPerSec: number; mode: Mode } & StreamResult> = [];
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on('pageerror', (e) => console.error(`[page error] ${e.message}`));
  await page.goto(url);
  await page.waitForFunction(() => window.__streamBench?.ready === true);
  console.log(`[bench:stream] ${rounds} rounds of ${tokens} tokens (${text.length} characters) under 10 answered questions; Chromium ${browser.version()}`);
  for (const tokensPerSec of rates) {
    const runs: Record<Mode, StreamResult[]> = { token: [], frame: [] };
    for (let r = 0; r < rounds; r++) {
      const order: Mode[] = r % 2 === 0 ? ['token', 'frame'] : ['frame', 'token'];
      for (const mode of order) {
        runs[mode].push(await page.evaluate(([h, d, rate, m]) => window.__streamBench!.run(h, d, rate, m), [history, deltas, tokensPerSec, mode] as const));
      }
    }
    for (const mode of ['token', 'frame'] as const) {
      const pick = (k: keyof StreamResult) => median(runs[mode].map((x) => x[k]));
      const row = { tokensPerSec, mode, updates: pick('updates'), receiveLagMs: pick('receiveLagMs'), shownLagMs: pick('shownLagMs'), framesPerSec: pick('framesPerSec'), longestFrameMs: pick('longestFrameMs') };
      rows.push(row);
      console.log(`[bench:stream] ${tokensPerSec} tok/s, per ${mode}: ${row.updates} updates, received ${row.receiveLagMs.toFixed(0)} ms and shown ${row.shownLagMs.toFixed(0)} ms after the last token, ${row.framesPerSec.toFixed(1)} frames/s, longest frame ${row.longestFrameMs.toFixed(0)} ms`);
    }
  }
} finally {
  await browser.close();
  await new Promise<void>((done) => server.httpServer.close(() => done()));
}

console.log('\n| tokens/s | handed on | store updates | last token received after (ms) | whole answer shown after (ms) | frames/s | longest frame (ms) |');
console.log('|---|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(`| ${r.tokensPerSec} | per ${r.mode} | ${r.updates} | ${r.receiveLagMs.toFixed(0)} | ${r.shownLagMs.toFixed(0)} | ${r.framesPerSec.toFixed(1)} | ${r.longestFrameMs.toFixed(0)} |`);
}
if (values.out) writeFileSync(values.out, JSON.stringify({ tokens, rounds, rows }, null, 2));
