/**
 * Side-by-side benchmark in headless Chromium (issue 7):
 *   npm run bench -- --out bench.json [--layers 1] [--rounds 2] [--model DIR] [--contexts 0,512,2048]
 *                    [--prefill 128,512] [--decode-steps 4] [--engines native,ort] [--no-run-ahead] [--no-kernels] [--no-docs]
 * Builds tools/bench/page with Vite (the app's own engine modules), serves it and the model files
 * from 127.0.0.1, and runs the native engine and onnxruntime-web (WebGPU EP) on the same files,
 * alternating their order each round. The page holds the files in memory, so "load" is from
 * memory to ready. JS heap is sampled through CDP during each load. Writes the JSON report,
 * the generated section of docs/benchmarks.md and docs/bench-decode.svg. `--render report.json`
 * re-renders those docs from a saved report (browser or Node) without running anything.
 * Rule: the defaults must finish on a loaded 2-core machine with SwiftShader; bigger runs are flags.
 */
import { createReadStream, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { loadavg } from 'node:os';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium, type CDPSession, type Page } from 'playwright';
import { build } from 'vite';
import { CHROMIUM_ARGS, findChromium } from './chromium.mjs';
import { describeModel, ensureFullWidthModel, gitCommit, machineBase } from './bench/model';
import type { PrefillRuns, ProfileRuns } from './bench/profile';
import { combineRounds, computeRatios, foldDecodeProfile, foldPrefillProfile, isMissing, parseIntList, type BenchReport, type EngineResult, type KernelReport, type Missing, type RoundResult } from './bench/report';
import { renderDecodeSvg, renderMarkdown, spliceSection } from './bench/render';

type EngineName = 'native' | 'ort';
const USAGE =
  'usage: npm run bench -- --out <file.json> [--layers N] [--rounds R] [--model DIR] [--dtype q4|q4f16] [--contexts 0,512,2048] [--prefill 128,512] [--decode-steps N] [--engines native,ort] [--no-run-ahead] [--kernel-reps N] [--profile-steps N] [--no-kernels] [--no-docs] | --render <report.json>';
const ROOT = resolve(import.meta.dirname, '..');
const PAGE_DIR = join(ROOT, 'tools/bench/page');
const PAGE_OUT = join(ROOT, '.tmp/bench-page');
const log = (s: string) => console.log(`[bench] ${s}`);

const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json', '.css': 'text/css' };

/** Serves the built page at / and the model directory at /model/. */
function serve(modelDir: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const [base, rel] = path.startsWith('/model/') ? [modelDir, path.slice('/model/'.length)] : [PAGE_OUT, path === '/' ? 'index.html' : path.slice(1)];
    const file = normalize(join(base, rel));
    if (!file.startsWith(base + sep) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end(`not found: ${path}`);
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'content-length': statSync(file).size });
    createReadStream(file).pipe(res);
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => {
    const a = server.address();
    ok({ server, url: `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}` });
  }));
}

