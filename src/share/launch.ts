/**
 * The `?prompt=` part of a share link: text placed in the composer on start, never sent. Read
 * once from the page URL; `consumeLaunchPrompt` then drops it from the address bar so a reload
 * after sending does not put it back. `?model=` is read by the model slice.
 * Rule: the prompt is only ever a composer draft — nothing here may call `send`.
 */

/** Longest prompt a link may place in the composer; longer ones are cut, not rejected. */
export const LAUNCH_PROMPT_MAX_CHARS = 8000;

function read(search: string): string {
  return (new URLSearchParams(search).get('prompt') ?? '').slice(0, LAUNCH_PROMPT_MAX_CHARS);
}

let pending: string = typeof location === 'undefined' ? '' : read(location.search);

/** The prompt the page was opened with ('' if none or already used). */
export function launchPrompt(): string {
  return pending;
}

/** Marks the launch prompt as used and removes `prompt` from the address bar (keeping the rest). */
export function consumeLaunchPrompt(): void {
  pending = '';
  if (typeof location === 'undefined') return;
  const url = new URL(location.href);
  if (!url.searchParams.has('prompt')) return;
  url.searchParams.delete('prompt');
  history.replaceState(history.state, '', url.href);
}

/** For tests and for `?prompt=` parsing elsewhere. */
export const promptFromSearch = read;
