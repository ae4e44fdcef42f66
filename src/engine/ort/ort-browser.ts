/**
 * Browser only: imports onnxruntime-web's bundle for a provider and points it at our own copy of
 * its `.wasm` (a Vite `?url` asset from node_modules/onnxruntime-web/dist, so a PWA can precache
 * it) — never a CDN. `OrtEngine.load` imports this module lazily when no onnxruntime module is
 * passed in; Node passes one from ort-node.ts instead, so the `?url` imports never run there.
 * Rule: each bundle is imported and configured once per page/worker.
 */
import webgpuWasmUrl from 'onnxruntime-web/ort-wasm-simd-threaded.asyncify.wasm?url';
import wasmUrl from 'onnxruntime-web/ort-wasm-simd-threaded.wasm?url';
import type { OrtModule, OrtProvider } from './ort-runtime';

const bundles = new Map<OrtProvider, Promise<OrtModule>>();

export function loadOrtBrowser(provider: OrtProvider): Promise<OrtModule> {
  let p = bundles.get(provider);
  if (!p) {
    p = (provider === 'webgpu' ? import('onnxruntime-web/webgpu') : import('onnxruntime-web/wasm')).then((ort) => {
      // Only the .wasm is overridden: the bundles embed their .mjs glue.
      ort.env.wasm.wasmPaths = { wasm: new URL(provider === 'webgpu' ? webgpuWasmUrl : wasmUrl, self.location.href).href };
      return ort;
    });
    bundles.set(provider, p);
  }
  return p;
}
