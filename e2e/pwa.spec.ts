import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { chromium, expect, test, type Page } from '@playwright/test';
import { CHROMIUM_ARGS, findChromium } from '../tools/chromium.mjs';
import { repoFromDir, startHubServer } from '../tools/hub-server/server';
import { isModelFileUrl } from '../src/pwa/modelUrls';
import { ORT_WASM_CACHE, isOrtWasmUrl } from '../src/pwa/ortWasm';
import { setMaxNewTokens } from './settings';

// The installed-app side: the production build's service worker and manifest. Chromium's own
// installability check, what the precache holds (and never holds: model files, onnxruntime's
// runtimes), an offline reload after one visit and one model download, onnxruntime-web's engine
// offline once it has loaded online (and a clear error before), and updates that wait for the
// user's click.
// Run with E2E_OUT_DIR=<own folder> so the update test edits a build no one else is serving.

const OUT_DIR = process.env.E2E_OUT_DIR ?? 'dist';
// A generated tiny Phi-3 (2 layers, real vocabulary and template, random weights), as in app.spec.ts.
const TINY_REPO = 'test-org/tiny-phi3-pwa';
const TINY_MODEL = `${TINY_REPO}/onnx`;
const TINY_DIR = resolve('.tmp/e2e-pwa-tiny');

test.beforeAll(() => {
  execFileSync(process.execPath, ['--import', 'tsx', 'tools/tiny-model.ts', '--out', TINY_DIR], { stdio: 'pipe' });
});

/** Makes the served sw.js differ by one byte (same length: one precache revision changes). */
function changeServiceWorker(): () => void {
  const swPath = join(OUT_DIR, 'sw.js');
  const original = readFileSync(swPath, 'utf8');
  const changed = original.replace(/(url:"index\.html",revision:")([0-9a-f])/, (_m, head: string, c: string) => `${head}${c === '0' ? '1' : '0'}`);
  expect(changed).not.toBe(original);
  expect(changed.length).toBe(original.length);
  writeFileSync(swPath, changed);
  return () => writeFileSync(swPath, original);
}

/** Waits for the service worker to be active and returns its scope. */
async function swReady(page: Page): Promise<string> {
  return page.evaluate(async () => (await navigator.serviceWorker.ready).scope);
}

/** Every URL in every Cache Storage cache of the page's origin. */
async function cachedUrls(page: Page): Promise<string[]> {
  return page.evaluate(async () => {
    const out: string[] = [];
    for (const name of await caches.keys()) for (const req of await (await caches.open(name)).keys()) out.push(req.url);
    return out;
  });
}

// Playwright's contexts count as incognito ("in-incognito" blocks installing), so this test
// drives a persistent profile of the same Chromium.
test('passes Chromium\'s installability checks with a complete manifest', async ({ baseURL }) => {
  const context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'pwa-profile-')), { executablePath: findChromium(), args: CHROMIUM_ARGS, baseURL });
  const page = await context.newPage();
  await page.goto('./');
  await expect(page.getByRole('heading', { name: 'Phi-3 WebGPU Chat' })).toBeVisible();
  await swReady(page);
  const cdp = await context.newCDPSession(page);
  const { installabilityErrors } = (await cdp.send('Page.getInstallabilityErrors')) as { installabilityErrors: { errorId: string }[] };
  console.log(`installability errors: ${JSON.stringify(installabilityErrors)}`);
  expect(installabilityErrors).toEqual([]);

  const manifestHref = await page.locator('link[rel="manifest"]').getAttribute('href');
  const manifest = await (await page.request.get(new URL(manifestHref!, page.url()).href)).json();
  expect(manifest).toMatchObject({ name: 'Phi-3 WebGPU Chat', short_name: 'Phi-3 Chat', display: 'standalone', theme_color: '#1f2937' });
  expect(manifest.description.length).toBeGreaterThan(20);
  const icons = manifest.icons as { src: string; sizes: string; purpose: string }[];
  expect(icons.map((i) => `${i.sizes} ${i.purpose}`).sort()).toEqual(['192x192 any', '512x512 any', '512x512 maskable']);
  for (const icon of icons) {
    const res = await page.request.get(new URL(icon.src, new URL(manifestHref!, page.url())).href);
    expect(res.headers()['content-type']).toBe('image/png');
    const png = await res.body();
    const [w, h] = [png.readUInt32BE(16), png.readUInt32BE(20)];
    expect(`${w}x${h}`).toBe(icon.sizes);
  }
  await context.close();
});

