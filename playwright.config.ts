import { defineConfig } from '@playwright/test';
import { CHROMIUM_ARGS, findChromium } from './tools/chromium.mjs';

// e2e specs run against the production build served by `vite preview` on localhost, in the
// system Chromium (never a downloaded one). BASE_PATH is honoured so sub-path hosting is tested.
const PORT = Number(process.env.E2E_PORT ?? 4317);
const BASE = process.env.BASE_PATH ?? '/';
// E2E_OUT_DIR builds and serves from a folder of one's own (parallel runs need not share dist/).
const OUT_DIR = process.env.E2E_OUT_DIR ? ` --outDir ${JSON.stringify(process.env.E2E_OUT_DIR)}` : '';

export default defineConfig({
  testDir: 'e2e',
  timeout: 120_000,
  workers: 1,
  reporter: [['list']],
  use: {
    baseURL: `http://localhost:${PORT}${BASE}`,
    launchOptions: { executablePath: findChromium(), args: CHROMIUM_ARGS },
    screenshot: 'only-on-failure',
  },
  webServer: {
    command: `npx vite build --logLevel warn${OUT_DIR}${OUT_DIR && ' --emptyOutDir'} && npx vite preview --host 127.0.0.1 --port ${PORT} --strictPort${OUT_DIR}`,
    url: `http://localhost:${PORT}${BASE}`,
    reuseExistingServer: false,
    timeout: 180_000,
  },
});
