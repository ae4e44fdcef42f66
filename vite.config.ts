import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// BASE_PATH lets the static build live under any sub-path of a host (e.g. GitHub Pages).
export default defineConfig({
  base: process.env.BASE_PATH ?? '/',
  plugins: [react()],
  worker: { format: 'es' },
  build: { target: 'es2022', sourcemap: true },
});
