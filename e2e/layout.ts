/**
 * Records where a control is on every animation frame, from the next navigation on: the check
 * behind "nothing moves under the pointer". Playwright, like a person, presses where a button is
 * and releases where it is a moment later; a row arriving above it in between turns the click
 * into a click on nothing.
 */
import type { Page } from '@playwright/test';

/** Starts recording, in every page the next navigation opens, the box of the first `selector` match whose text starts with `text`. */
export async function recordPositions(page: Page, selector: string, text: string): Promise<void> {
  await page.addInitScript(
    ([sel, prefix]) => {
      const at: Array<string | null> = [];
      (globalThis as unknown as { recordedPositions: typeof at }).recordedPositions = at;
      const sample = () => {
        const el = [...document.querySelectorAll(sel)].find((e) => e.textContent?.trim().startsWith(prefix));
        const r = el?.getBoundingClientRect();
        const where = r ? `${Math.round(r.x)},${Math.round(r.y)} ${Math.round(r.width)}x${Math.round(r.height)}` : null;
        if (at.length === 0 || at[at.length - 1] !== where) at.push(where);
        requestAnimationFrame(sample);
      };
      requestAnimationFrame(sample);
    },
    [selector, text] as const,
  );
}

/** The boxes recorded so far, each change once: null while the control was absent. */
export async function recordedPositions(page: Page): Promise<Array<string | null>> {
  return page.evaluate(() => (globalThis as unknown as { recordedPositions: Array<string | null> }).recordedPositions);
}
