import { describe, expect, it } from 'vitest';
import { createStore } from 'zustand/vanilla';
import { createUpdateGate } from './updateGate';

function streamingStore(streaming: boolean) {
  const store = createStore<{ streaming: boolean }>()(() => ({ streaming }));
  return { store, source: { isStreaming: () => store.getState().streaming, subscribe: store.subscribe } };
}

describe('createUpdateGate', () => {
  it('reloads at once when no answer is streaming', () => {
    const { source } = streamingStore(false);
    let reloads = 0;
    const gate = createUpdateGate(source, () => reloads++);
    gate.requestReload();
    expect(reloads).toBe(1);
    expect(gate.isDeferred()).toBe(false);
  });

  it('waits for the stream to end, then reloads exactly once', () => {
    const { store, source } = streamingStore(true);
    let reloads = 0;
    const gate = createUpdateGate(source, () => reloads++);
    gate.requestReload();
    gate.requestReload();
    expect(reloads).toBe(0);
    expect(gate.isDeferred()).toBe(true);
    store.setState({ streaming: true }); // a token arrives: still streaming
    expect(reloads).toBe(0);
    store.setState({ streaming: false });
    expect(reloads).toBe(1);
    expect(gate.isDeferred()).toBe(false);
    store.setState({ streaming: true });
    store.setState({ streaming: false });
    expect(reloads).toBe(1);
  });
});