test('the precache holds the app shell and engine assets, never a model file', async ({ page }) => {
  await page.goto('./');
  await swReady(page);
  await expect.poll(async () => (await cachedUrls(page)).length, { timeout: 30_000 }).toBeGreaterThan(5);
  const urls = await cachedUrls(page);
  const paths = urls.map((u) => new URL(u).pathname);
  console.log(`precached ${urls.length} files: ${paths.join(' ')}`);
  expect(paths.some((p) => p.endsWith('/index.html'))).toBe(true);
  expect(paths.some((p) => /\/assets\/engine\.worker-[\w-]+\.js$/.test(p))).toBe(true);
  expect(paths.some((p) => /\/assets\/index-[\w-]+\.css$/.test(p))).toBe(true);
  expect(paths.some((p) => p.endsWith('/icons/icon-512.png'))).toBe(true);
  // Every .js / .wasm / .mjs the build emitted is precached, so the app starts offline, except
  // onnxruntime-web's two .wasm runtimes: only its engine uses them, and they are cached the first
  // time it loads (the next test).
  const emitted = readdirSync(join(OUT_DIR, 'assets')).filter((f) => /\.(js|wasm|mjs)$/.test(f));
  console.log(`emitted engine/app assets: ${emitted.join(' ')}`);
  const ortWasm = emitted.filter((f) => isOrtWasmUrl(f));
  expect(ortWasm).toHaveLength(2);
  for (const f of emitted) {
    const p = new URL(`assets/${f}`, page.url()).pathname;
    if (ortWasm.includes(f)) expect(paths, `assets/${f} is precached`).not.toContain(p);
    else expect(paths, `assets/${f} is not precached`).toContain(p);
  }
  const bytes = (fs: string[]) => fs.reduce((n, f) => n + statSync(join(OUT_DIR, 'assets', f)).size, 0);
  const precached = paths.map((p) => join(OUT_DIR, p.slice(new URL(page.url()).pathname.length))).reduce((n, f) => n + statSync(f).size, 0);
  console.log(`precache: ${(precached / 2 ** 20).toFixed(2)} MiB in ${paths.length} files; left to the first onnxruntime load: ${(bytes(ortWasm) / 2 ** 20).toFixed(1)} MiB`);
  expect(precached).toBeLessThan(4 * 2 ** 20);
  expect(urls.filter(isModelFileUrl)).toEqual([]);
  expect(urls.every((u) => new URL(u).origin === new URL(page.url()).origin)).toBe(true);
});

test('offline after one visit and one download: the app shows, lists the cached model, loads it and chats', async ({ context, page }) => {
  const hub = await startHubServer([await repoFromDir(TINY_REPO, TINY_DIR)]);
  try {
    await page.goto(`./?hub=${encodeURIComponent(hub.url)}&model=${encodeURIComponent(TINY_MODEL)}`);
    await swReady(page);
    await page.getByRole('button', { name: /Download/ }).click();
    await expect(page.getByTestId('model-status')).toHaveText('Ready', { timeout: 120_000 });
    const afterDownload = await cachedUrls(page);
    expect(afterDownload.filter(isModelFileUrl)).toEqual([]);
    expect(afterDownload.filter((u) => u.startsWith(hub.url) || u.startsWith(hub.cdnUrl))).toEqual([]);

    const hubRequests = hub.log().length;
    await context.setOffline(true);
    const t0 = Date.now();
    await page.reload();
    await expect(page.getByRole('heading', { name: 'Phi-3 WebGPU Chat' })).toBeVisible();
    expect(await page.evaluate(() => navigator.onLine)).toBe(false);
    expect(await page.evaluate(() => navigator.serviceWorker.controller !== null)).toBe(true);
    await expect(page.getByTestId('cached-models')).toContainText('(complete)');
    await expect(page.getByTestId('model-status')).toHaveText('Ready', { timeout: 120_000 });
    console.log(`offline reload to Ready: ${Date.now() - t0} ms`);
    // A lazily loaded chunk (Markdown) comes from the precache too.
    const lazyChunk = afterDownload.find((u) => /\/assets\/Markdown-[\w-]+\.js$/.test(u));
    expect(lazyChunk).toBeDefined();
    expect(await page.evaluate(async (u) => (await fetch(u)).status, lazyChunk!)).toBe(200);

    await page.getByRole('button', { name: 'New chat' }).click();
    await setMaxNewTokens(page, 16);
    await page.getByRole('textbox', { name: 'Message' }).fill('Hello while offline');
    await page.getByRole('textbox', { name: 'Message' }).press('Enter');
    const answer = page.getByTestId('message-assistant').last();
    await expect(answer.getByTestId('message-stats')).toContainText(/hit the max new tokens|finished/, { timeout: 90_000 });
    await expect(answer.getByRole('alert')).toHaveCount(0);
    expect((await answer.innerText()).length).toBeGreaterThan(0);
    expect(hub.log().length).toBe(hubRequests);
  } finally {
    await context.setOffline(false);
    await hub.close();
  }
});

