/**
 * The model slice's loading rules, with a scripted stand-in for the worker client (the worker
 * itself is tested in src/worker/*.browser.test.ts and the e2e specs): the status reads
 * 'checking' until the cache is listed; a completed download loads by itself and reads 'ready'; a
 * cached model loads on start; a failed load leaves it 'cached' with the reason; a lost device
 * reloads the model; switching models unloads the old one; a listing held up by another tab says
 * so until it comes.
 */
import { describe, expect, it } from 'vitest';
import type { ModelInfo } from '../engine/types';
import type { CachedModel, DownloadProgress } from '../worker/protocol';
import { WorkerError, type ContextLimitChange, type DownloadHandle, type TuningChange } from '../worker/client';
import { CATALOG } from '../storage/catalog';
import { createAppStore } from './index';
import { selectedModel, storedOffCatalog, type ModelService } from './modelSlice';
import type { ModelLock } from './modelLock';
import { testServices } from './testing';

const INFO: ModelInfo = { layers: 2, hidden: 128, heads: 4, kvHeads: 4, headDim: 32, intermediate: 256, vocab: 32064, maxPositions: 4096, contextLimit: 4096, layout: 'web2024', precision: 'f32' };
const ID = 'phi-3-mini-4k-q4f16';
const cachedModel = (complete: boolean): CachedModel => ({ modelId: ID, name: 'Phi-3', complete, storedBytes: 10, totalBytes: 10, updatedAt: 1 });

class ScriptedModels {
  cached: CachedModel[] = [];
  loads: string[] = [];
  engines: string[] = [];
  unloads = 0;
  failLoad: WorkerError | null = null;
  lost: Array<(modelId: string | null, err: WorkerError) => void> = [];
  blocked: Array<() => void> = [];
  limits: Array<(change: ContextLimitChange) => void> = [];
  tunings: Array<(change: TuningChange) => void> = [];
  /** When set, listCached answers only once it resolves (a worker still opening IndexedDB). */
  listGate: Promise<void> | undefined;

  service(): ModelService {
    return {
      catalog: async () => [],
      listCached: async () => {
        await this.listGate;
        return this.cached;
      },
      download: (): DownloadHandle => {
        const done = (async () => {
          this.cached = [cachedModel(true)];
          return { model: this.cached[0], stats: { requests: 1, retries: 0, reResolves: 0, integrityFailures: 0, fetchedBytes: 10, downloadMs: 1, verifyMs: 1 } };
        })();
        return { id: 1, done, pause: () => undefined, cancel: async () => undefined };
      },
      deleteModel: async () => undefined,
      deleteAll: async () => undefined,
      estimate: async () => ({ usage: 0, quota: 1e9, available: 1e9, persisted: false }),
      persist: async () => ({ persisted: true, wasPersisted: false }),
      onDead: () => () => undefined,
      restart: () => undefined,
      load: async (modelId: string, engine, onProgress?: (p: DownloadProgress) => void) => {
        this.loads.push(modelId);
        this.engines.push(engine);
        onProgress?.({ modelId, phase: 'load', files: [], doneBytes: 5, totalBytes: 10, fetchedBytes: 0, bytesPerSec: 1, etaSec: 5 });
        await new Promise((r) => setTimeout(r, 0));
        if (this.failLoad) throw this.failLoad;
        return INFO;
      },
      unload: async () => {
        this.unloads++;
      },
      onDeviceLost: (l) => {
        this.lost.push(l);
        return () => undefined;
      },
      onStorageBlocked: (l) => {
        this.blocked.push(l);
        return () => undefined;
      },
      onContextLimit: (l) => {
        this.limits.push(l);
        return () => undefined;
      },
      onTuning: (l) => {
        this.tunings.push(l);
        return () => undefined;
      },
    };
  }
}

function setup(models: ScriptedModels, modelLock?: ModelLock) {
  const service = models.service();
  return createAppStore({ ...testServices(), models: () => service, modelLock });
}

/**
 * The Web Lock's semantics between stores in one process (the e2e runs the real one across
 * tabs): one holder, waiters granted in order, a waiter's abort takes it out of the line.
 */
class TabLocks {
  holder: object | null = null;
  line: Array<() => void> = [];
  tab(): ModelLock {
    const me = {};
    return {
      acquire: async ({ wait = false, signal } = {}) => {
        if (this.holder === me) return true;
        if (this.holder === null) {
          this.holder = me;
          return true;
        }
        if (!wait) return false;
        return new Promise<boolean>((resolve) => {
          const grant = () => {
            this.holder = me;
            resolve(true);
          };
          this.line.push(grant);
          signal?.addEventListener('abort', () => {
            this.line = this.line.filter((g) => g !== grant);
            resolve(false);
          });
        });
      },
      release: () => {
        if (this.holder !== me) return;
        this.holder = null;
        this.line.shift()?.();
      },
    };
  }
}

