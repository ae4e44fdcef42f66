/**
 * Model slice: the catalog, the cached models, the running download and its progress, storage
 * estimate and persistence, the engine (which kind, loading, "Ready") and whether the engine
 * worker is alive. Its actions are the only UI path to the downloader and to loading a model
 * (through the worker client's typed calls).
 *
 * Until the worker has listed the cache the status is 'checking' and the panel offers no action:
 * it never says "Not downloaded" of a stored model, and no button appears and then moves. If that
 * listing waits on another tab holding an older version of the store open, `storageBlocked` says
 * so until the listing comes.
 *
 * Loading: a model loads by itself when its download completes, when the page opens with it
 * complete in the cache (no network), after a worker restart, and after a lost GPU device. A load
 * that fails leaves the status 'cached' with the reason in `loadError`. At page start, a model
 * that another tab of the app has on the GPU waits for that tab instead (`inOtherTab`,
 * modelLock.ts), so two tabs do not hold two copies unless the user loads it anyway.
 *
 * Rule: keep the download handle out of the state (it is not serialisable); keep the Hub URL and
 * the preselected model read once from the page URL (`?hub=`, `?model=`, and the testing knob
 * `?chunk=<bytes>`), so a reload resumes the same model from the same Hub.
 */
import type { StateCreator } from 'zustand';
import { entryFromParam, hubBaseUrl, type CatalogEntry } from '../storage/catalog';
import type { DownloadHandle, EngineClient } from '../worker/client';
import type { EngineKind } from '../engine/types';
import type { AutotuneMode, CachedModel, DownloadProgress, DownloadTuning, LoadedInfo, StorageEstimateResult } from '../worker/protocol';
import type { LocalPick } from '../storage/local-pick';
import type { AppState } from './index';
import type { ModelLock } from './modelLock';

export type ModelService = Pick<
  EngineClient,
  | 'catalog'
  | 'listCached'
  | 'download'
  | 'deleteModel'
  | 'deleteAll'
  | 'estimate'
  | 'persist'
  | 'onDead'
  | 'restart'
  | 'load'
  | 'unload'
  | 'onDeviceLost'
  | 'onStorageBlocked'
  | 'onContextLimit'
  | 'onTuning'
>;

/**
 * `checking`: the cache has not been listed yet, so the panel offers no action (no "Download" for
 * a model that may be stored, and no button that moves when the answer comes); `loading`:
 * IndexedDB → GPU; `ready`: the model can chat.
 */
export type ModelStatus = 'checking' | 'idle' | 'downloading' | 'paused' | 'cached' | 'loading' | 'ready' | 'error';

/** Engines the switch offers; `available` is false for one not built into this app yet. */
export const ENGINES: ReadonlyArray<{ kind: EngineKind; name: string; available: boolean }> = [
  { kind: 'native', name: 'Native (WebGPU kernels)', available: true },
  { kind: 'ort', name: 'onnxruntime-web (WebGPU, or WASM without a hardware GPU; slower)', available: true },
];

export interface ModelState {
  hub: string;
  /** A catalog id or a Hub repo id (`org/name[/folder]`). */
  selected: string;
  catalog: CatalogEntry[];
  cached: CachedModel[];
  status: ModelStatus;
  progress?: DownloadProgress;
  error?: { code: string; message: string };
  estimate?: StorageEstimateResult;
  persisted?: boolean;
  workerDead?: string;
  engine: EngineKind;
  /**
   * The model on the GPU, once loaded. `info.contextLimit` and `info.gpuMemory` follow the worker's
   * `context-limit` (a KV cache out of GPU memory lowered the context); `contextAtLoad` is then the
   * limit the load had.
   */
  loaded?: { modelId: string; info: LoadedInfo; loadMs: number; contextAtLoad?: number };
  /** Why the last load failed (the model stays cached). */
  loadError?: { code: string; message: string };
  /** Set while a lost GPU device is being recovered from. */
  deviceLost?: string;
  /** Set while opening the model store waits on another tab (an older version of the app). */
  storageBlocked?: string;
  /**
   * Set when the stored model did not load by itself because another tab of the app has it on
   * the GPU (modelLock.ts); it loads once that tab lets go, or now with Load.
   */
  inOtherTab?: boolean;
}

