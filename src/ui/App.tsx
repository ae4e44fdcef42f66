/**
 * The page: a top bar, the conversation sidebar, the chat, and the model column (the model panel,
 * then the WebGPU status, placed below so that its answer arriving never moves the panel's
 * buttons). The PWA notice floats in the chat column, above the composer. On narrow screens the
 * sidebar and model column become drawers opened from the top bar. Loads saved conversations
 * once on start. Files dropped anywhere but on the model panel (model files) or the conversation
 * list (chat exports) are refused: the browser would otherwise open the file in place of the app,
 * and the unsent draft with it.
 * Rule: components reach state and actions only through `useAppStore`.
 */
import { useEffect, useState } from 'react';
import { useAppStore } from '../store';
import { GpuStatus } from './GpuStatus';
import { ModelPanel } from './ModelPanel';
import { Sidebar } from './Sidebar';
import { ChatView } from './ChatView';
import { SettingsPanel } from './SettingsPanel';
import { UpdatePrompt } from '../pwa/UpdatePrompt';
import { ShareButton } from '../share/ShareButton';
import { SharedView } from '../share/SharedView';
import { useShareFragment } from '../share/useShareFragment';
import '../styles/app.css';
import '../share/share.css';

export function App() {
  const loadConversations = useAppStore((s) => s.loadConversations);
  const [drawer, setDrawer] = useState<'none' | 'conversations' | 'model'>('none');
  const [sharePayload, closeShare] = useShareFragment();
  useEffect(() => {
    void loadConversations();
  }, [loadConversations]);
  useEffect(() => {
    if (drawer === 'none') return;
    const onKey = (e: KeyboardEvent) => e.key === 'Escape' && setDrawer('none');
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [drawer]);
  useEffect(() => {
    // The model panel and the list take file drops and stop them there; any other reaching the window is refused.
    const refuse = (e: DragEvent) => {
      if (!e.dataTransfer?.types.includes('Files')) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = 'none';
    };
    window.addEventListener('dragover', refuse);
    window.addEventListener('drop', refuse);
    return () => {
      window.removeEventListener('dragover', refuse);
      window.removeEventListener('drop', refuse);
    };
  }, []);
  const toggle = (d: 'conversations' | 'model') => setDrawer((cur) => (cur === d ? 'none' : d));
  /** Brings the model panel into view (opening its drawer where the column is hidden) and focuses its action. */
  const setUpModel = () => {
    const column = document.getElementById('model-column');
    if (column && getComputedStyle(column).display === 'none') setDrawer('model');
    requestAnimationFrame(() => {
      const target = column?.querySelector<HTMLElement>('.model-panel button.primary:not(:disabled)') ?? column?.querySelector<HTMLElement>('.model-panel select');
      target?.focus();
    });
  };

  return (
    <div className={`app drawer-${drawer}`}>
      <header className="topbar">
        <button type="button" className="drawer-toggle" aria-expanded={drawer === 'conversations'} aria-controls="sidebar" onClick={() => toggle('conversations')}>
          Conversations
        </button>
        <h1>
          Phi-3 <span className="title-long">WebGPU </span>Chat
        </h1>
        {sharePayload === null && <ShareButton />}
        <button type="button" className="drawer-toggle" aria-expanded={drawer === 'model'} aria-controls="model-column" onClick={() => toggle('model')}>
          Model
        </button>
      </header>
      <div className="layout">
        <div id="sidebar" className="sidebar-wrap">
          <Sidebar onNavigate={() => setDrawer('none')} />
        </div>
        <div className="chat-column">
          {sharePayload === null ? <ChatView onSetUpModel={setUpModel} /> : <SharedView key={sharePayload} payload={sharePayload} onClose={closeShare} />}
          <UpdatePrompt />
        </div>
        <aside id="model-column" className="model-column" aria-label="Model">
          <p className="tagline">Phi-3 Mini runs entirely in this tab, on your GPU. Nothing leaves your machine.</p>
          <ModelPanel />
          <GpuStatus />
        </aside>
      </div>
      <SettingsPanel />
    </div>
  );
}
