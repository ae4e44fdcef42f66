import { expect, test, type Page } from '@playwright/test';
import { makeRepo, startHubServer, type HubServer, type LogEntry } from '../tools/hub-server/server';

// The production build downloads a generated model from a local Hub stand-in (another origin,
// with a CDN redirect hop) into IndexedDB through the engine worker, driven through the UI.

const REPO = 'test-org/tiny-phi3';
const CHUNK = 256 * 1024;
const DATA_BYTES = 6_000_000;
const files = {
  'onnx/model_q4f16.onnx': 400_000,
  'onnx/model_q4f16.onnx_data': DATA_BYTES,
  'config.json': JSON.stringify({ model_type: 'phi3' }),
  'tokenizer.json': JSON.stringify({ model: { type: 'BPE' } }),
};
const TOTAL_CHUNKS = Math.ceil(400_000 / CHUNK) + Math.ceil(DATA_BYTES / CHUNK) + 2;

let hub: HubServer;
test.beforeEach(async () => {
  hub = await startHubServer([makeRepo(REPO, files)]);
});
test.afterEach(async () => {
  await hub.close();
});

const appUrl = () => `./?hub=${encodeURIComponent(hub.url)}&model=${REPO}/onnx&chunk=${CHUNK}`;
const ranged = (log: LogEntry[]) => log.filter((e) => e.kind === 'cdn' && e.range && e.status === 206);
const perRange = (log: LogEntry[]) => {
  const m = new Map<string, number>();
  for (const e of ranged(log)) m.set(`${e.path}@${e.range![0]}`, (m.get(`${e.path}@${e.range![0]}`) ?? 0) + 1);
  return m;
};
const status = (page: Page) => page.getByTestId('model-status');
const CACHED = 'Cached on this device and verified';

test('a reload mid-download resumes from IndexedDB, fetching only what was missing', async ({ page }) => {
  hub.setFaults({ bytesPerSec: 400_000 });
  await page.goto(appUrl());
  await page.getByRole('button', { name: /Download/ }).click();
  await expect(status(page)).toHaveText('Downloading…');
  await expect.poll(() => ranged(hub.log()).filter((e) => e.path.endsWith('_data') && e.bytes === CHUNK).length, { timeout: 60_000, intervals: [100] }).toBeGreaterThanOrEqual(4);
  const servedBefore = ranged(hub.log()).length;
  await page.reload();
  await expect(status(page)).toContainText('Paused:');
  hub.setFaults({});
  const logBefore = hub.log().length;
  await page.getByRole('button', { name: /Resume download/ }).click();
  await expect(status(page)).toHaveText(CACHED, { timeout: 60_000 });
  const after = ranged(hub.log().slice(logBefore)).length;
  const total = ranged(hub.log()).length;
  console.log(`reload test: ${servedBefore} ranged GETs before the reload, ${after} after; ${TOTAL_CHUNKS} chunks; ${total - TOTAL_CHUNKS} re-fetched`);
  expect(after).toBeLessThan(TOTAL_CHUNKS);
  // At most the chunks in flight at the reload (4 lanes) are fetched twice.
  expect(total - TOTAL_CHUNKS).toBeLessThanOrEqual(4);
  expect(hub.log().filter((e) => e.kind === 'preflight')).toEqual([]);
  await expect(page.getByTestId('cached-models')).toContainText('(complete)');
});

test('two tabs download the model once: the second shows the first one\'s progress', async ({ context }) => {
  hub.setFaults({ bytesPerSec: 2_000_000 });
  const a = await context.newPage();
  const b = await context.newPage();
  await a.goto(appUrl());
  await b.goto(appUrl());
  await a.getByRole('button', { name: /Download/ }).click();
  await expect(status(a)).toHaveText('Downloading…');
  await b.getByRole('button', { name: /Download/ }).click();
  await expect(status(b)).toContainText('Another tab is downloading this model');
  await expect(b.getByTestId('model-progress')).toBeVisible();
  await expect(status(a)).toHaveText(CACHED, { timeout: 60_000 });
  await expect(status(b)).toHaveText(CACHED, { timeout: 60_000 });
  const counts = perRange(hub.log());
  expect(counts.size).toBe(TOTAL_CHUNKS);
  expect([...counts.values()].every((c) => c === 1)).toBe(true);
});

