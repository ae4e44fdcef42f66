/**
 * The typed messages between the UI's worker client and the engine worker.
 * Requests carry an `id`; every response and event names the request it belongs to. Add a message
 * by extending the unions here: both ends `switch` exhaustively, so the compiler finds every place
 * that must handle it. No `any`, no casts of payloads.
 */
import type { SerializedError } from '../engine/errors';
import type { GpuProbe } from '../engine/gpu/probe';

export type WorkerRequest =
  | { type: 'probe'; id: number }
  | { type: 'abort'; id: number; target: number };

export type WorkerResponse =
  | { type: 'probe-result'; id: number; probe: GpuProbe }
  | { type: 'error'; id: number; error: SerializedError };

export type RequestType = WorkerRequest['type'];
