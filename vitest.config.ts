import { defineConfig } from 'vitest/config';
import { playwright } from '@vitest/browser-playwright';
import { CHROMIUM_ARGS, findChromium } from './tools/chromium.mjs';

// Three projects, run separately by tools/test-all.mjs:
//   unit        - plain Node tests (*.test.ts)
//   gpu-node    - *.gpu.test.ts on Dawn (the `webgpu` package) in Node
//   gpu-browser - *.gpu.test.ts and *.browser.test.ts in headless Chromium with WebGPU
const GPU_TESTS = ['src/**/*.gpu.test.ts'];
const BROWSER_TESTS = ['src/**/*.browser.test.ts'];
// GPU tests that need Node (onnxruntime-node as the reference, the file system).
const NODE_GPU_TESTS = ['src/**/*.node-gpu.test.ts', 'tools/**/*.node-gpu.test.ts'];
const wantBrowser = process.argv.includes('gpu-browser') || !process.argv.includes('--project');

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          environment: 'node',
          include: ['src/**/*.test.ts', 'tools/**/*.test.ts'],
          exclude: [...GPU_TESTS, ...BROWSER_TESTS, ...NODE_GPU_TESTS],
          testTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'gpu-node',
          environment: 'node',
          include: [...GPU_TESTS, ...NODE_GPU_TESTS],
          setupFiles: ['tools/vitest-node-gpu-setup.ts'],
          // Checks every shader the tests compiled with naga, Firefox's WGSL compiler, after the run.
          globalSetup: ['tools/wgsl-portability/vitest-global-setup.ts'],
          testTimeout: 300_000,
          pool: 'forks',
        },
      },
      {
        test: {
          name: 'gpu-browser',
          include: [...GPU_TESTS, ...BROWSER_TESTS],
          // A local Hugging Face Hub stand-in for the storage/downloader browser tests (tools/hub-server).
          globalSetup: ['tools/hub-server/vitest-global-setup.ts'],
          testTimeout: 300_000,
          browser: {
            enabled: true,
            headless: true,
            provider: playwright({
              launchOptions: wantBrowser ? { executablePath: findChromium(), args: CHROMIUM_ARGS } : {},
            }),
            instances: [{ browser: 'chromium' }],
          },
        },
      },
    ],
  },
});
