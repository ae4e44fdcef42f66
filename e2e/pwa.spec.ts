import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, expect, test, type Page } from '@playwright/test';
import { CHROMIUM_ARGS, findChromium } from '../tools/chromium.mjs';
import { makeRepo, startHubServer } from '../tools/hub-server/server';
import { isModelFileUrl } from '../src/pwa/modelUrls';

// The installed-app side: the production build's service worker and manifest. Chromium's own
// installability check, what the precache holds (and never holds: model files), an offline
// reload after one visit and one model download, and updates that wait for the user's click.
// Run with E2E_OUT_DIR=<own folder> so the update test edits a build no one else is serving.

const OUT_DIR = process.env.E2E_OUT_DIR ?? 'dist';
const REPO = 'test-org/tiny-phi3';
const files = {
  'onnx/model_q4f16.onnx': 300_000,
  'onnx/model_q4f16.onnx_data': 2_000_000,
  'config.json': JSON.stringify({ model_type: 'phi3' }),
  'tokenizer.json': JSON.stringify({ model: { type: 'BPE' } }),
};
const CACHED = 'Cached on this device and verified';

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
  // Every .wasm / .mjs the build emitted (onnxruntime-web's, when the engine bundles it) is precached.
  const swSource = readFileSync(join(OUT_DIR, 'sw.js'), 'utf8');
  const emitted = [...swSource.matchAll(/url:"([^"]+)"/g)].map((m) => m[1]);
  for (const wasm of emitted.filter((u) => /\.(wasm|mjs)$/.test(u))) expect(paths.some((p) => p.endsWith(`/${wasm}`))).toBe(true);
  expect(urls.filter(isModelFileUrl)).toEqual([]);
  expect(urls.every((u) => new URL(u).origin === new URL(page.url()).origin)).toBe(true);
});

test('offline after one visit and one download: the app, the cached model, and no model bytes in Cache Storage', async ({ context, page }) => {
  const hub = await startHubServer([makeRepo(REPO, files)]);
  try {
    await page.goto(`./?hub=${encodeURIComponent(hub.url)}&model=${REPO}/onnx`);
    await swReady(page);
    await page.getByRole('button', { name: /Download/ }).click();
    await expect(page.getByTestId('model-status')).toHaveText(CACHED, { timeout: 60_000 });
    const afterDownload = await cachedUrls(page);
    expect(afterDownload.filter(isModelFileUrl)).toEqual([]);
    expect(afterDownload.filter((u) => u.startsWith(hub.url) || u.startsWith(hub.cdnUrl))).toEqual([]);

    const hubRequests = hub.log().length;
    await context.setOffline(true);
    await page.reload();
    await expect(page.getByRole('heading', { name: 'Phi-3 WebGPU Chat' })).toBeVisible();
    expect(await page.evaluate(() => navigator.onLine)).toBe(false);
    expect(await page.evaluate(() => navigator.serviceWorker.controller !== null)).toBe(true);
    await expect(page.getByTestId('model-status')).toHaveText(CACHED, { timeout: 30_000 });
    await expect(page.getByTestId('cached-models')).toContainText('(complete)');
    // A lazily loaded chunk (Markdown) comes from the precache too.
    const lazyChunk = afterDownload.find((u) => /\/assets\/Markdown-[\w-]+\.js$/.test(u));
    expect(lazyChunk).toBeDefined();
    expect(await page.evaluate(async (u) => (await fetch(u)).status, lazyChunk!)).toBe(200);
    expect(hub.log().length).toBe(hubRequests);
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
  const swPath = join(OUT_DIR, 'sw.js');
  const original = readFileSync(swPath, 'utf8');
  // Same length, different bytes (one precache revision changes): the browser sees a new worker.
  const changed = original.replace(/(url:"index\.html",revision:")([0-9a-f])/, (_m, head: string, c: string) => `${head}${c === '0' ? '1' : '0'}`);
  expect(changed).not.toBe(original);
  expect(changed.length).toBe(original.length);
  writeFileSync(swPath, changed);
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
    writeFileSync(swPath, original);
  }
});
