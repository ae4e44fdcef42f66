/**
 * Browser only: imports onnxruntime-web's bundle for a provider and points it at our own copy of
 * its `.wasm` (a Vite `?url` asset from node_modules/onnxruntime-web/dist, served by this origin)
 * — never a CDN. The service worker caches that `.wasm` the first time it is fetched
 * (src/pwa/ortWasm.ts); a load offline before that has happened fails before onnxruntime starts,
 * saying what to do (`checkRuntimeReachable`), and leaves the engine able to load once online.
 * `OrtEngine.load` imports this module lazily when no onnxruntime module is passed in; Node
 * passes one from ort-node.ts instead, so the `?url` imports never run there.
 * Rule: each bundle is imported and configured once per page/worker.
 */
import webgpuWasmUrl from 'onnxruntime-web/ort-wasm-simd-threaded.asyncify.wasm?url';
import wasmUrl from 'onnxruntime-web/ort-wasm-simd-threaded.wasm?url';
import { AppError } from '../errors';
import type { OrtModule, OrtProvider } from './ort-runtime';

const bundles = new Map<OrtProvider, Promise<OrtModule>>();

const runtimeUrl = (provider: OrtProvider) => new URL(provider === 'webgpu' ? webgpuWasmUrl : wasmUrl, self.location.href).href;

/** Providers whose runtime has started in this worker: it is compiled, so it needs no fetch again. */
const started = new Set<OrtProvider>();

/** Called by OrtEngine.load once a session exists: the provider's runtime is up in this worker. */
export function ortRuntimeStarted(provider: OrtProvider): void {
  started.add(provider);
}

/**
 * Fails with what to do when the provider's runtime can be neither read from the service worker's
 * cache (it was never fetched) nor fetched (offline, say). Checked before onnxruntime tries: a
 * runtime that fails to start once stays broken in this worker ("previous call to
 * 'initializeWebAssembly()' failed"), so the load after the user reconnects would fail too.
 */
async function checkRuntimeReachable(provider: OrtProvider): Promise<void> {
  if (started.has(provider)) return;
  const url = runtimeUrl(provider);
  if (typeof caches !== 'undefined' && (await caches.match(url).catch(() => undefined))) return;
  if (await fetch(url, { method: 'HEAD', cache: 'no-store' }).then((r) => r.ok, () => false)) return;
  throw new AppError(
    'DOWNLOAD_FAILED',
    `This device could not fetch onnxruntime-web's ${provider === 'webgpu' ? 'WebGPU' : 'WASM'} runtime (a ${provider === 'webgpu' ? '27' : '14'} MB file), and it is not stored yet: the app fetches it the first time that engine loads and keeps it for offline use from then on. Connect to the network and load again, or use the native engine.`,
  );
}

export async function loadOrtBrowser(provider: OrtProvider): Promise<OrtModule> {
  await checkRuntimeReachable(provider);
  let p = bundles.get(provider);
  if (!p) {
    p = (provider === 'webgpu' ? import('onnxruntime-web/webgpu') : import('onnxruntime-web/wasm')).then((ort) => {
      // Only the .wasm is overridden: the bundles embed their .mjs glue.
      ort.env.wasm.wasmPaths = { wasm: runtimeUrl(provider) };
      return ort;
    });
    bundles.set(provider, p);
  }
  return p;
}
