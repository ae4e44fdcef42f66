/**
 * The chat's empty state while no model is ready: what the model is doing (being checked,
 * downloading, loading to the GPU) or what the user has to do first, with a button that takes
 * them to the model panel — on a phone or tablet the panel is a closed drawer, so without this a
 * first visit shows a composer whose first message can only fail. Once the model is ready it
 * gives way to the usual invitation. In a conversation with messages, the same words sit in one
 * line above the composer on narrow screens (`compact`).
 * Rule: it only reads the model slice; every action stays in the model panel (so the page keeps
 * one Download button). Its only other imports are pure helpers (storage/format.ts, the slice's
 * `selectedModel`).
 */
import { useAppStore } from '../store';
import { selectedModel } from '../store/modelSlice';
import { formatBytes, formatEta } from '../storage/format';

/**
 * `compact`: the one-line form above the composer of a conversation that has messages, for screens
 * where the model column is a closed drawer (app.css hides it where the column shows); nothing
 * once the model is ready.
 */
export function ModelHint({ onSetUp, compact = false }: { onSetUp: () => void; compact?: boolean }) {
  const m = useAppStore((s) => s.model);
  const { entry, name } = selectedModel(m);
  const p = m.progress;
  const percent = p && p.totalBytes > 0 ? ` ${Math.floor((100 * p.doneBytes) / p.totalBytes)}%` : '';
  // Local files are copied in, never downloaded; a partial copy is picked again, not resumed.
  const local = m.selected.startsWith('local:');

  let text: string;
  if (m.status === 'ready') return compact ? null : <p>Ask Phi-3 anything. It runs on your GPU, in this tab; nothing you type leaves your machine.</p>;
  if (m.workerDead) text = 'The engine stopped. Restart it in the model panel; downloaded models load again from this device.';
  else if (m.status === 'checking') text = 'Checking which models are stored on this device…';
  else if (m.status === 'downloading' && local) text = `Copying ${name} into this browser:${percent}. You can chat once it has loaded.`;
  else if (m.status === 'downloading') {
    text = `Downloading ${name}:${percent}${p?.etaSec ? `, ${formatEta(p.etaSec)}` : ''}. You can chat once it has loaded.`;
  } else if (m.status === 'loading') {
    const phase = p?.phase === 'compile' ? ' (compiling shaders)' : percent;
    text = `Loading ${name} to the GPU…${phase}`;
  } else if (m.status === 'cached' && m.inOtherTab) {
    text = `${name} is on the GPU in another tab of this app. Chat there, or close that tab and it loads here; the model panel can load a second copy.`;
  } else if (m.status === 'cached') text = `${name} is on this device. Load it to the GPU in the model panel to chat.`;
  else if (local && (m.status === 'paused' || m.status === 'idle')) text = `${name} is not fully stored in this browser. Pick its folder again in the model panel, or drop its files there.`;
  else if (m.status === 'paused') text = `The download of ${name} is paused. Resume it in the model panel to chat.`;
  else if (m.status === 'error') text = 'The download stopped. The model panel says why and can resume it.';
  else {
    const size = entry?.approxBytes ? `: about ${formatBytes(entry.approxBytes)}, once, and it stays on this device` : '';
    text = `To chat, first download ${name} in the model panel${size}. Everything then runs on your GPU, in this tab.`;
  }
  return (
    <div className={compact ? 'model-strip' : 'model-hint'} data-testid={compact ? 'model-strip' : 'model-hint'}>
      <p>{text}</p>
      <button type="button" className={compact ? 'small' : undefined} onClick={onSetUp}>
        Open the model panel
      </button>
    </div>
  );
}
