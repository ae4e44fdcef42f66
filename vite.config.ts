import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';
import { VitePWA } from 'vite-plugin-pwa';
import { isModelFileUrl } from './src/pwa/modelUrls.ts';
import { ORT_WASM_CACHE, ORT_WASM_GLOB, ORT_WASM_ROUTE } from './src/pwa/ortWasm.ts';

// BASE_PATH lets the static build live under any sub-path of a host (e.g. GitHub Pages).
const base = process.env.BASE_PATH ?? '/';

// The service worker (vite-plugin-pwa, generateSW) precaches the app shell and the engine's own
// assets, all from this origin. onnxruntime-web's two .wasm runtimes (14 and 27 MB, 41 of the
// precache's 42 MB) serve only the second engine, which most users never load: they are cached the
// first time they are fetched instead (one CacheFirst route for exactly those files), so that
// engine starts offline once it has loaded online. It never caches model files (they live in
// IndexedDB): the precache list is filtered through isModelFileUrl and no other route exists.
// Updates wait for the user (registerType 'prompt', see src/pwa/UpdatePrompt.tsx).
const pwa = VitePWA({
  registerType: 'prompt',
  injectRegister: false,
  // Icons and favicon come in through globPatterns; listing them again would precache twice.
  includeManifestIcons: false,
  manifest: {
    name: 'Phi-3 WebGPU Chat',
    short_name: 'Phi-3 Chat',
    description: "Chat with Microsoft's Phi-3 Mini entirely in your browser, on your GPU. Nothing you type leaves your machine.",
    theme_color: '#1f2937',
    background_color: '#15171c',
    display: 'standalone',
    icons: [
      { src: 'icons/icon-192.png', sizes: '192x192', type: 'image/png', purpose: 'any' },
      { src: 'icons/icon-512.png', sizes: '512x512', type: 'image/png', purpose: 'any' },
      { src: 'icons/maskable-512.png', sizes: '512x512', type: 'image/png', purpose: 'maskable' },
    ],
  },
  workbox: {
    globPatterns: ['**/*.{js,mjs,css,html,wasm,svg,png}'],
    globIgnores: ['**/*.onnx', '**/*_data', '**/*.onnx.data', `**/${ORT_WASM_GLOB}`],
    manifestTransforms: [
      async (entries) => {
        const dropped = entries.filter((e) => isModelFileUrl(e.url)).map((e) => e.url);
        return { manifest: entries.filter((e) => !isModelFileUrl(e.url)), warnings: dropped.map((u) => `not precaching model file ${u}`) };
      },
    ],
    navigateFallback: 'index.html',
    navigateFallbackDenylist: [/\/resolve\//, /\.onnx/, /_data$/],
    runtimeCaching: [
      {
        urlPattern: ORT_WASM_ROUTE,
        handler: 'CacheFirst',
        options: {
          cacheName: ORT_WASM_CACHE,
          // Content-hashed names: a new build's files replace the old ones (two files per build).
          expiration: { maxEntries: 2 },
          cacheableResponse: { statuses: [200] },
        },
      },
    ],
    cleanupOutdatedCaches: true,
    // The first visit's page and engine worker are controlled as soon as the worker activates, not
    // from the next visit on: going offline before any reload still finds lazily loaded chunks.
    // Updates still wait for the user's click (the register's prompt flow ignores a first claim).
    clientsClaim: true,
  },
});

export default defineConfig({
  base,
  plugins: [react(), pwa],
  worker: { format: 'es' },
  build: { target: 'es2022', sourcemap: true },
});