export interface ModelSlice {
  model: ModelState;
  initModels: () => Promise<void>;
  selectModel: (selected: string) => void;
  downloadModel: () => Promise<void>;
  /** Copies a picked folder or dropped files into the store (nothing is uploaded), then loads them. */
  importLocalModel: (pick: LocalPick) => Promise<void>;
  pauseDownload: () => void;
  cancelDownload: () => Promise<void>;
  deleteModel: (modelId: string) => Promise<void>;
  deleteAllModels: () => Promise<void>;
  refreshStorage: () => Promise<void>;
  requestPersist: () => Promise<void>;
  restartWorker: () => Promise<void>;
  /** Loads the selected model (complete in the cache) to the GPU. */
  loadModel: () => Promise<void>;
  setEngine: (engine: EngineKind) => void;
}

const DEFAULT_MODEL = 'phi-3-mini-4k-q4f16';

/**
 * The page's URL knobs: `?model=` preselects a model, `?hub=` another Hub, `?chunk=` the download
 * chunk size, and `?autotune=always|never` whether a native load measures its kernels (default
 * 'auto': on hardware GPUs only; 'always' measures on SwiftShader too, for tests and debugging).
 */
function readUrl(): { hub: string; selected: string; tuning?: DownloadTuning; autotune?: AutotuneMode } {
  const search = typeof location === 'undefined' ? '' : location.search;
  const params = new URLSearchParams(search);
  let hub: string;
  try {
    hub = hubBaseUrl(search, import.meta.env.VITE_HUB_URL as string | undefined);
  } catch {
    hub = hubBaseUrl('', undefined);
  }
  const model = params.get('model');
  const chunk = Number(params.get('chunk'));
  const tuning = Number.isInteger(chunk) && chunk >= 64 * 1024 && chunk <= 64 * 1024 * 1024 ? { chunkSize: chunk } : undefined;
  const autotune = params.get('autotune');
  return { hub, selected: model && entryFromParam(model) ? model : (lastModel() ?? DEFAULT_MODEL), tuning, ...(autotune === 'always' || autotune === 'never' ? { autotune } : {}) };
}

// The last model that loaded, preselected on the next visit when the URL names none.
const LAST_MODEL_KEY = 'phi3.lastModel';
function lastModel(): string | undefined {
  try {
    const v = typeof localStorage === 'undefined' ? null : localStorage.getItem(LAST_MODEL_KEY);
    return v && (entryFromParam(v) || v.startsWith('local:')) ? v : undefined;
  } catch {
    return undefined;
  }
}
function rememberModel(selected: string): void {
  try {
    localStorage.setItem(LAST_MODEL_KEY, selected);
  } catch {
    // Storage blocked: the default is preselected next time.
  }
}

/** The storage id the worker uses for a selection (catalog id, or the custom entry's id). */
export function modelIdOf(selected: string): string | undefined {
  if (selected.startsWith('local:')) return selected;
  return entryFromParam(selected)?.id;
}

/** The name the UI shows for a stored model: its record's, marked where it came from local files. */
export const storedName = (c: Pick<CachedModel, 'modelId' | 'name'>) => (c.modelId.startsWith('local:') ? `${c.name} (local files)` : c.name);

/** The selection's catalog entry (none for a local import or a Hub repo) and the name the UI shows for it. */
export function selectedModel(m: Pick<ModelState, 'catalog' | 'selected'> & { cached?: CachedModel[] }): { entry?: CatalogEntry; name: string } {
  const entry = m.catalog.find((e) => e.id === m.selected);
  if (entry) return { entry, name: entry.name };
  const stored = m.cached?.find((c) => c.modelId === modelIdOf(m.selected));
  return { name: stored ? storedName(stored) : m.selected };
}

/**
 * The stored models the catalog does not list (local imports, Hub repos typed in), as the model
 * menu offers them: `value` is the selection that names each (`local:<name>`, or `org/name[/folder]`
 * for a repo on its main branch, the only one the repo box takes).
 */
