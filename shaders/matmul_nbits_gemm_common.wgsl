// MatMulNBits prefill GEMMs (M > 1, and M = 1 when rows are not 16-byte aligned): what the two
// GEMM shaders share. matmul-nbits.ts prepends this file (after matmul_nbits_dequant.wgsl) to
// matmul_nbits_gemm.wgsl (tiled) or matmul_nbits_gemm_wide.wgsl (wide), which declare binding 1
// (u32 words, or vec4<u32> for the wide one) and their own tiling overrides.
// Y (M, N) = A (M, K) · Wᵀ, W (N, K) int4 per com.microsoft MatMulNBits.
//
// Bindings (the same bind group as matmul_nbits.wgsl):
//   0 params     uniform { K, N, nBlocks, kPadded, zpRowBytes, maxM, gridX, inStride, inOffset,
//                upStride, upOffset, eps }
//   1 weights    storage read u32 (N, kPadded/8)   B's bytes [N, nBlocks, BLOCK/2]; word i of a
//                row holds elements 8i..8i+7, element e of the word in bits 4e..4e+3
//   2 scales     storage read u32: f32 bits (N·nBlocks) or, when SCALES_F16, fp16 pairs
//   3 zeroPoints storage read u32: bytes [N, zpRowBytes] 4-bit, low nibble first (when HAS_ZP)
//   4 input      storage read f32, row m at m·inStride + inOffset, K elements (plain: (maxM, K);
//                SILU: the gate)
//   5 output     storage read_write f32 (maxM, N)
//   6 step       uniform Step; only seqLen is read, and only when ACCUMULATE
//   7 normWeight storage read f32 (K,), read only when NORM
//   8 up         storage read f32, row m at m·upStride + upOffset; read only when SILU
//
// Contract: Y[m, n] = Σ_k A[m, k] · (q[n,k] − zp) · scale, f32 accumulation, for every m of the
// dispatched row tiles that is < maxM. The shader does not know M: rows M .. (next multiple of
// the row tile, capped at maxM) are computed from whatever the input holds there and written too; the
// caller treats output rows ≥ M as scratch.
// Fusions (independent override switches, as in matmul_nbits.wgsl):
//   SILU        X[m, k] = silu(gate[m, k]) · up[m, k] (silu_mul.wgsl's formula), else the input.
//   NORM        A[m, k] = X[m, k] / sqrt(mean_k(X[m]²) + eps) · normWeight[k]; each workgroup
//               computes the inverse RMS of its tile's rows first (rmsnorm.wgsl's formula;
//               `normPrologue` below).
//   ACCUMULATE  Y[m, n] += Σ … (the residual add). Then only rows m < min(step.seqLen, maxM) are
//               read and written: the output is the residual stream, so its rows ≥ M are not
//               scratch. M comes from the shared step uniform because `encode` never writes
//               buffers; the caller must encode with M = step.seqLen.
//
// The step uniform is bound (binding 6) for every GEMM; only ACCUMULATE reads it.

override BLOCK: u32 = 32u;
override HAS_ZP: bool = false;
override SCALES_F16: bool = false;
override NORM: bool = false;
override SILU: bool = false;
override ACCUMULATE: bool = false;
// NORM: (rows per tile) · (norm lanes) when NORM, 1 otherwise (no unused workgroup memory).
override NORM_SLOTS: u32 = 1u;

// struct Step: shaders/step.wgsl, appended by the kernel's TypeScript.

// Params and bindings 0, 2 and 3: matmul_nbits_dequant.wgsl; binding 1 (weights): each GEMM.
@group(0) @binding(4) var<storage, read> input: array<f32>;
@group(0) @binding(5) var<storage, read_write> output: array<f32>;
@group(0) @binding(6) var<uniform> step: Step;
@group(0) @binding(7) var<storage, read> normWeight: array<f32>;
@group(0) @binding(8) var<storage, read> up: array<f32>;

// NORM: [row in tile][lane] partial sums of squares; after `normPrologue`, slot row · lanes holds
// the row's inverse RMS.
var<workgroup> normPartial: array<f32, NORM_SLOTS>;

// X[m, k] before the norm: the input, or silu(gate) · up when SILU.
fn activation(m: u32, k: u32) -> f32 {
  let x = input[m * params.inStride + params.inOffset + k];
  if (SILU) {
    // exp(88) is finite in f32, so the clamp keeps 1 + e^(−x) finite for very negative x.
    return x * (1.0 / (1.0 + exp(min(-x, 88.0)))) * up[m * params.upStride + params.upOffset + k];
  }
  return x;
}

// Rows this dispatch may touch: maxM, or M when accumulating into the residual stream.
fn gemmRowEnd() -> u32 {
  return select(params.maxM, min(params.maxM, step.seqLen), ACCUMULATE);
}

// NORM: the inverse RMS of tile rows m0 .. m0 + rows − 1 into normPartial[row · lanes]. The
// workgroup's `threads` threads form threads / lanes groups; group g sums rows g, g + groups, …,
// each lane every lanes-th element of K, and then one thread per row adds its lanes in order.
// Needs NORM_SLOTS ≥ rows · lanes and uniform control flow (two barriers).
fn normPrologue(m0: u32, rows: u32, mEnd: u32, lid: u32, threads: u32, lanes: u32) {
  let groups = threads / lanes;
  let lane = lid % lanes;
  for (var r = lid / lanes; r < rows; r += groups) {
    let m = m0 + r;
    var sumSq = 0.0;
    if (m < mEnd) {
      for (var k = lane; k < params.K; k += lanes) {
        let v = activation(m, k);
        sumSq += v * v;
      }
    }
    normPartial[r * lanes + lane] = sumSq;
  }
  workgroupBarrier();
  // Tile rows may outnumber the threads (e.g. 2 × 3 threads, 12 rows).
  for (var r = lid; r < rows; r += threads) {
    var sumSq = 0.0;
    for (var x = 0u; x < lanes; x++) { sumSq += normPartial[r * lanes + x]; }
    normPartial[r * lanes] = inverseSqrt(sumSq / f32(params.K) + params.eps);
  }
  workgroupBarrier();
}

// A[m, k] as staged: the activation, RMS-normalised when NORM (tile row r, `lanes` as given to
// normPrologue), and 0 outside m < mEnd, k < K.
fn stagedActivation(m: u32, k: u32, mEnd: u32, r: u32, lanes: u32) -> f32 {
  let inside = m < mEnd && k < params.K;
  var v = select(0.0, activation(select(0u, m, inside), select(0u, k, inside)), inside);
  if (NORM) { v *= normPartial[r * lanes] * normWeight[select(0u, k, inside)]; }
  return v;
}
