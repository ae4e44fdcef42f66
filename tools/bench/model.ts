/**
 * Node only: the benchmark's model — a given directory, or a generated full-width random Phi-3
 * (hidden 3072, intermediate 8192, vocab 32064) reused from a cache directory when the same
 * options were generated before — plus the machine description both runners record.
 * Rule: generation streams to disk (tools/tiny-model writes in chunks) and checks free space first.
 */
import { existsSync, readdirSync, readFileSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { join, relative } from 'node:path';
import { generateTinyModel } from '../tiny-model/generate';
import type { TinyModelOptions } from '../tiny-model/options';
import { nodeModelFiles } from '../../src/engine/node/model-dir';
import type { BenchReport } from './report';

export function fullWidthOptions(layers: number, dtype: 'q4' | 'q4f16'): Partial<TinyModelOptions> {
  return { layout: 'web2024', dtype, layers, hidden: 3072, heads: 32, kvHeads: 32, intermediate: 8192, vocab: 32064, maxPositions: 4096, seed: 1, repeatLayerWeights: true };
}

/** Bytes a full-width model of `layers` layers needs on disk (approximate, for the free-space check). */
export function estimateModelBytes(layers: number, dtype: 'q4' | 'q4f16'): number {
  const perLayer = (4 * 3072 * 3072 + 3 * 3072 * 8192) * (0.5 + (dtype === 'q4f16' ? 2 : 4) / 32);
  const embedding = 32064 * 3072 * (dtype === 'q4f16' ? 2 : 4);
  const lmHead = 32064 * 3072 * (0.5 + (dtype === 'q4f16' ? 2 : 4) / 32);
  return layers * perLayer + embedding + lmHead;
}

const MARKER = 'bench-model.json';

/** Generates (or reuses) a full-width model in `dir`; returns whether it was generated now. */
export async function ensureFullWidthModel(dir: string, layers: number, dtype: 'q4' | 'q4f16', log: (s: string) => void): Promise<boolean> {
  const options = fullWidthOptions(layers, dtype);
  const marker = join(dir, MARKER);
  if (existsSync(marker) && readFileSync(marker, 'utf8') === JSON.stringify(options)) {
    log(`reusing ${dir}`);
    return false;
  }
  const need = estimateModelBytes(layers, dtype);
  const parent = existsSync(dir) ? dir : join(dir, '..');
  const fs = statfsSync(existsSync(parent) ? parent : '.');
  const free = fs.bavail * fs.bsize;
  if (free < need * 1.1) throw new Error(`Generating a ${layers}-layer ${dtype} Phi-3 needs about ${(need / 1e9).toFixed(2)} GB; only ${(free / 1e9).toFixed(2)} GB is free under ${parent}. Free space or pass --model DIR.`);
  log(`generating a ${layers}-layer full-width ${dtype} Phi-3 (~${(need / 1e9).toFixed(2)} GB) in ${dir} …`);
  const t = performance.now();
  await generateTinyModel(dir, options);
  writeFileSync(marker, JSON.stringify(options));
  log(`generated in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  return true;
}

function walk(root: string, dir = root): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(root, full));
    else if (e.name !== MARKER) out.push(relative(root, full));
  }
  return out.sort();
}

/** The files a page must fetch (graph, its external data, JSON configs and tokenizer) and the model's shape. */
export function describeModel(dir: string, generated: boolean): { paths: string[]; info: BenchReport['model'] } {
  const files = nodeModelFiles(dir);
  const onnxPath = files.onnxPath;
  const all = walk(files.root);
  // Only the chosen graph, its data, and root-level JSON: other .onnx variants in the folder are not needed.
  const paths = all.filter((p) => p === onnxPath || p.startsWith(`${onnxPath}_data`) || p.startsWith(`${onnxPath}.data`) || (!p.includes('/') && p.endsWith('.json')));
  const config = existsSync(join(files.root, 'config.json')) ? (JSON.parse(readFileSync(join(files.root, 'config.json'), 'utf8')) as Record<string, unknown>) : {};
  const num = (k: string) => (typeof config[k] === 'number' ? (config[k] as number) : NaN);
  const bytes = paths.reduce((n, p) => n + statSync(join(files.root, p)).size, 0);
  return {
    paths,
    info: {
      dir: files.root,
      onnxPath,
      layers: num('num_hidden_layers'),
      hidden: num('hidden_size'),
      intermediate: num('intermediate_size'),
      vocab: num('vocab_size'),
      dtype: /f16/.test(onnxPath) ? 'q4f16' : 'q4',
      bytes,
      generated,
    },
  };
}

export function machineBase(): Pick<BenchReport['machine'], 'cpus' | 'cpuModel' | 'platform' | 'node'> & { loadavg: number[] } {
  const c = cpus();
  return { cpus: c.length, cpuModel: c[0]?.model ?? 'unknown', platform: `${process.platform} ${process.arch}`, node: process.version, loadavg: loadavg() };
}

/**
 * The checkout's commit (`-dirty` when the working tree differs); BENCH_COMMIT where there is no
 * git (tools/device/run.sh sets it from the packed bundle), else 'unknown'.
 */
export function gitCommit(cwd: string): string {
  if (process.env.BENCH_COMMIT) return process.env.BENCH_COMMIT;
  try {
    return execFileSync('git', ['describe', '--always', '--dirty'], { cwd, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}
