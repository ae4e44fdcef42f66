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
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const out = resolve(process.argv[2] ?? join(root, '.tmp/checks-bundle'));
mkdirSync(out, { recursive: true });

/** `import src from './x.wgsl?raw'` → the file's text, as Vite does. */
const rawPlugin = {
  name: 'raw',
  setup(b) {
    b.onResolve({ filter: /\?raw$/ }, (args) => ({ path: resolve(args.resolveDir, args.path.slice(0, -4)), namespace: 'raw' }));
    b.onLoad({ filter: /.*/, namespace: 'raw' }, (args) => ({ contents: readFileSync(args.path, 'utf8'), loader: 'text' }));
  },
};

await build({
  entryPoints: [join(root, 'tools/device/checks.ts')],
  outfile: join(out, 'device-checks.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['webgpu'],
  plugins: [rawPlugin],
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  logLevel: 'warning',
});

// The reference needs onnxruntime-node, which only this machine has.
execFileSync(process.execPath, ['--import', 'tsx', join(root, 'tools/device/checks-reference.ts'), join(out, 'checks-data')], { cwd: root, stdio: 'inherit' });

if (!existsSync(join(out, 'node_modules/webgpu/index.js'))) {
  const pkg = join(root, 'node_modules/webgpu');
  const dest = join(out, 'node_modules/webgpu');
  const platformDir = `${process.platform}-${process.platform === 'darwin' ? 'universal' : process.arch}`;
  rmSync(dest, { recursive: true, force: true });
  mkdirSync(join(dest, 'dist'), { recursive: true });
  for (const f of ['index.js', 'package.json', 'LICENSE.md']) cpSync(join(pkg, f), join(dest, f));
  cpSync(join(pkg, 'dist', platformDir), join(dest, 'dist', platformDir), { recursive: true });
}
console.log(`wrote ${out}/device-checks.mjs and checks-data/; run: node ${out}/device-checks.mjs --out checks.json`);
