// Bundles one Node entry point of this repo (TypeScript, WGSL `?raw` imports inlined, the `webgpu`
// package left external) into a single ESM file that runs with plain Node on another machine.
// Used by tools/device/pack.mjs; the output folder must hold node_modules/webgpu next to it.
// Rule: the bundle must not depend on paths of the build machine.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { build } from 'esbuild';

/** `import src from './x.wgsl?raw'` → the file's text, as Vite does. */
export const rawPlugin = {
  name: 'raw',
  setup(b) {
    b.onResolve({ filter: /\?raw$/ }, (args) => ({ path: resolve(args.resolveDir, args.path.slice(0, -4)), namespace: 'raw' }));
    b.onLoad({ filter: /.*/, namespace: 'raw' }, (args) => ({ contents: readFileSync(args.path, 'utf8'), loader: 'text' }));
  },
};

export async function bundleNodeScript(entry, outfile) {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: ['webgpu'],
    plugins: [rawPlugin],
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    logLevel: 'warning',
  });
}
