/**
 * onnxruntime-web's WebAssembly runtimes as the build emits them
 * (`assets/ort-wasm-simd-threaded-<hash>.wasm`, 14 MiB, for its WASM provider, and
 * `assets/ort-wasm-simd-threaded.asyncify-<hash>.wasm`, 27 MiB, for its WebGPU provider). They are
 * left out of the precache and cached by the service worker the first time the second engine
 * fetches them (vite.config.ts), so a first visit does not download 41 MiB that only that engine
 * uses. Rule: imported by vite.config.ts (Node) as well as the app: no DOM or Vite-only imports.
 */

/** The Cache Storage cache the service worker keeps them in. */
export const ORT_WASM_CACHE = 'onnxruntime-wasm';
/** Their file names, as a glob (the precache's ignore list). */
export const ORT_WASM_GLOB = 'ort-wasm-*.wasm';
/** Their URLs (the service worker's one runtime route). */
export const ORT_WASM_ROUTE = /\/ort-wasm-[\w.-]+\.wasm$/;

export function isOrtWasmUrl(url: string): boolean {
  return ORT_WASM_ROUTE.test(new URL(url, 'http://x/').pathname);
}
