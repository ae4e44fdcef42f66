/**
 * A local stand-in for the Hugging Face Hub, for tests and offline development.
 *
 * It serves repositories in the Hub's URL layout: `/<repo>/resolve/<revision>/<path>` answers with
 * a 302 to a second listener (the "CDN", on another port, so the hop is cross-origin as on the
 * real Hub) whose signed link expires; the CDN serves single `Range: bytes=a-b` requests with 206
 * and CORS headers. `/api/models/<repo>/tree/<revision>/<folder>` and `/api/models/<repo>/revision/<rev>`
 * answer like the Hub's API (`size`, git `oid`, `lfs.oid` = sha256 for LFS files).
 * Faults (cut connections, 500s, short reads, wrong bytes, delays, throttling, expired links) are
 * set per instance through `/__control/*`, so parallel tests each spawn their own instance.
 *
 * Rule: it binds 127.0.0.1 only, and every instance stops answering after `maxRequests`; never make
 * it reach the network or serve anything outside the repositories it was given.
 */
import http from 'node:http';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { AddressInfo } from 'node:net';

export interface HubRepo {
  /** `org/name` */
  id: string;
  files: Map<string, Buffer>;
  /**
   * A gated repo, as the Hub serves one to a visitor without an accepted access request: its
   * listing and revision are public, its files answer 401 with `X-Error-Code: GatedRepo`.
   */
  gated?: boolean;
}

export interface Faults {
  /** Positions in the stream of CDN body bytes (counted over all responses) at which the connection is cut. */
  cutAt?: number[];
  /** The next N requests to the resolve or CDN host get a 500. */
  fail500?: number;
  /** The next N ranged CDN responses are complete 206s that carry only half the bytes asked for. */
  shortReads?: number;
  /** Serve a wrong byte at `offset` of `path`, the next `times` times that byte is served. */
  corrupt?: Array<{ path: string; offset: number; times: number }>;
  /** Delay before each CDN response, in ms. */
  delayMs?: number;
  /** Throttle each CDN body to this many bytes per second (0 = unthrottled). */
  bytesPerSec?: number;
  /** Lifetime of the signed CDN links handed out by `resolve`, in ms. */
  linkTtlMs?: number;
  /**
   * Entries per page of the tree API (default 1000): a longer listing is cut into pages, each
   * naming the next in a `Link: <url>; rel="next"` header, as the Hub pages long listings.
   */
  treePageSize?: number;
}

export interface LogEntry {
  host: 'hub' | 'cdn';
  kind: 'resolve' | 'cdn' | 'api' | 'preflight' | 'other';
  method: string;
  path: string;
  /** Inclusive byte range asked for, when a Range header was sent. */
  range?: [number, number];
  status: number;
  /** Body bytes actually written. */
  bytes: number;
  fault?: 'cut' | '500' | 'short' | 'corrupt' | 'expired';
  at: number;
}

export interface HubServer {
  /** e.g. http://127.0.0.1:PORT — what the app calls the Hub base URL. */
  url: string;
  cdnUrl: string;
  setFaults(f: Faults): void;
  resetFaults(): void;
  /** Invalidate every CDN link handed out so far (they answer 403 from now on). */
  expireLinks(): void;
  log(): LogEntry[];
  clearLog(): void;
  /** The commit a revision name resolves to. */
  commitOf(repoId: string): string;
  close(): Promise<void>;
}

const CORS_HEADERS: Record<string, string> = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Expose-Headers':
    'Content-Range, Content-Length, ETag, Accept-Ranges, X-Repo-Commit, X-Linked-Size, X-Linked-Etag, Location, Link, X-Error-Code',
};

const isLfs = (p: string, size: number) => /\.(onnx|onnx_data|data|bin|safetensors)$/.test(p) || size > 1 << 20;
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
/** The git blob id the Hub reports as `oid` for a file. */
const gitBlobOid = (b: Uint8Array) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');