const settle = () => new Promise((r) => setTimeout(r, 10));

describe('model slice', () => {
  it('loads a model by itself when its download completes, straight from downloading to loading to ready', async () => {
    const models = new ScriptedModels();
    const store = setup(models);
    await store.getState().initModels();
    expect(store.getState().model.status).toBe('idle');
    const statuses: string[] = [];
    store.subscribe((s) => statuses.at(-1) !== s.model.status && statuses.push(s.model.status));
    await store.getState().downloadModel();
    // Never a passing 'cached' between the two: a message waiting for the model would stop waiting.
    expect(statuses).toEqual(['downloading', 'loading', 'ready']);
    expect(models.loads).toEqual([ID]);
    const m = store.getState().model;
    expect(m.status).toBe('ready');
    expect(m.loaded?.info.contextLimit).toBe(4096);
    expect(m.progress).toBeUndefined();
  });

  it("reads 'checking' until the cache is listed, through a model switch: never 'idle' for a stored model", async () => {
    const models = new ScriptedModels();
    models.cached = [cachedModel(true)];
    let release!: () => void;
    models.listGate = new Promise((r) => (release = r));
    const store = setup(models);
    expect(store.getState().model.status).toBe('checking');
    const init = store.getState().initModels();
    store.getState().selectModel('phi-3-mini-4k-q4');
    store.getState().selectModel(ID);
    await settle();
    expect(store.getState().model.status).toBe('checking');
    expect(models.loads).toEqual([]);
    release();
    await init;
    expect(models.loads).toEqual([ID]);
    expect(store.getState().model.status).toBe('ready');
  });

  it('says why while the cache listing waits on another tab, and stops saying it once the listing comes', async () => {
    const models = new ScriptedModels();
    let release!: () => void;
    models.listGate = new Promise((r) => (release = r));
    const store = setup(models);
    const init = store.getState().initModels();
    await settle();
    expect(models.blocked).toHaveLength(1);
    models.blocked[0]();
    expect(store.getState().model.status).toBe('checking');
    expect(store.getState().model.storageBlocked).toMatch(/Another tab .* older version of this app .* Close or reload that tab/);
    release();
    await init;
    expect(store.getState().model.storageBlocked).toBeUndefined();
    expect(store.getState().model.status).toBe('idle');
  });

  it('loads a complete cached model on start; a partial one is left for the user to resume', async () => {
    const models = new ScriptedModels();
    models.cached = [cachedModel(false)];
    const store = setup(models);
    await store.getState().initModels();
    expect(store.getState().model.status).toBe('paused');
    expect(models.loads).toEqual([]);

    const again = new ScriptedModels();
    again.cached = [cachedModel(true)];
    const s2 = setup(again);
    const statuses: string[] = [s2.getState().model.status];
    s2.subscribe((s) => statuses.at(-1) !== s.model.status && statuses.push(s.model.status));
    await s2.getState().initModels();
    expect(again.loads).toEqual([ID]);
    // Never a passing 'cached': a message sent while the page starts waits for 'ready'.
    expect(statuses).toEqual(['checking', 'loading', 'ready']);
  });

  it('a failed load leaves the model cached with the reason; Load tries again', async () => {
    const models = new ScriptedModels();
    models.cached = [cachedModel(true)];
    models.failLoad = new WorkerError('ONNX_MALFORMED', 'bad graph');
    const store = setup(models);
    await store.getState().initModels();
    expect(store.getState().model.status).toBe('cached');
    expect(store.getState().model.loadError).toEqual({ code: 'ONNX_MALFORMED', message: 'bad graph' });
    models.failLoad = null;
    await store.getState().loadModel();
    expect(store.getState().model.status).toBe('ready');
    expect(store.getState().model.loadError).toBeUndefined();
  });

  it('a lost device reloads the loaded model and says so until it is ready again', async () => {
    const models = new ScriptedModels();
    models.cached = [cachedModel(true)];
    const store = setup(models);
    await store.getState().initModels();
    expect(models.lost).toHaveLength(1);
    models.lost[0](ID, new WorkerError('GPU_DEVICE_LOST', 'The GPU device was lost (test).'));
    expect(store.getState().model.status).toBe('loading');
    expect(store.getState().model.deviceLost).toContain('GPU device was lost');
    await settle();
    expect(models.loads).toEqual([ID, ID]);
    expect(store.getState().model.status).toBe('ready');
    expect(store.getState().model.deviceLost).toBeUndefined();
  });

  it('a context limit lowered by the worker (KV cache out of GPU memory) shows on the loaded model, with the limit it loaded with', async () => {
    const models = new ScriptedModels();
    models.cached = [cachedModel(true)];
    const store = setup(models);
    await store.getState().initModels();
    await settle();
    expect(store.getState().model.status).toBe('ready');
    expect(models.limits).toHaveLength(1);
    const gpuMemory = { weightBytes: 100, kvCacheBytes: 2048, kvCacheMaxBytes: 4096, otherBytes: 10 };
    // Another model's change (a load that replaced it meanwhile) is not this one's.
    models.limits[0]({ modelId: 'other', contextLimit: 16 });
    expect(store.getState().model.loaded?.info.contextLimit).toBe(4096);
    models.limits[0]({ modelId: ID, contextLimit: 2048, gpuMemory });
    expect(store.getState().model.loaded).toMatchObject({ modelId: ID, contextAtLoad: 4096, info: { contextLimit: 2048, gpuMemory } });
    // Lowered again: the limit at load stays the first one.
    models.limits[0]({ modelId: ID, contextLimit: 1024 });
    expect(store.getState().model.loaded).toMatchObject({ contextAtLoad: 4096, info: { contextLimit: 1024, gpuMemory } });
    expect(store.getState().model.status).toBe('ready');
  });

  it('a kernel tuning measured in the background after the load shows on the loaded model as it goes', async () => {
    const models = new ScriptedModels();
    models.cached = [cachedModel(true)];
    const store = setup(models);
    await store.getState().initModels();
    await settle();
    expect(models.tunings).toHaveLength(1);
    const defaults = { decode: { name: 'default' }, prefill: { name: 'default' } };
    const measuring = { source: 'measuring' as const, ...defaults, progress: { done: 3, total: 12 } };
    // Another model's measurement (it was replaced meanwhile) is not this one's.
    models.tunings[0]({ modelId: 'other', tuning: measuring });
    expect(store.getState().model.loaded?.info.tuning).toBeUndefined();
    models.tunings[0]({ modelId: ID, tuning: measuring });
    expect(store.getState().model.loaded?.info.tuning).toEqual(measuring);
    const measured = { source: 'measured' as const, decode: { name: 'dp4a', timings: [{ name: 'default', ms: 2 }, { name: 'dp4a', ms: 1 }] }, prefill: { name: 'default' } };
    models.tunings[0]({ modelId: ID, tuning: measured });
    expect(store.getState().model.loaded).toMatchObject({ modelId: ID, info: { contextLimit: 4096, tuning: measured } });
    expect(store.getState().model.status).toBe('ready');
  });

  it('choosing another model unloads the loaded one; switching the engine reloads with it', async () => {
    const models = new ScriptedModels();
    models.cached = [cachedModel(true)];
    const store = setup(models);
    await store.getState().initModels();
    store.getState().selectModel('phi-3-mini-4k-q4');
    await settle();
    expect(models.unloads).toBe(1);
    expect(store.getState().model.status).toBe('idle');
    expect(store.getState().model.loaded).toBeUndefined();
    const statuses: string[] = [];
    const stop = store.subscribe((s) => statuses.at(-1) !== s.model.status && statuses.push(s.model.status));
    store.getState().selectModel(ID);
    await settle();
    stop();
    expect(statuses).toEqual(['loading', 'ready']);
    store.getState().setEngine('ort');
    await settle();
    expect(store.getState().model.engine).toBe('ort');
    expect(models.engines).toEqual(['native', 'native', 'ort']);
    expect(store.getState().model.status).toBe('ready');
  });

  it('a second tab does not load the model another tab has on the GPU; it loads once that one lets go', async () => {
    const locks = new TabLocks();
    const first = new ScriptedModels();
    first.cached = [cachedModel(true)];
    const a = setup(first, locks.tab());
    await a.getState().initModels();
    expect(a.getState().model.status).toBe('ready');

    const second = new ScriptedModels();
    second.cached = [cachedModel(true)];
    const b = setup(second, locks.tab());
    await b.getState().initModels();
    expect(b.getState().model).toMatchObject({ status: 'cached', inOtherTab: true });
    expect(second.loads).toEqual([]);

    await a.getState().deleteModel(ID);
    await settle();
    expect(second.loads).toEqual([ID]);
    expect(b.getState().model.status).toBe('ready');
    expect(b.getState().model.inOtherTab).toBeUndefined();
  });

  it('a load that fails at start-up lets the lock go, and Load here too loads beside the other tab', async () => {
    const locks = new TabLocks();
    const failing = new ScriptedModels();
    failing.cached = [cachedModel(true)];
    failing.failLoad = new WorkerError('GPU_OUT_OF_MEMORY', 'Not enough GPU memory.');
    const a = setup(failing, locks.tab());
    await a.getState().initModels();
    expect(a.getState().model.loadError?.message).toBe('Not enough GPU memory.');
    expect(locks.holder).toBeNull();

    const ok = new ScriptedModels();
    ok.cached = [cachedModel(true)];
    const b = setup(ok, locks.tab());
    await b.getState().initModels();
    expect(b.getState().model.status).toBe('ready');
    const c = setup(Object.assign(new ScriptedModels(), { cached: [cachedModel(true)] }), locks.tab());
    await c.getState().initModels();
    expect(c.getState().model.inOtherTab).toBe(true);
    await c.getState().loadModel();
    expect(c.getState().model.status).toBe('ready');
  });

  it('without WebGPU a cached model loads on onnxruntime (WASM) instead of the native engine', async () => {
    const models = new ScriptedModels();
    models.cached = [cachedModel(true)];
    const store = setup(models);
    store.setState({ gpu: { status: 'done', probe: { available: false, reason: 'navigator.gpu is missing', features: [] } } });
    await store.getState().initModels();
    expect(models.engines).toEqual(['ort']);
    expect(store.getState().model.engine).toBe('ort');
    expect(store.getState().model.status).toBe('ready');
  });
});

