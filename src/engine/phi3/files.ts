/**
 * A model as a set of files, wherever they live (IndexedDB chunks, a picked folder, Node's disk),
 * and loading one into a ready `Phi3Runtime`.
 *
 * Paths are relative to the model root as in the Hugging Face repo (`onnx/model_q4.onnx`,
 * `config.json`). External data named in the graph is resolved relative to the `.onnx` file's
 * folder, as onnxruntime does. Rule: sources are opened lazily and read in ranges; nothing here
 * may read a weight file whole.
 */
import { AppError } from '../errors';
import type { GpuContext } from '../gpu/device';
import { readOnnxModel } from '../onnx/reader';
import type { SourceResolver } from '../onnx/tensor-data';
import type { ByteSource } from '../onnx/types';
import { checkAgainstConfigs, planPhi3, type Phi3Plan } from './plan';
import { Phi3Runtime, type LoadOptions } from './model';

export interface ModelFiles {
  /** The graph file, relative to the root (e.g. `onnx/model_q4.onnx`). */
  onnxPath: string;
  /** Opens a file for ranged reads; throws MODEL_MISSING_WEIGHT-style errors when absent. */
  open(path: string): Promise<ByteSource>;
  /** Parsed JSON of a root file such as `config.json`, or undefined when the model lacks it. */
  readJson(path: string): Promise<unknown>;
}

export interface LoadedModel {
  plan: Phi3Plan;
  runtime: Phi3Runtime;
  configs: { config?: Record<string, unknown>; genai?: Record<string, unknown>; generation?: Record<string, unknown>; tokenizer?: unknown; tokenizerConfig?: unknown };
}

function dirOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i + 1);
}

function asRecord(v: unknown): Record<string, unknown> | undefined {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/** Opens every source the graph needs up front so the resolver can stay synchronous. */
async function resolverFor(files: ModelFiles, plan: { externalFiles: string[] }, graphSource: ByteSource): Promise<SourceResolver> {
  const base = dirOf(files.onnxPath);
  const external = new Map<string, ByteSource>();
  for (const name of plan.externalFiles) {
    if (name.includes('..') || name.startsWith('/')) {
      throw new AppError('ONNX_MALFORMED', `The model names external data "${name}" outside its folder; refusing to read it.`);
    }
    external.set(name, await files.open(base + name));
  }
  return (file) => {
    if (file === null) return graphSource;
    const s = external.get(file);
    if (!s) throw new AppError('MODEL_MISSING_WEIGHT', `External data file "${file}" was not opened.`);
    return s;
  };
}

export async function loadModelFiles(ctx: GpuContext, files: ModelFiles, opts: LoadOptions = {}): Promise<LoadedModel> {
  const graphSource = await files.open(files.onnxPath);
  const model = await readOnnxModel(graphSource);
  const externalFiles = new Set<string>();
  const collect = (g: typeof model.graph) => {
    for (const t of g.initializers) if (t.location.kind === 'external') externalFiles.add(t.location.file);
    for (const n of g.nodes) for (const a of Object.values(n.attributes)) if (a.type === 'graph') collect(a.value);
  };
  collect(model.graph);
  const resolve = await resolverFor(files, { externalFiles: [...externalFiles] }, graphSource);
  const plan = await planPhi3(model, resolve);
  const configs: LoadedModel['configs'] = {
    config: asRecord(await files.readJson('config.json')),
    genai: asRecord(await files.readJson('genai_config.json')),
    generation: asRecord(await files.readJson('generation_config.json')),
    tokenizer: await files.readJson('tokenizer.json'),
    tokenizerConfig: await files.readJson('tokenizer_config.json'),
  };
  checkAgainstConfigs(plan, configs.config);
  const runtime = await loadInErrorScopes(ctx, () => Phi3Runtime.load(ctx, plan, resolve, opts));
  return { plan, runtime, configs };
}

/** Loads inside out-of-memory and validation scopes, so a GPU failure is a typed error, not a silent one. */
async function loadInErrorScopes(ctx: GpuContext, load: () => Promise<Phi3Runtime>): Promise<Phi3Runtime> {
  const { device } = ctx;
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let runtime: Phi3Runtime | undefined;
  let thrown: unknown;
  try {
    runtime = await load();
  } catch (err) {
    thrown = err;
  }
  const validation = await device.popErrorScope();
  const oom = await device.popErrorScope();
  if ((validation || oom) && runtime) runtime.destroy();
  if (oom) throw new AppError('GPU_OUT_OF_MEMORY', `The GPU ran out of memory while loading the model (${oom.message}). Close other GPU-heavy tabs, or pick a smaller model or context.`);
  if (validation) throw new AppError('GPU_VALIDATION', `WebGPU rejected the model's setup: ${validation.message}`);
  if (thrown !== undefined) throw thrown;
  return runtime!;
}
