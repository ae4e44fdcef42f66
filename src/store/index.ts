/**
 * The app's single zustand store, composed of slices. Only store actions talk to the worker
 * client; components select narrowly and call actions. The services are injected so that unit
 * tests can give the store a real worker-less engine client of their own.
 */
import { create } from 'zustand';
import { EngineClient } from '../worker/client';
import { createGpuSlice, type GpuSlice } from './gpuSlice';

export interface Services {
  engine: () => Pick<EngineClient, 'probe'>;
}

export type AppState = GpuSlice;

export function createAppStore(services: Services) {
  return create<AppState>()((...a) => ({
    ...createGpuSlice(services)(...a),
  }));
}

let client: EngineClient | undefined;
export const useAppStore = createAppStore({ engine: () => (client ??= new EngineClient()) });
