import { describe, expect, it } from 'vitest';
import { webAnswerLocks } from './answerLocks';

/** A worker of this origin that takes the answer lock for `id` and holds it: another tab writing that answer. */
async function writerElsewhere(id: string): Promise<Worker> {
  const code = `navigator.locks.request('phi3-chat:answer:${id}', () => { postMessage('held'); return new Promise(() => {}); });`;
  const worker = new Worker(URL.createObjectURL(new Blob([code], { type: 'text/javascript' })));
  await new Promise((resolve) => (worker.onmessage = resolve));
  return worker;
}

const settled = <T>(p: Promise<T>) => Promise.race([p.then((v) => ({ v })), new Promise<'pending'>((r) => setTimeout(() => r('pending'), 50))]);

describe('answer locks over the Web Locks API [browser]', () => {
  it('an answer held is seen as held until it is let go, and waiting for it ends then', async () => {
    const locks = webAnswerLocks();
    expect(await locks.held('a1')).toBe(false);
    const release = locks.hold('a1');
    await expect.poll(() => locks.held('a1')).toBe(true);
    expect(await locks.held('a2')).toBe(false);
    const free = locks.whenFree('a1', new AbortController().signal);
    expect(await settled(free)).toBe('pending');
    release();
    expect(await free).toBe(true);
    expect(await locks.held('a1')).toBe(false);
  });

  it('a release before the lock is granted still lets it go', async () => {
    const locks = webAnswerLocks();
    locks.hold('b1')();
    await new Promise((r) => setTimeout(r, 20));
    expect(await locks.held('b1')).toBe(false);
  });

  it('waiting stops with false when its signal aborts', async () => {
    const locks = webAnswerLocks();
    const release = locks.hold('c1');
    const ctrl = new AbortController();
    const free = locks.whenFree('c1', ctrl.signal);
    ctrl.abort();
    expect(await free).toBe(false);
    release();
  });

  it('a writer that goes away without letting go (a closed tab) frees the answer', async () => {
    const locks = webAnswerLocks();
    const worker = await writerElsewhere('d1');
    expect(await locks.held('d1')).toBe(true);
    const free = locks.whenFree('d1', new AbortController().signal);
    expect(await settled(free)).toBe('pending');
    worker.terminate();
    expect(await free).toBe(true);
  });

  it('without the Web Locks API nothing is held and nothing waits', async () => {
    const locks = webAnswerLocks(null);
    const release = locks.hold('e1');
    expect(await locks.held('e1')).toBe(false);
    expect(await locks.whenFree('e1', new AbortController().signal)).toBe(true);
    release();
  });
});