/**
 * A local import as the worker runs it (local-import.ts): its first progress names the id it
 * stores under, then it copies; stopped, it deletes what it stored and rejects with ABORTED.
 */
function localImports(models: ScriptedModels, service: ModelService, script: { id?: string; fail?: WorkerError }) {
  const deleted: string[] = [];
  let stopped = false;
  let wake = () => undefined as void;
  const progress = (modelId: string): DownloadProgress => ({ modelId, phase: 'download', files: [], doneBytes: 0, totalBytes: 10, fetchedBytes: 0, bytesPerSec: 0, etaSec: null });
  service.deleteModel = async (id) => void deleted.push(id);
  service.download = (ref, _hub, opts): DownloadHandle => {
    if (ref.kind !== 'local') throw new Error('this script imports only');
    const done = (async () => {
      await settle();
      if (script.fail) throw script.fail;
      if (script.id) opts?.onProgress?.(progress(script.id));
      // Copying: until stopped, or done after 30 ms.
      if (!stopped) await new Promise<void>((resolve) => ((wake = resolve), setTimeout(resolve, 30)));
      if (stopped || !script.id) throw new WorkerError('ABORTED', 'The import was cancelled.');
      const model: CachedModel = { modelId: script.id, name: script.id.slice(6), complete: true, storedBytes: 10, totalBytes: 10, updatedAt: 2 };
      models.cached = [...models.cached, model];
      return { model, stats: { requests: 0, retries: 0, reResolves: 0, integrityFailures: 0, fetchedBytes: 0, downloadMs: 1, verifyMs: 0 } };
    })();
    return {
      id: 2,
      done,
      pause: () => {
        stopped = true;
        wake();
      },
      cancel: async (id) => {
        stopped = true;
        wake();
        await done.catch(() => undefined);
        deleted.push(id);
      },
    };
  };
  return deleted;
}

