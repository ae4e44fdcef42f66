// MatMulNBits prefill GEMM (M > 1, and M = 1 when rows are not 16-byte aligned):
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
// TILE_M, capped at maxM) are computed from whatever the input holds there and written too; the
// caller treats output rows ≥ M as scratch.
// Fusions (independent override switches, as in matmul_nbits.wgsl):
//   SILU        X[m, k] = silu(gate[m, k]) · up[m, k] (silu_mul.wgsl's formula), else the input.
//   NORM        A[m, k] = X[m, k] / sqrt(mean_k(X[m]²) + eps) · normWeight[k]; each workgroup
//               computes the inverse RMS of its TILE_M rows first (rmsnorm.wgsl's formula).
//   ACCUMULATE  Y[m, n] += Σ … (the residual add). Then only rows m < min(step.seqLen, maxM) are
//               read and written: the output is the residual stream, so its rows ≥ M are not
//               scratch. M comes from the shared step uniform because `encode` never writes
//               buffers; the caller must encode with M = step.seqLen.
//
// Tiling: a workgroup of WG_X × WG_Y threads computes a TILE_M × TILE_N = TM·WG_Y × 4·WG_X tile,
// each thread a TM × 4 block (TM = 4 or 8 rows). Per step of TK along K the A tile and the
// dequantised W tile are staged in workgroup memory (k-major, so per k a thread reads one vec4
// of W and TM/4 vec4s of A: TM = 8 does 32 FMAs per 48 bytes of workgroup-memory reads instead of
// 16 per 32, and dequantises each weight tile for twice as many rows).
// The step uniform is bound (binding 6) for every GEMM; only ACCUMULATE reads it.

override WG_X: u32 = 8u; // threads along N
override WG_Y: u32 = 8u; // threads along M
override TK: u32 = 32u;  // K per step, a multiple of 8
override TM: u32 = 4u;   // rows per thread: 4 or 8
override BLOCK: u32 = 32u;
override HAS_ZP: bool = false;
override SCALES_F16: bool = false;
override NORM: bool = false;
override SILU: bool = false;
override ACCUMULATE: bool = false;
override NORM_SLOTS: u32 = 1u; // TM·WG_X·WG_Y when NORM (1 otherwise: no unused workgroup memory)
const MAX_TM: u32 = 8u;

struct Params {
  K: u32,
  N: u32,
  nBlocks: u32,
  kPadded: u32,
  zpRowBytes: u32,
  maxM: u32,
  gridX: u32,
  inStride: u32, // elements between input rows (K, or the gate stride when SILU)
  inOffset: u32, // element offset of row 0 in input
  upStride: u32,
  upOffset: u32,
  eps: f32,
}

