// Packs `npm run bench:node` into a folder that runs with plain Node on a GPU machine that has no
// npm access (no `npm ci`): one esbuild bundle (WGSL `?raw` imports inlined) plus, under
// node_modules/, the `webgpu` package's loader with this platform's dawn.node and the two files
// of onnxruntime-web's WebGPU build that the Node runner loads (dist/ort.webgpu.bundle.min.mjs,
// which embeds its Emscripten glue, and dist/ort-wasm-simd-threaded.asyncify.wasm) with the
// package.json whose `exports` resolve them. Both packages stay external and are found by Node's
// own resolution from the bundle's folder, so the folder works wherever it is moved.
//   node tools/bench/bundle-node.mjs [outDir]      (default .tmp/bench-node-bundle, ~55 MB)
//   node <outDir>/bench-node.mjs --layers 24 --rounds 3 --decode-steps 16 --out bench-node.json
// Rule: the bundle is built from the same sources as bench:node; never edit the output.
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleNodeScript, copyWebgpuPackage } from '../device/bundle.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const out = resolve(process.argv[2] ?? join(root, '.tmp/bench-node-bundle'));
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

/**
 * The browser's onnxruntime loader (src/engine/ort/ort-browser.ts: Vite `?url` assets, `self`) is
 * imported lazily by OrtEngine.load only when no onnxruntime module is passed; the Node runner
 * always passes the one from ort-node.ts. In the bundle it becomes a loader that says so.
 */
const browserOrtPlugin = {
  name: 'browser-ort',
  setup(b) {
    b.onResolve({ filter: /\/ort-browser$/ }, (args) => ({ path: args.path, namespace: 'browser-ort' }));
    b.onLoad({ filter: /.*/, namespace: 'browser-ort' }, () => ({
      contents:
        "export function loadOrtBrowser() { throw new Error('The bench bundle runs in Node: load onnxruntime-web with loadOrtNode (src/engine/ort/ort-node.ts) and pass it to OrtEngine.load.'); }",
      loader: 'js',
    }));
  },
};

await bundleNodeScript(join(root, 'tools/bench/node.ts'), join(out, 'bench-node.mjs'), {
  // Resolved at run time from the bundle's own node_modules/ (copied below).
  external: ['onnxruntime-web', 'onnxruntime-web/*'],
  plugins: [browserOrtPlugin],
  // tools/bench/node.ts finds the repo root two folders above its own; in the bundle the root is
  // the bundle's folder wherever it now is, so import.meta.dirname becomes <that folder>/tools/bench.
  define: { 'import.meta.dirname': '__benchDirname' },
  banner: [
    "import { dirname as __dn, join as __jn } from 'node:path';",
    "import { fileURLToPath as __fu } from 'node:url';",
    "const __benchDirname = __jn(__dn(__fu(import.meta.url)), 'tools', 'bench');",
  ],
});

copyWebgpuPackage(root, out);

// onnxruntime-web: only what `import('onnxruntime-web/webgpu')` and ort-node.ts's resolution of the
// .wasm reach (one wasm thread, so no worker loads the separate .mjs glue).
const ortPkg = join(root, 'node_modules/onnxruntime-web');
const ortDest = join(out, 'node_modules/onnxruntime-web');
// (The package has no LICENSE file; the .mjs carries its MIT notice.)
const ortFiles = ['package.json', 'dist/ort.webgpu.bundle.min.mjs', 'dist/ort-wasm-simd-threaded.asyncify.wasm'];
mkdirSync(join(ortDest, 'dist'), { recursive: true });
for (const f of ortFiles) cpSync(join(ortPkg, f), join(ortDest, f));
console.log(`wrote ${out}/bench-node.mjs, node_modules/webgpu (${process.platform}-${process.arch}) and node_modules/onnxruntime-web (WebGPU build); run: node ${out}/bench-node.mjs --help`);
