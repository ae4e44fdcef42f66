/**
 * Typed errors shared by the engine, storage and worker.
 *
 * Every error the product raises is an `AppError` with a literal `code`, so that it can cross the
 * worker boundary as `{name, code, message}` and the UI can act on the code. Rule: never throw a
 * bare `Error` from engine code for a condition the user can hit; add a code here instead.
 */

export type ErrorCode =
  | 'WEBGPU_UNAVAILABLE'
  | 'GPU_DEVICE_LOST'
  | 'GPU_VALIDATION'
  | 'GPU_OUT_OF_MEMORY'
  | 'ONNX_TRUNCATED'
  | 'ONNX_MALFORMED'
  | 'ONNX_UNSUPPORTED'
  | 'MODEL_UNSUPPORTED_GRAPH'
  | 'MODEL_MISSING_WEIGHT'
  | 'MODEL_BAD_WEIGHT'
  | 'MODEL_CONFIG_MISMATCH'
  | 'CONTEXT_OVERFLOW'
  | 'BAD_ARGUMENT'
  | 'TOKENIZER_ERROR'
  | 'ABORTED'
  | 'STORAGE_QUOTA'
  | 'STORAGE_UNAVAILABLE'
  | 'STORAGE_OUTDATED'
  | 'MODEL_NOT_CACHED'
  | 'MODEL_NOT_FOUND'
  /** A gated or private Hub repo: its files need a signed-in account with access. */
  | 'MODEL_ACCESS_DENIED'
  | 'DOWNLOAD_FAILED'
  | 'DOWNLOAD_INTEGRITY'
  | 'WORKER_DEAD'
  | 'NOT_IMPLEMENTED';

export class AppError extends Error {
  override readonly name: string = 'AppError';
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }

  /** The plain shape that crosses `postMessage`. */
  toJSON(): SerializedError {
    return { name: this.name, code: this.code, message: this.message };
  }
}

export interface SerializedError {
  name: string;
  code: ErrorCode | 'INTERNAL';
  message: string;
}

export function serializeError(err: unknown): SerializedError {
  if (err instanceof AppError) return err.toJSON();
  if (err instanceof Error) return { name: err.name, code: 'INTERNAL', message: err.message };
  return { name: 'Error', code: 'INTERNAL', message: String(err) };
}
