/**
 * Stands for the engine worker in tools/bench-stream.ts: posts the given deltas at a steady rate,
 * one message per token as the engine worker does, each with the time it was sent.
 */
self.onmessage = (e: MessageEvent<{ deltas: string[]; tokensPerSec: number }>) => {
  const { deltas, tokensPerSec } = e.data;
  const start = performance.timeOrigin + performance.now();
  for (let i = 0; i < deltas.length; i++) {
    const due = start + (i * 1000) / tokensPerSec;
    while (performance.timeOrigin + performance.now() < due) {
      // Busy-wait: timers are too coarse for a token every millisecond.
    }
    self.postMessage({ i, text: deltas[i], sentAt: performance.timeOrigin + performance.now() });
  }
};
