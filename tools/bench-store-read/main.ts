/** The page of `npm run bench:store-read`: hands each request to the worker, where the app reads its store. */
import type { ReadRequest, ReadResult } from './reader.worker';

const worker = new Worker(new URL('./reader.worker.ts', import.meta.url), { type: 'module' });
let nextId = 0;
const waiting = new Map<number, { ok: (r: ReadResult) => void; fail: (e: Error) => void }>();
worker.onmessage = (e: MessageEvent<{ id: number; result?: ReadResult; error?: string }>) => {
  const w = waiting.get(e.data.id);
  waiting.delete(e.data.id);
  if (e.data.error !== undefined) w?.fail(new Error(e.data.error));
  else w?.ok(e.data.result!);
};

declare global {
  interface Window {
    __storeRead?: { ready: true; run(req: Omit<ReadRequest, 'id'>): Promise<ReadResult> };
  }
}
window.__storeRead = {
  ready: true,
  run: (req) =>
    new Promise((ok, fail) => {
      const id = nextId++;
      waiting.set(id, { ok, fail });
      worker.postMessage({ ...req, id });
    }),
};
