#!/usr/bin/env node
// `npm test`: every layer in order — type-check, lint, unit tests, GPU tests in Node (Dawn) and in
// headless Chromium, then the Playwright e2e suite. It stops early with one line if no Chromium
// exists (the test command never downloads a browser), runs every stage even if one fails, and
// ends with a per-stage summary and a plain "N passed, N failed" line.
import { spawnSync } from 'node:child_process';
import { findChromium } from './chromium.mjs';

try {
  const path = findChromium();
  console.log(`Chromium: ${path}`);
} catch (err) {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
}

const only = process.argv.slice(2);
const stages = [
  ['typecheck', 'npx', ['tsc', '--noEmit', '-p', 'tsconfig.json']],
  ['lint', 'npx', ['eslint', '.', '--max-warnings', '0']],
  ['unit', 'npx', ['vitest', 'run', '--project', 'unit']],
  ['gpu-node', 'npx', ['vitest', 'run', '--project', 'gpu-node']],
  ['gpu-browser', 'npx', ['vitest', 'run', '--project', 'gpu-browser']],
  ['e2e', 'npx', ['playwright', 'test']],
].filter(([name]) => only.length === 0 || only.includes(name));

const results = [];
for (const [name, cmd, args] of stages) {
  console.log(`\n=== ${name}: ${cmd} ${args.join(' ')}`);
  const started = Date.now();
  const r = spawnSync(cmd, args, { stdio: 'inherit', env: { ...process.env, FORCE_COLOR: '0' } });
  results.push({ name, ok: r.status === 0, seconds: (Date.now() - started) / 1000 });
}

console.log('\n=== summary');
for (const r of results) console.log(`${r.ok ? 'PASS' : 'FAIL'}  ${r.name.padEnd(12)} ${r.seconds.toFixed(1)} s`);
const failed = results.filter((r) => !r.ok).length;
console.log(`stages: ${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
