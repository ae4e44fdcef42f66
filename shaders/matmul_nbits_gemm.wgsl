// MatMulNBits prefill GEMM (M > 1, and M = 1 when rows are not 16-byte aligned):
// Y (M, N) = A (M, K) · Wᵀ, W (N, K) int4 per com.microsoft MatMulNBits.
//
// Bindings (the same bind group as matmul_nbits.wgsl):
//   0 params     uniform { K, N, nBlocks, kPadded, zpRowBytes, maxM, gridX, _pad }
//   1 weights    storage read u32 (N, kPadded/8)   B's bytes [N, nBlocks, BLOCK/2]; word i of a
//                row holds elements 8i..8i+7, element e of the word in bits 4e..4e+3
//   2 scales     storage read u32: f32 bits (N·nBlocks) or, when SCALES_F16, fp16 pairs
//   3 zeroPoints storage read u32: bytes [N, zpRowBytes] 4-bit, low nibble first (when HAS_ZP)
//   4 input      storage read f32 (maxM, K)
//   5 output     storage read_write f32 (maxM, N)
//
// Contract: Y[m, n] = Σ_k A[m, k] · (q[n,k] − zp) · scale, f32 accumulation, for every m of the
// dispatched row tiles that is < maxM. The shader does not know M: rows M .. (next multiple of
// TILE_M, capped at maxM) are computed from whatever the input holds there and written too; the
// caller treats output rows ≥ M as scratch.
//
// Tiling: a workgroup of WG_X × WG_Y threads computes a TILE_M × TILE_N = 4·WG_Y × 4·WG_X tile,
// each thread a 4 × 4 block. Per step of TK along K the A tile and the dequantised W tile are
// staged in workgroup memory (k-major, so a thread reads one vec4 of each per k).

override WG_X: u32 = 8u; // threads along N
override WG_Y: u32 = 8u; // threads along M
override TK: u32 = 32u;  // K per step, a multiple of 8
override BLOCK: u32 = 32u;
override HAS_ZP: bool = false;
override SCALES_F16: bool = false;

struct Params {
  K: u32,
  N: u32,
  nBlocks: u32,
  kPadded: u32,
  zpRowBytes: u32,
  maxM: u32,
  gridX: u32,
  _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> weights: array<u32>;
@group(0) @binding(2) var<storage, read> scales: array<u32>;
@group(0) @binding(3) var<storage, read> zeroPoints: array<u32>;
@group(0) @binding(4) var<storage, read> input: array<f32>;
@group(0) @binding(5) var<storage, read_write> output: array<f32>;

var<workgroup> tileA: array<vec4<f32>, TK * WG_Y>; // [k][m / 4]
var<workgroup> tileW: array<vec4<f32>, TK * WG_X>; // [k][n / 4]

fn scaleAt(i: u32) -> f32 {
  if (SCALES_F16) {
    let pair = unpack2x16float(scales[i >> 1u]);
    return select(pair.x, pair.y, (i & 1u) == 1u);
  }
  return bitcast<f32>(scales[i]);
}

fn zeroPointAt(n: u32, b: u32) -> f32 {
  if (!HAS_ZP) { return 8.0; }
  let byteIndex = n * params.zpRowBytes + (b >> 1u);
  let byte = (zeroPoints[byteIndex >> 2u] >> ((byteIndex & 3u) * 8u)) & 0xffu;
  return f32((byte >> ((b & 1u) * 4u)) & 0xfu);
}

@compute @workgroup_size(WG_X, WG_Y)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_id) lid3: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let n0 = wid.x * 4u * WG_X;
  let m0 = wid.y * 4u * WG_Y;
  let threads = WG_X * WG_Y;
  let rowWords = params.kPadded / 8u;
  let wordsPerStep = TK / 8u;
  var acc: array<vec4<f32>, 4>;

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
        let q = f32((word >> (4u * e)) & 0xfu);
        tileW[(j * 8u + e) * WG_X + nl / 4u][nl % 4u] = (q - zp) * s;
      }
    }
    // Stage a (4·WG_Y) × TK tile of A; zeros past K or maxM.
    for (var i = lid; i < 4u * WG_Y * TK; i += threads) {
      let ml = i / TK;
      let kl = i % TK;
      let m = m0 + ml;
      let k = kt + kl;
      let inside = m < params.maxM && k < params.K;
      let v = select(0.0, input[select(0u, m * params.K + k, inside)], inside);
      tileA[kl * WG_Y + ml / 4u][ml % 4u] = v;
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
    for (var kl = 0u; kl < TK; kl++) {
      let a = tileA[kl * WG_Y + lid3.y];
      let w = tileW[kl * WG_X + lid3.x];
      s0 += a.x * w;
      s1 += a.y * w;
      s2 += a.z * w;
      s3 += a.w * w;
    }
    acc[0] += s0;
    acc[1] += s1;
    acc[2] += s2;
    acc[3] += s3;
    workgroupBarrier();
  }

  for (var i = 0u; i < 4u; i++) {
    let m = m0 + lid3.y * 4u + i;
    if (m >= params.maxM) { break; }
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + lid3.x * 4u + j;
      if (n < params.N) { output[m * params.N + n] = acc[i][j]; }
    }
  }
}
