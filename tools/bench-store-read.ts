/**
 * How fast a stored model streams out of IndexedDB, with and without read-ahead: what a load
 * waits on once uploads are cheap (a hardware GPU's `writeBuffer` is a copy), measured in headless
 * Chromium, in a worker as the engine reads:
 *   npm run bench:store-read [-- --mib 384 --rounds 3 --ahead 0,1,2,3 --out file.json]
 * Stores one file of `--mib` MiB in 8 MiB chunks (the app's chunk size) in a fresh database,
 * then each round streams it through `ChunkedFileSource` once per read-ahead, in another order
 * each round, in 8 MiB reads 3 MiB off the chunk boundaries, copying each read once. Prints per
 * read-ahead the median and best ms and MB/s and the ratio to no read-ahead. Rule: not a test;
 * nothing here asserts a time.
 */
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright';
import { build, preview } from 'vite';
import { CHROMIUM_ARGS, findChromium } from './chromium.mjs';
import { median } from './bench-sample-answer';
import type { ReadResult } from './bench-store-read/reader.worker';

const ROOT = resolve(import.meta.dirname, '..');
const PAGE_DIR = join(ROOT, 'tools/bench-store-read');
const OUT_DIR = join(ROOT, '.tmp/bench-store-read-page');
const CHUNK = 8 << 20;

const { values } = parseArgs({
  options: { mib: { type: 'string', default: '384' }, rounds: { type: 'string', default: '3' }, ahead: { type: 'string', default: '0,1,2,3' }, out: { type: 'string' } },
});
const chunks = Math.max(2, Math.round(Number(values.mib) / 8));
const rounds = Number(values.rounds);
const aheads = values.ahead!.split(',').map(Number);

await build({ configFile: false, root: PAGE_DIR, base: './', logLevel: 'warn', mode: 'production', build: { outDir: OUT_DIR, emptyOutDir: true, target: 'es2022', reportCompressedSize: false } });
const server = await preview({ configFile: false, root: PAGE_DIR, logLevel: 'warn', build: { outDir: OUT_DIR }, preview: { host: '127.0.0.1', port: 0 } });
const browser = await chromium.launch({ executablePath: findChromium(), args: CHROMIUM_ARGS, headless: true });
const runs = new Map<number, ReadResult[]>(aheads.map((a) => [a, []]));
const db = `bench-store-read-${Date.now()}`;
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.error(`[page error] ${e.message}`));
  await page.goto(server.resolvedUrls!.local[0]);
  await page.waitForFunction(() => window.__storeRead?.ready === true);
  const call = (req: Record<string, unknown>) => page.evaluate((r) => window.__storeRead!.run(r as never), req);
  const w = await call({ op: 'write', db, chunks, chunkSize: CHUNK });
  console.log(`[bench:store-read] stored ${chunks} chunks of 8 MiB (${(w.bytes / 2 ** 20).toFixed(0)} MiB) in ${(w.ms / 1000).toFixed(1)} s; Chromium ${browser.version()}`);
  for (let r = 0; r < rounds; r++) {
    const order = aheads.map((_, i) => aheads[(i + r) % aheads.length]);
    for (const readAhead of order) {
      const res = await call({ op: 'read', db, readAhead, offset: 3 << 20 });
      runs.get(readAhead)!.push(res);
      console.log(`[bench:store-read] round ${r + 1}, read-ahead ${readAhead}: ${res.ms.toFixed(0)} ms, ${(res.bytes / 1e3 / res.ms).toFixed(0)} MB/s, ${res.chunkReads} chunk reads`);
    }
  }
  await call({ op: 'drop', db });
} finally {
  await browser.close();
  await new Promise<void>((done) => server.httpServer.close(() => done()));
}

const base = median(runs.get(aheads[0])!.map((x) => x.ms));
const rows = aheads.map((readAhead) => {
  const ms = runs.get(readAhead)!.map((x) => x.ms);
  const bytes = runs.get(readAhead)![0].bytes;
  return { readAhead, medianMs: median(ms), bestMs: Math.min(...ms), mbPerSec: bytes / 1e3 / median(ms), speedup: base / median(ms) };
});
console.log(`\n| read-ahead (chunks) | median ms | best ms | MB/s (median) | vs ${aheads[0]} |`);
console.log('|---|---|---|---|---|');
for (const x of rows) console.log(`| ${x.readAhead} | ${x.medianMs.toFixed(0)} | ${x.bestMs.toFixed(0)} | ${x.mbPerSec.toFixed(0)} | ${x.speedup.toFixed(2)}× |`);
if (values.out) writeFileSync(values.out, JSON.stringify({ chunks, chunkSize: CHUNK, rounds, rows }, null, 2));