test('a second visit with the network blocked still lists the cached model', async ({ context, page }) => {
  await page.goto(appUrl());
  await page.getByRole('button', { name: /Download/ }).click();
  await expect(status(page)).toHaveText(CACHED, { timeout: 60_000 });
  await page.close();

  const hubHosts = [new URL(hub.url).host, new URL(hub.cdnUrl).host];
  const blocked: string[] = [];
  await context.route(
    (url) => hubHosts.includes(url.host),
    (route) => {
      blocked.push(route.request().url());
      return route.abort('internetdisconnected');
    },
  );
  await hub.close();
  const again = await context.newPage();
  await again.goto(appUrl());
  await expect(status(again)).toHaveText(CACHED);
  await expect(again.getByTestId('cached-models')).toContainText('(complete)');
  await expect(again.getByRole('button', { name: /Download/ })).toHaveCount(0);
  expect(blocked).toEqual([]);
});

test('when the downloading tab closes, the waiting tab takes over from what is stored', async ({ context }) => {
  hub.setFaults({ bytesPerSec: 400_000 });
  const a = await context.newPage();
  const b = await context.newPage();
  await a.goto(appUrl());
  await b.goto(appUrl());
  await a.getByRole('button', { name: /Download/ }).click();
  await expect(status(a)).toHaveText('Downloading…');
  await b.getByRole('button', { name: /Download/ }).click();
  await expect(status(b)).toContainText('Another tab is downloading this model');
  await expect.poll(() => ranged(hub.log()).filter((e) => e.path.endsWith('_data') && e.bytes === CHUNK).length, { timeout: 60_000, intervals: [100] }).toBeGreaterThanOrEqual(4);
  await a.close();
  hub.setFaults({});
  await expect(status(b)).toHaveText(CACHED, { timeout: 60_000 });
  const total = ranged(hub.log()).length;
  console.log(`tab-close test: ${total} ranged GETs for ${TOTAL_CHUNKS} chunks`);
  expect(total - TOTAL_CHUNKS).toBeLessThanOrEqual(4);
  expect(perRange(hub.log()).size).toBe(TOTAL_CHUNKS);
});

test('an older app version holding the model store open: the panel says so, offers nothing, and goes on once it lets go', async ({ page }) => {
  // What a tab of an older version (schema 1, no versionchange handler) holds: it never steps aside.
  await page.addInitScript(() => {
    const req = indexedDB.open('phi3-model-store', 1);
    req.onupgradeneeded = () => {
      req.result.createObjectStore('manifests', { keyPath: 'modelId' });
      req.result.createObjectStore('chunks', { keyPath: ['modelId', 'path', 'index'] });
    };
    req.onsuccess = () => ((globalThis as unknown as { olderTab: IDBDatabase }).olderTab = req.result);
  });
  await page.goto(appUrl());
  await expect(page.getByTestId('storage-blocked')).toContainText('Another tab is running an older version of this app');
  await expect(status(page)).toHaveText('Checking what is stored on this device…');
  await expect(page.getByRole('button', { name: /Download/ })).toHaveCount(0);
  await page.evaluate(() => (globalThis as unknown as { olderTab: IDBDatabase }).olderTab.close());
  await expect(status(page)).toHaveText('Not downloaded');
  await expect(page.getByTestId('storage-blocked')).toHaveCount(0);
  await page.getByRole('button', { name: /Download/ }).click();
  await expect(status(page)).toHaveText(CACHED, { timeout: 60_000 });
});