export function storedOffCatalog(m: Pick<ModelState, 'catalog' | 'cached'>): Array<{ value: string; name: string }> {
  const out: Array<{ value: string; name: string }> = [];
  for (const c of m.cached) {
    if (m.catalog.some((e) => e.id === c.modelId)) continue;
    const value = c.modelId.startsWith('local:') ? c.modelId : /^hub:(.+)@main$/.exec(c.modelId)?.[1];
    if (value && modelIdOf(value) === c.modelId) out.push({ value, name: storedName(c) });
  }
  return out;
}

const errorOf = (err: unknown) => ({
  code: typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : 'INTERNAL',
  message: err instanceof Error ? err.message : String(err),
});

export const createModelSlice =
  (service: () => ModelService, lock?: ModelLock): StateCreator<AppState, [], [], ModelSlice> =>
  (set, get) => {
    const url = readUrl();
    let handle: DownloadHandle | undefined;
    /** Waiting in line for the model lock while another tab has the model on the GPU. */
    let waitForLock: AbortController | undefined;
    let watching = false;
    /** Bumped by each load, so a superseded load's outcome is ignored. */
    let loadSeq = 0;
    /** Set once the worker has listed the cache: until then no status can be read from it. */
    let listed = false;
    const patch = (p: Partial<ModelState>) => set({ model: { ...get().model, ...p } });

    /** The model left the GPU: give the lock to the next tab, and stop waiting for it. */
    const letGo = () => {
      waitForLock?.abort();
      waitForLock = undefined;
      lock?.release();
    };

    /**
     * Another tab has the model on the GPU: wait in line, then load unless the user has loaded
     * it meanwhile (then the lock is simply kept) or chosen another model (then it is let go).
     */
    const loadWhenOtherTabLetsGo = () => {
      const controller = new AbortController();
      waitForLock = controller;
      void lock?.acquire({ wait: true, signal: controller.signal }).then((got) => {
        if (!got || waitForLock !== controller) return;
        waitForLock = undefined;
        const m = get().model;
        if (m.loaded || m.status === 'loading') return;
        if (m.inOtherTab && m.status === 'cached') {
          patch({ inOtherTab: undefined });
          void get().loadModel();
        } else lock?.release();
      });
    };
    const listCached = async () => {
      const cached = await service().listCached();
      listed = true;
      if (get().model.storageBlocked) patch({ storageBlocked: undefined });
      return cached;
    };

    const statusFromCache = (cached: CachedModel[], selected: string): ModelStatus => {
      if (!listed) return 'checking';
      const c = cached.find((m) => m.modelId === modelIdOf(selected));
      return c?.complete ? 'cached' : c ? 'paused' : 'idle';
    };

    /** Re-reads the cache list; the status follows it unless a download runs or the model is (being) loaded. */
    const refreshCached = async () => applyCached(await listCached());
    const applyCached = (cached: CachedModel[]) => {
      const { selected, status } = get().model;
      const fromCache = statusFromCache(cached, selected);
      const keep = handle !== undefined || ((status === 'loading' || status === 'ready') && fromCache === 'cached');
      patch({ cached, ...(keep ? {} : { status: fromCache }) });
    };

    /**
     * While a local import runs (it names its id in its first progress): the selection before it,
     * given back if the import ends with nothing stored, so a failed or stopped import leaves the
     * model the user had selected, and on the GPU, as it was.
     */
    let importFrom: string | undefined;
    const run = async (start: () => DownloadHandle, from?: string) => {
      if (handle) return;
      importFrom = from;
      patch({ status: 'downloading', error: undefined, progress: undefined });
      handle = start();
      try {
        await handle.done;
        const cached = await listCached();
        handle = undefined;
        importFrom = undefined;
        if (statusFromCache(cached, get().model.selected) === 'cached') {
          // Straight from 'downloading' to 'loading': a message waiting for the model
          // (chatSlice) must not take a passing 'cached' for the end of the wait.
          patch({ cached });
          void get().refreshStorage();
          await get().loadModel();
        } else {
          applyCached(cached);
          await get().refreshStorage();
        }
      } catch (err) {
        handle = undefined;
        const restore = importFrom;
        importFrom = undefined;
        const e = errorOf(err);
        const cached = await listCached().catch(() => get().model.cached);
        if (restore !== undefined && !cached.some((c) => c.modelId === modelIdOf(get().model.selected))) patch({ selected: restore });
        const { selected, loaded } = get().model;
        const aborted = e.code === 'ABORTED';
        // A model still on the GPU stays usable: only a failed import can end while one is loaded.
        // After an import the status is the selection's own (the import's failure is in `error`).
        const status = loaded && loaded.modelId === modelIdOf(selected) ? 'ready' : aborted || restore !== undefined ? statusFromCache(cached, selected) : 'error';
        patch({ cached, status, error: aborted ? undefined : e });
      }
    };

    return {
      model: { hub: url.hub, selected: url.selected, catalog: [], cached: [], status: 'checking', engine: 'native' },

      initModels: async () => {
        if (!watching) {
          watching = true;
          service().onDead((err) => {
            handle = undefined;
            loadSeq++;
            letGo();
            patch({ workerDead: err.message, status: 'error', error: { code: err.code, message: err.message }, loaded: undefined });
          });
          // A lost device took the weights with it; the bytes are still in IndexedDB.
          service().onDeviceLost((modelId, err) => {
            loadSeq++;
            patch({ loaded: undefined, deviceLost: err.message });
            if (modelId && modelId === modelIdOf(get().model.selected)) void get().loadModel();
            else patch({ status: statusFromCache(get().model.cached, get().model.selected) });
          });
          // The context meter, the policy's counts and the panel follow the lowered limit.
          service().onContextLimit(({ modelId, contextLimit, gpuMemory }) => {
            const { loaded } = get().model;
            if (loaded?.modelId !== modelId) return;
            const info = { ...loaded.info, contextLimit, ...(gpuMemory ? { gpuMemory } : {}) };
            patch({ loaded: { ...loaded, info, contextAtLoad: loaded.contextAtLoad ?? loaded.info.contextLimit } });
          });
          // A first load's kernel measurement in the background: the panel shows its progress, then the choice.
          service().onTuning(({ modelId, tuning }) => {
            const { loaded } = get().model;
            if (loaded?.modelId !== modelId) return;
            patch({ loaded: { ...loaded, info: { ...loaded.info, tuning } } });
          });
          service().onStorageBlocked(() =>
            patch({
              storageBlocked:
                'Another tab is running an older version of this app and keeps the model storage open. Close or reload that tab; this one goes on by itself.',
            }),
          );
        }
        let loadNow: boolean;
        try {
          // The catalog first, then the status: the panel's note for the entry lands before its buttons.
          const [catalog, cached] = await Promise.all([service().catalog(), listCached()]);
          patch({ catalog });
          // A stored model loads at once, straight from 'checking' to 'loading': a message waiting
          // for the model (chatSlice) must not take a passing 'cached' for the end of the wait.
          loadNow = statusFromCache(cached, get().model.selected) === 'cached' && !get().model.loaded;
          // Unless another tab of the app has it on the GPU: then this tab waits in line.
          if (loadNow && lock && !(await lock.acquire())) {
            loadNow = false;
            patch({ cached, status: 'cached', inOtherTab: true });
            loadWhenOtherTabLetsGo();
          } else if (loadNow) patch({ cached });
          else applyCached(cached);
        } catch (err) {
          patch({ status: 'error', error: errorOf(err) });
          return;
        }
        if (loadNow) {
          void get().refreshStorage();
          await get().loadModel();
        } else {
          await get().refreshStorage();
        }
      },

      selectModel: (selected) => {
        if (handle) return;
        loadSeq++;
        const wasLoaded = get().model.loaded;
        const status = statusFromCache(get().model.cached, selected);
        // A stored model goes straight to 'loading' (see initModels).
        patch({ selected, status: status === 'cached' ? 'loading' : status, error: undefined, progress: undefined, loaded: undefined, loadError: undefined });
        if (wasLoaded) void service().unload().catch(() => undefined);
        letGo();
        patch({ inOtherTab: undefined });
        if (status === 'cached') void get().loadModel();
      },

      loadModel: async () => {
        // Without WebGPU the native engine cannot run: fall back to onnxruntime's WASM engine (the panel says it is slow).
        if (get().gpu.probe?.available === false && get().model.engine === 'native') patch({ engine: 'ort' });
        const { selected, engine } = get().model;
        const modelId = modelIdOf(selected);
        if (!modelId || handle) return;
        const seq = ++loadSeq;
        const t0 = performance.now();
        patch({ status: 'loading', progress: undefined, loadError: undefined, loaded: undefined });
        try {
          const info = await service().load(
            modelId,
            engine,
            (progress) => {
              if (seq === loadSeq) patch({ progress });
            },
            url.autotune,
          );
          if (seq !== loadSeq) return;
          rememberModel(selected);
          patch({ status: 'ready', progress: undefined, deviceLost: undefined, inOtherTab: undefined, loaded: { modelId, info, loadMs: performance.now() - t0 } });
          // On the GPU here: other tabs that start now wait (if another tab holds it, the wait
          // started at start-up goes on and takes it when that tab lets go).
          void lock?.acquire();
        } catch (err) {
          if (seq !== loadSeq) return;
          // Taken at start-up for this load: another tab may load it instead.
          lock?.release();
          patch({ status: statusFromCache(get().model.cached, get().model.selected), progress: undefined, loadError: errorOf(err) });
        }
      },

      setEngine: (engine) => {
        if (engine === get().model.engine || !ENGINES.some((e) => e.kind === engine && e.available)) return;
        patch({ engine });
        if (get().model.status === 'ready' || get().model.status === 'cached') void get().loadModel();
      },

      downloadModel: () => {
        // Ask for persistent storage when the user commits to a multi-GB download (the outcome is shown).
        if (get().model.persisted === undefined) void get().requestPersist().catch(() => undefined);
        return run(() =>
          service().download({ kind: 'hub', model: get().model.selected }, get().model.hub, {
            tuning: url.tuning,
            onProgress: (progress) => patch({ progress }),
          }),
        );
      },

      importLocalModel: (pick) => {
        // A local copy is as large as a download, and as slow to make again.
        if (get().model.persisted === undefined) void get().requestPersist().catch(() => undefined);
        return run(
          () =>
            service().download({ kind: 'local', ...pick }, get().model.hub, {
              tuning: url.tuning,
              // The worker picks the stored id (`local:<name>` or `local:<name> (n)`, local-import.ts)
              // and names it in its first progress, before copying: from then on it is the selection.
              onProgress: (progress) => patch({ progress, selected: progress.modelId }),
            }),
          get().model.selected,
        );
      },

      pauseDownload: () => handle?.pause(),

      cancelDownload: async () => {
        const { selected, progress } = get().model;
        if (handle && importFrom !== undefined && progress?.modelId !== selected) {
          // A local import that has not named its id yet: stopping it is enough (it deletes what it stored).
          handle.pause();
          return;
        }
        const id = modelIdOf(selected) ?? selected;
        if (handle) await handle.cancel(id);
        else await service().deleteModel(id);
        await refreshCached();
        patch({ progress: undefined });
      },

      deleteModel: async (modelId) => {
        if (get().model.loaded?.modelId === modelId) {
          loadSeq++;
          patch({ loaded: undefined });
          await service().unload();
          letGo();
        }
        await service().deleteModel(modelId);
        await refreshCached();
        await get().refreshStorage();
      },

      deleteAllModels: async () => {
        if (get().model.loaded) {
          loadSeq++;
          patch({ loaded: undefined });
          await service().unload();
          letGo();
        }
        await service().deleteAll();
        await refreshCached();
        await get().refreshStorage();
      },

      refreshStorage: async () => {
        try {
          patch({ estimate: await service().estimate() });
        } catch {
          // No estimate in this browser; the panel shows none.
        }
      },

      requestPersist: async () => {
        const r = await service().persist();
        patch({ persisted: r.persisted });
      },

      restartWorker: async () => {
        service().restart();
        patch({ workerDead: undefined, error: undefined });
        await get().initModels();
      },
    };
  };