struct Step {
  seqLen: u32,
  pastLen: u32,
  totalLen: u32,
  flags: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> weights: array<u32>;
@group(0) @binding(2) var<storage, read> scales: array<u32>;
@group(0) @binding(3) var<storage, read> zeroPoints: array<u32>;
@group(0) @binding(4) var<storage, read> input: array<f32>;
@group(0) @binding(5) var<storage, read_write> output: array<f32>;
@group(0) @binding(6) var<uniform> step: Step;
@group(0) @binding(7) var<storage, read> normWeight: array<f32>;
@group(0) @binding(8) var<storage, read> up: array<f32>;

var<workgroup> tileA: array<vec4<f32>, TK * WG_Y * TM / 4u>; // [k][m / 4]
var<workgroup> tileW: array<vec4<f32>, TK * WG_X>; // [k][n / 4]
// NORM: [row in tile][lid3.x] partial sums of squares; after the reduction slot row·WG_X holds
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

@compute @workgroup_size(WG_X, WG_Y)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_id) lid3: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let n0 = wid.x * 4u * WG_X;
  let m0 = wid.y * TM * WG_Y;
  let threads = WG_X * WG_Y;
  let rowWords = params.kPadded / 8u;
  let wordsPerStep = TK / 8u;
  var acc: array<vec4<f32>, MAX_TM>; // rows 0..TM-1 of this thread's block
  for (var i = 0u; i < MAX_TM; i++) { acc[i] = vec4<f32>(0.0); }
  let aRow = WG_Y * TM / 4u; // vec4s of A per k
  // Rows this dispatch may touch: maxM, or M when accumulating into the residual stream.
  let mEnd = select(params.maxM, min(params.maxM, step.seqLen), ACCUMULATE);

  if (NORM) {
    for (var i = 0u; i < TM; i++) {
      let ml = lid3.y * TM + i;
      let m = m0 + ml;
      var sumSq = 0.0;
      if (m < mEnd) {
        for (var k = lid3.x; k < params.K; k += WG_X) {
          let v = activation(m, k);
          sumSq += v * v;
        }
      }
      normPartial[ml * WG_X + lid3.x] = sumSq;
    }
    workgroupBarrier();
    // TILE_M rows may outnumber the threads (e.g. 2 × 3 threads, 12 rows).
    for (var ml = lid; ml < TM * WG_Y; ml += threads) {
      var sumSq = 0.0;
      for (var x = 0u; x < WG_X; x++) { sumSq += normPartial[ml * WG_X + x]; }
      normPartial[ml * WG_X] = inverseSqrt(sumSq / f32(params.K) + params.eps);
    }
    workgroupBarrier();
  }

  for (var kt = 0u; kt < params.kPadded; kt += TK) {
    // Dequantise a (4·WG_X) × TK tile of W; words past the row or rows past N give zeros.
    for (var i = lid; i < 4u * WG_X * wordsPerStep; i += threads) {
      let nl = i / wordsPerStep;
      let j = i % wordsPerStep;
      let n = n0 + nl;
      let kw = kt / 8u + j;
      var s = 0.0;
      var zp = 0.0;
      var word = 0u;
      if (n < params.N && kw < rowWords) {
        word = weights[n * rowWords + kw];
        let b = kw * 8u / BLOCK;
        s = scaleAt(n * params.nBlocks + b);
        zp = zeroPointAt(n, b);
      }
      for (var e = 0u; e < 8u; e++) {
        tileW[(j * 8u + e) * WG_X + nl / 4u][nl % 4u] = nibble(word, e, zp) * s;
      }
    }
    // Stage a (TM·WG_Y) × TK tile of A; zeros past K or maxM.
    for (var i = lid; i < TM * WG_Y * TK; i += threads) {
      let ml = i / TK;
      let kl = i % TK;
      let m = m0 + ml;
      let k = kt + kl;
      let inside = m < mEnd && k < params.K;
      var v = select(0.0, activation(select(0u, m, inside), select(0u, k, inside)), inside);
      if (NORM) { v *= normPartial[ml * WG_X] * normWeight[select(0u, k, inside)]; }
      tileA[kl * aRow + ml / 4u][ml % 4u] = v;
    }
    workgroupBarrier();
    // Sum each step on its own before adding it in: two-level accumulation keeps the f32 error
    // of K = 8192 close to the GEMV's (which splits K across threads).
    // Explicit initialisers: a loop-local `var x: array<vec4<f32>, 4>;` was not re-zeroed on each
    // iteration on SwiftShader.
    var s0 = vec4<f32>(0.0);
    var s1 = vec4<f32>(0.0);
    var s2 = vec4<f32>(0.0);
    var s3 = vec4<f32>(0.0);
    var s4 = vec4<f32>(0.0);
    var s5 = vec4<f32>(0.0);
    var s6 = vec4<f32>(0.0);
    var s7 = vec4<f32>(0.0);
    for (var kl = 0u; kl < TK; kl++) {
      let w = tileW[kl * WG_X + lid3.x];
      let a = tileA[kl * aRow + lid3.y * (TM / 4u)];
      s0 += a.x * w;
      s1 += a.y * w;
      s2 += a.z * w;
      s3 += a.w * w;
      if (TM == 8u) {
        let b = tileA[kl * aRow + lid3.y * 2u + 1u];
        s4 += b.x * w;
        s5 += b.y * w;
        s6 += b.z * w;
        s7 += b.w * w;
      }
    }
    acc[0] += s0;
    acc[1] += s1;
    acc[2] += s2;
    acc[3] += s3;
    if (TM == 8u) {
      acc[4] += s4;
      acc[5] += s5;
      acc[6] += s6;
      acc[7] += s7;
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < TM; i++) {
    let m = m0 + lid3.y * TM + i;
    if (m >= mEnd) { break; }
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + lid3.x * 4u + j;
      if (n < params.N) {
        if (ACCUMULATE) {
          output[m * params.N + n] += acc[i][j];
        } else {
          output[m * params.N + n] = acc[i][j];
        }
      }
    }
  }
}
