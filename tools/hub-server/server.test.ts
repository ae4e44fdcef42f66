import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { makeRepo, startHubServer, type HubServer } from './server';

const repo = makeRepo('org/model', { 'config.json': '{"a":1}', 'onnx/model.onnx_data': 300_000 });
const data = repo.files.get('onnx/model.onnx_data')!;
let hub: HubServer;
beforeAll(async () => void (hub = await startHubServer([repo])));
afterAll(() => hub.close());

describe('hub-server', () => {
  it('redirects resolve to a CDN host that serves single ranges with CORS', async () => {
    const res = await fetch(`${hub.url}/org/model/resolve/main/onnx/model.onnx_data`, { headers: { Range: 'bytes=100-199' } });
    expect(res.status).toBe(206);
    expect(res.url.startsWith(hub.cdnUrl)).toBe(true);
    expect(res.headers.get('content-range')).toBe(`bytes 100-199/${data.length}`);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(Buffer.from(await res.arrayBuffer()).equals(data.subarray(100, 200))).toBe(true);
  });

  it('lists a folder with sizes and lfs sha256 in the tree API', async () => {
    const tree = (await (await fetch(`${hub.url}/api/models/org/model/tree/main/onnx`)).json()) as Array<Record<string, unknown>>;
    expect(tree).toEqual([
      {
        type: 'file',
        path: 'onnx/model.onnx_data',
        size: 300_000,
        oid: createHash('sha1').update(`blob 300000\0`).update(data).digest('hex'),
        lfs: { oid: createHash('sha256').update(data).digest('hex'), size: 300_000, pointerSize: 134 },
      },
    ]);
    const root = (await (await fetch(`${hub.url}/api/models/org/model/tree/main`)).json()) as Array<{ type: string; path: string }>;
    expect(root.map((e) => `${e.type}:${e.path}`)).toEqual(['file:config.json', 'directory:onnx']);
  });

  it('rejects expired links, cuts bodies, fails with 500 and serves short and corrupt ranges on demand', async () => {
    const r1 = await fetch(`${hub.url}/org/model/resolve/main/onnx/model.onnx_data`, { redirect: 'manual' });
    const cdn = r1.headers.get('location')!;
    hub.expireLinks();
    expect((await fetch(cdn)).status).toBe(403);

    hub.setFaults({ cutAt: [1000] });
    const cut = await fetch(`${hub.url}/org/model/resolve/main/onnx/model.onnx_data`);
    await expect(cut.arrayBuffer()).rejects.toThrow();

    hub.setFaults({ fail500: 1, shortReads: 1, corrupt: [{ path: 'onnx/model.onnx_data', offset: 5, times: 1 }] });
    expect((await fetch(`${hub.url}/org/model/resolve/main/config.json`)).status).toBe(500);
    const short = await fetch(`${hub.url}/org/model/resolve/main/onnx/model.onnx_data`, { headers: { Range: 'bytes=0-99' } });
    const sb = Buffer.from(await short.arrayBuffer());
    expect(sb.length).toBe(50);
    expect(sb[5]).toBe(data[5] ^ 0xff);
    expect(hub.log().map((e) => e.fault).filter(Boolean)).toEqual(['expired', 'cut', '500', 'corrupt']);
  });
});
