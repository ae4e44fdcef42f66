// Shared by the bundlers that pack Node entry points of this repo for a GPU machine without npm
// (tools/bench/bundle-node.mjs, tools/device/bundle-checks.mjs, tools/device/pack.mjs): one ESM
// file per entry (TypeScript, WGSL `?raw` imports inlined, the `webgpu` package left external)
// and the `webgpu` package's loader with this platform's dawn.node beside it.
// Rule: a bundle must not depend on paths of the build machine.
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';

/** `import src from './x.wgsl?raw'` → the file's text, as Vite does. */
export const rawPlugin = {
  name: 'raw',
  setup(b) {
    b.onResolve({ filter: /\?raw$/ }, (args) => ({ path: resolve(args.resolveDir, args.path.slice(0, -4)), namespace: 'raw' }));
    b.onLoad({ filter: /.*/, namespace: 'raw' }, (args) => ({ contents: readFileSync(args.path, 'utf8'), loader: 'text' }));
  },
};

const REQUIRE_BANNER = "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);";

/**
 * Bundles `entry` into `outfile`. `options` may add esbuild plugins, externals, defines or banner
 * lines (the banner always defines `require`, which bundled CommonJS code needs in ESM).
 */
export async function bundleNodeScript(entry, outfile, options = {}) {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: ['webgpu', ...(options.external ?? [])],
    plugins: [rawPlugin, ...(options.plugins ?? [])],
    define: options.define,
    banner: { js: [REQUIRE_BANNER, ...(options.banner ?? [])].join(' ') },
    logLevel: 'warning',
  });
}

/** Copies the `webgpu` package's loader and this platform's dawn.node into `out`/node_modules (unless there). */
export function copyWebgpuPackage(root, out) {
  const dest = join(out, 'node_modules/webgpu');
  if (existsSync(join(dest, 'index.js'))) return;
  const pkg = join(root, 'node_modules/webgpu');
  const platformDir = `${process.platform}-${process.platform === 'darwin' ? 'universal' : process.arch}`;
  rmSync(dest, { recursive: true, force: true });
  mkdirSync(join(dest, 'dist'), { recursive: true });
  for (const f of ['index.js', 'package.json', 'LICENSE.md']) cpSync(join(pkg, f), join(dest, f));
  cpSync(join(pkg, 'dist', platformDir), join(dest, 'dist', platformDir), { recursive: true });
}
