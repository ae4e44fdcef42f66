import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { expect, test } from '@playwright/test';

// `BASE_PATH=/phi3/chat/ vite build` served by the plainest static host there is (files under a
// prefix, nothing else: no SPA fallback, no special headers, no COOP/COEP): the app loads, finds
// WebGPU, registers its service worker with the sub-path as scope, and asks for nothing outside
// the sub-path. Independent of the suite's own server, whatever its BASE_PATH.

const BASE = '/phi3/chat/';
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.css': 'text/css',
  '.json': 'application/json',
  '.webmanifest': 'application/manifest+json',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.wasm': 'application/wasm',
  '.map': 'application/json',
};

let outDir: string;
let server: Server;
let origin: string;
const outside: string[] = [];

test.beforeAll(async () => {
  test.setTimeout(240_000);
  outDir = mkdtempSync(join(tmpdir(), 'phi3-subpath-'));
  execFileSync('npx', ['vite', 'build', '--logLevel', 'error', '--outDir', outDir, '--emptyOutDir'], { env: { ...process.env, BASE_PATH: BASE }, stdio: 'pipe' });
  server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    if (!path.startsWith(BASE)) {
      outside.push(path);
      res.writeHead(404).end();
      return;
    }
    const rel = normalize(path.slice(BASE.length) || 'index.html').replace(/^(\.\.[/\\])+/, '');
    const file = join(outDir, rel.endsWith('/') ? `${rel}index.html` : rel);
    try {
      if (!statSync(file).isFile()) throw new Error('not a file');
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

test.afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  if (outDir) rmSync(outDir, { recursive: true, force: true });
});

test('the build works under a sub-path of a plain static host', async ({ page }) => {
  await page.goto(`${origin}${BASE}`);
  await expect(page.getByRole('heading', { name: 'Phi-3 WebGPU Chat' })).toBeVisible();
  await expect(page.getByTestId('webgpu-status')).toHaveText('WebGPU is available', { timeout: 30_000 });
  const scope = await page.evaluate(async () => (await navigator.serviceWorker.ready).scope);
  expect(scope).toBe(`${origin}${BASE}`);
  const crossOriginIsolated = await page.evaluate(() => self.crossOriginIsolated);
  console.log(`service worker scope ${scope}; crossOriginIsolated=${crossOriginIsolated} (no COOP/COEP headers sent)`);

  const manifestHref = await page.locator('link[rel="manifest"]').getAttribute('href');
  const manifest = await (await page.request.get(new URL(manifestHref!, page.url()).href)).json();
  expect(manifest.start_url).toBe(BASE);
  expect(manifest.scope).toBe(BASE);
  for (const icon of manifest.icons as { src: string }[]) {
    expect((await page.request.get(new URL(icon.src, new URL(manifestHref!, page.url())).href)).status()).toBe(200);
  }

  // Offline under the sub-path: the service worker serves the shell.
  await page.context().setOffline(true);
  await page.reload();
  await expect(page.getByRole('heading', { name: 'Phi-3 WebGPU Chat' })).toBeVisible();
  await page.context().setOffline(false);
  expect(outside).toEqual([]);
});
