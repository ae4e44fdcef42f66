/**
 * Node only: onnxruntime-web's WebGPU build (`onnxruntime-web/webgpu`: the asyncify wasm
 * `ort-wasm-simd-threaded.asyncify.wasm` with onnxruntime's native WebGPU EP, which reaches WebGPU
 * through Emscripten's bindings via `navigator.gpu`) running on the `webgpu` package's Dawn, for
 * `OrtEngine.load(files, { provider: 'webgpu', ort })` in the Node benchmark and gpu-node tests.
 *
 * What it sets up, once per process:
 * - `navigator.gpu` = the given `GPU` (from `nodeGPU()`). Node 20 has no `navigator`; Node ≥ 21
 *   has one without `gpu`. onnxruntime asks it for its own adapter and device.
 * - `env.wasm.wasmBinary` = the bytes of the `.wasm` file, found through Node's module resolution
 *   from this module's location (node_modules/onnxruntime-web in the checkout; in the bench
 *   bundle, the copy tools/bench/bundle-node.mjs places next to it), so it works wherever the
 *   folder is. Not `wasmPaths`: the WebGPU build's Emscripten glue is built for browsers and
 *   fetches its `.wasm` with `fetch`/XMLHttpRequest, which cannot read a file path or a file: URL
 *   in Node ("both async and sync fetching of the wasm failed").
 * - `GPUQueue.prototype.writeBuffer` accepts views of a SharedArrayBuffer, as browsers do: the
 *   WebGPU build's heap is a shared `WebAssembly.Memory`, and onnxruntime writes weights, inputs
 *   and uniforms straight from it, but the `webgpu` package's binding rejects such a view
 *   ("Invalid argument") or crashes on one (segfault). Such data is copied into an ordinary
 *   ArrayBuffer first (one memcpy per write; ordinary buffers pass through untouched).
 * - `env.wasm.numThreads = 1`: the browser benchmark page is not cross-origin isolated, so
 *   onnxruntime runs one thread there, and Node must run the same configuration for the ratios to
 *   compare like with like. More threads would also start Emscripten pthreads as worker_threads
 *   (which load the `.mjs` glue as a separate file); the WebGPU EP does its work on the GPU anyway.
 * Rule: one GPU per process — onnxruntime keeps the device it created, so a second, different
 * `GPU` is refused rather than silently ignored.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { AppError } from '../errors';
import type { OrtModule } from './ort-runtime';

const WASM_FILE = 'onnxruntime-web/ort-wasm-simd-threaded.asyncify.wasm';

let loaded: { gpu: GPU; ort: Promise<OrtModule> } | undefined;

/** Makes `navigator.gpu` the given GPU, whether or not this Node has a `navigator`. */
function installNavigatorGpu(gpu: GPU): void {
  const g = globalThis as { navigator?: { gpu?: GPU } };
  if (g.navigator === undefined) {
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true, enumerable: false });
  } else if (g.navigator.gpu !== gpu) {
    Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true, writable: true, enumerable: true });
  }
  if (g.navigator?.gpu !== gpu) throw new AppError('WEBGPU_UNAVAILABLE', 'Could not set navigator.gpu in this Node, so onnxruntime-web cannot find WebGPU. Use Node 20 or newer.');
}

const PATCHED = Symbol.for('phi3.writeBufferAcceptsShared');

/** Lets `queue.writeBuffer` take SharedArrayBuffer-backed data, as the WebGPU spec allows. */
function acceptSharedWrites(): void {
  const Queue = (globalThis as { GPUQueue?: { prototype: GPUQueue & { [PATCHED]?: true } } }).GPUQueue;
  if (!Queue) throw new AppError('WEBGPU_UNAVAILABLE', 'GPUQueue is not a global: call nodeGPU() (which installs the webgpu package\'s globals) before loadOrtNode.');
  const proto = Queue.prototype;
  if (proto[PATCHED]) return;
  const write = proto.writeBuffer;
  proto.writeBuffer = function (this: GPUQueue, buffer: GPUBuffer, offset: GPUSize64, data: AllowSharedBufferSource, dataOffset?: GPUSize64, size?: GPUSize64) {
    let own = data;
    if (data instanceof SharedArrayBuffer) own = new Uint8Array(data).slice().buffer;
    else if (ArrayBuffer.isView(data) && data.buffer instanceof SharedArrayBuffer) {
      // Same element type, so dataOffset and size (in elements) keep their meaning.
      const View = data.constructor as new (src: ArrayBufferView) => ArrayBufferView;
      own = data instanceof DataView ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice() : new View(data);
    }
    return write.call(this, buffer, offset, own as BufferSource, dataOffset, size);
  };
  proto[PATCHED] = true;
}

/** Path of the WebGPU build's `.wasm`, or a clear error when onnxruntime-web is not installed next to us. */
export function ortNodeWasmPath(): string {
  try {
    return createRequire(import.meta.url).resolve(WASM_FILE);
  } catch (err) {
    throw new AppError(
      'WEBGPU_UNAVAILABLE',
      `Cannot find ${WASM_FILE} from ${import.meta.url} (${err instanceof Error ? err.message : String(err)}). Run npm ci, or rebuild the bench bundle with node tools/bench/bundle-node.mjs.`,
    );
  }
}

/** onnxruntime-web's WebGPU build, set up to run on `gpu` in this Node process. */
export function loadOrtNode(gpu: GPU): Promise<OrtModule> {
  if (loaded) {
    if (loaded.gpu !== gpu) throw new AppError('BAD_ARGUMENT', 'loadOrtNode was already called with another GPU; onnxruntime keeps its first device, so use one GPU per process.');
    return loaded.ort;
  }
  const ort = (async () => {
    installNavigatorGpu(gpu);
    acceptSharedWrites();
    const wasm = ortNodeWasmPath();
    const mod = (await import('onnxruntime-web/webgpu')) as OrtModule;
    mod.env.wasm.numThreads = 1;
    mod.env.wasm.wasmBinary = await readFile(wasm);
    return mod;
  })();
  loaded = { gpu, ort };
  ort.catch(() => {
    if (loaded?.ort === ort) loaded = undefined;
  });
  return ort;
}
