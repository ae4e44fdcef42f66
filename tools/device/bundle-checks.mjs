// Packs the GPU precision checks (tools/device/checks.ts) into a folder that runs with plain Node
// on a GPU machine without npm: one esbuild bundle (WGSL `?raw` imports inlined, `webgpu` left
// external), the model-check data (tiny models + onnxruntime-node reference logits, about 1 MB,
// written by checks-reference.ts here, since the GPU machine has no onnxruntime), and the
// `webgpu` package's loader and dawn.node unless the folder already has them (pack.mjs puts the
// checks beside the bench bundle, which does).
//   node tools/device/bundle-checks.mjs [outDir]      (default .tmp/checks-bundle)
//   node <outDir>/device-checks.mjs --out checks.json
// Rule: built from the same sources as the vitest checks; never edit the output.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleNodeScript, copyWebgpuPackage } from './bundle.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const out = resolve(process.argv[2] ?? join(root, '.tmp/checks-bundle'));
mkdirSync(out, { recursive: true });

await bundleNodeScript(join(root, 'tools/device/checks.ts'), join(out, 'device-checks.mjs'));

// The reference needs onnxruntime-node, which only this machine has.
execFileSync(process.execPath, ['--import', 'tsx', join(root, 'tools/device/checks-reference.ts'), join(out, 'checks-data')], { cwd: root, stdio: 'inherit' });

copyWebgpuPackage(root, out);
console.log(`wrote ${out}/device-checks.mjs and checks-data/; run: node ${out}/device-checks.mjs --out checks.json`);
