/**
 * Measures issue 4's load figures in the real app (production build, system Chromium):
 *   1. peak JS heap of the engine worker while a generated model of ≥ 500 MB streams from
 *      IndexedDB to the GPU (V8 heap + ArrayBuffer backing stores, sampled over CDP every 100 ms;
 *      the page's JSHeapUsedSize from Performance.getMetrics beside it);
 *   2. warm-load time (IndexedDB → GPU ready, the time the model panel records) against the raw
 *      IndexedDB read time of the same chunks, read one after another in the same worker.
 *
 *   npx tsx tools/measure-load.ts [--layers 4] [--port 4590] [--keep]
 *
 * Takes minutes (a ~740 MB model is generated, downloaded from the local Hub stand-in, hashed and
 * stored), so it is not part of `npm test`. Output: one JSON line of figures at the end.
 * Rule: this script only observes; it drives the app through its UI like a user.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { chromium, type CDPSession, type Page } from 'playwright';
import { CHROMIUM_ARGS, findChromium } from './chromium.mjs';
import { repoFromDir, startHubServer } from './hub-server/server';

const argv = process.argv.slice(2);
const arg = (name: string, dflt: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const LAYERS = Number(arg('layers', '4'));
const PORT = Number(arg('port', '4590'));
const MODEL_DIR = path.resolve('.tmp/measure-model');
const DIST = path.resolve('.tmp/measure-dist');
const PROFILE = path.resolve('.tmp/measure-profile');
const REPO = 'measure/phi3-large';
const GEN_ARGS = ['--hidden', '3072', '--intermediate', '8192', '--layers', String(LAYERS), '--heads', '32', '--kv-heads', '32'];
const mb = (n: number) => Math.round(n / 1e5) / 10;

function ensureModel(): void {
  const stamp = `${MODEL_DIR}.args`;
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === GEN_ARGS.join(' ')) return;
  console.log(`generating the model: ${GEN_ARGS.join(' ')}`);
  execFileSync(process.execPath, ['--import', 'tsx', 'tools/tiny-model.ts', '--out', MODEL_DIR, ...GEN_ARGS], { stdio: 'inherit' });
  writeFileSync(stamp, GEN_ARGS.join(' '));
}

/** Heap of the page's dedicated workers over CDP (non-flat sessions: Playwright keeps the flat one). */
class WorkerHeap {
  private sessions: string[] = [];
  private nextId = 1;
  private waiting = new Map<number, (m: { result?: unknown }) => void>();

  constructor(private readonly cdp: CDPSession) {
    cdp.on('Target.attachedToTarget', (e) => {
      if (e.targetInfo.type === 'worker') this.sessions.push(e.sessionId);
    });
    cdp.on('Target.detachedFromTarget', (e) => {
      this.sessions = this.sessions.filter((s) => s !== e.sessionId);
    });
    cdp.on('Target.receivedMessageFromTarget', (e) => {
      const m = JSON.parse(e.message) as { id?: number; result?: unknown };
      if (m.id !== undefined) this.waiting.get(m.id)?.(m);
      if (m.id !== undefined) this.waiting.delete(m.id);
    });
  }

  static async attach(cdp: CDPSession): Promise<WorkerHeap> {
    const h = new WorkerHeap(cdp);
    await cdp.send('Target.setAutoAttach', { autoAttach: true, waitForDebuggerOnStart: false, flatten: false });
    return h;
  }

  /** Resolves undefined when no worker is attached or it does not answer within `timeoutMs`. */
  private call<T>(method: string, params: Record<string, unknown> = {}, timeoutMs = 5000): Promise<T | undefined> {
    const sessionId = this.sessions.at(-1);
    if (!sessionId) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const id = this.nextId++;
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve(undefined);
      }, timeoutMs);
      this.waiting.set(id, (m) => {
        clearTimeout(timer);
        resolve(m.result as T);
      });
      void this.cdp.send('Target.sendMessageToTarget', { sessionId, message: JSON.stringify({ id, method, params }) }).catch(() => resolve(undefined));
    });
  }

  /** V8 heap used + ArrayBuffer backing stores, bytes. */
  async used(): Promise<number | undefined> {
    const r = await this.call<{ usedSize: number; backingStorageSize?: number }>('Runtime.getHeapUsage');
    return r ? r.usedSize + (r.backingStorageSize ?? 0) : undefined;
  }

  async evaluate<T>(expression: string): Promise<T | undefined> {
    const r = await this.call<{ result: { value: T } }>('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true }, 300_000);
    return r?.result.value;
  }
}

async function pageHeap(cdp: CDPSession): Promise<number> {
  const { metrics } = await cdp.send('Performance.getMetrics');
  return metrics.find((m) => m.name === 'JSHeapUsedSize')?.value ?? 0;
}