test("onnxruntime-web's engine: offline before it ever loaded, it says what to do; loaded once online, it works offline", async ({ context, page }) => {
  const hub = await startHubServer([await repoFromDir(TINY_REPO, TINY_DIR)]);
  const engine = page.getByRole('combobox', { name: 'Engine' });
  const status = page.getByTestId('model-status');
  try {
    await page.goto(`./?hub=${encodeURIComponent(hub.url)}&model=${encodeURIComponent(TINY_MODEL)}`);
    await swReady(page);
    // A first visit: the service worker takes control of the page and its engine worker at once.
    await expect.poll(() => page.evaluate(() => navigator.serviceWorker.controller !== null)).toBe(true);
    await page.getByRole('button', { name: /Download/ }).click();
    await expect(status).toHaveText('Ready', { timeout: 120_000 });
    const ortCached = async () => (await cachedUrls(page)).filter((u) => isOrtWasmUrl(u));
    expect(await ortCached()).toEqual([]);

    // Offline, and its runtime was never fetched: a clear error, and the stored model is kept.
    await context.setOffline(true);
    await engine.selectOption('ort');
    await expect(page.getByTestId('model-load-error')).toContainText(/could not fetch onnxruntime-web's WASM runtime \(a 14 MB file\), and it is not stored yet.*Connect to the network and load again/, {
      timeout: 60_000,
    });
    await expect(page.getByTestId('cached-models')).toContainText('(complete)');

    // Online, it loads, and the service worker keeps its runtime.
    await context.setOffline(false);
    await page.getByRole('button', { name: /^Load / }).click();
    await expect(status).toHaveText('Ready', { timeout: 120_000 });
    await expect(page.getByTestId('model-load-error')).toHaveCount(0);
    const kept = await ortCached();
    console.log(`kept after the first onnxruntime load: ${kept.map((u) => new URL(u).pathname).join(' ')}`);
    expect(kept).toHaveLength(1);
    expect(await page.evaluate(async (name) => (await (await caches.open(name)).keys()).length, ORT_WASM_CACHE)).toBe(1);

    // Offline from then on: after a reload the same engine loads and answers.
    await context.setOffline(true);
    await page.reload();
    await expect(status).toHaveText('Ready', { timeout: 120_000 });
    if ((await engine.inputValue()) !== 'ort') {
      await engine.selectOption('ort');
      await expect(status).toHaveText('Ready', { timeout: 120_000 });
    }
    await expect(page.getByTestId('model-load-error')).toHaveCount(0);
    await page.getByRole('button', { name: 'New chat' }).click();
    await setMaxNewTokens(page, 8);
    await page.getByRole('textbox', { name: 'Message' }).fill('Hello, offline onnxruntime');
    await page.getByRole('textbox', { name: 'Message' }).press('Enter');
    const answer = page.getByTestId('message-assistant').last();
    await expect(answer.getByTestId('message-stats')).toContainText(/8 new tokens|finished/, { timeout: 90_000 });
    await expect(answer.getByRole('alert')).toHaveCount(0);
  } finally {
    await context.setOffline(false);
    await hub.close();
  }
});

