import { describe, expect, it } from 'vitest';
import { createAppStore } from './index';
import { WorkerError } from '../worker/client';
import { testServices } from './testing';

describe('gpu slice', () => {
  it('records the probe the engine returns', async () => {
    const probe = { available: true, features: ['subgroups'], adapter: { vendor: 'v', architecture: 'a', device: 'd', description: 'desc' } };
    const store = createAppStore(testServices({ probe: async () => probe }));
    await store.getState().probeGpu();
    expect(store.getState().gpu).toEqual({ status: 'done', probe });
  });

  it('keeps the error message when the worker fails', async () => {
    const store = createAppStore(
      testServices({
        probe: async () => {
          throw new WorkerError('INTERNAL', 'The engine worker crashed: boom');
        },
      }),
    );
    await store.getState().probeGpu();
    expect(store.getState().gpu).toEqual({ status: 'error', error: 'The engine worker crashed: boom' });
  });
});
