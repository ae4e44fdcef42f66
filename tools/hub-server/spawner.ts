/**
 * A small control server that spawns isolated hub-server instances on demand, so that browser
 * tests (which cannot open sockets) can each get a Hub of their own with their own faults and log.
 * `POST /spawn {repos: [{id, files: {path: size|text}} | {id, dir}]}` → `{url, cdnUrl}`;
 * `POST /close {url}`. Rule: 127.0.0.1 only, at most `maxInstances` alive, all closed on `close()`.
 */
import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { generateTinyModel } from '../tiny-model/generate';
import type { TinyModelOptions } from '../tiny-model/options';
import { makeRepo, repoFromDir, startHubServer, type HubRepo, type HubServer } from './server';

export type RepoSpec =
  | { id: string; files: Record<string, number | string>; gated?: boolean }
  | { id: string; dir: string }
  /** A model from the tiny-model generator (tools/tiny-model), in the Phi-3 web layout. */
  | { id: string; tinyModel: Partial<TinyModelOptions> };

export interface Spawner {
  url: string;
  close(): Promise<void>;
}

async function tinyModelRepo(id: string, options: Partial<TinyModelOptions>): Promise<HubRepo> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tiny-model-'));
  try {
    await generateTinyModel(dir, options);
    return await repoFromDir(id, dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function toRepos(specs: RepoSpec[]): Promise<HubRepo[]> {
  return Promise.all(
    specs.map((s) => ('dir' in s ? repoFromDir(s.id, s.dir) : 'tinyModel' in s ? tinyModelRepo(s.id, s.tinyModel) : { ...makeRepo(s.id, s.files), gated: s.gated })),
  );
}

export async function startSpawner(maxInstances = 64): Promise<Spawner> {
  const live = new Map<string, HubServer>();
  let spawned = 0;
  const cors = { 'Access-Control-Allow-Origin': '*', 'Access-Control-Allow-Headers': 'Content-Type', 'Access-Control-Allow-Methods': 'POST' };
  const server = http.createServer((req, res) => {
    if (req.method === 'OPTIONS') return void res.writeHead(204, cors).end();
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      const reply = (status: number, body: unknown) => res.writeHead(status, { ...cors, 'Content-Type': 'application/json' }).end(JSON.stringify(body));
      void (async () => {
        const body = parts.length ? (JSON.parse(Buffer.concat(parts).toString('utf8')) as Record<string, unknown>) : {};
        if (req.url === '/spawn') {
          if (++spawned > maxInstances) return reply(429, { error: 'too many hub instances' });
          const hub = await startHubServer(await toRepos(body.repos as RepoSpec[]));
          live.set(hub.url, hub);
          return reply(200, { url: hub.url, cdnUrl: hub.cdnUrl });
        }
        if (req.url === '/close') {
          await live.get(String(body.url))?.close();
          live.delete(String(body.url));
          return reply(200, { ok: true });
        }
        reply(404, { error: 'unknown' });
      })().catch((e: unknown) => reply(500, { error: String(e) }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      await Promise.all([...live.values()].map((h) => h.close()));
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
