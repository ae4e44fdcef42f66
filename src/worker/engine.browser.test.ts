/**
 * The worker's engine requests against a generated tiny Phi-3 (random weights, Phi-3's vocabulary
 * and chat template) downloaded from a spawned local Hub into this test's own IndexedDB:
 * load with progress phases, token counts that add up to the prompt the engine really ran,
 * greedy generation that is repeatable across turns (KV reuse must not change the answer), abort,
 * one engine at a time, a lost device that is recovered by loading again with no network, the
 * switch to onnxruntime-web giving the same greedy tokens, and `prepare` (a conversation read into
 * the cache ahead of its next message, on both engines, stopped by an answer asked for meanwhile);
 * the kernel and attention tunings measured in the background, stored and taken by later loads.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { spawnHub, type RemoteHub } from '../../tools/hub-server/client';
import { uniqueName } from '../storage/test-hub';
import type { ChatMessage, GenerateOptions, TokenEvent } from '../engine/types';
import { openDB } from 'idb';
import { EngineClient } from './client';
import type { DownloadProgress, KernelChoice } from './protocol';
import type { ContextLimitChange, TuningChange } from './client';
import type { TinyModelOptions } from '../../tools/tiny-model/options';

const REPO = 'test-org/tiny-phi3-worker';
const clients: EngineClient[] = [];
const hubs: RemoteHub[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.terminate();
  for (const h of hubs.splice(0)) await h.close();
});

const greedy = (maxNewTokens: number): GenerateOptions => ({ maxNewTokens, sampling: { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, seed: 1 } });

async function loadedClient(tinyModel: Partial<TinyModelOptions> = {}) {
  const hub = await spawnHub(inject('hubSpawner'), [{ id: REPO, tinyModel }]);
  hubs.push(hub);
  const dbName = uniqueName('engine');
  const client = new EngineClient(undefined, { dbName });
  clients.push(client);
  const { model } = await client.download({ kind: 'hub', model: `${REPO}/onnx` }, hub.url).done;
  await hub.close();
  hubs.length = 0; // from here on there is no network
  return { client, modelId: model.modelId, dbName };
}

describe('engine worker: load, count, generate, abort, device lost (tiny Phi-3, no network after download)', () => {
  it('loads with progress, counts exactly, generates repeatably, stops on abort, and recovers from a lost device', async () => {
    const { client, modelId } = await loadedClient();
    const progress: DownloadProgress[] = [];
    const info = await client.load(modelId, 'native', (p) => progress.push(p));
    expect([info.layers, info.hidden, info.vocab]).toEqual([2, 128, 32064]);
    expect(info.contextLimit).toBeGreaterThanOrEqual(16);
    expect(progress.length).toBeGreaterThan(0);
    const last = progress.at(-1)!;
    expect(last.phase).toBe('compile');
    expect(last.doneBytes).toBe(last.totalBytes);
    expect(progress.every((p) => p.phase === 'load' || p.phase === 'compile')).toBe(true);
    // SwiftShader is a CPU: the app's load measures no kernels there.
    expect(info.tuning).toEqual({ source: 'skipped', decode: { name: 'default' }, prefill: { name: 'default' } });
    expect(Object.keys(info.timings!)).toEqual(['prepareMs', 'uploadMs', 'compileMs']);
    // What it holds on the GPU: the context cache at its first 512 positions (K and V of every
    // layer), growing up to the whole context; the weights as uploaded (the node runtime test
    // checks those bytes buffer by buffer).
    const perPosition = info.layers * 2 * info.kvHeads * info.headDim * (info.precision === 'f16' ? 2 : 4);
    expect(info.gpuMemory).toMatchObject({ kvCacheBytes: perPosition * Math.min(512, info.contextLimit), kvCacheMaxBytes: perPosition * info.contextLimit });
    expect(info.gpuMemory!.weightBytes).toBeGreaterThan(10e6);
    expect(info.gpuMemory!.otherBytes).toBeGreaterThan(0);

    const messages: ChatMessage[] = [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'Name three GPU vendors.' },
    ];
    const count = await client.countTokens(messages);
    expect(count.perMessage).toHaveLength(2);
    expect(count.perMessage.every((n) => n > 3)).toBe(true);
    expect(count.contextLimit).toBe(info.contextLimit);

    const tokens: TokenEvent[] = [];
    const stats = await client.generate(messages, greedy(12), (t) => tokens.push(t));
    // The counts add up to the prompt the engine encoded on its own.
    expect(count.perMessage.reduce((a, b) => a + b, 0) + count.overhead).toBe(stats.promptTokens);
    const ids = tokens.filter((t) => t.tokenId >= 0).map((t) => t.tokenId);
    expect(ids).toHaveLength(stats.newTokens);
    expect(['max-tokens', 'eos']).toContain(stats.stopReason);

    // The same prompt again (the KV cache now holds it): greedy gives the same tokens.
    const again: number[] = [];
    await client.generate(messages, greedy(12), (t) => t.tokenId >= 0 && again.push(t.tokenId));
    expect(again).toEqual(ids);

    // Abort mid-answer: it resolves with 'aborted' and fewer tokens than asked for.
    const ctrl = new AbortController();
    let n = 0;
    const long = await client.generate(messages, greedy(2000), () => ++n === 3 && ctrl.abort(), ctrl.signal);
    expect(long.stopReason).toBe('aborted');
    expect(long.newTokens).toBeLessThan(2000);

    // A lost device: the worker says which model was loaded; loading it again works offline.
    const lost = new Promise<string | null>((resolve) => client.onDeviceLost((id) => resolve(id)));
    await client.loseDevice();
    expect(await lost).toBe(modelId);
    await expect(client.countTokens(messages)).rejects.toMatchObject({ code: 'MODEL_NOT_CACHED' });
    await client.load(modelId, 'native');
    const after: number[] = [];
    await client.generate(messages, greedy(12), (t) => t.tokenId >= 0 && after.push(t.tokenId));
    console.log(`[worker] tiny Phi-3: ${stats.promptTokens} prompt tokens, greedy ids ${ids.join(',')}; after device loss ${after.join(',')}`);
    expect(after).toEqual(ids);

    // The engine switch: onnxruntime-web (WASM EP on SwiftShader) replaces the native engine and
    // gives the same greedy tokens from the same stored files.
    const ortInfo = await client.load(modelId, 'ort');
    expect([ortInfo.layers, ortInfo.hidden, ortInfo.vocab]).toEqual([2, 128, 32064]);
    expect(ortInfo.gpuMemory).toBeUndefined();
    const ortIds: number[] = [];
    const ortStats = await client.generate(messages, greedy(12), (t) => t.tokenId >= 0 && ortIds.push(t.tokenId));
    console.log(`[worker] onnxruntime-web greedy ids ${ortIds.join(',')}`);
    expect(ortStats.promptTokens).toBe(stats.promptTokens);
    expect(ortIds).toEqual(ids);
  });

  it('measures the kernels in the background after the first load while the model answers, reuses the stored choice after, and measures again when it no longer builds', async () => {
    const { client, modelId, dbName } = await loadedClient();
    const messages: ChatMessage[] = [{ role: 'user', content: 'Which GPU is fastest for this?' }];
    const answer = async () => {
      const ids: number[] = [];
      await client.generate(messages, greedy(10), (t) => t.tokenId >= 0 && ids.push(t.tokenId));
      return ids;
    };
    const changes: TuningChange[] = [];
    client.onTuning((c) => changes.push(c));
    /** The kernels' tuning the background measurement ends with (after `from` changes). */
    const outcome = async (from: number) => {
      await expect.poll(() => changes.slice(from).find((c) => c.tuning.source !== 'measuring'), { timeout: 120_000, interval: 100 }).toBeDefined();
      return changes.slice(from).find((c) => c.tuning.source !== 'measuring')!.tuning;
    };
    const progress: DownloadProgress[] = [];
    const first = await client.load(modelId, 'native', (p) => progress.push(p), 'always');
    // Ready at once, on the defaults; no load phase waits for the measurements.
    const waiting = { source: 'waiting', decode: { name: 'default' }, prefill: { name: 'default' }, context: 2048 };
    expect(first.tuning).toEqual({ source: 'measuring', decode: { name: 'default' }, prefill: { name: 'default' }, progress: { done: 0, total: expect.any(Number) }, attention: waiting });
    expect(new Set(progress.map((p) => p.phase))).toEqual(new Set(['load', 'compile']));
    const total = first.tuning!.progress!.total;
    // An answer asked for meanwhile runs between two measurements, which go on after it.
    const during = await answer();
    expect(during).toHaveLength(10);
    const done = changes.filter((c) => c.tuning.source === 'measuring').length;
    expect(done).toBeLessThan(total);
    const tuning = await outcome(0);
    const steps = changes.filter((c) => c.tuning.source === 'measuring');
    expect(steps.map((c) => c.tuning.progress)).toEqual([...Array(total).keys()].map((i) => ({ done: i + 1, total })));
    expect(changes.every((c) => c.modelId === modelId)).toBe(true);
    const line = (c: KernelChoice) => `${c.timings!.map((t) => `${t.name} ${t.ms?.toFixed(1)} ms`).join(', ')} → ${c.name}`;
    console.log(`[worker] decode: ${line(tuning.decode)}; prefill (128 tokens): ${line(tuning.prefill)}; ${done} of ${total} measurements before the answer asked for meanwhile`);
    expect(tuning.source).toBe('measured');
    expect(tuning.decode.timings![0].name).toBe('default');
    expect(tuning.decode.timings!.length).toBeGreaterThan(1);
    // SwiftShader's default GEMM is the tiled one; the other is the wide one.
    expect(tuning.prefill.timings!.map((t) => t.name)).toEqual(['default', 'wide']);
    for (const t of [...tuning.decode.timings!, ...tuning.prefill.timings!]) expect(t.ms).toBeGreaterThan(0);
    // The model now runs the choice; the answer before it ran the defaults, and the chat cache it left stays usable.
    const ids = await answer();

    // The next load takes the stored choice without measuring, and answers the same.
    const before = changes.length;
    const second = await client.load(modelId, 'native', undefined, 'always');
    expect(second.tuning).toEqual({ ...tuning, source: 'stored' });
    expect(await answer()).toEqual(ids);
    expect(changes.length).toBe(before);

    // A stored choice that no longer builds (kernels changed under an unchanged key) is measured again.
    const db = await openDB(`${dbName}-tuning`);
    const [record] = await db.getAll('tunings');
    await db.put('tunings', { ...record, prefill: { ...record.prefill, chosen: { name: 'broken', tuning: { threadsPerRow: 3 } } } });
    const third = await client.load(modelId, 'native', undefined, 'always');
    expect(third.tuning!.source).toBe('measuring');
    const again = await outcome(before);
    expect(again.source).toBe('measured');
    expect((await db.get('tunings', record.key)).prefill.chosen.name).toBe(again.prefill.name);

    // A load while one measures ends that measurement without a word, and measures anew.
    await db.clear('tunings');
    db.close();
    const from = changes.length;
    expect((await client.load(modelId, 'native', undefined, 'always')).tuning!.source).toBe('measuring');
    expect((await client.load(modelId, 'native', undefined, 'always')).tuning!.source).toBe('measuring');
    expect((await outcome(from)).source).toBe('measured');
    expect(changes.slice(from).filter((c) => c.tuning.source !== 'measuring')).toHaveLength(1);

    // 'never' keeps the defaults.
    expect((await client.load(modelId, 'native', undefined, 'never')).tuning).toEqual({ source: 'skipped', decode: { name: 'default' }, prefill: { name: 'default' } });
  });

  it("measures attention once a chat is long, at that chat's context and keeping its cache; later loads take the choice, measure it again at 4× its context, and drop one that no longer builds", async () => {
    const { client, modelId, dbName } = await loadedClient();
    const changes: TuningChange[] = [];
    client.onTuning((c) => changes.push(c));
    const attentionDone = async (from: number) => {
      const done = (c: TuningChange) => c.tuning.attention && c.tuning.attention.source !== 'measuring' && c.tuning.attention.source !== 'waiting';
      await expect.poll(() => changes.slice(from).find(done), { timeout: 180_000, interval: 100 }).toBeDefined();
      return changes.slice(from).find(done)!.tuning;
    };
    // The kernels' measurement first (a short answer meanwhile), then a chat of about 2,300 tokens.
    const first = await client.load(modelId, 'native', undefined, 'always');
    expect(first.tuning!.attention).toEqual({ source: 'waiting', decode: { name: 'default' }, prefill: { name: 'default' }, context: 2048 });
    await expect.poll(() => changes.find((c) => c.tuning.source === 'measured'), { timeout: 120_000, interval: 100 }).toBeDefined();
    const long: ChatMessage[] = [{ role: 'user', content: Array.from({ length: 800 }, (_, i) => `word${i % 50}`).join(' ') }];
    const ids: number[] = [];
    const stats = await client.generate(long, greedy(4), (t) => t.tokenId >= 0 && ids.push(t.tokenId));
    expect(stats.promptTokens).toBeGreaterThanOrEqual(2048);
    const tuning = await attentionDone(0);
    const attention = tuning.attention!;
    expect(attention.source).toBe('measured');
    // The kernels' choice is carried along in every message.
    expect(tuning.source).toBe('measured');
    // SwiftShader's defaults: the serial kernel with up to 64 splits, the per-query prefill.
    expect(attention.decode.timings!.map((t) => t.name)).toEqual(['default', 'lanes', 'splits-32', 'splits-128']);
    expect(attention.prefill.timings!.map((t) => t.name)).toEqual(['default', 'blocked']);
    for (const t of [...attention.decode.timings!, ...attention.prefill.timings!]) expect(t.ms).toBeGreaterThan(0);
    const all = changes.filter((c) => c.tuning.attention?.source === 'measuring').map((c) => c.tuning.attention!);
    // Two rounds over 4 decode candidates and 2 prefill kernels, and each stage's confirming pair.
    expect(all.map((a) => a.progress)).toEqual([...Array(16 + 1).keys()].map((done) => ({ done, total: 16 })));
    // Measured at the chat's context: its prompt and (most of) its answer.
    expect(attention.context).toBeGreaterThanOrEqual(stats.promptTokens);
    expect(attention.context).toBeLessThanOrEqual(stats.promptTokens + 4);
    expect(all.every((a) => a.context === attention.context)).toBe(true);
    console.log(`[worker] attention at ${attention.context} tokens: decode ${attention.decode.timings!.map((t) => `${t.name} ${t.ms?.toFixed(1)} ms`).join(', ')} → ${attention.decode.name}; prefill ${attention.prefill.timings!.map((t) => `${t.name} ${t.ms?.toFixed(1)} ms`).join(', ')} → ${attention.prefill.name}`);
    // The chat's cache survived the measurement: the same prompt again is read from it, not prefilled.
    const again = await client.generate(long, greedy(2), () => undefined);
    expect(again.cachedTokens).toBeGreaterThanOrEqual(stats.promptTokens - 1);

    // The next load takes it; a long chat then measures nothing.
    const second = await client.load(modelId, 'native', undefined, 'always');
    expect(second.tuning!.attention).toEqual({ ...attention, source: 'stored' });
    const before = changes.length;
    await client.generate(long, greedy(2), () => undefined);
    await new Promise((r) => setTimeout(r, 500));
    expect(changes.length).toBe(before);

    // A choice measured at a quarter of a chat's context or less is measured again there; the
    // chat runs it meanwhile, and the new one replaces it.
    const db = await openDB(`${dbName}-tuning`);
    const record = (await db.getAll('tunings')).find((r) => 'attention' in r);
    expect(record).toBeDefined();
    await db.put('tunings', { ...record, attention: { ...record.attention, context: 500 } });
    expect((await client.load(modelId, 'native', undefined, 'always')).tuning!.attention).toMatchObject({ source: 'stored', context: 500 });
    const remeasure = changes.length;
    await client.generate(long, greedy(2), () => undefined);
    const remeasured = (await attentionDone(remeasure)).attention!;
    expect(remeasured.source).toBe('measured');
    expect(remeasured.context).toBeGreaterThanOrEqual(stats.promptTokens);
    const during = changes.slice(remeasure).find((c) => c.tuning.attention?.source === 'measuring')!.tuning.attention!;
    expect([during.decode.name, during.prefill.name]).toEqual([attention.decode.name, attention.prefill.name]);
    expect((await db.get('tunings', record.key)).attention.context).toBe(remeasured.context);

    // A stored attention choice that no longer builds: the load drops it and waits for a long chat again.
    await db.put('tunings', { ...record, attention: { ...record.attention, prefill: { ...record.attention.prefill, chosen: { name: 'broken', tuning: { kernel: 'bogus' } } } } });
    db.close();
    const third = await client.load(modelId, 'native', undefined, 'always');
    // The kernels' choice still builds, so it stays.
    expect(third.tuning!.source).toBe('stored');
    expect(third.tuning!.attention!.source).toBe('waiting');
    const from = changes.length;
    await client.generate(long, greedy(2), () => undefined);
    expect((await attentionDone(from)).attention!.source).toBe('measured');
  });

  it('prepare reads a conversation ahead: the next answer prefills only the new turn; an answer asked for meanwhile stops it', async () => {
    const { client, modelId } = await loadedClient();
    const history: ChatMessage[] = [{ role: 'system', content: 'You are terse.' }];
    for (let i = 0; i < 14; i++) {
      history.push({ role: 'user', content: `Question ${i}: which GPU vendors ship WebGPU drivers, and since when?` });
      history.push({ role: 'assistant', content: `Answer ${i}: several do; the details differ between platforms and browser versions.` });
    }
    const next: ChatMessage[] = [...history, { role: 'user', content: 'And on phones?' }];
    const answer = async (engine: 'native' | 'ort', prepare: boolean) => {
      await client.load(modelId, engine); // a fresh engine: the cache holds only the warm-up's BOS
      const prepared = prepare ? await client.prepare(history) : undefined;
      const ids: number[] = [];
      const stats = await client.generate(next, greedy(6), (t) => t.tokenId >= 0 && ids.push(t.tokenId));
      return { prepared, ids, stats };
    };

    const cold = await answer('native', false);
    const warm = await answer('native', true);
    console.log(`[worker] prepared ${JSON.stringify(warm.prepared)}; the answer then prefilled ${warm.stats.promptTokens - warm.stats.cachedTokens!} of ${warm.stats.promptTokens} (cold: ${cold.stats.promptTokens - cold.stats.cachedTokens!})`);
    expect(warm.prepared).toEqual({ preparedTokens: expect.any(Number), ranTokens: warm.prepared!.preparedTokens - 1, stopped: false });
    expect(warm.prepared!.preparedTokens).toBeGreaterThan(512);
    expect(warm.stats.cachedTokens).toBe(warm.prepared!.preparedTokens);
    expect(warm.stats.promptTokens - warm.stats.cachedTokens!).toBeLessThan(16);
    expect(cold.stats.cachedTokens).toBe(1);
    expect(warm.ids).toEqual(cold.ids);

    // An answer asked for while a prepare runs: the prepare stops at its next chunk (256 tokens).
    await client.load(modelId, 'native');
    const racing = client.prepare(history);
    const ids: number[] = [];
    const stats = await client.generate(next, greedy(6), (t) => t.tokenId >= 0 && ids.push(t.tokenId));
    const raced = await racing;
    expect(raced.stopped).toBe(true);
    expect(raced.ranTokens).toBeLessThanOrEqual(256);
    // The warm-up's BOS and at most that one chunk.
    expect(stats.cachedTokens).toBeLessThanOrEqual(257);
    expect(ids).toEqual(cold.ids);

    // onnxruntime-web runs the same prepare through its own runtime.
    const ort = await answer('ort', true);
    expect(ort.stats.cachedTokens).toBe(ort.prepared!.preparedTokens);
    expect(ort.prepared!.preparedTokens).toBe(warm.prepared!.preparedTokens);
    expect(ort.ids).toEqual(cold.ids);
  });

  it('a context cache out of GPU memory: the page hears the lower limit before the answer fails, and the chat goes on within it', async ({ skip }) => {
    // 64 KV heads of 32 in the f16 cache: 4 KiB per position, so the whole context (262,144 positions) is
    // a 1 GiB K buffer, which SwiftShader refuses (it allocates 1023 MiB); 131,072 is the most the
    // cache gets. A GPU that allocates it cannot be made to run out here.
    const adapter = await navigator.gpu.requestAdapter();
    if (adapter?.limits.maxStorageBufferBindingSize !== 2 ** 30 || !/swiftshader/i.test(`${adapter.info.vendor} ${adapter.info.architecture} ${adapter.info.description}`)) {
      skip('only SwiftShader is known to refuse a 1 GiB buffer it lets a shader bind');
    }
    const { client, modelId } = await loadedClient({ layout: 'gqa', dtype: 'q4f16', layers: 1, hidden: 2048, heads: 64, kvHeads: 64, intermediate: 64, maxPositions: 2 ** 18 });
    const info = await client.load(modelId, 'native');
    expect([info.contextLimit, info.precision]).toEqual([2 ** 18, 'f16']);
    const short: ChatMessage[] = [{ role: 'user', content: 'Name three GPU vendors.' }];
    const before: number[] = [];
    await client.generate(short, greedy(6), (t) => t.tokenId >= 0 && before.push(t.tokenId));

    const changes: Array<ContextLimitChange & { failed: boolean }> = [];
    let failed = false;
    client.onContextLimit((c) => changes.push({ ...c, failed }));
    // About 136,000 tokens: more than the 131,072 the cache can grow to.
    const words = ['the', 'quick', 'brown', 'fox', 'jumps', 'over', 'lazy', 'dog,', 'and', 'then', 'some.'];
    const text = Array.from({ length: 100_000 }, (_, i) => words[(i * 7 + (i >> 3)) % words.length]).join(' ');
    const t0 = performance.now();
    const error = await client.generate([{ role: 'user', content: text }], greedy(4), () => undefined).catch((e: unknown) => e);
    failed = true;
    console.log(`[worker] a ${text.length}-character prompt: ${(performance.now() - t0).toFixed(0)} ms to GPU_OUT_OF_MEMORY`);
    expect(error).toMatchObject({ code: 'GPU_OUT_OF_MEMORY', message: expect.stringContaining('now 131072 tokens') });
    const perPosition = 2 * 64 * 16 * 4;
    expect(changes).toEqual([{ modelId, contextLimit: 2 ** 17, gpuMemory: expect.objectContaining({ kvCacheBytes: perPosition * 2 ** 17, kvCacheMaxBytes: perPosition * 2 ** 17 }), failed: false }]);

    // The counts the context policy asks for use the new limit, and the chat answers as before.
    expect((await client.countTokens(short)).contextLimit).toBe(2 ** 17);
    const after: number[] = [];
    await client.generate(short, greedy(6), (t) => t.tokenId >= 0 && after.push(t.tokenId));
    expect(after).toEqual(before);
    expect(changes).toHaveLength(1);
  }, 240_000);

  it("a model with an attention window: the whole context, and a cache that grows only to the window and a prefill chunk (its ring)", async () => {
    const { client, modelId } = await loadedClient({ layout: 'gqa', slidingWindow: 100 });
    const info = await client.load(modelId, 'native');
    const perPosition = info.layers * 2 * info.kvHeads * info.headDim * (info.precision === 'f16' ? 2 : 4);
    expect(info.contextLimit).toBe(4096);
    expect(info.gpuMemory).toMatchObject({ kvCacheBytes: perPosition * 512, kvCacheMaxBytes: perPosition * (100 + 512) });
    const tokens: number[] = [];
    await client.generate([{ role: 'user', content: 'Name three GPU vendors.' }], greedy(4), (t) => t.tokenId >= 0 && tokens.push(t.tokenId));
    expect(tokens).toHaveLength(4);
  });

  it('answers typed errors: no model loaded, unknown model', async () => {
    const client = new EngineClient(undefined, { dbName: uniqueName('engine-err') });
    clients.push(client);
    await expect(client.countTokens([{ role: 'user', content: 'hi' }])).rejects.toMatchObject({ code: 'MODEL_NOT_CACHED' });
    await expect(client.generate([{ role: 'user', content: 'hi' }], greedy(4), () => undefined)).rejects.toMatchObject({ code: 'MODEL_NOT_CACHED' });
    await expect(client.load('no-such-model', 'native')).rejects.toMatchObject({ code: 'MODEL_NOT_CACHED' });
    await expect(client.load('no-such-model', 'ort')).rejects.toMatchObject({ code: 'MODEL_NOT_CACHED' });
  });
});
