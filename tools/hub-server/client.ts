/**
 * Test-side handle on a spawned hub-server instance, usable from browser tests and Node alike
 * (plain fetch to the spawner and to the instance's `/__control/*` endpoints).
 */
import type { Faults, LogEntry } from './server';
import type { RepoSpec } from './spawner';

export interface RemoteHub {
  url: string;
  cdnUrl: string;
  setFaults(f: Faults): Promise<void>;
  reset(): Promise<void>;
  expireLinks(): Promise<void>;
  log(): Promise<LogEntry[]>;
  clearLog(): Promise<void>;
  info(): Promise<{ repos: Array<{ id: string; commit: string }> }>;
  close(): Promise<void>;
}

async function post(url: string, body?: unknown): Promise<unknown> {
  const res = await fetch(url, { method: 'POST', body: body === undefined ? undefined : JSON.stringify(body) });
  if (!res.ok) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  return res.json();
}

export async function spawnHub(spawnerUrl: string, repos: RepoSpec[]): Promise<RemoteHub> {
  const { url, cdnUrl } = (await post(`${spawnerUrl}/spawn`, { repos })) as { url: string; cdnUrl: string };
  const c = `${url}/__control`;
  return {
    url,
    cdnUrl,
    setFaults: async (f) => void (await post(`${c}/faults`, f)),
    reset: async () => void (await post(`${c}/reset`)),
    expireLinks: async () => void (await post(`${c}/expire-links`)),
    log: async () => (await (await fetch(`${c}/log`)).json()) as LogEntry[],
    clearLog: async () => void (await post(`${c}/clear-log`)),
    info: async () => (await (await fetch(`${c}/info`)).json()) as { repos: Array<{ id: string; commit: string }> },
    close: async () => void (await post(`${spawnerUrl}/close`, { url })),
  };
}
