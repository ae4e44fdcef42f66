/**
 * Which URLs are model files. Model weights live in IndexedDB (src/storage), written once by the
 * downloader; a second copy in the service worker's Cache Storage would double gigabytes of
 * quota and could serve stale or truncated bytes. The build's precache manifest is filtered
 * through `isModelFileUrl`, and the service worker's one runtime route caches onnxruntime-web's
 * own .wasm files only (ortWasm.ts).
 * Rule: this module is imported by vite.config.ts (Node) as well as the app, so it must stay
 * free of DOM and Vite-only imports.
 */

/** Hub hosts, Hub download paths, ONNX graphs, external-data files and other weight formats. */
export const MODEL_URL_PATTERNS: readonly RegExp[] = [
  /^https?:\/\/([a-z0-9-]+\.)*(huggingface\.co|hf\.co)(\/|$)/i,
  /\/resolve\//,
  /\.onnx(\?|#|$)/i,
  /\.onnx[._]data(\?|#|$)/i,
  /_data(\?|#|$)/,
  /\.(safetensors|gguf|bin|pt)(\?|#|$)/i,
];

export function isModelFileUrl(url: string): boolean {
  return MODEL_URL_PATTERNS.some((re) => re.test(url));
}
