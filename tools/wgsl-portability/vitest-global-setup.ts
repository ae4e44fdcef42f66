/**
 * Vitest globalSetup of the gpu-node project: hands the test processes a fresh directory
 * (`inject('wgslCaptureDir')`, where tools/vitest-node-gpu-setup.ts makes every device record its
 * shaders: ./capture.ts) and, once every test file has run, checks what they compiled with naga
 * (./check.ts). A shader of this project that naga rejects fails the run, naming the pipeline and
 * naga's message; onnxruntime-web's are reported apart.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { checkCapturedShaders } from './check';

declare module 'vitest' {
  export interface ProvidedContext {
    wgslCaptureDir: string;
  }
}

export default function setup(project: TestProject) {
  const dir = mkdtempSync(path.join(tmpdir(), 'phi3-wgsl-'));
  project.provide('wgslCaptureDir', dir);
  return () => {
    try {
      const r = checkCapturedShaders(dir);
      if (r.modules === 0) return;
      const ours = r.pipelines - r.thirdPartyPipelines;
      console.log(
        `WGSL portability (naga ${r.nagaVersion}, Firefox's WebGPU compiler): ${ours - r.failures.length} of ${ours} pipelines of this project ` +
          `parse, validate and translate to HLSL, MSL and SPIR-V (${r.subgroupModules} of ${r.modules} modules checked without \`enable subgroups;\`); ` +
          `onnxruntime-web's own: ${r.thirdPartyPipelines - r.thirdPartyFailures.length} of ${r.thirdPartyPipelines}.`,
      );
      if (r.thirdPartyFailures.length) {
        console.log(`naga rejects ${r.thirdPartyFailures.length} of onnxruntime-web's pipelines (not this project's to mend; the run does not fail on them):\n  ${r.thirdPartyFailures.join('\n  ')}`);
      }
      if (r.failures.length) {
        // A teardown's exception is printed but leaves vitest's exit status 0.
        console.error(`naga rejects ${r.failures.length} pipeline(s) that Dawn compiled:\n  ${r.failures.join('\n  ')}`);
        process.exitCode = 1;
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}
