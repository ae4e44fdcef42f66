import { afterEach, describe, expect, inject, it } from 'vitest';
import { spawnHub } from '../../tools/hub-server/client';
import { AppError } from '../engine/errors';
import type { RemoteHub } from '../../tools/hub-server/client';
import type { LogEntry } from '../../tools/hub-server/server';
import { readOnnxModel } from '../engine/onnx/reader';
import { countingSource } from '../engine/onnx/sources';
import { customEntry } from './catalog';
import { downloadModel, type DownloadProgress } from './downloader';
import { ModelStore, chunkCount } from './model-store';
import { sha256Hex, spawnTestHub, testEntry, testFiles, uniqueName } from './test-hub';

const KiB = 1024;
const opened: Array<{ store: ModelStore; name: string }> = [];
const hubs: RemoteHub[] = [];

async function setup(dataBytes: number, repo?: string, gated = false) {
  const hub = await spawnTestHub(testFiles(dataBytes), repo, gated);
  hubs.push(hub);
  const name = uniqueName('dl');
  const store = await ModelStore.open(name);
  opened.push({ store, name });
  return { hub, store, entry: testEntry(uniqueName('model')) };
}

afterEach(async () => {
  for (const { store, name } of opened.splice(0)) {
    store.close();
    await new Promise((r) => {
      const req = indexedDB.deleteDatabase(name);
      req.onsuccess = req.onerror = req.onblocked = r;
    });
  }
  for (const h of hubs.splice(0)) await h.close();
});

