/**
 * Shared set-up for the storage browser tests: spawns an isolated local Hub (tools/hub-server)
 * through the spawner that vitest's globalSetup started, and builds catalog entries for it.
 * Test-only module: nothing in the app imports it.
 */
import { inject } from 'vitest';
import { spawnHub, type RemoteHub } from '../../tools/hub-server/client';
import type { CatalogEntry } from './catalog';

export const TEST_REPO = 'test-org/tiny-phi3';

export function testFiles(dataBytes: number, graphBytes = 300_000): Record<string, number | string> {
  return {
    'onnx/model_q4f16.onnx': graphBytes,
    'onnx/model_q4f16.onnx_data': dataBytes,
    'config.json': JSON.stringify({ model_type: 'phi3', hidden_size: 64 }),
    'tokenizer.json': JSON.stringify({ version: '1.0', model: { type: 'BPE' } }),
  };
}

export function testEntry(id: string, repo = TEST_REPO): CatalogEntry {
  return {
    id,
    name: `test ${id}`,
    repo,
    revision: 'main',
    folder: 'onnx',
    contextLength: 4096,
    files: [
      { path: 'onnx/model_q4f16.onnx', role: 'graph' },
      { path: 'onnx/model_q4f16.onnx_data', role: 'weights' },
      { path: 'config.json', role: 'config' },
      { path: 'tokenizer.json', role: 'tokenizer' },
    ],
    note: 'test',
  };
}

/** `gated`: the repo's files answer 401 as a gated repo's do (tools/hub-server, `HubRepo.gated`). */
export function spawnTestHub(files: Record<string, number | string>, repo = TEST_REPO, gated = false): Promise<RemoteHub> {
  return spawnHub(inject('hubSpawner'), [{ id: repo, files, gated }]);
}

export const uniqueName = (prefix: string) => `${prefix}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;

/** sha256 hex of bytes with WebCrypto — an independent check of what hash-wasm computed. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  return [...d].map((b) => b.toString(16).padStart(2, '0')).join('');
}