/** Samples heaps until the model panel reads "Ready"; returns the peaks and the panel's load time. */
async function sampleUntilReady(page: Page, cdp: CDPSession, heap: WorkerHeap, timeoutMs: number) {
  const peaks = { worker: 0, page: 0, workerDuringLoad: 0, samples: 0 };
  const t0 = Date.now();
  let last = '';
  for (;;) {
    const status = (await page.getByTestId('model-status').textContent({ timeout: 5000 }).catch(() => '')) ?? '';
    if (status !== last) console.log(`  ${((Date.now() - t0) / 1000).toFixed(1)} s: ${(last = status)}`);
    const w = (await heap.used()) ?? 0;
    peaks.worker = Math.max(peaks.worker, w);
    if (/Loading|Compiling/.test(status)) {
      peaks.workerDuringLoad = Math.max(peaks.workerDuringLoad, w);
      peaks.samples++;
    }
    peaks.page = Math.max(peaks.page, await pageHeap(cdp));
    if (status === 'Ready') break;
    // count() does not wait, unlike textContent() on a missing element (30 s per sample).
    const errors = page.getByTestId('model-load-error');
    if ((await errors.count()) > 0) throw new Error((await errors.textContent()) ?? 'load failed');
    if (Date.now() - t0 > timeoutMs) throw new Error(`not Ready after ${timeoutMs} ms (status "${status}")`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const info = page.getByTestId('model-info');
  const loadMs = Number(await info.getAttribute('data-load-ms'));
  const timings = JSON.parse((await info.getAttribute('data-load-timings')) ?? '{}') as Record<string, number>;
  return { ...peaks, loadMs, timings };
}

/** Reads every stored chunk (the profile holds only this model), one after another, in the worker; returns ms and bytes. */
const RAW_READ = `(async () => {
  const db = await new Promise((res, rej) => { const r = indexedDB.open('phi3-model-store'); r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
  const req = (r) => new Promise((res, rej) => { r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
  const keys = await req(db.transaction('chunks').objectStore('chunks').getAllKeys());
  const t0 = performance.now();
  let bytes = 0;
  for (const k of keys) bytes += (await req(db.transaction('chunks').objectStore('chunks').get(k))).bytes.byteLength;
  const ms = performance.now() - t0;
  db.close();
  return { ms, bytes, chunks: keys.length };
})()`;

async function main(): Promise<void> {
  ensureModel();
  console.log('building the app into .tmp/measure-dist');
  execFileSync('npx', ['vite', 'build', '--outDir', DIST, '--emptyOutDir', '--logLevel', 'warn'], { stdio: 'inherit' });
  const preview = spawn('npx', ['vite', 'preview', '--outDir', DIST, '--host', '127.0.0.1', '--port', String(PORT), '--strictPort'], { stdio: 'ignore', detached: true });
  const repo = await repoFromDir(REPO, MODEL_DIR);
  const modelBytes = [...repo.files.values()].reduce((n, b) => n + b.length, 0);
  const hub = await startHubServer([repo]);
  // A kept profile: the ~740 MB download happens once; later runs measure loads straight away.
  // Service workers blocked: the PWA's cache would otherwise serve the previous run's build.
  const context = await chromium.launchPersistentContext(PROFILE, { executablePath: findChromium(), args: CHROMIUM_ARGS, headless: true, serviceWorkers: 'block' });
  try {
    for (let i = 0; i < 100; i++) {
      if (await fetch(`http://127.0.0.1:${PORT}/`).then((r) => r.ok).catch(() => false)) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const page = context.pages()[0] ?? (await context.newPage());
    const cdp = await context.newCDPSession(page);
    await cdp.send('Performance.enable');
    const heap = await WorkerHeap.attach(cdp);
    await page.goto(`http://127.0.0.1:${PORT}/?hub=${encodeURIComponent(hub.url)}&model=${REPO}/onnx`);
    const download = page.getByRole('button', { name: /^Download/ });
    await page.getByTestId('model-status').filter({ hasText: /Not downloaded|Loading|Compiling|Ready|Cached/ }).waitFor();
    const t0 = Date.now();
    if (await download.isVisible()) {
      console.log(`downloading ${mb(modelBytes)} MB from the local Hub…`);
      await download.click();
    } else console.log('the model is in the kept profile already; loading it');
    const first = await sampleUntilReady(page, cdp, heap, 30 * 60_000);
    console.log(`to Ready: ${((Date.now() - t0) / 1000).toFixed(1)} s; load ${first.loadMs} ms, peak worker heap ${mb(first.workerDuringLoad)} MB`);
    const rawBefore = await heap.evaluate<{ ms: number; bytes: number; chunks: number }>(RAW_READ);
    console.log(`raw IndexedDB read: ${JSON.stringify(rawBefore)}`);

    await page.reload();
    const warm = await sampleUntilReady(page, cdp, heap, 10 * 60_000);
    console.log(`warm load after a reload: ${warm.loadMs} ms, peak worker heap ${mb(warm.workerDuringLoad)} MB`);
    const raw = await heap.evaluate<{ ms: number; bytes: number; chunks: number }>(RAW_READ);
    const result = {
      modelMB: mb(modelBytes),
      adapter: await page.getByTestId('adapter-name').textContent(),
      firstLoad: { loadMs: first.loadMs, ...first.timings, peakWorkerHeapMB: mb(first.workerDuringLoad), heapSamples: first.samples, peakPageHeapMB: mb(first.page) },
      warmLoad: { loadMs: warm.loadMs, ...warm.timings, peakWorkerHeapMB: mb(warm.workerDuringLoad), heapSamples: warm.samples, peakPageHeapMB: mb(warm.page) },
      rawIndexedDbRead: { msBeforeReload: rawBefore && Math.round(rawBefore.ms), msAfterWarmLoad: raw && Math.round(raw.ms), MB: raw && mb(raw.bytes), chunks: raw?.chunks },
    };
    console.log(JSON.stringify(result));
  } finally {
    await context.close();
    await hub.close();
    if (preview.pid) process.kill(-preview.pid);
  }
}

await main();
