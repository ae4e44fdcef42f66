/**
 * The generated tiny Phi-3 chat model (tools/tiny-model.ts: 2 layers, Phi-3's vocabulary and
 * chat template, random weights, ~20 MB, deterministic) served by a fresh local Hub stand-in for
 * each test of the spec that calls `serveTinyChat` at its top level.
 */
import { expect, test, type Page } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { repoFromDir, startHubServer, type HubServer } from '../tools/hub-server/server';

export const TINY_REPO = 'test-org/tiny-phi3-chat';
/** What `?model=` and the "Hub repo id" field take for it. */
export const TINY_MODEL = `${TINY_REPO}/onnx`;

/**
 * Generates the model once into .tmp/<dirName> and serves it to each test; returns the running
 * Hub. `chatTemplate` replaces the generated tokenizer_config.json's template (another revision
 * of the model's files); `modelArgs` are more tools/tiny-model.ts options (another shape).
 */
export function serveTinyChat(dirName: string, options: { chatTemplate?: string; modelArgs?: string[] } = {}): () => HubServer {
  const dir = path.resolve('.tmp', dirName);
  let hub: HubServer | undefined;
  test.beforeAll(() => {
    generateTinyChat(dir, options.modelArgs);
    if (options.chatTemplate !== undefined) {
      const file = path.join(dir, 'tokenizer_config.json');
      writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), chat_template: options.chatTemplate }, null, 2));
    }
  });
  test.beforeEach(async () => {
    hub = await startHubServer([await repoFromDir(TINY_REPO, dir)]);
  });
  test.afterEach(async () => {
    await hub?.close();
    hub = undefined;
  });
  return () => {
    if (!hub) throw new Error('the tiny model Hub runs only inside a test');
    return hub;
  };
}

/** Opens the app on `hub` with the tiny model selected, downloads it and waits until it is loaded. */
export async function downloadTinyChat(page: Page, hub: HubServer, timeout = 120_000): Promise<void> {
  await page.goto(`./?hub=${encodeURIComponent(hub.url)}&model=${encodeURIComponent(TINY_MODEL)}`);
  await page.getByRole('button', { name: /Download/ }).click();
  await expect(page.getByTestId('model-status')).toHaveText('Ready', { timeout });
}

/** Writes the tiny chat model's files (onnx/model_q4.onnx, its _data, the root JSON files) into `dir`. */
export function generateTinyChat(dir: string, modelArgs: string[] = []): void {
  execFileSync(process.execPath, ['--import', 'tsx', 'tools/tiny-model.ts', '--out', dir, ...modelArgs], { stdio: 'pipe' });
}