const PICK = { name: 'my-phi3', files: [{ path: 'model.onnx', file: new File(['x'], 'model.onnx') }] };

describe('model slice: local imports', () => {
  async function readyWithCatalogModel(script: { id?: string; fail?: WorkerError }) {
    const models = new ScriptedModels();
    models.cached = [cachedModel(true)];
    const service = models.service();
    const deleted = localImports(models, service, script);
    const store = createAppStore({ ...testServices(), models: () => service });
    await store.getState().initModels();
    expect(store.getState().model).toMatchObject({ selected: ID, status: 'ready' });
    return { models, store, deleted };
  }

  it('selects the id the worker names (another model of that name is kept as "name (2)") and loads it', async () => {
    const { models, store } = await readyWithCatalogModel({ id: 'local:my-phi3 (2)' });
    const selections = [store.getState().model.selected];
    store.subscribe((s) => selections.at(-1) !== s.model.selected && selections.push(s.model.selected));
    await store.getState().importLocalModel(PICK);
    expect(selections).toEqual([ID, 'local:my-phi3 (2)']);
    expect(models.loads).toEqual([ID, 'local:my-phi3 (2)']);
    expect(store.getState().model).toMatchObject({ status: 'ready', loaded: { modelId: 'local:my-phi3 (2)' } });
  });

  it('stopped before it names its id, it deletes no model, and the loaded one stays selected and ready', async () => {
    const { store, deleted } = await readyWithCatalogModel({});
    const running = store.getState().importLocalModel(PICK);
    expect(store.getState().model.status).toBe('downloading');
    await store.getState().cancelDownload();
    await running;
    expect(deleted).toEqual([]);
    expect(store.getState().model).toMatchObject({ selected: ID, status: 'ready', loaded: { modelId: ID } });
    expect(store.getState().model.error).toBeUndefined();
  });

  it('stopped after it names its id, it deletes only its own copy and gives the selection back', async () => {
    const { store, deleted } = await readyWithCatalogModel({ id: 'local:my-phi3' });
    const running = store.getState().importLocalModel(PICK);
    await settle();
    expect(store.getState().model.selected).toBe('local:my-phi3');
    await store.getState().cancelDownload();
    await running;
    expect(deleted).toEqual(['local:my-phi3']);
    expect(store.getState().model).toMatchObject({ selected: ID, status: 'ready' });
  });

  it('a failed import with nothing loaded: the reason is shown, and the status is the selection\'s own, not a failed download', async () => {
    const models = new ScriptedModels();
    models.cached = [cachedModel(true)];
    models.failLoad = new WorkerError('WEBGPU_UNAVAILABLE', 'no adapter');
    const service = models.service();
    localImports(models, service, { fail: new WorkerError('MODEL_NOT_FOUND', 'The chosen files hold no model: no .onnx file') });
    const store = createAppStore({ ...testServices(), models: () => service });
    await store.getState().initModels();
    expect(store.getState().model).toMatchObject({ selected: ID, status: 'cached' });
    await store.getState().importLocalModel(PICK);
    expect(store.getState().model).toMatchObject({ selected: ID, status: 'cached', error: { code: 'MODEL_NOT_FOUND' } });
  });

  it('files that hold no model: the reason is shown, and the loaded model stays selected and usable', async () => {
    const { store } = await readyWithCatalogModel({ fail: new WorkerError('MODEL_NOT_FOUND', 'The chosen files hold no model: no .onnx file') });
    await store.getState().importLocalModel(PICK);
    expect(store.getState().model).toMatchObject({ selected: ID, status: 'ready', error: { code: 'MODEL_NOT_FOUND', message: 'The chosen files hold no model: no .onnx file' } });
  });
});

