/** GPU capability slice: what the worker found when it probed WebGPU. */
import type { StateCreator } from 'zustand';
import type { GpuProbe } from '../engine/gpu/probe';
import type { AppState, Services } from './index';

export interface GpuSlice {
  gpu: { status: 'idle' | 'probing' | 'done' | 'error'; probe?: GpuProbe; error?: string };
  probeGpu: () => Promise<void>;
}

export const createGpuSlice =
  (services: Services): StateCreator<AppState, [], [], GpuSlice> =>
  (set) => ({
    gpu: { status: 'idle' },
    probeGpu: async () => {
      set({ gpu: { status: 'probing' } });
      try {
        const probe = await services.engine().probe();
        set({ gpu: { status: 'done', probe } });
      } catch (err) {
        set({ gpu: { status: 'error', error: err instanceof Error ? err.message : String(err) } });
      }
    },
  });
