/**
 * The page side of tools/bench-markdown.ts: renders the app's own Markdown component (production
 * React) the way a streamed answer does, one small delta at a time, and times each synchronous
 * render (flushSync: parse, React reconciliation and the DOM commit).
 */
import { createElement } from 'react';
import { flushSync } from 'react-dom';
import { createRoot } from 'react-dom/client';
import { Markdown } from '../../src/ui/Markdown';

export interface StepTimes {
  /** Milliseconds of each timed render. */
  ms: number[];
}

declare global {
  interface Window {
    __markdownBench?: { ready: true; run(text: string, at: number, steps: number, stepChars: number, mode: 'blocks' | 'whole'): StepTimes };
  }
}

const whole = (t: string) => [t];

window.__markdownBench = {
  ready: true,
  run(text, at, steps, stepChars, mode) {
    const host = document.createElement('div');
    document.body.append(host);
    const root = createRoot(host);
    const render = (end: number) => flushSync(() => root.render(createElement(Markdown, { text: text.slice(0, end), ...(mode === 'whole' ? { split: whole } : {}) })));
    // The answer so far is on screen (its blocks memoised) before the timed deltas arrive.
    render(at - steps * stepChars);
    const ms: number[] = [];
    for (let i = steps - 1; i >= 0; i--) {
      const t0 = performance.now();
      render(at - i * stepChars);
      ms.push(performance.now() - t0);
    }
    root.unmount();
    host.remove();
    return { ms };
  },
};
