/**
 * Keeps keyboard focus inside a region when the control that had it goes away: a Download button
 * replaced by Pause and Cancel, Pause and Cancel gone when the download ends, a select disabled
 * while a model loads, a confirmed deletion's row removed. The browser drops focus to the start
 * of the page then, and a keyboard or screen-reader user has to find their way back from there.
 * Instead focus moves to the first of `fallbacks` (CSS selectors, tried in order) that matches an
 * enabled element of the region; the last resort should be something always there (give it
 * tabIndex -1 if it is not focusable). While focus stays where it was put, a fallback earlier in
 * the list that appears later takes it (the status first, then the Load button that follows).
 * Focus the user moved elsewhere is never taken back.
 */
import { useEffect, type RefObject } from 'react';

const lost = () => document.activeElement === null || document.activeElement === document.body;

export function useFocusKeeper(ref: RefObject<HTMLElement | null>, fallbacks: readonly string[]): void {
  const key = fallbacks.join('\n');
  useEffect(() => {
    const region = ref.current;
    if (!region) return;
    let last: HTMLElement | null = null;
    const onFocusIn = (e: FocusEvent) => {
      last = e.target instanceof HTMLElement ? e.target : null;
    };
    const onFocusOut = (e: FocusEvent) => {
      // Focus left for somewhere else the user chose: nothing to keep.
      if (e.relatedTarget instanceof Node && !region.contains(e.relatedTarget)) last = null;
    };
    const selectors = key.split('\n');
    /** The first fallback present, with its place in the list. */
    const best = () => {
      for (const [rank, selector] of selectors.entries()) {
        const el = [...region.querySelectorAll<HTMLElement>(selector)].find((e) => !(e as HTMLButtonElement).disabled);
        if (el) return { el, rank };
      }
      return null;
    };
    /** Where this hook last put focus, while it is still there. */
    let placed: { el: HTMLElement; rank: number } | null = null;
    const restore = () => {
      if (placed && document.activeElement === placed.el) {
        // Still where it was put (the user has not moved): a better fallback that has appeared
        // since (the Load button after the status) takes it.
        const better = best();
        if (better && better.rank < placed.rank) {
          placed = better;
          better.el.focus();
        }
        return;
      }
      placed = null;
      if (!last || !lost()) return;
      if (last.isConnected && !(last as HTMLButtonElement).disabled) return;
      last = null;
      placed = best();
      placed?.el.focus();
    };
    const observer = new MutationObserver(restore);
    observer.observe(region, { childList: true, subtree: true, attributes: true, attributeFilter: ['disabled'] });
    region.addEventListener('focusin', onFocusIn);
    region.addEventListener('focusout', onFocusOut);
    return () => {
      observer.disconnect();
      region.removeEventListener('focusin', onFocusIn);
      region.removeEventListener('focusout', onFocusOut);
    };
  }, [ref, key]);
}
