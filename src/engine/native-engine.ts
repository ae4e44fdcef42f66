/**
 * The native engine: a loaded Phi-3 (our WGSL kernels) plus its tokenizer and chat template,
 * behind the engine interface the worker uses. Generation reuses the KV cache across turns
 * (`generate` keeps the longest common token prefix). `opts.precision` picks the numeric path
 * ('auto' by default: the f16 KV cache, on every device); `info.precision` says which one runs.
 * Rule: no DOM, no storage; files arrive as `ModelFiles`, so this runs in a worker and in Node.
 */
import { ChatEngine, loadTextSide, modelInfo } from './chat-engine';
import type { GpuContext } from './gpu/device';
import { loadModelFiles, type LoadedModel, type ModelFiles } from './phi3/files';
import type { LoadOptions, Phi3Runtime } from './phi3/model';
import type { GpuMemoryInfo, ModelInfo } from './types';

export { toStats } from './chat-engine';

export class NativeEngine extends ChatEngine {
  readonly kind = 'native' as const;

  private constructor(
    private loaded: LoadedModel,
    text: ReturnType<typeof loadTextSide>,
    readonly info: ModelInfo,
  ) {
    super(text.tokenizer, text.eosTokenIds);
  }

  static async load(ctx: GpuContext, files: ModelFiles, opts: LoadOptions = {}): Promise<NativeEngine> {
    const loaded = await loadModelFiles(ctx, files, opts);
    const text = loadTextSide(loaded.configs);
    const info = modelInfo(loaded.plan, loaded.runtime.contextLimit, loaded.runtime.precision, text.tokenizer);
    return new NativeEngine(loaded, text, info);
  }

  get runtime(): Phi3Runtime {
    return this.loaded.runtime;
  }

  /** What the model holds on the GPU now, and the context cache's bytes at its largest (the whole context, or a window's ring). */
  gpuMemory(): GpuMemoryInfo {
    const r = this.loaded.runtime;
    const { weights, kvCache, other } = r.gpuBytes();
    return { weightBytes: weights, kvCacheBytes: kvCache, kvCacheMaxBytes: r.kvBytesPerPosition * r.kvMaxPositions, otherBytes: other };
  }

  destroy(): void {
    this.loaded.runtime.destroy();
  }
}
