/**
 * The second engine: Phi-3 on onnxruntime-web, behind the same surface as `NativeEngine` (issue 3
 * §8). WebGPU EP (`onnxruntime-web/webgpu`, onnxruntime's native WebGPU EP) where WebGPU exists,
 * WASM EP (`onnxruntime-web/wasm`) where it does not. In the browser each bundle is imported
 * lazily and its `.wasm` is served from our own origin (ort-browser.ts) — never from a CDN. In Node
 * (the benchmark runner, gpu-node tests) the caller passes the WebGPU build already set up on
 * the `webgpu` package's Dawn (ort-node.ts); everything else here is the same code.
 *
 * Memory: onnxruntime-web takes a model as whole buffers, so loading reads the `.onnx` and each
 * external-data file into one Uint8Array each (the Phi-3 web build: 838 MB + 1.45 GB of JS
 * memory at peak), and onnxruntime copies them into its WebAssembly heap (wasm32: 4 GB in all) —
 * the WebGPU EP uploads the weights to the GPU from there. Our copies are dropped once the
 * session exists. A file over 2 GiB cannot be passed as one buffer: that is an ONNX_UNSUPPORTED
 * error (use the native engine, which streams weights in ranges).
 *
 * Logits are read back to the CPU (the last row only on WebGPU; the whole (S, vocab) output on
 * WASM) and sampled by `sampleReference`; the native engine samples on the GPU. The KV cache stays
 * on the GPU under the WebGPU EP (see ort-runtime.ts for how it is kept and truncated).
 *
 * fp16 (q4f16) files on a device without `shader-f16` (SwiftShader, many integrated GPUs): the
 * WebGPU EP cannot run them (the native EP refuses them; the older JSEP path silently returns
 * zeros), so `load` checks the device first and throws ONNX_UNSUPPORTED telling the user to pick
 * the WASM provider or the native engine, which converts fp16 to f32 on upload. The WASM EP runs
 * fp16 files everywhere.
 * Graphs built for onnxruntime's CPU and CUDA providers with a window-sized KV cache
 * (GroupQueryAttention's sliding_window_cache = 1, onnxruntime-genai's builder since August
 * 2026) are refused with ONNX_UNSUPPORTED before their weights are read: the WebGPU provider
 * does not implement the attribute and the CPU kernel wants window-sized cache buffers, not the
 * growing cache kept here. The native engine runs them.
 * Threads: onnxruntime's default — several only when the page is crossOriginIsolated (COOP/COEP);
 * otherwise one. A production build emits each `.wasm` as a hashed asset (WASM EP 14 MiB, WebGPU
 * build 27 MiB) and each bundle as its own lazily loaded chunk.
 * Speed on SwiftShader: onnxruntime's native WebGPU EP needs seconds per step for a 32064-row
 * lm_head (MatMulNBits), so browser tests use a small vocabulary; real GPUs do not have this cost.
 * Rule: nothing here touches the DOM or storage, or imports a host's loader eagerly (the `?url`
 * imports in ort-browser.ts need Vite).
 */
import type * as Ort from 'onnxruntime-web';
import { AppError } from '../errors';
import { ChatEngine, loadTextSide, modelInfo } from '../chat-engine';
import { readOnnxModel } from '../onnx/reader';
import { bytesSource } from '../onnx/sources';
import type { ByteSource, OnnxGraph } from '../onnx/types';
import type { ModelFiles } from '../phi3/files';
import { checkAgainstConfigs, planPhi3, windowedCacheNode } from '../phi3/plan';
import type { ModelInfo } from '../types';
import { OrtRuntime, type OrtModule, type OrtProvider } from './ort-runtime';

export type { OrtProvider } from './ort-runtime';

/** The largest file onnxruntime-web can take as one buffer (its external-data and model sizes are int32 in the heap). */
export const ORT_MAX_FILE_BYTES = 2 ** 31 - 1;

export interface OrtLoadOptions {
  provider: OrtProvider;
  /** Caps the context below the model's maximum (fewer positions, smaller KV cache). */
  maxContext?: number;
  /**
   * An onnxruntime-web module already set up for this host (Node: `loadOrtNode` in ort-node.ts,
   * which runs the WebGPU build on the `webgpu` package's Dawn). Default: the browser bundle for
   * `provider`, with our own `.wasm` (ort-browser.ts).
   */
  ort?: OrtModule;
}

/** Reads a whole file, refusing what cannot be one buffer. */
async function readWhole(files: ModelFiles, path: string): Promise<{ bytes: Uint8Array; source: ByteSource }> {
  const source = await files.open(path);
  if (source.size > ORT_MAX_FILE_BYTES) {
    throw new AppError(
      'ONNX_UNSUPPORTED',
      `${path} is ${source.size} bytes; onnxruntime-web needs each model file as one buffer of at most 2 GiB (${ORT_MAX_FILE_BYTES} bytes). Use the native engine for this model.`,
    );
  }
  const bytes = await source.read(0, source.size);
  if (bytes.byteLength !== source.size) throw new AppError('ONNX_TRUNCATED', `${path}: read ${bytes.byteLength} of ${source.size} bytes.`);
  return { bytes, source: bytesSource(bytes) };
}

function externalFilesOf(graph: OnnxGraph, into = new Set<string>()): Set<string> {
  for (const t of graph.initializers) if (t.location.kind === 'external') into.add(t.location.file);
  for (const n of graph.nodes) for (const a of Object.values(n.attributes)) if (a.type === 'graph') externalFilesOf(a.value, into);
  return into;
}

function dirOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i + 1);
}

function asRecord(v: unknown): Record<string, unknown> | undefined {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}


