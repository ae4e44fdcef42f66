/**
 * Registers the service worker and offers updates. A new version is announced with "A new
 * version is available — Reload"; the page reloads only when the user clicks, and never while an
 * answer is streaming (the button says it will reload when the answer finishes). When another
 * tab has already switched to the new version, this tab says so and still waits for a click.
 * The notice floats in the chat column (`.pwa-notice` in app.css): it comes and goes by itself,
 * and as a row of the page it would move every button under the user's pointer.
 * Rule: never call `window.location.reload()` from here except through the update gate.
 */
import { useEffect, useMemo, useRef, useState } from 'react';
import { useRegisterSW } from 'virtual:pwa-register/react';
import { useAppStore } from '../store';
import { whenSaved } from '../store/conversationsSlice';
import { createUpdateGate } from './updateGate';

const UPDATE_CHECK_MS = 60 * 60 * 1000;
const OFFLINE_NOTICE_MS = 6000;

/**
 * Reloads once the answer that just ended is in IndexedDB: the chat store clears `streaming`
 * first and writes the finished message right after, so wait a task, then for the writes.
 */
async function reloadWhenSaved(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 0));
  await whenSaved();
  window.location.reload();
}

/** Asks the waiting worker to take over (`skip`) and resolves when it is active (or after 10 s). */
async function activateWaiting(skip: () => void): Promise<void> {
  const waiting = (await navigator.serviceWorker.getRegistration())?.waiting;
  if (!waiting) return;
  await new Promise<void>((resolve) => {
    waiting.addEventListener('statechange', () => waiting.state === 'activated' && resolve());
    setTimeout(resolve, 10_000);
    skip();
  });
}

export function UpdatePrompt() {
  const streaming = useAppStore((s) => s.chat.streaming !== null);
  const [clicked, setClicked] = useState(false);
  const [activeElsewhere, setActiveElsewhere] = useState(false);
  const [dismissed, setDismissed] = useState(false);
  const clickedRef = useRef(false);
  const gate = useMemo(
    () =>
      createUpdateGate(
        { isStreaming: () => useAppStore.getState().chat.streaming !== null, subscribe: useAppStore.subscribe },
        () => void reloadWhenSaved(),
      ),
    [],
  );
  const {
    needRefresh: [needRefresh],
    offlineReady: [offlineReady, setOfflineReady],
    updateServiceWorker,
  } = useRegisterSW({
    onRegisteredSW(_url, registration) {
      if (registration) setInterval(() => void registration.update().catch(() => undefined), UPDATE_CHECK_MS);
    },
    // The new worker took control (this tab's click, or another tab's): reload only if asked here.
    onNeedReload() {
      if (clickedRef.current) gate.requestReload();
      else setActiveElsewhere(true);
    },
  });

  // "Ready to work offline" is news once; it steps aside by itself.
  useEffect(() => {
    if (!offlineReady) return;
    const t = setTimeout(() => setOfflineReady(false), OFFLINE_NOTICE_MS);
    return () => clearTimeout(t);
  }, [offlineReady, setOfflineReady]);

  const reload = async () => {
    clickedRef.current = true;
    setClicked(true);
    if (activeElsewhere) {
      gate.requestReload();
    } else if (navigator.serviceWorker.controller) {
      // The new worker takes control, then onNeedReload reloads through the gate.
      await updateServiceWorker(true);
    } else {
      // A first visit is not controlled, so no controllerchange comes: reload once it is active.
      await activateWaiting(() => void updateServiceWorker(true));
      gate.requestReload();
    }
  };

  const update = (needRefresh || activeElsewhere) && !dismissed;
  if (!update && !offlineReady) return null;
  return (
    <div className="notice pwa-notice" role="status" data-testid="pwa-notice">
      {update ? (
        <>
          <span>A new version is available{activeElsewhere ? ' (another tab already uses it)' : ''} — </span>
          <button type="button" className="primary" onClick={() => void reload()} disabled={clicked && streaming}>
            Reload
          </button>
          {streaming && <span> The page will reload when the current answer finishes.</span>}
          {!clicked && (
            <button type="button" onClick={() => setDismissed(true)}>
              Later
            </button>
          )}
        </>
      ) : (
        <>
          <span>Ready to work offline. </span>
          <button type="button" onClick={() => setOfflineReady(false)}>
            OK
          </button>
        </>
      )}
    </div>
  );
}
