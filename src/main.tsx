import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './ui/App';
import { useAppStore } from './store';

// Saved conversations start loading before the first render, so reading them from IndexedDB
// (about 0.3 s at 2000 chats) overlaps React building the page.
void useAppStore.getState().loadConversations();

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
