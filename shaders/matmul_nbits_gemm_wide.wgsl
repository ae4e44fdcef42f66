// MatMulNBits prefill GEMM, "wide" (tuning.gemm 'wide'). matmul-nbits.ts prepends
// matmul_nbits_dequant.wgsl and matmul_nbits_gemm_common.wgsl (the bindings, the contract and the
// fusions) to this file. Needs whole 16-byte weight rows (kPadded % 32 == 0), as the GEMVs do.
//
// Tiling: a workgroup of WW threads computes TMW rows × WW·COLS columns; thread t owns columns
// n0 + t + c·WW (c < COLS) for all TMW rows. Unlike the tiled GEMM, weights never go through
// workgroup memory: per 32-element chunk of K each thread loads its own column's vec4<u32> of
// nibbles, dequantises them in registers (the 2^23 trick of matmul_nbits_dequant.wgsl, scaled by
// s·2^−p: bit for bit the tiled GEMM's (q − zp)·s) and uses each value for TMW rows. Only the
// A tile (TMW rows × 32·CHUNKS of K) is staged, and every thread reads the same A vec4 at once (a
// broadcast), so per workgroup-memory read a thread does 4·COLS FMAs. Each step's sums are kept
// apart and then added (two-level accumulation, as in the tiled GEMM).
// NORM: normPrologue with lanes = WW / min(TMW, WW) (NORM_SLOTS = TMW · lanes).
//
// AW, the type of the staged A tile, the dequantised weights and each step's sums, is an alias
// that matmul-nbits.ts declares in front of the module: f32 by default, f16 with tuning.gemmF16
// (`enable f16;` first: needs `shader-f16`). In f16 the activations are rounded to f16 as they are
// staged, each weight's (q − zp)·s is computed in f32 as above and rounded to f16 once (as an fp16
// model's own dequantisation rounds it), the products of a step (32·CHUNKS of K) are summed in
// f16, and the steps are added in f32. With AW = f32 every conversion below is the identity, so
// the f32 kernel is the same code, bit for bit.

override WW: u32 = 128u;    // threads per workgroup, a power of two 32..256
override COLS: u32 = 1u;    // columns per thread: 1 or 2
override TMW: u32 = 16u;    // rows of M per workgroup: 4, 8, 16 or 32
override CHUNKS: u32 = 1u;  // 32-element chunks of K per step
const MAX_TMW: u32 = 32u;
const MAX_COLS: u32 = 2u;

@group(0) @binding(1) var<storage, read> weights: array<vec4<u32>>;

var<workgroup> tileA: array<vec4<AW>, TMW * CHUNKS * 8u>; // [row][k / 4] of one step

@compute @workgroup_size(WW)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let n0 = wid.x * WW * COLS;
  let m0 = wid.y * TMW;
  let rowVecs = params.kPadded / 32u;
  let stepVecs = CHUNKS * 8u; // A vec4s per row and step
  let mEnd = gemmRowEnd();
  let lanes = WW / min(TMW, WW);
  if (NORM) { normPrologue(m0, TMW, mEnd, lid, WW, lanes); }

  // [c · MAX_TMW + row]. Explicitly zeroed (a loop-local array was not re-zeroed per iteration on
  // SwiftShader; see the tiled GEMM).
  var acc: array<f32, MAX_TMW * MAX_COLS>;
  var part: array<AW, MAX_TMW * MAX_COLS>;
  for (var i = 0u; i < MAX_TMW * MAX_COLS; i++) { acc[i] = 0.0; }
  for (var kt = 0u; kt < params.kPadded; kt += CHUNKS * 32u) {
    // Stage TMW × 32·CHUNKS of A as vec4s; zeros past K or the rows this dispatch may touch.
    for (var i = lid; i < TMW * stepVecs; i += WW) {
      let r = i / stepVecs;
      let k = kt + (i % stepVecs) * 4u;
      let m = m0 + r;
      tileA[i] = vec4<AW>(vec4<f32>(
        stagedActivation(m, k, mEnd, r, lanes),
        stagedActivation(m, k + 1u, mEnd, r, lanes),
        stagedActivation(m, k + 2u, mEnd, r, lanes),
        stagedActivation(m, k + 3u, mEnd, r, lanes),
      ));
    }
    workgroupBarrier();
    for (var i = 0u; i < TMW * COLS; i++) { part[(i / TMW) * MAX_TMW + i % TMW] = AW(0.0); }
    for (var ch = 0u; ch < CHUNKS; ch++) {
      let kv = kt / 32u + ch; // this chunk's vec4 in a weight row
      if (kv >= rowVecs) { break; } // uniform: the last step may run past the row
      var packed: array<vec4<u32>, MAX_COLS>;
      var sv: array<vec4<f32>, MAX_COLS>;
      var bias: array<vec4<f32>, MAX_COLS>;
      for (var c = 0u; c < COLS; c++) {
        // Columns past N read row N − 1 (a valid address) and are never written.
        packed[c] = weights[min(n0 + lid + c * WW, params.N - 1u) * rowVecs + kv];
      }
      for (var j = 0u; j < 4u; j++) {
        var lo: array<vec4<AW>, MAX_COLS>;
        var hi: array<vec4<AW>, MAX_COLS>;
        for (var c = 0u; c < COLS; c++) {
          // One scale per word; for blocks of ≥ 32 the chunk's four words share it.
          if (j == 0u || BLOCK < 32u) {
            let n = min(n0 + lid + c * WW, params.N - 1u);
            let b = (kv * 32u + j * 8u) / BLOCK;
            sv[c] = scaleAt(n * params.nBlocks + b) * NIBBLE_SCALE;
            bias[c] = nibbleBias(zeroPointAt(n, b));
          }
          let word = packed[c][j];
          lo[c] = vec4<AW>((bitcast<vec4<f32>>((vec4<u32>(word) & NIBBLE_MASKS) | vec4<u32>(MAGIC_BITS)) - bias[c]) * sv[c]);
          hi[c] = vec4<AW>((bitcast<vec4<f32>>((vec4<u32>(word >> 16u) & NIBBLE_MASKS) | vec4<u32>(MAGIC_BITS)) - bias[c]) * sv[c]);
        }
        // Elements 8j..8j+3 and 8j+4..8j+7 of this chunk, read once for all columns.
        let a0 = ch * 8u + j * 2u;
        for (var r = 0u; r < TMW; r++) {
          let x = tileA[r * stepVecs + a0];
          let y = tileA[r * stepVecs + a0 + 1u];
          for (var c = 0u; c < COLS; c++) {
            part[c * MAX_TMW + r] += dot(x, lo[c]) + dot(y, hi[c]);
          }
        }
      }
    }
    for (var i = 0u; i < TMW * COLS; i++) {
      let slot = (i / TMW) * MAX_TMW + i % TMW;
      acc[slot] += f32(part[slot]);
    }
    workgroupBarrier();
  }

  for (var c = 0u; c < COLS; c++) {
    let n = n0 + lid + c * WW;
    if (n >= params.N) { continue; }
    for (var r = 0u; r < TMW; r++) {
      let m = m0 + r;
      if (m >= mEnd) { break; }
      if (ACCUMULATE) {
        output[m * params.N + n] += acc[c * MAX_TMW + r];
      } else {
        output[m * params.N + n] = acc[c * MAX_TMW + r];
      }
    }
  }
}
