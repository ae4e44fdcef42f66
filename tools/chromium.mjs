// Finds the Chromium that browser tests and the e2e suite drive. The test command never downloads
// a browser: CHROMIUM_PATH, then Debian's /usr/bin/chromium, then a browser Playwright already
// installed. If none exists, it stops with one line that says how to get one.
import { existsSync } from 'node:fs';
import { chromium } from 'playwright';

/** Flags that make headless Chromium expose WebGPU (SwiftShader on GPU-less machines) and stay off the network. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

export const INSTALL_HINT =
  'No Chromium found: install one with `apt-get install chromium` (Debian), set CHROMIUM_PATH to a Chromium/Chrome binary, or run `npx playwright install chromium` where the internet allows.';

/** @returns {string} the executable path */
export function findChromium() {
  const fromEnv = process.env.CHROMIUM_PATH;
  if (fromEnv) {
    if (existsSync(fromEnv)) return fromEnv;
    throw new Error(`CHROMIUM_PATH=${fromEnv} does not exist. ${INSTALL_HINT}`);
  }
  if (existsSync('/usr/bin/chromium')) return '/usr/bin/chromium';
  try {
    const bundled = chromium.executablePath();
    if (bundled && existsSync(bundled)) return bundled;
  } catch {
    // Playwright has no browser of its own installed.
  }
  throw new Error(INSTALL_HINT);
}