/** The GPUDevice onnxruntime's WebGPU EP created (it exists once a session does). */
async function ortDevice(ort: OrtModule): Promise<GPUDevice> {
  const device = (await ort.env.webgpu.device) as GPUDevice | undefined;
  if (!device) throw new AppError('WEBGPU_UNAVAILABLE', 'onnxruntime created a WebGPU session but exposes no GPUDevice. Choose the WASM provider.');
  return device;
}

export class OrtEngine extends ChatEngine {
  readonly kind = 'ort' as const;

  private constructor(
    private readonly ortRuntime: OrtRuntime,
    text: ReturnType<typeof loadTextSide>,
    readonly info: ModelInfo,
  ) {
    super(text.tokenizer, text.eosTokenIds);
  }

  get runtime(): OrtRuntime {
    return this.ortRuntime;
  }

  static async load(files: ModelFiles, opts: OrtLoadOptions): Promise<OrtEngine> {
    const { provider } = opts;
    if (provider !== 'webgpu' && provider !== 'wasm') throw new AppError('BAD_ARGUMENT', `provider must be "webgpu" or "wasm", got ${JSON.stringify(provider)}.`);
    const ort = opts.ort ?? (await (await import('./ort-browser')).loadOrtBrowser(provider));
    if (provider === 'webgpu' && (typeof navigator === 'undefined' || !navigator.gpu)) {
      throw new AppError('WEBGPU_UNAVAILABLE', 'WebGPU is not available here (no navigator.gpu), so the onnxruntime WebGPU provider cannot run. Choose the WASM provider (in Node: load onnxruntime through loadOrtNode).');
    }

    // The graph and its external data, whole (see the module header for the memory cost).
    const graph = await readWhole(files, files.onnxPath);
    const model = await readOnnxModel(graph.source);
    // Refused before the weights are read (gigabytes): see windowedCacheNode.
    const windowed = windowedCacheNode(model.graph);
    if (windowed) {
      throw new AppError(
        'ONNX_UNSUPPORTED',
        `${files.onnxPath} was built for onnxruntime's CPU or CUDA provider: its GroupQueryAttention "${windowed.name}" keeps a window-sized KV cache (sliding_window_cache = 1), which onnxruntime-web cannot run. Use the native engine, which runs this model's attention window itself.`,
      );
    }
    const external = new Map<string, { bytes: Uint8Array; source: ByteSource }>();
    for (const name of externalFilesOf(model.graph)) {
      if (name.includes('..') || name.startsWith('/')) throw new AppError('ONNX_MALFORMED', `The model names external data "${name}" outside its folder; refusing to read it.`);
      external.set(name, await readWhole(files, dirOf(files.onnxPath) + name));
    }
    const plan = await planPhi3(model, (file) => {
      const s = file === null ? graph.source : external.get(file)?.source;
      if (!s) throw new AppError('MODEL_MISSING_WEIGHT', `External data file "${file}" was not read.`);
      return s;
    });
    const config = asRecord(await files.readJson('config.json'));
    const generation = asRecord(await files.readJson('generation_config.json'));
    const tokenizerJson = await files.readJson('tokenizer.json');
    const tokenizerConfig = await files.readJson('tokenizer_config.json');
    checkAgainstConfigs(plan, config);

    // The adapter onnxruntime will ask for (its default request); its device exists only after a session does.
    if (provider === 'webgpu' && plan.activationDtype === 'f16' && !(await navigator.gpu.requestAdapter())?.features.has('shader-f16')) {
      throw new AppError(
        'ONNX_UNSUPPORTED',
        `${files.onnxPath} is an fp16 (q4f16) model and this GPU has no shader-f16, so onnxruntime's WebGPU provider cannot run it. Choose the WASM provider, the native engine, or a q4 (fp32) file.`,
      );
    }

    let session: Ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(graph.bytes, {
        executionProviders: [provider],
        graphOptimizationLevel: 'all',
        // `path` must equal the location recorded in the model.
        externalData: [...external].map(([path, f]) => ({ path, data: f.bytes })),
        preferredOutputLocation: provider === 'webgpu' ? OrtRuntime.outputLocations(model.graph.outputs.map((o) => o.name)) : undefined,
      });
    } catch (err) {
      const cause = err instanceof Error ? err.message : String(err);
      // onnxruntime's runtime does not start again in this worker after it failed to start once.
      const broken = /initializeWebAssembly|initWasm|Aborted\(/.test(cause) ? ' Reload the page to try again.' : '';
      throw new AppError('MODEL_UNSUPPORTED_GRAPH', `onnxruntime-web (${provider}) could not load ${files.onnxPath}: ${cause}${broken}`);
    }
    if (!opts.ort) (await import('./ort-browser')).ortRuntimeStarted(provider);

    let device: GPUDevice | undefined;
    try {
      device = provider === 'webgpu' ? await ortDevice(ort) : undefined;
    } catch (err) {
      await session.release();
      throw err;
    }
    const c = plan.config;
    const contextLimit = Math.min(c.maxPositions, opts.maxContext ?? Infinity);
    const runtime = new OrtRuntime({ ort, session, provider, contextLimit, vocab: c.vocab, device, rotarySwitch: plan.rotary.long?.switchAbove });
    // onnxruntime computes in the graph's own precision.
    const text = loadTextSide({ tokenizer: tokenizerJson, tokenizerConfig, generation });
    const info = modelInfo(plan, contextLimit, plan.activationDtype, text.tokenizer);
    return new OrtEngine(runtime, text, info);
  }

  get provider(): OrtProvider {
    return this.runtime.provider;
  }

  /** Releases the session and the GPU-resident KV cache. */
  destroy(): Promise<void> {
    return this.runtime.destroy();
  }
}
