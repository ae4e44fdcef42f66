/**
 * The model panel: choose a model (catalog, a Hub repo id, a local folder picked or dropped, or
 * one stored earlier that the catalog does not list) and the engine,
 * download it with progress, pause/resume/cancel (cancel and delete ask first: they throw away
 * gigabytes), watch it load to the GPU until it reads
 * "Ready", see what is cached and how much storage is left, ask for persistent storage, and
 * restart the engine worker if it died. Files or folders dragged over the panel light it up, and
 * dropping them copies them in as a local model (storage/local-pick.ts reads folders).
 * Rule: state and actions come only from `useAppStore`; no storage or worker imports here (pure
 * helpers such as `formatBytes` and `parseRepoInput` excepted).
 */
import { useEffect, useRef, useState } from 'react';
import { useAppStore } from '../store';
import { ENGINES, modelIdOf, selectedModel, storedName, storedOffCatalog } from '../store/modelSlice';
import { formatBytes, formatEta } from '../storage/format';
import { parseRepoInput } from '../storage/catalog';
import { pickFromInput, readDrop } from '../storage/local-pick';
import { ConfirmButton } from './ConfirmButton';
import { attentionTuningText, tuningText } from './tuningText';
import type { GpuMemoryInfo } from '../engine/types';
import { useFileDrop } from './useFileDrop';
import { useFocusKeeper } from './useFocusKeeper';

/** Where focus goes when the panel's focused control goes away: the action now offered, else the status. */
const FOCUS_FALLBACKS = ['.actions button', 'button.primary', '.model-status'];

/** Whether the open chat is read ahead while the model is idle (chatSlice.ts): a trade the user owns. */
function ReadAheadToggle() {
  const on = useAppStore((s) => s.readAhead);
  const setReadAhead = useAppStore((s) => s.setReadAhead);
  return (
    <label className="check read-ahead">
      <input type="checkbox" checked={on} onChange={(e) => setReadAhead(e.target.checked)} />
      Read the open chat ahead, so its next answer starts sooner (uses the GPU while idle)
    </label>
  );
}

/**
 * What the model holds on the GPU, from its load (or from a context limit lowered since: the
 * worker's `context-limit`): the weights and the rest, and the context cache,
 * which grows with the chat up to the whole context (a windowed model's: the window and a prefill
 * chunk, its ring) and shrinks again for a short one (Phi3Runtime.fitCapacity). The native engine only.
 */
function GpuMemoryText({ memory }: { memory: GpuMemoryInfo }) {
  const { weightBytes, kvCacheBytes, kvCacheMaxBytes, otherBytes } = memory;
  return (
    <span data-testid="gpu-memory" data-bytes={weightBytes + kvCacheBytes + otherBytes}>
      {' '}
      · GPU memory: {formatBytes(weightBytes + otherBytes)} for the model, {formatBytes(kvCacheBytes)} for the context
      {kvCacheMaxBytes > kvCacheBytes && `, growing with the chat up to ${formatBytes(kvCacheMaxBytes)}`}
    </span>
  );
}