describe('selectedModel', () => {
  it('names a catalog entry by its name, a stored model outside the catalog by its stored name, else by the selection', () => {
    const catalog = [...CATALOG];
    expect(selectedModel({ catalog, selected: ID })).toEqual({ entry: CATALOG.find((e) => e.id === ID), name: 'Phi-3 Mini 4K Instruct (int4, fp16 activations)' });
    expect(selectedModel({ catalog, selected: 'local:my-phi3' })).toEqual({ name: 'local:my-phi3' });
    const cached = [{ modelId: 'local:my-phi3', name: 'my-phi3', complete: true, storedBytes: 1, totalBytes: 1, updatedAt: 1 }];
    expect(selectedModel({ catalog, cached, selected: 'local:my-phi3' })).toEqual({ name: 'my-phi3 (local files)' });
  });
});

describe('storedOffCatalog', () => {
  it('offers each stored local import and Hub repo by the selection that names it, and no catalog model twice', () => {
    const stored = (modelId: string, name: string): CachedModel => ({ modelId, name, complete: true, storedBytes: 1, totalBytes: 1, updatedAt: 1 });
    const cached = [stored(ID, 'Phi-3'), stored('local:my-phi3 (2)', 'my-phi3 (2)'), stored('hub:test-org/tiny/onnx@main', 'test-org/tiny (onnx)'), stored('hub:o/n@v2', 'o/n')];
    expect(storedOffCatalog({ catalog: [...CATALOG], cached })).toEqual([
      { value: 'local:my-phi3 (2)', name: 'my-phi3 (2) (local files)' },
      { value: 'test-org/tiny/onnx', name: 'test-org/tiny (onnx)' },
    ]);
  });
});