/** Server-side ranged GETs that reached the CDN, per `path@start`. */
function rangeCounts(log: LogEntry[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const e of log) {
    if (e.kind !== 'cdn' || !e.range || (e.status !== 206 && e.status !== 200)) continue;
    const key = `${e.path.split('/').slice(-2).join('/')}@${e.range[0]}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

async function expectStoredFilesMatchHub(store: ModelStore, modelId: string, hub: RemoteHub) {
  const m = await store.getManifest(modelId);
  expect(m?.complete).toBe(true);
  const tree = (await (await fetch(`${hub.url}/api/models/test-org/tiny-phi3/tree/main/onnx`)).json()) as Array<{ path: string; lfs?: { oid: string } }>;
  for (const t of tree) {
    const src = await store.openFile(modelId, t.path);
    expect(await sha256Hex(await src.read(0, src.size))).toBe(t.lfs?.oid);
  }
}

describe('downloader against the local Hub', () => {
  it('downloads fresh: ranged GETs through one CDN redirect per file, no preflight, each chunk once, verified', async () => {
    const { hub, store, entry } = await setup(1_000_000);
    const progress: DownloadProgress[] = [];
    const { manifest, stats } = await downloadModel(store, entry, { hub: hub.url, chunkSize: 64 * KiB, onProgress: (p) => progress.push(p) });
    expect(manifest.complete).toBe(true);
    expect(manifest.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(manifest.files.map((f) => f.verifiedBy)).toEqual(['sha256', 'sha256', 'git-oid', 'git-oid']);
    await expectStoredFilesMatchHub(store, entry.id, hub);

    const log = await hub.log();
    expect(log.filter((e) => e.kind === 'preflight')).toEqual([]);
    expect(log.filter((e) => e.kind === 'resolve').length).toBe(4);
    const counts = rangeCounts(log);
    const chunks = manifest.files.reduce((n, f) => n + chunkCount(f.size, f.chunkSize), 0);
    expect(counts.size).toBe(chunks);
    expect([...counts.values()].every((c) => c === 1)).toBe(true);
    expect(stats.fetchedBytes).toBe(manifest.files.reduce((n, f) => n + f.size, 0));

    const phases = new Set(progress.map((p) => p.phase));
    expect([...phases]).toEqual(expect.arrayContaining(['resolve', 'download', 'verify', 'done']));
    const last = progress[progress.length - 1];
    expect(last.doneBytes).toBe(last.totalBytes);

    // A second call finds the model complete and fetches nothing.
    await hub.clearLog();
    const again = await downloadModel(store, entry, { hub: hub.url });
    expect(again.stats.requests).toBe(0);
    expect(await hub.log()).toEqual([]);
  });

  it('resumes after ≥ 20 connections cut at random points, re-fetching at most one chunk per cut', async () => {
    const chunk = 64 * KiB;
    const { hub, store, entry } = await setup(4_000_000);
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    let runs = 0;
    let done = false;
    while (!done && runs < 80) {
      runs++;
      // Cut somewhere in the next ~2.5 chunks' worth of bytes this run will serve.
      await hub.setFaults({ cutAt: [Math.floor(rand() * 2.5 * chunk)] });
      try {
        await downloadModel(store, entry, { hub: hub.url, chunkSize: chunk, parallel: 3, maxRetries: 0, crossTab: false });
        done = true;
      } catch (err) {
        expect(err).toBeInstanceOf(AppError);
        expect((err as AppError).code).toBe('DOWNLOAD_FAILED');
      }
    }
    const log = await hub.log();
    const cuts = log.filter((e) => e.fault === 'cut').length;
    expect(done).toBe(true);
    expect(cuts).toBeGreaterThanOrEqual(20);
    const m = (await store.getManifest(entry.id))!;
    const chunks = m.files.reduce((n, f) => n + chunkCount(f.size, f.chunkSize), 0);
    const requests = [...rangeCounts(log).values()].reduce((a, b) => a + b, 0);
    const refetched = requests - chunks;
    console.log(`cut test: ${cuts} cuts over ${runs} runs, ${chunks} chunks, ${refetched} chunk re-fetches`);
    expect(refetched).toBeLessThanOrEqual(cuts);
    await expectStoredFilesMatchHub(store, entry.id, hub);
  });

  it('rides out 500s, short reads, cut connections and expired CDN links within one run', async () => {
    const { hub, store, entry } = await setup(1_500_000);
    await hub.setFaults({ fail500: 3, shortReads: 3, cutAt: [100_000, 700_000], linkTtlMs: 40, delayMs: 10 });
    const { manifest, stats } = await downloadModel(store, entry, { hub: hub.url, chunkSize: 64 * KiB, backoffMs: 5, crossTab: false });
    expect(manifest.complete).toBe(true);
    const faults = (await hub.log()).map((e) => e.fault).filter(Boolean);
    expect(faults.filter((f) => f === '500').length).toBe(3);
    expect(faults.filter((f) => f === 'short').length).toBe(3);
    expect(faults.filter((f) => f === 'cut').length).toBe(2);
    expect(faults).toContain('expired');
    const retried = (await hub.log()).filter((e) => e.kind !== 'api' && (e.fault === '500' || e.fault === 'short' || e.fault === 'cut')).length;
    expect(stats.retries).toBeGreaterThanOrEqual(retried);
    expect(retried).toBeGreaterThanOrEqual(5);
    expect(stats.reResolves).toBeGreaterThanOrEqual(1);
    await expectStoredFilesMatchHub(store, entry.id, hub);
  });

  it('detects wrong bytes by sha256, discards the file and repairs it', async () => {
    const { hub, store, entry } = await setup(800_000);
    await hub.setFaults({ corrupt: [{ path: 'onnx/model_q4f16.onnx_data', offset: 123_457, times: 1 }] });
    const { stats } = await downloadModel(store, entry, { hub: hub.url, chunkSize: 64 * KiB, crossTab: false });
    expect(stats.integrityFailures).toBe(1);
    expect((await hub.log()).filter((e) => e.fault === 'corrupt').length).toBe(1);
    await expectStoredFilesMatchHub(store, entry.id, hub);
  });

  it('refuses a file whose bytes never match, leaving it unverified and unloadable', async () => {
    const { hub, store, entry } = await setup(200_000);
    await hub.setFaults({ corrupt: [{ path: 'onnx/model_q4f16.onnx_data', offset: 5, times: 99 }] });
    const err = await downloadModel(store, entry, { hub: hub.url, chunkSize: 64 * KiB, crossTab: false }).catch((e: unknown) => e);
    expect((err as AppError).code).toBe('DOWNLOAD_INTEGRITY');
    const m = (await store.getManifest(entry.id))!;
    expect(m.complete).toBe(false);
    expect(m.files.find((f) => f.path.endsWith('_data'))?.verified).toBe(false);
    await expect(store.openFile(entry.id, 'onnx/model_q4f16.onnx_data')).rejects.toMatchObject({ code: 'DOWNLOAD_INTEGRITY' });
  });

  it('runs one download per model across agents: the second waits, relays progress, fetches nothing', async () => {
    const { hub, store, entry } = await setup(1_000_000);
    await hub.setFaults({ delayMs: 20 });
    const second: DownloadProgress[] = [];
    const a = downloadModel(store, entry, { hub: hub.url, chunkSize: 64 * KiB, parallel: 2 });
    await new Promise((r) => setTimeout(r, 150));
    const b = downloadModel(store, entry, { hub: hub.url, chunkSize: 64 * KiB, onProgress: (p) => second.push(p) });
    const [ra, rb] = await Promise.all([a, b]);
    expect(ra.manifest.complete && rb.manifest.complete).toBe(true);
    expect(rb.stats.requests).toBe(0);
    expect(second[0].phase).toBe('waiting');
    expect(second.some((p) => p.otherTab && p.phase === 'download')).toBe(true);
    expect([...rangeCounts(await hub.log()).values()].every((c) => c === 1)).toBe(true);
  });

  it('skips an optional catalog file the Hub does not list, and names a missing required one', async () => {
    const { hub, store, entry } = await setup(100_000);
    entry.files = [...entry.files!, { path: 'added_tokens.json', role: 'tokenizer', optional: true }];
    const { manifest } = await downloadModel(store, entry, { hub: hub.url, chunkSize: 64 * KiB, crossTab: false });
    expect(manifest.files.map((f) => f.path)).not.toContain('added_tokens.json');
    const missing = { ...entry, id: uniqueName('missing'), files: [...entry.files.slice(0, -1), { path: 'added_tokens.json', role: 'tokenizer' as const }] };
    const err = await downloadModel(store, missing, { hub: hub.url, crossTab: false }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'MODEL_NOT_FOUND', message: expect.stringContaining('has no file added_tokens.json') });
  });

  it('discovers a custom repo entry from the tree API', async () => {
    const { hub, store } = await setup(300_000);
    const entry = customEntry('test-org/tiny-phi3', 'onnx');
    const { manifest } = await downloadModel(store, entry, { hub: hub.url, chunkSize: 64 * KiB, crossTab: false });
    expect(manifest.files.map((f) => `${f.role}:${f.path}`)).toEqual([
      'graph:onnx/model_q4f16.onnx',
      'weights:onnx/model_q4f16.onnx_data',
      'config:config.json',
      'tokenizer:tokenizer.json',
    ]);
    expect(manifest.complete).toBe(true);
  });

  it('a gated repo: its listing is public, its files are not; the error says so and what to do', async () => {
    const { hub, store } = await setup(300_000, 'test-org/gated-phi3', true);
    const err = await downloadModel(store, customEntry('test-org/gated-phi3', 'onnx'), { hub: hub.url, chunkSize: 64 * KiB, crossTab: false }).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'MODEL_ACCESS_DENIED',
      message: expect.stringMatching(/^test-org\/gated-phi3 lets only signed-in users with access download its files \(HTTP 401, GatedRepo\): it is gated or private\. .*choose them here as a local folder\.$/),
    });
  });

  it('reads a file listing the Hub pages (Link: rel="next"), every page of it', async () => {
    const { hub, store } = await setup(300_000);
    await hub.setFaults({ treePageSize: 2 });
    const { manifest } = await downloadModel(store, customEntry('test-org/tiny-phi3', 'onnx'), { hub: hub.url, chunkSize: 64 * KiB, crossTab: false });
    // The files on the listing's last page (root JSON files, sorted after onnx/) were found too.
    expect(manifest.files.map((f) => `${f.role}:${f.path}`)).toEqual([
      'graph:onnx/model_q4f16.onnx',
      'weights:onnx/model_q4f16.onnx_data',
      'config:config.json',
      'tokenizer:tokenizer.json',
    ]);
    // Four files, two to a page.
    expect((await hub.log()).filter((e) => e.kind === 'api' && e.path.includes('/tree/'))).toHaveLength(2);
  });

  it('measures throughput and verify time with the default 8 MiB chunks (64 MB file)', async () => {
    const { hub, store, entry } = await setup(64_000_000);
    const t0 = performance.now();
    const { stats } = await downloadModel(store, entry, { hub: hub.url, crossTab: false });
    const total = (performance.now() - t0) / 1000;
    const mb = stats.fetchedBytes / 1e6;
    console.log(
      `throughput: ${mb.toFixed(1)} MB in ${total.toFixed(2)} s total = ${(mb / total).toFixed(1)} MB/s; ` +
        `download phase ${(stats.downloadMs / 1000).toFixed(2)} s (${(mb / (stats.downloadMs / 1000)).toFixed(1)} MB/s incl. IndexedDB writes); ` +
        `verify (IndexedDB read + sha256) ${(stats.verifyMs / 1000).toFixed(2)} s = ${(mb / (stats.verifyMs / 1000)).toFixed(1)} MB/s`,
    );
    expect(stats.requests).toBe(Math.ceil(64_000_000 / (8 * 1024 * 1024)) + 3);
    await expectStoredFilesMatchHub(store, entry.id, hub);
  });
});

describe('downloader with a generated tiny Phi-3 (tools/tiny-model)', () => {
  it('discovers the web layout (graph, external data, configs, tokenizer) and stores every file verified', async () => {
    const hub = await spawnHub(inject('hubSpawner'), [{ id: 'test-org/tiny-phi3-gen', tinyModel: { dtype: 'q4f16', maxInlineBytes: 200_000 } }]);
    hubs.push(hub);
    const name = uniqueName('tiny');
    const store = await ModelStore.open(name);
    opened.push({ store, name });
    const { manifest } = await downloadModel(store, customEntry('test-org/tiny-phi3-gen', 'onnx'), { hub: hub.url, chunkSize: 256 * KiB, crossTab: false });
    expect(manifest.files.map((f) => `${f.role}:${f.path}:${f.verifiedBy}`)).toEqual([
      'graph:onnx/model_q4f16.onnx:sha256',
      'weights:onnx/model_q4f16.onnx_data:sha256',
      'config:config.json:git-oid',
      'config:genai_config.json:git-oid',
      'config:generation_config.json:git-oid',
      'tokenizer:tokenizer.json:sha256',
      'tokenizer:tokenizer_config.json:git-oid',
      'tokenizer:special_tokens_map.json:git-oid',
      'tokenizer:added_tokens.json:git-oid',
    ]);
    const config = await store.openFile(manifest.modelId, 'config.json');
    expect(JSON.parse(new TextDecoder().decode(await config.read(0, config.size)))).toMatchObject({ model_type: 'phi3' });

    // The streaming ONNX reader parses the graph straight from the stored chunks.
    const graphSrc = countingSource(await store.openFile(manifest.modelId, 'onnx/model_q4f16.onnx'));
    const model = await readOnnxModel(graphSrc);
    expect(model.graph.nodes.some((n) => n.opType === 'MatMulNBits' && n.domain === 'com.microsoft')).toBe(true);
    const external = model.graph.initializers.filter((t) => t.location.kind === 'external');
    expect(external.length).toBeGreaterThan(0);
    // A weight in the external data file reads back from IndexedDB byte-identical to what the Hub serves.
    const t = external[external.length - 1];
    if (t.location.kind !== 'external') throw new Error('unreachable');
    expect(t.location.file).toBe('model_q4f16.onnx_data');
    const dataSrc = await store.openFile(manifest.modelId, 'onnx/model_q4f16.onnx_data');
    const stored = await dataSrc.read(t.location.offset, t.location.length);
    const res = await fetch(`${hub.url}/test-org/tiny-phi3-gen/resolve/main/onnx/model_q4f16.onnx_data`, {
      headers: { Range: `bytes=${t.location.offset}-${t.location.offset + t.location.length - 1}` },
    });
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(stored);
    console.log(
      `tiny model from IndexedDB: graph ${graphSrc.size} bytes parsed with ${graphSrc.stats.reads} reads (${graphSrc.stats.bytesRead} bytes, largest ${graphSrc.stats.largestRead}); ` +
        `${model.graph.nodes.length} nodes, ${model.graph.initializers.length} initializers (${external.length} external)`,
    );
  });
});
