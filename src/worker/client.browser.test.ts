import { afterEach, describe, expect, it } from 'vitest';
import { spawnTestHub, testFiles, uniqueName, TEST_REPO } from '../storage/test-hub';
import type { RemoteHub } from '../../tools/hub-server/client';
import { EngineClient, WorkerError } from './client';
import type { DownloadProgress } from './protocol';

const clients: EngineClient[] = [];
const hubs: RemoteHub[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.terminate();
  for (const h of hubs.splice(0)) await h.close();
});

function makeClient(opts: { heartbeatMs?: number; deadAfterMs?: number } = {}) {
  const workers: Worker[] = [];
  const client = new EngineClient(() => {
    const w = new Worker(new URL('./engine.worker.ts', import.meta.url), { type: 'module' });
    workers.push(w);
    return w;
  }, { dbName: uniqueName('client'), ...opts });
  clients.push(client);
  return { client, workers };
}

describe('engine client ↔ worker (real module worker, real IndexedDB, local Hub)', () => {
  it('lists the catalog, downloads with progress, pauses, resumes, lists, deletes', async () => {
    const hub = await spawnTestHub(testFiles(2_000_000));
    hubs.push(hub);
    const { client } = makeClient();
    const entries = await client.catalog();
    expect(entries.map((e) => e.id)).toEqual(['phi-3-mini-4k-q4f16', 'phi-3-mini-4k-q4', 'phi-3-mini-128k-int4', 'phi-3.5-mini-q4f16']);
    expect((await client.estimate()).quota).toBeGreaterThan(0);

    // Slow the CDN so that the pause lands mid-download.
    await hub.setFaults({ bytesPerSec: 2_000_000 });
    const seen: DownloadProgress[] = [];
    const model = `${TEST_REPO}/onnx`;
    const tuning = { chunkSize: 128 * 1024, parallel: 2 };
    const first = client.download({ kind: 'hub', model }, hub.url, { tuning, onProgress: (p) => seen.push(p) });
    await new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if (seen.some((p) => p.phase === 'download' && p.doneBytes > 500_000)) {
          clearInterval(t);
          resolve();
        }
      }, 20);
    });
    first.pause();
    const paused = await first.done.catch((e: unknown) => e);
    expect(paused).toBeInstanceOf(WorkerError);
    expect((paused as WorkerError).code).toBe('ABORTED');
    const partial = await client.listCached();
    expect(partial).toHaveLength(1);
    expect(partial[0].complete).toBe(false);
    expect(partial[0].storedBytes).toBeGreaterThan(500_000);
    expect(partial[0].storedBytes).toBeLessThan(partial[0].totalBytes);

    await hub.setFaults({});
    const before = (await hub.log()).length;
    const second = client.download({ kind: 'hub', model }, hub.url, { tuning });
    const { model: done, stats } = await second.done;
    expect(done.complete).toBe(true);
    expect(done.storedBytes).toBe(done.totalBytes);
    // The resumed run fetched only what was missing.
    expect(stats.fetchedBytes).toBeLessThanOrEqual(done.totalBytes - partial[0].storedBytes + 2 * tuning.chunkSize);
    expect((await hub.log()).length).toBeGreaterThan(before);

    await client.deleteModel(done.modelId);
    expect(await client.listCached()).toEqual([]);
    // Asked on the page (a worker has no persist()); the answer is the browser's own.
    const p = await client.persist();
    expect(p.persisted).toBe(await navigator.storage.persisted());
  });

  it('reports typed errors with codes across the worker boundary', async () => {
    const { client } = makeClient();
    const err = await client.download({ kind: 'hub', model: 'not a model' }, 'http://127.0.0.1:9').done.catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'WorkerError', code: 'MODEL_NOT_FOUND' });
  });

  it('detects a dead worker by its missing heartbeat, fails pending calls, and restarts to a working store', async () => {
    const hub = await spawnTestHub(testFiles(200_000));
    hubs.push(hub);
    const { client, workers } = makeClient({ heartbeatMs: 100, deadAfterMs: 400 });
    const { model } = await client.download({ kind: 'hub', model: `${TEST_REPO}/onnx` }, hub.url, { tuning: { chunkSize: 64 * 1024 } }).done;
    await hub.close();
    hubs.length = 0;

    const deaths: WorkerError[] = [];
    client.onDead((e) => deaths.push(e));
    workers[0].terminate(); // the worker vanishes without an error event, as in a crash of its thread
    const pending = client.listCached().catch((e: unknown) => e);
    expect(await pending).toMatchObject({ code: 'WORKER_DEAD' });
    expect(deaths).toHaveLength(1);
    expect(client.alive).toBe(false);

    client.restart();
    expect(client.alive).toBe(true);
    await client.ping();
    // The fresh worker finds the model in IndexedDB with the Hub gone.
    expect((await client.listCached()).map((m) => [m.modelId, m.complete])).toEqual([[model.modelId, true]]);
  });
});
