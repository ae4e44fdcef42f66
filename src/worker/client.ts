/**
 * The UI's only way to reach the engine: a typed client over the engine worker.
 * Each call gets a request id and resolves with the matching response; errors arrive as
 * `{name, code, message}` and are rethrown as `WorkerError` with the same code.
 */
import type { SerializedError } from '../engine/errors';
import type { GpuProbe } from '../engine/gpu/probe';
import type { WorkerRequest, WorkerResponse } from './protocol';

export class WorkerError extends Error {
  override readonly name = 'WorkerError';
  constructor(readonly code: SerializedError['code'], message: string) {
    super(message);
  }
}

type Pending = { resolve: (msg: WorkerResponse) => void; reject: (err: WorkerError) => void };

export class EngineClient {
  private worker: Worker;
  private nextId = 1;
  private pending = new Map<number, Pending>();

  constructor(factory: () => Worker = () => new Worker(new URL('./engine.worker.ts', import.meta.url), { type: 'module' })) {
    this.worker = factory();
    this.worker.onmessage = (ev: MessageEvent<WorkerResponse>) => this.dispatch(ev.data);
    this.worker.onerror = (ev) => this.failAll(new WorkerError('INTERNAL', `The engine worker crashed: ${ev.message}`));
  }

  private dispatch(msg: WorkerResponse): void {
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    if (msg.type === 'error') p.reject(new WorkerError(msg.error.code, msg.error.message));
    else p.resolve(msg);
  }

  private failAll(err: WorkerError): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  private request<T extends WorkerResponse['type']>(
    build: (id: number) => WorkerRequest,
    expect: T,
  ): Promise<Extract<WorkerResponse, { type: T }>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, {
        resolve: (msg) => {
          if (msg.type === expect) resolve(msg as Extract<WorkerResponse, { type: T }>);
          else reject(new WorkerError('INTERNAL', `expected ${expect}, got ${msg.type}`));
        },
        reject,
      });
      this.worker.postMessage(build(id));
    });
  }

  async probe(): Promise<GpuProbe> {
    return (await this.request((id) => ({ type: 'probe', id }), 'probe-result')).probe;
  }

  terminate(): void {
    this.worker.terminate();
    this.failAll(new WorkerError('ABORTED', 'The engine worker was stopped.'));
  }
}
