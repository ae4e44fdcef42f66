/**
 * What rendering a streamed answer costs the page per token, by the answer's length: the app's
 * Markdown component, one memoised block at a time (src/ui/markdownBlocks.ts), against rendering
 * the whole text again for every token (what it did before), side by side in one run:
 *   npm run bench:markdown [-- --rounds 3 --lengths 1000,2000,4000,8000,16000 --out file.json]
 * Builds tools/bench-markdown/ with Vite (production React), opens it in headless Chromium and,
 * at each length, renders the answer so far and then times 24 renders of 4 more characters
 * (about a token each), alternating the two modes each round. Prints the median milliseconds
 * per token and the ratio. Rule: not a test; nothing here asserts a time.
 */
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright';
import { build, preview } from 'vite';
import { CHROMIUM_ARGS, findChromium } from './chromium.mjs';
import { median, sampleAnswer as answer } from './bench-sample-answer';

const ROOT = resolve(import.meta.dirname, '..');
const PAGE_DIR = join(ROOT, 'tools/bench-markdown');
const OUT_DIR = join(ROOT, '.tmp/bench-markdown-page');
const STEPS = 24;
const STEP_CHARS = 4;

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '3' }, lengths: { type: 'string', default: '1000,2000,4000,8000,16000' }, out: { type: 'string' } },
});
const rounds = Number(values.rounds);
const lengths = values.lengths!.split(',').map(Number);

await build({ configFile: false, root: PAGE_DIR, base: './', logLevel: 'warn', mode: 'production', build: { outDir: OUT_DIR, emptyOutDir: true, target: 'es2022', reportCompressedSize: false, chunkSizeWarningLimit: 4096 } });
const server = await preview({ configFile: false, root: PAGE_DIR, logLevel: 'warn', build: { outDir: OUT_DIR }, preview: { host: '127.0.0.1', port: 0 } });
const url = server.resolvedUrls!.local[0];
const browser = await chromium.launch({ executablePath: findChromium(), args: CHROMIUM_ARGS, headless: true });
const results: Array<{ chars: number; blocksMs: number; wholeMs: number; ratio: number }> = [];
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.error(`[page error] ${e.message}`));
  await page.goto(url);
  await page.waitForFunction(() => window.__markdownBench?.ready === true);
  console.log(`[bench:markdown] ${rounds} rounds, ${STEPS} renders of +${STEP_CHARS} characters at each length; Chromium ${browser.version()}`);
  for (const chars of lengths) {
    const text = answer(chars);
    const times = { blocks: [] as number[], whole: [] as number[] };
    for (let r = 0; r < rounds; r++) {
      const order: Array<'blocks' | 'whole'> = r % 2 === 0 ? ['blocks', 'whole'] : ['whole', 'blocks'];
      for (const mode of order) {
        const { ms } = await page.evaluate(([t, at, n, step, m]) => window.__markdownBench!.run(t, at, n, step, m), [text, chars, STEPS, STEP_CHARS, mode] as const);
        times[mode].push(...ms);
      }
    }
    const row = { chars, blocksMs: median(times.blocks), wholeMs: median(times.whole), ratio: median(times.whole) / median(times.blocks) };
    results.push(row);
    console.log(`[bench:markdown] ${chars} characters: ${row.blocksMs.toFixed(2)} ms per token by blocks, ${row.wholeMs.toFixed(2)} ms whole (${row.ratio.toFixed(1)}×)`);
  }
} finally {
  await browser.close();
  await new Promise<void>((done) => server.httpServer.close(() => done()));
}

console.log('\n| answer length (characters) | by blocks (ms per token) | whole text (ms per token) | whole ÷ blocks |');
console.log('|---|---|---|---|');
for (const r of results) console.log(`| ${r.chars} | ${r.blocksMs.toFixed(2)} | ${r.wholeMs.toFixed(2)} | ${r.ratio.toFixed(1)}× |`);
if (values.out) writeFileSync(values.out, JSON.stringify({ steps: STEPS, stepChars: STEP_CHARS, rounds, results }, null, 2));