function commitFor(repo: HubRepo): string {
  const h = createHash('sha1').update(repo.id);
  for (const p of [...repo.files.keys()].sort()) h.update(p).update(sha256(repo.files.get(p)!));
  return h.digest('hex');
}

/** Deterministic pseudo-random bytes (xorshift32 seeded from `seed`). */
export function deterministicBytes(size: number, seed: string): Buffer {
  let x = createHash('sha256').update(seed).digest().readUInt32LE(0) || 1;
  const out = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    if (i + 4 <= size) out.writeUInt32LE(x, i);
    else for (let j = i; j < size; j++) out[j] = (x >>> ((j - i) * 8)) & 0xff;
  }
  return out;
}

/** A repo of generated files: a number is a size in bytes of deterministic random data, a string is the file's text. */
export function makeRepo(id: string, spec: Record<string, number | string>): HubRepo {
  const files = new Map<string, Buffer>();
  for (const [p, v] of Object.entries(spec)) files.set(p, typeof v === 'number' ? deterministicBytes(v, `${id}/${p}`) : Buffer.from(v));
  return { id, files };
}

/** A repo holding every file under `dir` (e.g. the tiny-model generator's output). */
export async function repoFromDir(id: string, dir: string): Promise<HubRepo> {
  const files = new Map<string, Buffer>();
  const walk = async (rel: string): Promise<void> => {
    for (const ent of await readdir(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${ent.name}` : ent.name;
      if (ent.isDirectory()) await walk(r);
      else if (ent.isFile()) files.set(r, await readFile(path.join(dir, r)));
    }
  };
  await walk('');
  return { id, files };
}

function parseRange(h: string | undefined, size: number): [number, number] | 'bad' | undefined {
  if (!h) return undefined;
  const m = /^bytes=(\d+)-(\d*)$/.exec(h.trim());
  if (!m) return 'bad';
  const a = Number(m[1]);
  const b = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (a > b || a >= size) return 'bad';
  return [a, b];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startHubServer(repos: HubRepo[], opts: { maxRequests?: number; secret?: string } = {}): Promise<HubServer> {
  const maxRequests = opts.maxRequests ?? 100_000;
  const secret = opts.secret ?? randomBytes(16).toString('hex');
  const byId = new Map(repos.map((r) => [r.id, { repo: r, commit: commitFor(r) }]));
  let faults: Faults = {};
  let log: LogEntry[] = [];
  let linkGeneration = 0;
  let cdnBodyBytes = 0;
  let requests = 0;

  const sign = (s: string) => createHmac('sha256', secret).update(s).digest('hex').slice(0, 32);

  function lookup(repoId: string, revision: string) {
    const r = byId.get(repoId);
    if (!r || (revision !== 'main' && revision !== r.commit)) return undefined;
    return r;
  }

  function json(res: http.ServerResponse, status: number, body: unknown) {
    const text = JSON.stringify(body);
    res.writeHead(status, { ...CORS_HEADERS, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
    return Buffer.byteLength(text);
  }

  /** Writes `body` in pieces, applying throttling, cut points and corruption; resolves with bytes written. */
  async function sendBody(res: http.ServerResponse, body: Buffer, filePath: string, fileOffset: number, entry: LogEntry) {
    const piece = 64 * 1024;
    let written = 0;
    while (written < body.length) {
      let part = body.subarray(written, Math.min(body.length, written + piece));
      const corrupt = (faults.corrupt ?? []).filter(
        (c) => c.times > 0 && c.path === filePath && c.offset >= fileOffset + written && c.offset < fileOffset + written + part.length,
      );
      if (corrupt.length) {
        part = Buffer.from(part);
        for (const c of corrupt) {
          part[c.offset - fileOffset - written] ^= 0xff;
          c.times--;
        }
        entry.fault = 'corrupt';
      }
      const cut = (faults.cutAt ?? []).find((c) => c >= cdnBodyBytes && c < cdnBodyBytes + part.length);
      if (cut !== undefined) {
        faults.cutAt = (faults.cutAt ?? []).filter((c) => c !== cut);
        const keep = part.subarray(0, cut - cdnBodyBytes);
        cdnBodyBytes += keep.length;
        written += keep.length;
        entry.fault = 'cut';
        entry.bytes = written;
        await new Promise<void>((r) => res.write(keep, () => r()));
        res.socket?.destroy();
        return;
      }
      cdnBodyBytes += part.length;
      written += part.length;
      entry.bytes = written;
      const ok = res.write(part);
      if (!ok) await new Promise((r) => res.once('drain', r));
      if (faults.bytesPerSec) await sleep((part.length / faults.bytesPerSec) * 1000);
      if (res.destroyed) return;
    }
    res.end();
  }

  async function handleCdn(req: http.IncomingMessage, res: http.ServerResponse, url: URL, entry: LogEntry) {
    // /cdn/<repo...>/<commit>/<path>?expires=&gen=&sig=
    const m = /^\/cdn\/(.+?)\/([0-9a-f]{40})\/(.+)$/.exec(decodeURIComponent(url.pathname));
    entry.kind = 'cdn';
    if (!m) return (entry.status = 404), res.writeHead(404, CORS_HEADERS).end();
    const [, repoId, commit, filePath] = m;
    const expires = Number(url.searchParams.get('expires'));
    const gen = Number(url.searchParams.get('gen'));
    const sig = url.searchParams.get('sig');
    if (sig !== sign(`${repoId}/${commit}/${filePath}/${expires}/${gen}`)) return (entry.status = 403), res.writeHead(403, CORS_HEADERS).end();
    if (Date.now() > expires || gen !== linkGeneration) {
      entry.fault = 'expired';
      entry.status = 403;
      return res.writeHead(403, { ...CORS_HEADERS, 'Content-Type': 'text/plain' }).end('Request has expired');
    }
    const r = lookup(repoId, commit);
    const file = r?.repo.files.get(filePath);
    if (!file) return (entry.status = 404), res.writeHead(404, CORS_HEADERS).end();
    if (faults.delayMs) await sleep(faults.delayMs);
    const etag = `"${isLfs(filePath, file.length) ? sha256(file) : gitBlobOid(file)}"`;
    const range = parseRange(req.headers.range, file.length);
    if (range === 'bad') {
      entry.status = 416;
      return res.writeHead(416, { ...CORS_HEADERS, 'Content-Range': `bytes */${file.length}` }).end();
    }
    const [a, b] = range ?? [0, file.length - 1];
    if (range) entry.range = range;
    let body = file.subarray(a, b + 1);
    const headers: Record<string, string | number> = { ...CORS_HEADERS, 'Accept-Ranges': 'bytes', ETag: etag, 'Content-Type': 'application/octet-stream' };
    if (range && (faults.shortReads ?? 0) > 0 && body.length > 1) {
      faults.shortReads!--;
      body = body.subarray(0, Math.floor(body.length / 2));
      entry.fault = 'short';
    }
    headers['Content-Length'] = body.length;
    if (range) headers['Content-Range'] = `bytes ${a}-${a + body.length - 1}/${file.length}`;
    entry.status = range ? 206 : 200;
    res.writeHead(entry.status, headers);
    if (req.method === 'HEAD') return res.end();
    await sendBody(res, body, filePath, a, entry);
  }

  function handleHub(req: http.IncomingMessage, res: http.ServerResponse, url: URL, entry: LogEntry) {
    const p = decodeURIComponent(url.pathname);
    let m = /^\/api\/models\/(.+?)\/tree\/([^/]+)(?:\/(.*))?$/.exec(p);
    if (m) {
      entry.kind = 'api';
      const [, repoId, rev, folderRaw] = m;
      const r = lookup(repoId, rev);
      if (!r) return (entry.status = 404), (entry.bytes = json(res, 404, { error: `Repository ${repoId}@${rev} not found` }));
      const folder = (folderRaw ?? '').replace(/\/$/, '');
      const recursive = url.searchParams.get('recursive') === 'true';
      const entries: unknown[] = [];
      const dirs = new Set<string>();
      for (const [fp, buf] of [...r.repo.files].sort(([x], [y]) => x.localeCompare(y))) {
        if (folder && !fp.startsWith(`${folder}/`)) continue;
        const rest = folder ? fp.slice(folder.length + 1) : fp;
        if (!recursive && rest.includes('/')) {
          const d = (folder ? `${folder}/` : '') + rest.split('/')[0];
          if (!dirs.has(d)) {
            dirs.add(d);
            entries.push({ type: 'directory', oid: createHash('sha1').update(d).digest('hex'), size: 0, path: d });
          }
          continue;
        }
        const lfs = isLfs(fp, buf.length) ? { oid: sha256(buf), size: buf.length, pointerSize: 134 } : undefined;
        entries.push({ type: 'file', oid: gitBlobOid(buf), size: buf.length, path: fp, ...(lfs ? { lfs } : {}) });
      }
      if (folder && entries.length === 0) return (entry.status = 404), (entry.bytes = json(res, 404, { error: `${folder} not found` }));
      const pageSize = faults.treePageSize ?? 1000;
      const from = Number(url.searchParams.get('cursor') ?? 0);
      if (entries.length > from + pageSize) {
        // Absolute, as the Hub writes it: this listener's own address.
        const next = new URL(`${url.pathname}${url.search}`, `http://${req.headers.host}`);
        next.searchParams.set('cursor', String(from + pageSize));
        res.setHeader('Link', `<${next.href}>; rel="next"`);
      }
      entry.status = 200;
      entry.bytes = json(res, 200, entries.slice(from, from + pageSize));
      return;
    }
    m = /^\/api\/models\/(.+?)\/revision\/([^/]+)$/.exec(p);
    if (m) {
      entry.kind = 'api';
      const r = lookup(m[1], m[2]);
      if (!r) return (entry.status = 404), (entry.bytes = json(res, 404, { error: 'not found' }));
      entry.status = 200;
      entry.bytes = json(res, 200, { id: r.repo.id, sha: r.commit, siblings: [...r.repo.files.keys()].map((rfilename) => ({ rfilename })) });
      return;
    }
    m = /^\/(.+?)\/resolve\/([^/]+)\/(.+)$/.exec(p);
    if (m) {
      entry.kind = 'resolve';
      const [, repoId, rev, filePath] = m;
      const r = lookup(repoId, rev);
      const file = r?.repo.files.get(filePath);
      if (!r || !file) return (entry.status = 404), (entry.bytes = json(res, 404, { error: 'Entry not found' }));
      if (r.repo.gated) {
        res.setHeader('X-Error-Code', 'GatedRepo');
        entry.status = 401;
        entry.bytes = json(res, 401, { error: `Access to model ${repoId} is restricted. You must have access to it and be authenticated to access it. Please log in.` });
        return;
      }
      const expires = Date.now() + (faults.linkTtlMs ?? 3_600_000);
      const sig = sign(`${repoId}/${r.commit}/${filePath}/${expires}/${linkGeneration}`);
      const loc = `${cdnUrl}/cdn/${repoId}/${r.commit}/${encodeURI(filePath)}?expires=${expires}&gen=${linkGeneration}&sig=${sig}`;
      entry.status = 302;
      res.writeHead(302, {
        ...CORS_HEADERS,
        Location: loc,
        'X-Repo-Commit': r.commit,
        'X-Linked-Size': file.length,
        'X-Linked-Etag': `"${isLfs(filePath, file.length) ? sha256(file) : gitBlobOid(file)}"`,
        'Content-Length': 0,
      });
      res.end();
      return;
    }
    entry.status = 404;
    entry.bytes = json(res, 404, { error: 'not found' });
  }

  function handleControl(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> | void {
    const op = url.pathname.slice('/__control/'.length);
    if (req.method === 'OPTIONS') return void res.writeHead(204, { ...CORS_HEADERS, 'Access-Control-Allow-Methods': 'GET, POST', 'Access-Control-Allow-Headers': 'Content-Type' }).end();
    if (op === 'log') return void json(res, 200, log);
    if (op === 'clear-log') return (log = []), void json(res, 200, { ok: true });
    if (op === 'reset') return (faults = {}), (log = []), (cdnBodyBytes = 0), void json(res, 200, { ok: true });
    if (op === 'expire-links') return linkGeneration++, void json(res, 200, { ok: true });
    if (op === 'info') return void json(res, 200, { url: hubUrl, cdnUrl, repos: [...byId.values()].map((r) => ({ id: r.repo.id, commit: r.commit })) });
    if (op === 'faults') {
      return readJson(req).then((f) => {
        faults = { ...(f as Faults) };
        cdnBodyBytes = 0;
        json(res, 200, { ok: true });
      });
    }
    json(res, 404, { error: `unknown control ${op}` });
  }

  const handler = (host: 'hub' | 'cdn') => (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname.startsWith('/__control/')) {
      void Promise.resolve(handleControl(req, res, url)).catch(() => res.destroy());
      return;
    }
    if (++requests > maxRequests) return void res.writeHead(503, CORS_HEADERS).end();
    const entry: LogEntry = { host, kind: 'other', method: req.method ?? 'GET', path: url.pathname, status: 0, bytes: 0, at: Date.now() };
    log.push(entry);
    if (req.method === 'OPTIONS') {
      entry.kind = 'preflight';
      entry.status = 204;
      return void res
        .writeHead(204, { ...CORS_HEADERS, 'Access-Control-Allow-Methods': 'GET, HEAD', 'Access-Control-Allow-Headers': 'Range' })
        .end();
    }
    if ((faults.fail500 ?? 0) > 0) {
      faults.fail500!--;
      entry.fault = '500';
      entry.status = 500;
      entry.kind = host === 'cdn' ? 'cdn' : url.pathname.startsWith('/api/') ? 'api' : 'resolve';
      return void res.writeHead(500, CORS_HEADERS).end('injected failure');
    }
    if (host === 'cdn') void handleCdn(req, res, url, entry).catch(() => res.destroy());
    else handleHub(req, res, url, entry);
  };

  const hub = http.createServer(handler('hub'));
  const cdn = http.createServer(handler('cdn'));
  const listen = (s: http.Server) =>
    new Promise<number>((resolve, reject) => {
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => resolve((s.address() as AddressInfo).port));
    });
  const hubUrl = `http://127.0.0.1:${await listen(hub)}`;
  const cdnUrl = `http://127.0.0.1:${await listen(cdn)}`;

  const closeServer = (s: http.Server) =>
    new Promise<void>((r) => {
      s.closeAllConnections();
      s.close(() => r());
    });

  return {
    url: hubUrl,
    cdnUrl,
    setFaults: (f) => {
      faults = { ...f };
      cdnBodyBytes = 0;
    },
    resetFaults: () => {
      faults = {};
      cdnBodyBytes = 0;
    },
    expireLinks: () => void linkGeneration++,
    log: () => log,
    clearLog: () => void (log = []),
    commitOf: (id) => byId.get(id)?.commit ?? '',
    close: async () => {
      await Promise.all([closeServer(hub), closeServer(cdn)]);
    },
  };
}

function readJson(req: http.IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (d: Buffer) => {
      size += d.length;
      if (size > 1 << 20) reject(new Error('control body too large'));
      else parts.push(d);
    });
    req.on('end', () => {
      try {
        resolve(parts.length ? JSON.parse(Buffer.concat(parts).toString('utf8')) : {});
      } catch (e) {
        reject(e);
      }
    });
  });
}