test('cancel and delete ask first and keep everything on "Keep"; confirmed, they free the storage', async ({ page }) => {
  hub.setFaults({ bytesPerSec: 400_000 });
  await page.goto(appUrl());
  await page.getByRole('button', { name: /Download/ }).click();
  await expect(status(page)).toHaveText('Downloading…');
  const panel = page.getByRole('region', { name: 'Model panel' });
  await panel.getByRole('button', { name: 'Cancel', exact: true }).click();
  await expect(panel.getByRole('group')).toContainText(/Cancel the download and delete the \d+\.\d MB stored so far\?/);
  await panel.getByRole('button', { name: 'Keep downloading' }).click();
  await expect(panel.getByRole('group')).toHaveCount(0);
  await expect(status(page)).toHaveText('Downloading…');
  // Keep gives focus back to the button that asked.
  await expect(panel.getByRole('button', { name: 'Cancel', exact: true })).toBeFocused();
  hub.setFaults({});
  await expect(status(page)).toHaveText(CACHED, { timeout: 60_000 });
  // Cancel went away with the download: focus stays in the panel, on what is offered now.
  await expect(panel.getByRole('button', { name: /^Load / })).toBeFocused();

  // Delete: Escape keeps the model, as Keep does.
  await panel.getByRole('button', { name: /^Delete test-org/ }).click();
  await expect(panel.getByRole('group')).toContainText(/Delete .* \(6\.\d MB\)\? Using it again means downloading it again\./);
  await page.keyboard.press('Escape');
  await expect(panel.getByRole('group')).toHaveCount(0);
  await expect(page.getByTestId('cached-models')).toContainText('(complete)');
  await expect(panel.getByRole('button', { name: /^Delete test-org/ })).toBeFocused();
  await panel.getByRole('button', { name: /^Delete test-org/ }).click();
  await panel.getByRole('group').getByRole('button', { name: 'Delete', exact: true }).click();
  await expect(page.getByTestId('cached-models')).toHaveCount(0);
  await expect(status(page)).toHaveText('Not downloaded');
  // The deleted row took the focused button along: focus goes to the panel's action.
  await expect(panel.getByRole('button', { name: /^Download / })).toBeFocused();

  // A confirmed cancel drops what was stored.
  hub.setFaults({ bytesPerSec: 400_000 });
  await page.getByRole('button', { name: /Download/ }).click();
  await expect(status(page)).toHaveText('Downloading…');
  await panel.getByRole('button', { name: 'Cancel', exact: true }).click();
  await panel.getByRole('button', { name: 'Cancel download' }).click();
  await expect(status(page)).toHaveText('Not downloaded');
  await expect(page.getByTestId('cached-models')).toHaveCount(0);
});

test('the Hub repo id field: a wrong id is named with an example; a pasted Hub address picks its folder', async ({ page }) => {
  await page.goto(`./?hub=${encodeURIComponent(hub.url)}&chunk=${CHUNK}`);
  const field = page.getByRole('textbox', { name: 'Hub repo id' });
  await field.fill('phi3');
  await page.getByRole('button', { name: 'Use repo' }).click();
  await expect(page.getByRole('alert').filter({ hasText: '"phi3" is not a Hub repo id. Expected org/name or org/name/folder' })).toBeVisible();
  await expect(field).toHaveAttribute('aria-invalid', 'true');
  await expect(page.getByRole('combobox', { name: 'Model' })).toHaveValue(/^phi-3/);

  await field.fill(`${hub.url}/${REPO}/tree/main/onnx`);
  await expect(field).not.toHaveAttribute('aria-invalid');
  await page.getByRole('button', { name: 'Use repo' }).click();
  await expect(page.getByRole('combobox', { name: 'Model' })).toHaveValue(`${REPO}/onnx`);
  await page.getByRole('button', { name: /Download/ }).click();
  await expect(status(page)).toHaveText(CACHED, { timeout: 60_000 });
});

test('starting a download asks the browser to keep the storage, from the page (a worker cannot ask)', async ({ page }) => {
  // A spy that calls through: Playwright's contexts are off the record, where Chromium never
  // grants persistence, so the answer is the real "no"; what is checked is that the page asks
  // (the worker used to, and has no persist()) and shows what the browser answered.
  await page.addInitScript(() => {
    const persist = StorageManager.prototype.persist;
    const w = window as unknown as { persistCalls: number };
    w.persistCalls = 0;
    StorageManager.prototype.persist = function () {
      w.persistCalls++;
      return persist.call(this);
    };
  });
  const calls = () => page.evaluate(() => (window as unknown as { persistCalls: number }).persistCalls);
  await page.goto(appUrl());
  const estimate = page.getByTestId('storage-estimate');
  // Before anything is asked, the estimate's own answer (persisted() works in the worker).
  await expect(estimate).toContainText('· the browser may evict it under pressure');
  expect(await calls()).toBe(0);

  await page.getByRole('button', { name: /Download/ }).click();
  await expect.poll(calls).toBe(1);
  await expect(status(page)).toHaveText(CACHED, { timeout: 60_000 });
  expect(await page.evaluate(() => navigator.storage.persisted())).toBe(false);
  await expect(estimate).toContainText('· the browser may evict it under pressure');

  await page.getByRole('button', { name: 'Ask the browser to keep this storage' }).click();
  await expect.poll(calls).toBe(2);
  await expect(estimate).toContainText('· the browser may evict it under pressure');
});
