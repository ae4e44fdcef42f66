/**
 * The engine worker. This module runs in a Web Worker: it imports nothing from the UI or the
 * store, and it is the only place that calls `postMessage` back to the page.
 */
import { serializeError } from '../engine/errors';
import { probeGpu } from '../engine/gpu/probe';
import type { WorkerRequest, WorkerResponse } from './protocol';

const scope = self as unknown as DedicatedWorkerGlobalScope;

function reply(msg: WorkerResponse): void {
  scope.postMessage(msg);
}

async function handle(req: WorkerRequest): Promise<void> {
  switch (req.type) {
    case 'probe':
      reply({ type: 'probe-result', id: req.id, probe: await probeGpu(navigator.gpu) });
      return;
    case 'abort':
      // Nothing long-running exists yet that could be aborted.
      return;
    default: {
      const unreachable: never = req;
      throw new Error(`unknown request ${JSON.stringify(unreachable)}`);
    }
  }
}

scope.onmessage = (ev: MessageEvent<WorkerRequest>) => {
  const req = ev.data;
  handle(req).catch((err: unknown) => reply({ type: 'error', id: req.id, error: serializeError(err) }));
};
