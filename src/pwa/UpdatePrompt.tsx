/**
 * Registers the service worker and offers updates. A new version is announced with "A new
 * version is available — Reload"; the page reloads only when the user clicks, and never while an
 * answer is streaming (the button says it will reload when the answer finishes). When another
 * tab has already switched to the new version, this tab says so and still waits for a click.
 * Rule: never call `window.location.reload()` from here except through the update gate.
 */
import { useMemo, useRef, useState } from 'react';
import { useRegisterSW } from 'virtual:pwa-register/react';
import { useAppStore } from '../store';
import { createUpdateGate } from './updateGate';

const UPDATE_CHECK_MS = 60 * 60 * 1000;

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
        () => window.location.reload(),
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

  const reload = () => {
    clickedRef.current = true;
    setClicked(true);
    if (activeElsewhere) gate.requestReload();
    else void updateServiceWorker(true);
  };

  const update = (needRefresh || activeElsewhere) && !dismissed;
  if (!update && !offlineReady) return null;
  return (
    <div className="notice pwa-notice" role="status" data-testid="pwa-notice">
      {update ? (
        <>
          <span>A new version is available{activeElsewhere ? ' (another tab already uses it)' : ''} — </span>
          <button type="button" className="primary" onClick={reload} disabled={clicked && streaming}>
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