/** Samples JSHeapUsedSize every ~50 ms until `done` settles; returns the peak. */
async function sampleHeapWhile<T>(cdp: CDPSession, done: Promise<T>): Promise<{ value: T; peak: number }> {
  let peak = 0;
  let finished = false;
  const heap = async () => {
    const { metrics } = await cdp.send('Performance.getMetrics');
    return metrics.find((m) => m.name === 'JSHeapUsedSize')?.value ?? 0;
  };
  const loop = (async () => {
    while (!finished) {
      peak = Math.max(peak, await heap());
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  try {
    const value = await done;
    return { value, peak: Math.max(peak, await heap()) };
  } finally {
    finished = true;
    await loop;
  }
}

/** The report's section of docs/benchmarks.md, its JSON copy, and (browser runs) the decode chart. */
function writeDocs(report: BenchReport): void {
  const docPath = join(ROOT, 'docs/benchmarks.md');
  const doc = existsSync(docPath) ? readFileSync(docPath, 'utf8') : '# Benchmarks\n';
  writeFileSync(docPath, spliceSection(doc, `bench-${report.host}`, renderMarkdown(report)));
  writeFileSync(join(ROOT, `docs/bench-${report.host}.json`), `${JSON.stringify(report, null, 2)}\n`);
  if (report.host === 'browser') writeFileSync(join(ROOT, 'docs/bench-decode.svg'), renderDecodeSvg(report));
  log(`updated docs/benchmarks.md (section bench-${report.host}) and docs/bench-${report.host}.json`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string' },
      layers: { type: 'string', default: '1' },
      rounds: { type: 'string', default: '2' },
      model: { type: 'string' },
      dtype: { type: 'string', default: 'q4' },
      contexts: { type: 'string', default: '0,512,2048' },
      prefill: { type: 'string', default: '128,512' },
      'decode-steps': { type: 'string', default: '4' },
      engines: { type: 'string', default: 'native,ort' },
      'kernel-reps': { type: 'string', default: '4' },
      'profile-steps': { type: 'string', default: '2' },
      'no-kernels': { type: 'boolean', default: false },
      // The native engine submits each decode step only when asked for (LoadOptions.runAhead off).
      'no-run-ahead': { type: 'boolean', default: false },
      'no-docs': { type: 'boolean', default: false },
      render: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return void console.log(USAGE);
  if (values.render) {
    // Re-render docs from a saved report (e.g. bench-node.json brought back from a GPU machine).
    const report = JSON.parse(readFileSync(values.render, 'utf8')) as BenchReport;
    writeDocs(report);
    return;
  }
  if (!values.out) throw new Error(`--out is required.\n${USAGE}`);
  const positive = (flag: string, v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${flag} must be a positive integer, got "${v}".`);
    return n;
  };
  const layers = positive('layers', values.layers);
  const rounds = positive('rounds', values.rounds);
  const decodeSteps = positive('decode-steps', values['decode-steps']);
  const kernelReps = positive('kernel-reps', values['kernel-reps']);
  const profileSteps = positive('profile-steps', values['profile-steps']);
  const contexts = parseIntList('--contexts', values.contexts);
  const prefill = parseIntList('--prefill', values.prefill).filter((n) => n > 0);
  if (values.dtype !== 'q4' && values.dtype !== 'q4f16') throw new Error(`--dtype must be q4 or q4f16, got "${values.dtype}".`);
  const engines = values.engines.split(',').map((s) => s.trim()) as EngineName[];
  for (const e of engines) if (e !== 'native' && e !== 'ort') throw new Error(`--engines: "${e}" is not native or ort.`);

  const loadBefore = loadavg();
  let generated = false;
  let modelDir = values.model;
  if (!modelDir) {
    modelDir = join(ROOT, `.tmp/bench-model-l${layers}-${values.dtype}`);
    // Generated now or reused from the bench's cache: either way a random-weight model of ours.
    await ensureFullWidthModel(modelDir, layers, values.dtype, log);
    generated = true;
  }
  const model = describeModel(modelDir, generated);
  log(`model ${model.info.dir} (${model.paths.length} files, ${(model.info.bytes / 2 ** 20).toFixed(0)} MiB)`);

  log('building the bench page with Vite …');
  // The code measured is the code built now: a tree edited during the run must not relabel it.
  const commit = gitCommit(ROOT);
  mkdirSync(PAGE_OUT, { recursive: true });
  await build({ configFile: false, root: PAGE_DIR, base: '/', logLevel: 'warn', worker: { format: 'es' }, build: { outDir: PAGE_OUT, emptyOutDir: true, target: 'es2022', reportCompressedSize: false } });

  const { server, url } = await serve(model.info.dir);
  const browser = await chromium.launch({ executablePath: findChromium(), args: CHROMIUM_ARGS, headless: true });
  const notes: string[] = [];
  try {
    const page: Page = await browser.newPage();
    page.on('console', (m) => { if (m.text().startsWith('[bench')) console.log(m.text()); });
    page.on('pageerror', (e) => console.error(`[page error] ${e.message}`));
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Performance.enable');
    await page.goto(url);
    await page.waitForFunction(() => window.__bench?.ready === true);
    const init = await page.evaluate((o) => window.__bench!.init(o), { paths: model.paths, onnxPath: model.info.onnxPath });
    log(`adapter ${JSON.stringify(init.adapter)}; ${(init.bytes / 2 ** 20).toFixed(0)} MiB in page memory`);

    const results: Record<EngineName, RoundResult[]> = { native: [], ort: [] };
    const failed: Partial<Record<EngineName, string>> = {};
    const declared: Record<EngineName, number | null> = { native: null, ort: null };
    const plan = { contexts, prefill, decodeSteps };
    let profiled: ProfileRuns[] | Missing = { missing: 'not run' };
    let prefillProfiled: PrefillRuns[] | Missing = { missing: 'not run' };
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? engines : [...engines].reverse();
      for (const name of order) {
        if (failed[name]) continue;
        log(`round ${r + 1}/${rounds}: ${name} (load avg ${loadavg().map((x) => x.toFixed(2)).join(' ')})`);
        try {
          await cdp.send('HeapProfiler.collectGarbage');
          const before = (await cdp.send('Performance.getMetrics')).metrics.find((m) => m.name === 'JSHeapUsedSize')?.value ?? 0;
          const { value: loaded, peak } = await sampleHeapWhile(cdp, page.evaluate(([n, runAhead]) => window.__bench!.load(n, { runAhead }), [name, !values['no-run-ahead']] as const));
          declared[name] = loaded.declaredDispatchesPerDecode;
          log(`${name} loaded in ${loaded.loadMs.toFixed(0)} ms; JS heap ${(before / 2 ** 20).toFixed(1)} → peak ${(peak / 2 ** 20).toFixed(1)} MiB`);
          const round = await page.evaluate(([p, ms, heap]) => window.__bench!.measure(p, ms, heap), [plan, loaded.loadMs, { beforeBytes: before, peakBytes: peak }] as const);
          results[name].push(round);
          if (name === 'native' && r === rounds - 1) {
            profiled = await page.evaluate(([c, n]) => window.__bench!.profile(c, n), [contexts, profileSteps] as const);
            prefillProfiled = await page.evaluate(([p, n]) => window.__bench!.profilePrefill(p, n), [prefill, profileSteps] as const);
          }
        } catch (err) {
          failed[name] = err instanceof Error ? err.message.split('\n')[0] : String(err);
          log(`${name} failed: ${failed[name]}`);
        } finally {
          await page.evaluate(() => window.__bench!.unload()).catch(() => {});
        }
      }
    }

    // --no-kernels skips the isolated GEMVs, not the copy bandwidth: the profile's % of copy needs it.
    let kernels: KernelReport | Missing;
    log(values['no-kernels'] ? 'copy bandwidth …' : 'isolated kernel timings …');
    try {
      kernels = await page.evaluate((o) => window.__bench!.kernels(o), { reps: kernelReps, scalesDtype: values.dtype === 'q4f16' ? ('f16' as const) : ('f32' as const), copyOnly: values['no-kernels'] });
    } catch (err) {
      kernels = { missing: err instanceof Error ? err.message.split('\n')[0] : String(err) };
    }

    const copyGb = isMissing(kernels) ? null : kernels.copy.gbPerSec;
    const profile = isMissing(profiled) ? profiled : profiled.map((p) => foldDecodeProfile(p.context, p.runs, copyGb, p.inStep));
    const prefillProfile = isMissing(prefillProfiled) ? prefillProfiled : prefillProfiled.map((p) => foldPrefillProfile(p.tokens, p.runs));
    const engineResult = (name: EngineName, label: string): EngineResult | Missing => {
      if (!engines.includes(name)) return { missing: `not requested (--engines ${values.engines})` };
      if (results[name].length === 0) return { missing: failed[name] ?? 'no rounds completed' };
      if (failed[name]) notes.push(`${name} failed after ${results[name].length} round(s): ${failed[name]}`);
      return combineRounds(name, label, results[name], declared[name]);
    };
    const ortVersion = (JSON.parse(readFileSync(join(ROOT, 'node_modules/onnxruntime-web/package.json'), 'utf8')) as { version: string }).version;
    const native = engineResult('native', 'native WGSL kernels (NativeEngine)');
    const ort = engineResult('ort', `onnxruntime-web ${ortVersion}, WebGPU EP (OrtEngine)`);
    const base = machineBase();
    const swiftshader = /swiftshader/i.test(JSON.stringify(init.adapter));
    if (swiftshader) notes.push('SwiftShader is a CPU implementation of Vulkan: these figures measure this machine\'s CPUs, not any GPU, and say nothing about the targets, which are for real GPUs.');
    if (values['no-run-ahead']) notes.push('The native engine ran with run-ahead off (--no-run-ahead): each decode step was submitted only after the previous token was read back.');
    if (rounds > 1) notes.push('Round 1 of each engine compiles its pipelines; later rounds in the same page reuse per-device pipeline caches, which is why load time and time to first token spread widely.');
    notes.push('Per-token counts come from wrapping GPUComputePassEncoder.dispatchWorkgroups, GPUQueue.submit and GPUBuffer.mapAsync(READ) in the page, so both engines are counted the same way; GPU buffer bytes likewise, from GPUDevice.createBuffer and GPUBuffer.destroy (bytes asked of WebGPU, counted from just before each load).');
    notes.push('Per-kernel times are the native GEMVs in isolation on random weights at the full-width shapes; onnxruntime-web\'s per-kernel times are not collected.');
    const report: BenchReport = {
      version: 1,
      createdAt: new Date().toISOString(),
      host: 'browser',
      commit,
      machine: { cpus: base.cpus, cpuModel: base.cpuModel, loadavgBefore: loadBefore, loadavgAfter: loadavg(), platform: base.platform, node: base.node, browser: `Chromium ${browser.version()}`, adapter: init.adapter, features: init.features },
      model: model.info,
      settings: { rounds, contexts, prefill, decodeSteps, loadFrom: 'files held in page memory (fetched once from 127.0.0.1 before the first load), not IndexedDB' },
      engines: { native, ort },
      ratios: computeRatios(native, ort),
      kernels,
      profile,
      prefillProfile,
      notes,
    };
    writeFileSync(values.out, `${JSON.stringify(report, null, 2)}\n`);
    log(`wrote ${values.out}`);
    const md = renderMarkdown(report);
    console.log(`\n${md}\n`);
    if (!values['no-docs']) writeDocs(report);
  } finally {
    await browser.close();
    server.close();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
  process.exit(1);
});
