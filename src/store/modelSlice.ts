/**
 * Model slice: the catalog, the cached models, the running download and its progress, storage
 * estimate and persistence, and whether the engine worker is alive. Its actions are the only UI
 * path to the downloader (through the worker client's typed calls).
 *
 * Rule: keep the download handle out of the state (it is not serialisable); keep the Hub URL and
 * the preselected model read once from the page URL (`?hub=`, `?model=`, and the testing knob
 * `?chunk=<bytes>`), so a reload resumes the same model from the same Hub.
 */
import type { StateCreator } from 'zustand';
import { entryFromParam, hubBaseUrl, type CatalogEntry } from '../storage/catalog';
import type { DownloadHandle, EngineClient } from '../worker/client';
import type { CachedModel, DownloadProgress, DownloadTuning, StorageEstimateResult } from '../worker/protocol';
import type { AppState } from './index';

export type ModelService = Pick<EngineClient, 'catalog' | 'listCached' | 'download' | 'deleteModel' | 'deleteAll' | 'estimate' | 'persist' | 'onDead' | 'restart'>;

export type ModelStatus = 'idle' | 'downloading' | 'paused' | 'cached' | 'error';

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
}

export interface ModelSlice {
  model: ModelState;
  initModels: () => Promise<void>;
  selectModel: (selected: string) => void;
  downloadModel: () => Promise<void>;
  importLocalModel: (files: File[]) => Promise<void>;
  pauseDownload: () => void;
  cancelDownload: () => Promise<void>;
  deleteModel: (modelId: string) => Promise<void>;
  deleteAllModels: () => Promise<void>;
  refreshStorage: () => Promise<void>;
  requestPersist: () => Promise<void>;
  restartWorker: () => Promise<void>;
}

const DEFAULT_MODEL = 'phi-3-mini-4k-q4f16';

function readUrl(): { hub: string; selected: string; tuning?: DownloadTuning } {
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
  return { hub, selected: model && entryFromParam(model) ? model : DEFAULT_MODEL, tuning };
}

/** The storage id the worker uses for a selection (catalog id, or the custom entry's id). */
export function modelIdOf(selected: string): string | undefined {
  return entryFromParam(selected)?.id;
}

const errorOf = (err: unknown) => ({
  code: typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : 'INTERNAL',
  message: err instanceof Error ? err.message : String(err),
});

export const createModelSlice =
  (service: () => ModelService): StateCreator<AppState, [], [], ModelSlice> =>
  (set, get) => {
    const url = readUrl();
    let handle: DownloadHandle | undefined;
    let watching = false;
    const patch = (p: Partial<ModelState>) => set({ model: { ...get().model, ...p } });

    const statusFromCache = (cached: CachedModel[], selected: string): ModelStatus => {
      const c = cached.find((m) => m.modelId === modelIdOf(selected));
      return c?.complete ? 'cached' : c ? 'paused' : 'idle';
    };

    /** Re-reads the cache list; the status follows it unless a download is running. */
    const refreshCached = async () => {
      const cached = await service().listCached();
      const { selected } = get().model;
      patch({ cached, ...(handle ? {} : { status: statusFromCache(cached, selected) }) });
    };

    const run = async (start: () => DownloadHandle) => {
      if (handle) return;
      patch({ status: 'downloading', error: undefined, progress: undefined });
      handle = start();
      try {
        await handle.done;
        handle = undefined;
        await refreshCached();
        await get().refreshStorage();
      } catch (err) {
        handle = undefined;
        const e = errorOf(err);
        const cached = await service().listCached().catch(() => get().model.cached);
        patch({ cached, status: e.code === 'ABORTED' ? statusFromCache(cached, get().model.selected) : 'error', error: e.code === 'ABORTED' ? undefined : e });
      }
    };

    return {
      model: { hub: url.hub, selected: url.selected, catalog: [], cached: [], status: 'idle' },

      initModels: async () => {
        if (!watching) {
          watching = true;
          service().onDead((err) => {
            handle = undefined;
            patch({ workerDead: err.message, status: 'error', error: { code: err.code, message: err.message } });
          });
        }
        try {
          const [catalog] = await Promise.all([service().catalog(), refreshCached()]);
          patch({ catalog });
          await get().refreshStorage();
        } catch (err) {
          patch({ status: 'error', error: errorOf(err) });
        }
      },

      selectModel: (selected) => {
        if (handle) return;
        patch({ selected, status: statusFromCache(get().model.cached, selected), error: undefined, progress: undefined });
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

      importLocalModel: (files) => {
        const name = files[0]?.webkitRelativePath?.split('/')[0] || 'local model';
        const entries = files.map((file) => ({ path: file.webkitRelativePath ? file.webkitRelativePath.split('/').slice(1).join('/') : file.name, file }));
        return run(() => {
          patch({ selected: `local:${name}` });
          return service().download({ kind: 'local', name, files: entries }, get().model.hub, { tuning: url.tuning, onProgress: (progress) => patch({ progress }) });
        });
      },

      pauseDownload: () => handle?.pause(),

      cancelDownload: async () => {
        const id = modelIdOf(get().model.selected) ?? get().model.selected;
        if (handle) await handle.cancel(id);
        else await service().deleteModel(id);
        await refreshCached();
        patch({ progress: undefined });
      },

      deleteModel: async (modelId) => {
        await service().deleteModel(modelId);
        await refreshCached();
        await get().refreshStorage();
      },

      deleteAllModels: async () => {
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