export function ModelPanel() {
  const panelRef = useRef<HTMLElement>(null);
  useFocusKeeper(panelRef, FOCUS_FALLBACKS);
  const m = useAppStore((s) => s.model);
  const initModels = useAppStore((s) => s.initModels);
  const selectModel = useAppStore((s) => s.selectModel);
  const download = useAppStore((s) => s.downloadModel);
  const importLocal = useAppStore((s) => s.importLocalModel);
  const pause = useAppStore((s) => s.pauseDownload);
  const cancel = useAppStore((s) => s.cancelDownload);
  const deleteModel = useAppStore((s) => s.deleteModel);
  const deleteAll = useAppStore((s) => s.deleteAllModels);
  const persist = useAppStore((s) => s.requestPersist);
  const restart = useAppStore((s) => s.restartWorker);
  const loadModel = useAppStore((s) => s.loadModel);
  const setEngine = useAppStore((s) => s.setEngine);
  const noWebGpu = useAppStore((s) => s.gpu.probe?.available === false);
  const [custom, setCustom] = useState('');
  const [repoError, setRepoError] = useState<string | null>(null);
  const [dropError, setDropError] = useState<string | null>(null);

  useEffect(() => {
    void initModels();
  }, [initModels]);

  const { entry, name } = selectedModel(m);
  const cached = m.cached.find((c) => c.modelId === modelIdOf(m.selected));
  const stored = storedOffCatalog(m);
  const p = m.progress;
  const busy = m.status === 'downloading';
  const loading = m.status === 'loading';
  // A local copy cannot be resumed from anywhere: it stops whole, and a partial one (the tab closed
  // mid-copy) is picked again rather than resumed.
  const local = m.selected.startsWith('local:');
  // Dropped model files or folders (graph, its _data, configs, tokenizer) are copied into the
  // store; nothing is uploaded. readDrop takes the drop's files while the event runs, and reads
  // folders after it.
  const drop = useFileDrop((data) => {
    setDropError(null);
    readDrop(data).then(
      (pick) => void importLocal(pick),
      (err: unknown) => setDropError(err instanceof Error ? err.message : String(err)),
    );
  }, !busy);

  // What the last request answered, else what the estimate says (granted earlier, or not yet).
  const persisted = m.persisted ?? m.estimate?.persisted;
  let status: string;
  if (m.workerDead) status = 'The engine worker stopped';
  else if (busy && p?.otherTab) status = `Another tab is downloading this model (${p.phase})`;
  else if (busy && local) status = 'Copying the files into this browser…';
  else if (busy) status = p ? { resolve: 'Looking up files…', waiting: 'Waiting…', download: 'Downloading…', verify: 'Verifying…', load: 'Loading to GPU…', compile: 'Compiling shaders…', done: 'Finishing…' }[p.phase] : 'Starting…';
  else if (loading) status = p?.phase === 'compile' ? 'Compiling shaders…' : p ? 'Loading to GPU…' : 'Loading…';
  else if (m.status === 'checking') status = 'Checking what is stored on this device…';
  else if (m.status === 'ready') status = 'Ready';
  else if (m.status === 'cached' && m.inOtherTab) status = 'On the GPU in another tab';
  else if (m.status === 'cached') status = 'Cached on this device and verified';
  else if (m.status === 'paused') status = `Paused: ${formatBytes(cached?.storedBytes ?? 0)} of ${formatBytes(cached?.totalBytes ?? 0)} stored`;
  else if (m.status === 'error') status = 'Download failed';
  else status = 'Not downloaded';

  return (
    <section
      ref={panelRef}
      aria-label="Model panel"
      className="model-panel"
      {...drop}
    >
      <h2>Model</h2>
      <label className="field">
        <span className="field-label">Model</span>
        <select value={m.selected} disabled={busy || loading} onChange={(e) => selectModel(e.target.value)}>
          {m.catalog.map((e) => (
            <option key={e.id} value={e.id}>
              {e.name}
            </option>
          ))}
          {stored.length > 0 && (
            <optgroup label="Stored on this device">
              {stored.map((s) => (
                <option key={s.value} value={s.value}>
                  {s.name}
                </option>
              ))}
            </optgroup>
          )}
          {!entry && !stored.some((s) => s.value === m.selected) && <option value={m.selected}>{name}</option>}
        </select>
      </label>
      {entry && <p className="model-note">{entry.note}</p>}
      <form
        className="repo-form"
        onSubmit={(e) => {
          e.preventDefault();
          const parsed = parseRepoInput(custom);
          setRepoError(parsed.ok ? null : parsed.error);
          if (parsed.ok) selectModel(parsed.value);
        }}
      >
        <label className="field">
          <span className="field-label">Hub repo id</span>
          <input
            value={custom}
            placeholder="org/name[/folder] or a Hub address"
            aria-invalid={repoError ? true : undefined}
            aria-describedby={repoError ? 'repo-error' : undefined}
            onChange={(e) => {
              setCustom(e.target.value);
              setRepoError(null);
            }}
            disabled={busy}
          />
        </label>
        <button type="submit" disabled={busy}>
          Use repo
        </button>
      </form>
      {repoError && (
        <p id="repo-error" role="alert" className="error field-error">
          {repoError}
        </p>
      )}
      <label className="field">
        <span className="field-label">Local folder (or drop the files here)</span>
        <input
          type="file"
          multiple
          disabled={busy}
          {...{ webkitdirectory: '' }}
          onChange={(e) => {
            const files = [...(e.target.files ?? [])];
            setDropError(null);
            if (files.length) void importLocal(pickFromInput(files));
            // The same folder can be picked again (after a failed copy, or to replace the stored one).
            e.target.value = '';
          }}
        />
      </label>
      {dropError && (
        <p role="alert" className="error field-error" data-testid="drop-error">
          {dropError}
        </p>
      )}
      <label className="field">
        <span className="field-label">Engine</span>
        <select value={m.engine} disabled={busy || loading} onChange={(e) => setEngine(e.target.value === 'ort' ? 'ort' : 'native')}>
          {ENGINES.map((e) => (
            <option key={e.kind} value={e.kind} disabled={!e.available}>
              {e.available ? e.name : `${e.name} (not available yet)`}
            </option>
          ))}
        </select>
      </label>

      <p role="status" className="model-status" data-testid="model-status" data-status={m.status} tabIndex={-1}>
        {status}
      </p>
      {m.storageBlocked && (
        <p role="alert" className="notice" data-testid="storage-blocked">
          {m.storageBlocked}
        </p>
      )}
      {m.error && (
        <p role="alert" className="error" data-testid="model-error">
          {m.error.message}
        </p>
      )}
      {m.engine === 'ort' && noWebGpu && (
        <p role="note" className="notice" data-testid="wasm-fallback">
          WebGPU is not available here, so the model runs on onnxruntime's WASM engine on the CPU: expect answers to be many
          times slower than on a GPU.
        </p>
      )}
      {m.deviceLost && (
        <p role="alert" className="notice" data-testid="device-lost">
          {m.deviceLost}
        </p>
      )}
      {m.loadError && (
        <p role="alert" className="error" data-testid="model-load-error">
          Could not load the model: {m.loadError.message}
        </p>
      )}
      {m.status === 'ready' && m.loaded && (
        <p
          className="muted model-info"
          data-testid="model-info"
          data-load-ms={Math.round(m.loaded.loadMs)}
          data-load-timings={m.loaded.info.timings ? JSON.stringify(m.loaded.info.timings, (_k, v: unknown) => (typeof v === 'number' ? Math.round(v) : v)) : undefined}
        >
          {m.loaded.info.layers} layers, hidden {m.loaded.info.hidden}, context <span data-testid="context-limit">{m.loaded.info.contextLimit}</span> tokens
          {m.loaded.contextAtLoad !== undefined && (
            <span data-testid="context-lowered">
              {' '}
              (down from {m.loaded.contextAtLoad}: the GPU ran out of memory for a longer context; close other tabs and apps that use the GPU and load the model again to get it back)
            </span>
          )}
          {m.loaded.info.attentionWindow !== undefined && (
            <span data-testid="attention-window">, each token attending to the last {m.loaded.info.attentionWindow}</span>
          )}{' '}
          · loaded in {(m.loaded.loadMs / 1000).toFixed(1)} s
          {m.loaded.info.tuning && <span data-testid="decode-tuning" data-decode={m.loaded.info.tuning.decode.name} data-prefill={m.loaded.info.tuning.prefill.name} data-source={m.loaded.info.tuning.source}> · {tuningText(m.loaded.info.tuning)}</span>}
          {m.loaded.info.tuning?.attention && (
            <span data-testid="attention-tuning" data-decode={m.loaded.info.tuning.attention.decode.name} data-prefill={m.loaded.info.tuning.attention.prefill.name} data-source={m.loaded.info.tuning.attention.source}>
              {' · '}
              {attentionTuningText(m.loaded.info.tuning.attention)}
            </span>
          )}
          {m.loaded.info.gpuMemory && <GpuMemoryText memory={m.loaded.info.gpuMemory} />}
        </p>
      )}
      {m.status === 'ready' && m.loaded && <ReadAheadToggle />}
      {m.status === 'cached' && m.inOtherTab && (
        <p role="note" className="notice" data-testid="model-in-other-tab">
          Another tab of this app has {name} on the GPU, so this tab does not load a second copy (it would take as much
          GPU memory again). Chat in that tab, or close it: the model then loads here by itself. Load here too keeps both.
        </p>
      )}
      {m.status === 'cached' && !m.workerDead && (
        <button type="button" className="primary wide" onClick={() => void loadModel()}>
          {m.inOtherTab ? 'Load here too' : `Load ${name}`}
        </button>
      )}
      {m.workerDead && (
        <button type="button" className="primary wide" onClick={() => void restart()}>
          Restart engine
        </button>
      )}

      {busy ? (
        <div className="actions">
          {!local && (
            <button type="button" onClick={pause}>
              Pause
            </button>
          )}
          <ConfirmButton
            label="Cancel"
            question={
              local
                ? `Stop copying the files in? The ${formatBytes(p?.doneBytes ?? 0)} copied so far are deleted; your files stay where they are.`
                : `Cancel the download and delete the ${formatBytes(p?.doneBytes ?? 0)} stored so far?`
            }
            confirmLabel={local ? 'Stop copying' : 'Cancel download'}
            keepLabel={local ? 'Keep copying' : 'Keep downloading'}
            onConfirm={() => void cancel()}
          />
        </div>
      ) : (
        (m.status === 'idle' || m.status === 'paused' || m.status === 'error') &&
        !m.workerDead &&
        (local ? (
          <p role="note" className="notice" data-testid="local-partial">
            {m.status === 'paused' ? 'Only part of these files were copied in before the copy stopped.' : 'These local files are not stored in this browser.'} Pick
            the folder again, or drop its files here.
          </p>
        ) : (
          <button type="button" className="primary wide" onClick={() => void download()}>
            {m.status === 'paused' ? `Resume download of ${name}` : `Download ${name}`}
          </button>
        ))
      )}

      {(busy || loading) && p && p.totalBytes > 0 && (
        <div className="model-progress" data-testid="model-progress">
          <progress aria-label={loading ? 'Load progress' : local ? 'Copy progress' : 'Download progress'} max={p.totalBytes} value={p.phase === 'verify' && p.verify ? p.verify.doneBytes : p.doneBytes} />
          <p>
            {formatBytes(p.doneBytes)} of {formatBytes(p.totalBytes)}
            {p.bytesPerSec > 0 && ` · ${formatBytes(p.bytesPerSec)}/s · ${formatEta(p.etaSec)}`}
            {p.verify && ` · verifying ${p.verify.path}`}
          </p>
          <ul className="model-files">
            {p.files.map((f) => (
              <li key={f.path}>
                {f.path}: {formatBytes(f.doneBytes)} / {formatBytes(f.size)} {f.verified ? '✓' : ''}
              </li>
            ))}
          </ul>
        </div>
      )}

      <h3>Cached models</h3>
      {m.cached.length === 0 ? (
        <p className="muted">None yet.</p>
      ) : (
        <ul className="cached-list" data-testid="cached-models">
          {m.cached.map((c) => (
            <li key={c.modelId}>
              <span>
                {storedName(c)}: {formatBytes(c.storedBytes)}
                {c.complete ? ' (complete)' : ` of ${formatBytes(c.totalBytes)} (partial)`}
              </span>{' '}
              <ConfirmButton
                label="Delete"
                ariaLabel={`Delete ${storedName(c)}`}
                className="small"
                disabled={busy}
                question={`Delete ${storedName(c)} (${formatBytes(c.storedBytes)})? ${m.loaded?.modelId === c.modelId ? 'It leaves the GPU, and using' : 'Using'} it again means ${c.modelId.startsWith('local:') ? 'copying its files in' : 'downloading it'} again.`}
                confirmLabel="Delete"
                onConfirm={() => void deleteModel(c.modelId)}
              />
            </li>
          ))}
        </ul>
      )}
      {m.cached.length > 1 && (
        <ConfirmButton
          label="Delete all models"
          className="small"
          disabled={busy}
          question={`Delete all ${m.cached.length} models (${formatBytes(m.cached.reduce((n, c) => n + c.storedBytes, 0))})? Using one again means downloading it again.`}
          confirmLabel="Delete all"
          onConfirm={() => void deleteAll()}
        />
      )}
      <p className="muted small-print" data-testid="storage-estimate">
        {m.estimate ? `Storage: ${formatBytes(m.estimate.usage)} used of ${formatBytes(m.estimate.quota)} available to this site` : 'Storage estimate unavailable'}
        {persisted !== undefined && (persisted ? ' · persistent' : ' · the browser may evict it under pressure')}
      </p>
      {!persisted && (
        <button type="button" className="small" onClick={() => void persist()}>
          Ask the browser to keep this storage
        </button>
      )}
    </section>
  );
}
