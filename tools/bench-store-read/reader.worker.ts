/**
 * In a worker, as the engine reads a stored model: `write` stores a file of `chunks` chunks of
 * `chunkSize` bytes; `read` streams it through `ChunkedFileSource` in reads of one chunk's length
 * starting `offset` bytes in (so most reads span two chunks, as tensor reads do), copying each
 * read once as `writeBuffer` copies an upload, with the given read-ahead; `drop` deletes it all.
 */
import { ModelStore } from '../../src/storage/model-store';

export type ReadRequest =
  | { id: number; op: 'write'; db: string; chunks: number; chunkSize: number }
  | { id: number; op: 'read'; db: string; readAhead: number; offset: number }
  | { id: number; op: 'drop'; db: string };
export interface ReadResult {
  ms: number;
  bytes: number;
  chunkReads: number;
}

const FILE = 'onnx/model.onnx_data';
let opened: { db: string; store: ModelStore } | undefined;
async function storeFor(db: string): Promise<ModelStore> {
  if (opened?.db !== db) opened = { db, store: await ModelStore.open(db) };
  return opened.store;
}

async function run(req: ReadRequest): Promise<ReadResult> {
  const store = await storeFor(req.db);
  const t0 = performance.now();
  if (req.op === 'write') {
    const now = Date.now();
    const size = req.chunks * req.chunkSize;
    await store.putManifest({
      modelId: 'bench',
      name: 'bench',
      source: 'local',
      files: [{ path: FILE, role: 'weights', size, chunkSize: req.chunkSize, present: new Array<number>(req.chunks).fill(0), verified: false }],
      complete: false,
      createdAt: now,
      updatedAt: now,
    });
    for (let i = 0; i < req.chunks; i++) await store.putChunk('bench', FILE, i, new Uint8Array(req.chunkSize).fill(i & 0xff));
    await store.markVerified('bench', FILE, 'size');
    return { ms: performance.now() - t0, bytes: size, chunkReads: 0 };
  }
  if (req.op === 'drop') {
    await store.deleteAll();
    return { ms: performance.now() - t0, bytes: 0, chunkReads: 0 };
  }
  const src = await store.openFile('bench', FILE, { readAhead: req.readAhead });
  const chunkSize = (await store.getManifest('bench'))!.files[0].chunkSize;
  const upload = new Uint8Array(chunkSize);
  let bytes = 0;
  for (let off = req.offset; off < src.size; off += chunkSize) {
    const b = await src.read(off, chunkSize);
    if (b[0] !== (Math.floor(off / chunkSize) & 0xff)) throw new Error(`wrong bytes at ${off}`);
    upload.set(b);
    bytes += b.byteLength;
  }
  return { ms: performance.now() - t0, bytes, chunkReads: src.chunkReads };
}

self.onmessage = (e: MessageEvent<ReadRequest>) => {
  run(e.data).then(
    (result) => self.postMessage({ id: e.data.id, result }),
    (err: unknown) => self.postMessage({ id: e.data.id, error: err instanceof Error ? err.message : String(err) }),
  );
};