test('a new version is offered with a prompt and reloads only on the click', async ({ page }) => {
  await page.goto('./');
  await swReady(page);
  await page.reload(); // a returning visit: the page is controlled by the current worker
  expect(await page.evaluate(() => navigator.serviceWorker.controller !== null)).toBe(true);
  await page.evaluate(() => ((window as unknown as { marker: string }).marker = 'first load'));
  const restore = changeServiceWorker();
  try {
    await page.evaluate(async () => (await navigator.serviceWorker.getRegistration())!.update());
    await expect(page.getByTestId('pwa-notice')).toContainText('A new version is available', { timeout: 30_000 });
    // Nothing reloads by itself.
    await page.waitForTimeout(2000);
    expect(await page.evaluate(() => (window as unknown as { marker?: string }).marker)).toBe('first load');
    await Promise.all([page.waitForEvent('framenavigated'), page.getByRole('button', { name: 'Reload' }).click()]);
    await expect(page.getByRole('heading', { name: 'Phi-3 WebGPU Chat' })).toBeVisible();
    expect(await page.evaluate(() => (window as unknown as { marker?: string }).marker)).toBeUndefined();
    await expect(page.getByTestId('pwa-notice')).toHaveCount(0);
  } finally {
    restore();
  }
});

test('an update clicked during a streamed answer waits for the answer to end', async ({ page }) => {
  const hub = await startHubServer([await repoFromDir(TINY_REPO, TINY_DIR)]);
  let restore = () => {};
  try {
    await page.goto(`./?hub=${encodeURIComponent(hub.url)}&model=${encodeURIComponent(TINY_MODEL)}`);
    await swReady(page);
    await page.getByRole('button', { name: /Download/ }).click();
    await expect(page.getByTestId('model-status')).toHaveText('Ready', { timeout: 120_000 });
    await page.reload(); // controlled by the current worker from now on; the model loads from IndexedDB
    await expect(page.getByTestId('model-status')).toHaveText('Ready', { timeout: 120_000 });
    await page.evaluate(() => ((window as unknown as { marker: string }).marker = 'before the update'));

    await page.getByRole('button', { name: 'New chat' }).click();
    await setMaxNewTokens(page, 4000);
    await page.getByRole('textbox', { name: 'Message' }).fill('Tell me a very long story.');
    await page.getByRole('textbox', { name: 'Message' }).press('Enter');
    const answer = page.getByTestId('message-assistant').last();
    await expect.poll(async () => (await answer.innerText()).length, { timeout: 60_000 }).toBeGreaterThan(20);

    restore = changeServiceWorker();
    await page.evaluate(async () => (await navigator.serviceWorker.getRegistration())!.update());
    await expect(page.getByTestId('pwa-notice')).toContainText('A new version is available', { timeout: 30_000 });
    await page.getByRole('button', { name: 'Reload' }).click();
    await expect(page.getByTestId('pwa-notice')).toContainText('The page will reload when the current answer finishes.');
    await expect(page.getByRole('button', { name: 'Reload' })).toBeDisabled();
    // The new worker is in control, yet the answer keeps streaming and the page stays.
    await expect.poll(() => page.evaluate(async () => !!(await navigator.serviceWorker.getRegistration())?.waiting), { timeout: 15_000 }).toBe(false);
    const streamed = (await answer.innerText()).length;
    await expect.poll(async () => (await answer.innerText()).length, { timeout: 30_000 }).toBeGreaterThan(streamed + 10);
    expect(await page.evaluate(() => (window as unknown as { marker?: string }).marker)).toBe('before the update');

    await Promise.all([page.waitForEvent('framenavigated'), page.getByRole('button', { name: 'Stop' }).click()]);
    await expect(page.getByRole('heading', { name: 'Phi-3 WebGPU Chat' })).toBeVisible();
    expect(await page.evaluate(() => (window as unknown as { marker?: string }).marker)).toBeUndefined();
    // The stopped answer was saved before the reload.
    await expect(page.getByTestId('message-user').last()).toContainText('Tell me a very long story.');
    expect((await page.getByTestId('message-assistant').last().innerText()).length).toBeGreaterThan(streamed + 10);
    await expect(page.getByTestId('pwa-notice')).toHaveCount(0);
  } finally {
    restore();
    await hub.close();
  }
});
