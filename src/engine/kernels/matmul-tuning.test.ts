import { describe, expect, it } from 'vitest';
import { matMulNBitsTuningFor } from './matmul-nbits';

// The defaults come from measurements (see matMulNBitsTuningFor's doc comment and
// docs/benchmarks.md); this pins which adapter and shape gets which split.
describe('matMulNBitsTuningFor', () => {
  const h100 = { vendor: 'nvidia', architecture: '', device: 'nvidia-h100-80gb-hbm3', description: 'NVIDIA: 580.159.04' };

  it('NVIDIA: the dp4a GEMV, 8 row groups of 4 rows (2 for o_proj\'s 3072 × 3072; the staged fallback 2), the wide GEMM with 2 columns (1 below 256 workgroups), the tiled one on 32 × 8 threads with K steps of 16', () => {
    const nvidia = { gemv: 'dp4a', threadsPerRow: 32, rowGroups: 8, rowsPerThread: 4, stagedRowsPerThread: 2, gemmThreads: [32, 8], gemmStepK: 16, gemm: 'wide', gemmWideCols: 2, gemmWideMinGroups: 256 };
    for (const [K, N] of [[3072, 9216], [8192, 3072], [3072, 16384], [3072, 32064]]) expect(matMulNBitsTuningFor(h100, { K, N })).toEqual(nvidia);
    expect(matMulNBitsTuningFor(h100, { K: 3072, N: 3072 })).toEqual({ ...nvidia, rowsPerThread: 2 });
    expect(matMulNBitsTuningFor(h100)).toEqual(nvidia);
  });

  it('SwiftShader gets small workgroups of many rows and the tiled GEMM; unknown GPUs the staged 2 × 4 split and the wide GEMM', () => {
    expect(matMulNBitsTuningFor({ vendor: 'google', architecture: 'swiftshader', device: '', description: 'SwiftShader driver 5.0.0' })).toEqual({ threadsPerRow: 8, rowGroups: 2, rowsPerThread: 8 });
    const other = { threadsPerRow: 32, rowGroups: 2, rowsPerThread: 4, gemm: 'wide', gemmWideCols: 2, gemmWideMinGroups: 256 };
    expect(matMulNBitsTuningFor({ vendor: 'amd', architecture: 'rdna-3', device: '', description: '' }, { K: 3072, N: 32064 })).toEqual(other);
    expect(matMulNBitsTuningFor({})).toEqual(other);
  });

  it('every default keeps rowGroups · rowsPerThread (and · stagedRowsPerThread) even, as the ropeAppend GEMV (decode qkv) needs', () => {
    const adapters = [h100, { vendor: 'google', architecture: 'swiftshader' }, { vendor: 'amd', architecture: 'rdna-3' }, { vendor: 'apple' }, {}];
    for (const adapter of adapters) {
      for (const shape of [undefined, { K: 3072, N: 9216 }, { K: 3072, N: 3072 }, { K: 8192, N: 3072 }, { K: 3072, N: 16384 }, { K: 3072, N: 32064 }]) {
        const t = matMulNBitsTuningFor(adapter, shape);
        expect(((t.rowGroups ?? 2) * (t.rowsPerThread ?? 4)) % 2).toBe(0);
        expect(((t.rowGroups ?? 2) * (t.stagedRowsPerThread ?? t.rowsPerThread ?? 4)) % 2).toBe(0);
      }
    }
  });
});
