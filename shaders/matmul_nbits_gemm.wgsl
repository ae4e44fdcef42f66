// MatMulNBits prefill GEMM, tiled (the default; tuning.gemm 'tiled'). matmul-nbits.ts prepends
// matmul_nbits_dequant.wgsl and matmul_nbits_gemm_common.wgsl (the bindings, the contract and the
// fusions) to this file.
//
// Tiling: a workgroup of WG_X × WG_Y threads computes a TILE_M × TILE_N = TM·WG_Y × 4·WG_X tile,
// each thread a TM × 4 block (TM = 4 or 8 rows). Per step of TK along K the A tile and the
// dequantised W tile are staged in workgroup memory (k-major, so per k a thread reads one vec4
// of W and TM/4 vec4s of A: TM = 8 does 32 FMAs per 48 bytes of workgroup-memory reads instead of
// 16 per 32, and dequantises each weight tile for twice as many rows).
// NORM: normPrologue with lanes = WG_X (NORM_SLOTS = TM·WG_Y·WG_X).

override WG_X: u32 = 8u; // threads along N
override WG_Y: u32 = 8u; // threads along M
override TK: u32 = 32u;  // K per step, a multiple of 8
override TM: u32 = 4u;   // rows per thread: 4 or 8
// vec4s of padding after each k row of the A tile (tuning.gemmPadA; 1 by default, 0 without).
// Staging writes a row's consecutive k from consecutive threads: unpadded, a k row is 4·WG_Y·TM/4
// floats (32 at 8 × 4 rows), a multiple of the 32 banks, so 16 threads of a warp hit one bank; one
// vec4 of padding turns that into 2-way.
override A_PAD: u32 = 1u;
const MAX_TM: u32 = 8u;

@group(0) @binding(1) var<storage, read> weights: array<u32>;

var<workgroup> tileA: array<vec4<f32>, TK * (WG_Y * TM / 4u + A_PAD)>; // [k][m / 4], rows padded
var<workgroup> tileW: array<vec4<f32>, TK * WG_X>; // [k][n / 4]

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
  let aRow = WG_Y * TM / 4u + A_PAD; // vec4s of A per k, padding included
  let mEnd = gemmRowEnd();
  if (NORM) { normPrologue(m0, TM * WG_Y, mEnd, lid, threads, WG_X); }

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
      tileA[kl * aRow + ml / 4u][ml % 4u] = stagedActivation(m0 + ml, kt + kl, mEnd, ml, WG_X);
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
