/**
 * Checks shaders recorded by ./capture.ts with naga, wgpu's WGSL compiler (the one Firefox's
 * WebGPU runs), through the `naga-wasm` package: each pipeline's module is parsed and validated
 * with its override constants in place, then translated to HLSL (Direct3D 12), MSL (Metal) and
 * SPIR-V (Vulkan), the three back ends a browser built on wgpu uses.
 *
 * - **Overrides** are resolved as a pipeline resolves them: each `override NAME: T = default;`
 *   becomes `const NAME: T = <the pipeline's constant, else the default>;`, so naga also
 *   evaluates every expression that depends on them (array sizes, workgroup sizes) as it would
 *   when the pipeline is created.
 * - **f16**: the engine's f16 KV cache is packed into u32 words (src/engine/kernels/precision-wgsl.ts)
 *   and needs no `shader-f16`, so the tests here compile both instantiations and both are recorded;
 *   until 2026-12-06 this check made the f16 one by swapping the prelude.
 * - **onnxruntime-web's own shaders** (pipelines ./capture.ts marks with `origin`) are checked
 *   and counted apart: one naga rejects is reported, as a Firefox user of the onnxruntime-web
 *   engine would meet it, but does not fail the run; the shader is onnxruntime's to mend.
 * - **Subgroups**: naga 30 does not parse `enable subgroups;` ("not yet supported"), though it
 *   validates the subgroup built-ins themselves. A browser on that naga therefore cannot offer
 *   the `subgroups` feature, and the engine only compiles these variants where the device has it.
 *   So the directive is removed before the check and the number of such shaders is reported.
 */
import { nagaVersion, parseWgsl, validate, writeHlsl, writeMsl, writeSpirv } from 'naga-wasm';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { CapturedPipeline } from './capture';

export interface PortabilityReport {
  nagaVersion: string;
  modules: number;
  /** Distinct (module, constants) pairs checked. */
  pipelines: number;
  subgroupModules: number;
  /** One line per failure: the pipeline's label, the stage that failed and naga's message. */
  failures: string[];
  /** Of `pipelines`, those onnxruntime-web built (CapturedPipeline.origin): checked, but its own to mend. */
  thirdPartyPipelines: number;
  /** Their failures, as `failures` (not in it). */
  thirdPartyFailures: string[];
}

const OVERRIDE = /^(\s*)override\s+(\w+)\s*:\s*([\w<>]+)\s*(?:=\s*([^;]+))?;/gm;

/** A WGSL literal of type `type` for a pipeline constant (GPUPipelineConstantValue is a double). */
function literal(type: string, value: number): string {
  switch (type) {
    case 'bool':
      return value !== 0 ? 'true' : 'false';
    case 'u32':
      return `${value >>> 0}u`;
    case 'i32':
      return `${value | 0}i`;
    case 'f32':
      return `${value}f`;
    case 'f16':
      return `${value}h`;
    default:
      throw new Error(`override of type ${type} has no literal form`);
  }
}

/** `code` with every override turned into a const of the pipeline's value (or its default). */
export function resolveOverrides(code: string, constants: Record<string, number>): string {
  const unused = new Set(Object.keys(constants));
  const resolved = code.replace(OVERRIDE, (_all, indent: string, name: string, type: string, initial: string | undefined) => {
    unused.delete(name);
    const value = name in constants ? literal(type, constants[name]) : initial?.trim();
    if (value === undefined) throw new Error(`override ${name} has neither a default nor a pipeline constant`);
    return `${indent}const ${name}: ${type} = ${value};`;
  });
  if (/^\s*(@id\(\d+\)\s*)?override\b/m.test(resolved)) throw new Error('an override declaration was not understood by resolveOverrides (an @id attribute or a missing type)');
  if (unused.size) throw new Error(`pipeline constants name no override: ${[...unused].join(', ')}`);
  return resolved;
}

/** Where naga stops on `code`, or null when it parses, validates and writes every back end. */
export function nagaFailure(code: string): string | null {
  let module: Module;
  try {
    module = parseWgsl(code);
  } catch (err) {
    return `parse: ${message(err)}`;
  }
  let stage = 'validate';
  try {
    const info = validate(module);
    try {
      for (const [name, write] of BACK_ENDS) {
        stage = name;
        write(module, info);
      }
      return null;
    } finally {
      info.free();
    }
  } catch (err) {
    return `${stage}: ${message(err)}`;
  } finally {
    module.free();
  }
}

type Module = ReturnType<typeof parseWgsl>;
type Info = ReturnType<typeof validate>;
const BACK_ENDS: [string, (m: Module, i: Info) => unknown][] = [
  ['HLSL', (m, i) => writeHlsl(m, i, { shaderModel: '6_2' })],
  ['MSL', (m, i) => writeMsl(m, i)],
  ['SPIR-V', (m, i) => writeSpirv(m, i)],
];

function message(err: unknown): string {
  const text = err instanceof Error ? ((err as { formatted?: string }).formatted ?? err.message) : String(err);
  return text.trim().split('\n').slice(0, 8).join('\n      ');
}

const SUBGROUPS = /^enable subgroups;\n/m;

/** Checks every pipeline recorded in `dir` (and every module no pipeline used, with its defaults). */
export function checkCapturedShaders(dir: string): PortabilityReport {
  const files = readdirSync(dir);
  const modules = new Map(files.filter((f) => f.startsWith('m-')).map((f) => [f.slice(2, -5), readFileSync(path.join(dir, f), 'utf8')]));
  const pipelines: CapturedPipeline[] = files.filter((f) => f.startsWith('p-')).map((f) => JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as CapturedPipeline);
  const used = new Set(pipelines.map((p) => p.module));
  for (const hash of modules.keys()) if (!used.has(hash)) pipelines.push({ module: hash, label: `module ${hash} (no pipeline)`, constants: {} });

  const report: PortabilityReport = { nagaVersion, modules: modules.size, pipelines: 0, subgroupModules: 0, failures: [], thirdPartyPipelines: 0, thirdPartyFailures: [] };
  for (const code of modules.values()) if (SUBGROUPS.test(code)) report.subgroupModules++;
  for (const p of pipelines) {
    const code = modules.get(p.module)?.replace(SUBGROUPS, '');
    if (code === undefined) {
      report.failures.push(`${p.label}: its module m-${p.module}.wgsl was not recorded`);
      continue;
    }
    report.pipelines++;
    if (p.origin) report.thirdPartyPipelines++;
    let failure: string | null;
    try {
      failure = nagaFailure(resolveOverrides(code, p.constants));
    } catch (err) {
      failure = message(err);
    }
    if (failure) (p.origin ? report.thirdPartyFailures : report.failures).push(`${p.label || p.origin || '(no label)'} ${JSON.stringify(p.constants)} (m-${p.module}.wgsl): ${failure}`);
  }
  return report;
}
