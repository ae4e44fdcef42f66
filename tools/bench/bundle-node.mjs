// Packs `npm run bench:node` into a folder that runs with plain Node on a GPU machine that has no
// npm access (no `npm ci`): one esbuild bundle (WGSL `?raw` imports inlined) plus the `webgpu`
// package's loader and this platform's dawn.node.
//   node tools/bench/bundle-node.mjs [outDir]      (default .tmp/bench-node-bundle, ~25 MB)
//   node <outDir>/bench-node.mjs --full --rounds 3 --decode-steps 16 --out bench-node.json
// Rule: the bundle is built from the same sources as bench:node; never edit the output.
import { cpSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const out = resolve(process.argv[2] ?? join(root, '.tmp/bench-node-bundle'));
rmSync(out, { recursive: true, force: true });
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
  entryPoints: [join(root, 'tools/bench/node.ts')],
  outfile: join(out, 'bench-node.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['webgpu'],
  plugins: [rawPlugin],
  // tools/bench/node.ts finds the repo root from its own folder; in the bundle that is `out`.
  define: { 'import.meta.dirname': JSON.stringify(join(out, 'x', 'y')) },
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  logLevel: 'warning',
});

const pkg = join(root, 'node_modules/webgpu');
const dest = join(out, 'node_modules/webgpu');
const platformDir = `${process.platform}-${process.platform === 'darwin' ? 'universal' : process.arch}`;
mkdirSync(join(dest, 'dist'), { recursive: true });
for (const f of ['index.js', 'package.json', 'LICENSE.md']) cpSync(join(pkg, f), join(dest, f));
cpSync(join(pkg, 'dist', platformDir), join(dest, 'dist', platformDir), { recursive: true });
console.log(`wrote ${out}/bench-node.mjs and node_modules/webgpu (${platformDir}); run: node ${out}/bench-node.mjs --help`);
