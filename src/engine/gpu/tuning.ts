/**
 * Kernel tunables per adapter. Real GPUs want wide workgroups and subgroup reductions; SwiftShader
 * (Chromium's CPU implementation, used on GPU-less machines and in CI) runs each invocation as a
 * CPU fiber, so narrow workgroups and no subgroup ops are several times faster there (measured:
 * lm_head 32064×128 GEMV 3.5 s with WG 64 + subgroups vs 0.2 s with WG 8, ROWS 8, busy 2-core box).
 * Rule: tunables only change speed; every setting must give the same results within tolerance.
 */
import type { GpuContext } from './device';
import type { MatMulNBitsTuning } from '../kernels/matmul-nbits';

export interface KernelTuning {
  matmul: MatMulNBitsTuning;
}

export function isSoftwareAdapter(info: GpuContext['adapterInfo']): boolean {
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`.toLowerCase();
  return text.includes('swiftshader') || text.includes('llvmpipe') || text.includes('lavapipe');
}

export function tuningFor(ctx: Pick<GpuContext, 'adapterInfo'>): KernelTuning {
  if (isSoftwareAdapter(ctx.adapterInfo)) return { matmul: { subgroups: false, gemvRows: 8, gemvWorkgroupSize: 8 } };
  return { matmul: {} };
}
