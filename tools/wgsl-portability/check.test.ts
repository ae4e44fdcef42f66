import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { withPrecision } from '../../src/engine/kernels/precision-wgsl';
import { checkCapturedShaders, nagaFailure, resolveOverrides } from './check';

describe('resolveOverrides', () => {
  const code = 'override ROWS: u32 = 4u;  // rows\noverride NORM: bool = false;\n  override EPS: f32 = 1e-5;\noverride TILE: u32 = ROWS * 2u;\n';

  it('writes each pipeline constant as a literal of its type and keeps the other defaults', () => {
    expect(resolveOverrides(code, { ROWS: 8, NORM: 1, EPS: 0.5 })).toBe(
      'const ROWS: u32 = 8u;  // rows\nconst NORM: bool = true;\n  const EPS: f32 = 0.5f;\nconst TILE: u32 = ROWS * 2u;\n',
    );
  });

  it('refuses a constant that names no override, and an override with no value', () => {
    expect(() => resolveOverrides(code, { ROW: 8 })).toThrow('pipeline constants name no override: ROW');
    expect(() => resolveOverrides('override N: u32;\n', {})).toThrow('override N has neither a default nor a pipeline constant');
  });
});

describe('nagaFailure', () => {
  it('passes a valid compute shader and names the stage where a bad one stops', () => {
    const ok = '@group(0) @binding(0) var<storage, read_write> out: array<f32>;\n@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3<u32>) { out[id.x] = 1.0; }\n';
    expect(nagaFailure(ok)).toBeNull();
    expect(nagaFailure(ok.replace('1.0', 'true'))).toMatch(/^parse: error: automatic conversions cannot convert elements of `bool` to `f32`/);
    // A store to a read-only buffer: the validator's, not the parser's, to find.
    expect(nagaFailure(ok.replace('read_write', 'read'))).toMatch(/^validate: error: Entry point main at Compute is invalid/);
    expect(nagaFailure(ok.replace('fn main', 'fn main('))).toMatch(/^parse: error: /);
  });
});

describe('checkCapturedShaders', () => {
  let dir = '';
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('checks each pipeline with its own constants, both KV instantiations and subgroup shaders, and names what fails', () => {
    dir = mkdtempSync(path.join(tmpdir(), 'wgsl-check-'));
    // A workgroup array sized by an override: fine at its default, not with a pipeline's 0.
    const sized = 'override N: u32 = 4u;\nvar<workgroup> a: array<f32, N>;\n@compute @workgroup_size(N) fn main(@builtin(local_invocation_index) i: u32) { a[i] = 1.0; }\n';
    const kvBody = '@group(0) @binding(0) var<storage, read_write> cache: array<KVW>;\n@compute @workgroup_size(1) fn main() { cache[0] = kvWord(kvAt(cache[1], 2u) * 2.0, 1.0); }\n';
    const subgroup = 'enable subgroups;\n@group(0) @binding(0) var<storage, read_write> out: array<f32>;\n@compute @workgroup_size(32) fn main(@builtin(local_invocation_index) i: u32) { out[i] = subgroupAdd(1.0); }\n';
    writeFileSync(path.join(dir, 'm-sized.wgsl'), sized);
    writeFileSync(path.join(dir, 'm-kv32.wgsl'), withPrecision(kvBody, 'f32'));
    writeFileSync(path.join(dir, 'm-kv16.wgsl'), withPrecision(kvBody, 'f16'));
    writeFileSync(path.join(dir, 'm-subgroup.wgsl'), subgroup);
    writeFileSync(path.join(dir, 'p-1.json'), JSON.stringify({ module: 'sized', label: 'sized 8', constants: { N: 8 } }));
    writeFileSync(path.join(dir, 'p-2.json'), JSON.stringify({ module: 'sized', label: 'sized 0', constants: { N: 0 } }));
    writeFileSync(path.join(dir, 'p-3.json'), JSON.stringify({ module: 'kv32', label: 'kv f32', constants: {} }));
    writeFileSync(path.join(dir, 'p-4.json'), JSON.stringify({ module: 'kv16', label: 'kv f16', constants: {} }));

    const report = checkCapturedShaders(dir);
    expect(report.modules).toBe(4);
    // sized ×2, kv as f32 and as f16, and the subgroup module, which no pipeline used, at its defaults.
    expect(report.pipelines).toBe(5);
    expect(report.subgroupModules).toBe(1);
    expect(report.failures).toHaveLength(1);
    expect(report.failures[0]).toMatch(/^sized 0 \{"N":0\} \(m-sized\.wgsl\): (parse|validate): /);
    expect([report.thirdPartyPipelines, report.thirdPartyFailures]).toEqual([0, []]);
  });

  it("counts onnxruntime-web's pipelines apart: checked and reported, never among this project's failures", () => {
    dir = mkdtempSync(path.join(tmpdir(), 'wgsl-check-'));
    const sized = 'override N: u32 = 4u;\nvar<workgroup> a: array<f32, N>;\n@compute @workgroup_size(N) fn main(@builtin(local_invocation_index) i: u32) { a[i] = 1.0; }\n';
    writeFileSync(path.join(dir, 'm-sized.wgsl'), sized);
    writeFileSync(path.join(dir, 'p-1.json'), JSON.stringify({ module: 'sized', label: 'ours', constants: { N: 8 } }));
    writeFileSync(path.join(dir, 'p-2.json'), JSON.stringify({ module: 'sized', label: '', constants: { N: 0 }, origin: 'onnxruntime-web' }));
    writeFileSync(path.join(dir, 'p-3.json'), JSON.stringify({ module: 'sized', label: '', constants: { N: 16 }, origin: 'onnxruntime-web' }));
    const report = checkCapturedShaders(dir);
    expect([report.pipelines, report.thirdPartyPipelines, report.failures]).toEqual([3, 2, []]);
    expect(report.thirdPartyFailures).toHaveLength(1);
    expect(report.thirdPartyFailures[0]).toMatch(/^onnxruntime-web \{"N":0\} \(m-sized\.wgsl\): (parse|validate): /);
  });
});
