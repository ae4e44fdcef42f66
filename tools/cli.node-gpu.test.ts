/**
 * The Node runner end to end: `npm run cli` as a user runs it (no environment variables), on a
 * generated tiny model, against onnxruntime-node's greedy tokens for the same ids.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { generateTinyModel } from './tiny-model/generate';
import { runReference } from './reference/ort-reference';

const run = promisify(execFile);
const root = mkdtempSync(join(tmpdir(), 'phi3-cli-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.VK_ICD_FILENAMES;
  delete env.LD_LIBRARY_PATH;
  return env;
}

describe('npm run cli [gpu]', () => {
  it('--input-ids --greedy --json gives onnxruntime\'s tokens; --prompt decodes text', async () => {
    const dir = join(root, 'model');
    await generateTinyModel(dir, { layout: 'gqa-packed' });
    const ids = [1, 450, 4996, 17354, 1701];
    const ref = await runReference(dir, { inputIds: ids, steps: 10 });
    const { stdout } = await run('npm', ['run', '-s', 'cli', '--', '--model', dir, '--input-ids', ids.join(','), '--max-tokens', '10', '--greedy', '--json'], { env: cleanEnv(), timeout: 240_000 });
    const line = stdout.trim().split('\n').pop()!;
    const out = JSON.parse(line) as { inputIds: number[]; outputIds: number[]; text: string; timings: Record<string, number> };
    console.log(`[cli] ${line.slice(0, 400)}`);
    expect(out.inputIds).toEqual(ids);
    // Greedy generation stops early only on an end-of-sequence id; compare what was produced.
    expect(out.outputIds).toEqual(ref.tokens.slice(0, out.outputIds.length));
    expect(out.outputIds.length).toBeGreaterThan(0);
    expect(typeof out.text).toBe('string');
    expect(out.timings.decodeTokensPerSec).toBeGreaterThan(0);
    // What the model holds on the GPU: weights, and a KV cache sized for this short run.
    const bytes = (out as unknown as { gpuBytes: { weights: number; kvCache: number; other: number } }).gpuBytes;
    expect(bytes.weights).toBeGreaterThan(0);
    expect(bytes.kvCache).toBeGreaterThan(0);
    expect(bytes.other).toBeGreaterThan(0);

    // --precision f32: the same tokens, from a cache of twice the bytes (the default is f16).
    const f32 = await run('npm', ['run', '-s', 'cli', '--', '--model', dir, '--input-ids', ids.join(','), '--max-tokens', '10', '--greedy', '--precision', 'f32', '--json'], { env: cleanEnv(), timeout: 240_000 });
    const exact = JSON.parse(f32.stdout.trim().split('\n').pop()!) as { outputIds: number[]; model: { precision: string }; gpuBytes: { kvCache: number; weights: number } };
    expect([exact.model.precision, (out as unknown as { model: { precision: string } }).model.precision]).toEqual(['f32', 'f16']);
    expect(exact.outputIds).toEqual(out.outputIds);
    expect(exact.gpuBytes.kvCache).toBe(2 * bytes.kvCache);
    // The f16 path also packs the q4 file's f32 scales, embedding and rotary caches to fp16; the f32 path keeps them.
    expect(exact.gpuBytes.weights).toBeGreaterThan(bytes.weights);

    // --f32-weights: the f16 cache, with the scales, embedding and rotary caches kept f32.
    const withPrompt = await run('npm', ['run', '-s', 'cli', '--', '--model', dir, '--prompt', 'Hello there', '--max-tokens', '4', '--f32-weights', '--json'], { env: cleanEnv(), timeout: 240_000 });
    const p = JSON.parse(withPrompt.stdout.trim().split('\n').pop()!) as { inputIds: number[]; text: string; gpuBytes: { weights: number } };
    expect(p.gpuBytes.weights).toBe(exact.gpuBytes.weights);
    expect(p.inputIds.slice(0, 2)).toEqual([1, 32010]); // <s><|user|>
    expect(p.inputIds.slice(-3)).toEqual([32001, 29871, 13]); // <|assistant|>\n
  }, 600_000);

  it('rejects a bad argument with a clear message and exit code 1', async () => {
    const err = await run('npm', ['run', '-s', 'cli', '--', '--model', join(root, 'missing'), '--input-ids', '1'], { env: cleanEnv() }).catch((e: { code: number; stderr: string }) => e);
    expect((err as { code: number }).code).toBe(1);
    expect((err as { stderr: string }).stderr).toContain('does not exist');
    const bad = await run('npm', ['run', '-s', 'cli', '--', '--model', join(root, 'missing'), '--input-ids', '1', '--precision', 'f8'], { env: cleanEnv() }).catch((e: { code: number; stderr: string }) => e);
    expect((bad as { code: number }).code).toBe(1);
    expect((bad as { stderr: string }).stderr).toContain('--precision must be f16 or f32, got "f8"');
  });
});
