/**
 * The share payload in the address bar's fragment, kept current across `hashchange` (opening a
 * second share link in the same tab only changes the fragment). `closeShare` drops the fragment
 * without adding a history entry.
 */
import { useEffect, useState } from 'react';
import { payloadFromHash } from './codec';

export function useShareFragment(): [payload: string | null, closeShare: () => void] {
  const [payload, setPayload] = useState(() => payloadFromHash(location.hash));
  useEffect(() => {
    const onHash = () => setPayload(payloadFromHash(location.hash));
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);
  const closeShare = () => {
    history.replaceState(history.state, '', location.pathname + location.search);
    setPayload(null);
  };
  return [payload, closeShare];
}
