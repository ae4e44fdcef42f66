// Packs what a borrowed GPU machine needs to run the GPU checks and the benchmark when it has
// neither npm nor a network, into `.device/` (git-ignored, about 32 MB):
//   .device/node.xz            this machine's Node binary (official x64 builds need glibc ≥ 2.28)
//   .device/debs/*.deb         Debian's Vulkan loader and GL dispatch libraries, unpacked there with dpkg -x
//   .device/bench.tar.xz       `npm run bench:node` as one bundle + the webgpu package (bundle-node.mjs),
//                              the GEMV tuning sweep (tools/bench/sweep.ts → bench/sweep.mjs), the
//                              read-ahead benchmark (tools/bench-reopen.ts → bench/bench-reopen.mjs), the
//                              decode autotune benchmark (tools/bench-autotune.ts → bench/bench-autotune.mjs), and the
//                              f32/f16 GPU checks (tools/device/bundle-checks.mjs → bench/device-checks.mjs
//                              + bench/checks-data: tiny models and onnxruntime-node logits, ~1.3 MB),
//                              compressed (dawn.node alone is 21 MB; the carry limit is 64 MiB)
//   .device/commit             the commit the bundles were built from
// With `--baseline REV`, bench/sweep-baseline.mjs is the sweep built from commit REV (a temporary
// git worktree), so `run.sh sweep` times the kernels before and after a change in one device call.
// Then, there: `bash tools/device/run.sh` (see its header). Usage here:
//   node tools/device/pack.mjs [--baseline REV]
// Rule: everything in .device/ is built from the checkout by this script; never edit it by hand.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleNodeScript } from './bundle.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const out = join(root, '.device');
const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { stdio: 'inherit', ...opts });
// The Vulkan loader, and the GL dispatch libraries the NVIDIA Vulkan driver (libGLX_nvidia) needs.
const VULKAN_DEBS = ['libvulkan1', 'libegl1', 'libglvnd0', 'libopengl0', 'libgl1', 'libglx0', 'libgles2'];

const baselineAt = process.argv.indexOf('--baseline');
const baseline = baselineAt > 0 ? process.argv[baselineAt + 1] : undefined;
if (baselineAt > 0 && !baseline) throw new Error('--baseline needs a git revision, e.g. --baseline HEAD~3');

mkdirSync(join(out, 'debs'), { recursive: true });
if (!existsSync(join(out, 'node.xz'))) {
  console.log(`compressing ${process.execPath} (${process.version}) …`);
  writeFileSync(join(out, 'node.xz'), execFileSync('xz', ['-T2', '-6', '-c', process.execPath], { maxBuffer: 1 << 30 }));
}
const have = readdirSync(join(out, 'debs'));
const missing = VULKAN_DEBS.filter((name) => !have.some((f) => f.startsWith(`${name}_`)));
if (missing.length) run('apt-get', ['download', ...missing], { cwd: join(out, 'debs') });
const staging = join(root, '.tmp/device-staging');
rmSync(staging, { recursive: true, force: true });
mkdirSync(staging, { recursive: true });
run(process.execPath, [join(root, 'tools/bench/bundle-node.mjs'), join(staging, 'bench')]);
await bundleNodeScript(join(root, 'tools/bench/sweep.ts'), join(staging, 'bench/sweep.mjs'));
await bundleNodeScript(join(root, 'tools/bench-reopen.ts'), join(staging, 'bench/bench-reopen.mjs'));
await bundleNodeScript(join(root, 'tools/bench-autotune.ts'), join(staging, 'bench/bench-autotune.mjs'));
run(process.execPath, [join(root, 'tools/device/bundle-checks.mjs'), join(staging, 'bench')]);
if (baseline) {
  const tree = join(root, '.tmp/device-baseline');
  rmSync(tree, { recursive: true, force: true });
  run('git', ['worktree', 'add', '--detach', tree, baseline], { cwd: root });
  try {
    symlinkSync(join(root, 'node_modules'), join(tree, 'node_modules'));
    const { bundleNodeScript: bundleAtBaseline } = await import(join(tree, 'tools/device/bundle.mjs'));
    await bundleAtBaseline(join(tree, 'tools/bench/sweep.ts'), join(staging, 'bench/sweep-baseline.mjs'));
    writeFileSync(join(staging, 'bench/baseline-commit'), `${execFileSync('git', ['rev-parse', '--short', baseline], { cwd: root, encoding: 'utf8' }).trim()}\n`);
  } finally {
    run('git', ['worktree', 'remove', '--force', tree], { cwd: root });
  }
}
run('tar', ['-C', staging, '-cJf', join(out, 'bench.tar.xz'), 'bench'], { env: { ...process.env, XZ_OPT: '-T2 -6' } });
rmSync(staging, { recursive: true, force: true });
let commit = 'unknown';
try {
  commit = execFileSync('git', ['describe', '--always', '--dirty'], { cwd: root, encoding: 'utf8' }).trim();
} catch {
  // not a git checkout
}
writeFileSync(join(out, 'commit'), `${commit}\n`);
console.log(`packed ${out} at ${commit}; on the GPU machine: bash tools/device/run.sh`);
