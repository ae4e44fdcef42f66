// MatMulNBits decode GEMV (M = 1), "direct" variant: the same contract, bindings and fusions as
// matmul_nbits.wgsl (read its header), but nothing is staged in workgroup memory. Each thread reads
// its chunks' activations straight from the storage buffer as vec4s (they are shared by every
// workgroup, so they come from the caches) and reuses them for ROWS weight rows.
//
// Why a second GEMV: the staged kernel makes every workgroup load the whole activation row and wait
// on barriers before its first weight load. On a large discrete GPU (an H100: 132 SMs, 3.35 TB/s)
// that fixed cost and the few bytes in flight per thread kept it at 10–55% of copy bandwidth. Here
// a workgroup's only barrier is in the final reduction, the chunk loop has a trip count known when
// the pipeline is compiled (CHUNKS and TPR are override constants), so the compiler can unroll it
// and issue every weight load of a thread at once.
//
// Fusions, computed per chunk while loading, so they add no extra pass over the row:
//   SILU        x = silu(gate) · up, from bindings 4 and 8 (each row group recomputes its chunks).
//   NORM        y = rsqrt(mean(x²) + eps) · Σ_k (x[k] · normWeight[k]) · w[n,k]: the inverse RMS is
//               a scalar of the row, so it is applied after the dot product; Σx² is accumulated from
//               the same loads and reduced with the row sums (no separate RMS pass per workgroup).
//   ACCUMULATE  y[n] += …
//   ROPE_APPEND decode of a packed qkv row: rotary of q and k, k and v into the KV caches, as in
//               matmul_nbits.wgsl (output row n computes weight row ropeRow(n); the epilogue and its
//               group-1 bindings are in matmul_nbits_rope.wgsl). NORM allowed, not ACCUMULATE/SILU.
// Requires (checked on the TypeScript side, which otherwise uses the staged kernel): K % 32 == 0
// (so kPadded == K and no chunk is partial), inOffset and upOffset multiples of 4 (vec4 loads).
//
// This file is the body; matmul-nbits.ts prepends one of two entry points: with `subgroups`, row
// sums are reduced by subgroupAdd first; without, every lane writes its own workgroup-memory slot.

override TPR: u32 = 32u;     // threads per row group (a power of two)
override RG: u32 = 1u;       // row groups per workgroup
override ROWS: u32 = 4u;     // output rows per row group, 1..8
override CHUNKS: u32 = 96u;  // K / 32: 32-element (16-byte) chunks per weight row
// BLOCK, HAS_ZP, SCALES_F16 and the fusion switches: matmul_nbits_gemv_io.wgsl.

// Params and bindings: matmul_nbits_dequant.wgsl and matmul_nbits_gemv_io.wgsl; the activations
// as vec4s, and `act4`: matmul_nbits_gemv_vec4.wgsl.

// Per row group: ROWS row sums and (slot ROWS) Σx², each with TPR lane slots.
var<workgroup> partial: array<f32, RG * (ROWS + 1u) * TPR>;

fn slot(group: u32, r: u32, lane: u32) -> u32 {
  return (group * (ROWS + 1u) + r) * TPR + lane;
}

fn gemv(wid: vec3<u32>, lid: u32, sgSize: u32, sgLane: u32) {
  let wgRow0 = (wid.x + wid.y * params.gridX) * RG * ROWS;
  if (wgRow0 >= params.N) { return; }
  let lane = lid % TPR;
  let group = lid / TPR;
  let row0 = wgRow0 + group * ROWS;
  // Row r's sum lives in component r % 4 of accLo (r < 4) or accHi (see matmul_nbits.wgsl).
  var accLo = vec4<f32>(0.0);
  var accHi = vec4<f32>(0.0);
  var sumSq = 0.0;

  for (var i = 0u; i < (CHUNKS + TPR - 1u) / TPR; i++) {
    let c = lane + i * TPR;
    if (c < CHUNKS) {
      var a: array<vec4<f32>, 8>;
      for (var j = 0u; j < 8u; j++) {
        var v = act4(c * 8u + j);
        if (NORM) {
          sumSq += dot(v, v);
          v *= normWeight[c * 8u + j];
        }
        a[j] = v * NIBBLE_SCALE;
      }
      for (var r = 0u; r < ROWS; r++) {
        let n = weightRow(row0 + r);
        let w = weights[n * CHUNKS + c];
        var sum: f32;
        if (BLOCK >= 32u) {
          let b = c * 32u / BLOCK;
          let bias = nibbleBias(zeroPointAt(n, b));
          sum = scaleAt(n * params.nBlocks + b) * (dotWord(w.x, a[0], a[1], bias) + dotWord(w.y, a[2], a[3], bias) + dotWord(w.z, a[4], a[5], bias) + dotWord(w.w, a[6], a[7], bias));
        } else {
          // BLOCK == 16: words 0–1 are block 2c, words 2–3 block 2c + 1.
          let b = c * 2u;
          let bias0 = nibbleBias(zeroPointAt(n, b));
          let bias1 = nibbleBias(zeroPointAt(n, b + 1u));
          sum = scaleAt(n * params.nBlocks + b) * (dotWord(w.x, a[0], a[1], bias0) + dotWord(w.y, a[2], a[3], bias0))
              + scaleAt(n * params.nBlocks + b + 1u) * (dotWord(w.z, a[4], a[5], bias1) + dotWord(w.w, a[6], a[7], bias1));
        }
        accLo += select(vec4<f32>(0.0), vec4<f32>(sum), vec4<u32>(r) == vec4<u32>(0u, 1u, 2u, 3u));
        accHi += select(vec4<f32>(0.0), vec4<f32>(sum), vec4<u32>(r) == vec4<u32>(4u, 5u, 6u, 7u));
      }
    }
  }

  // Reduce each row (and Σx²) over the row group's TPR lanes: by subgroup first where subgroups
  // lie inside row groups, leaving TPR / sgSize slots; otherwise one slot per lane.
  var slots = TPR;
  if (sgSize > 1u && sgSize <= TPR) {
    slots = TPR / sgSize;
    for (var r = 0u; r < ROWS; r++) {
      let s = rowSum(select(accLo[r % 4u], accHi[r % 4u], r >= 4u));
      if (sgLane == 0u) { partial[slot(group, r, lane / sgSize)] = s; }
    }
    if (NORM) {
      let s = rowSum(sumSq);
      if (sgLane == 0u) { partial[slot(group, ROWS, lane / sgSize)] = s; }
    }
  } else {
    for (var r = 0u; r < ROWS; r++) {
      partial[slot(group, r, lane)] = select(accLo[r % 4u], accHi[r % 4u], r >= 4u);
    }
    if (NORM) { partial[slot(group, ROWS, lane)] = sumSq; }
  }
  workgroupBarrier();
  var total = 0.0;
  if (lid < RG * ROWS) {
    let g = lid / ROWS;
    let r = lid % ROWS;
    for (var s = 0u; s < slots; s++) { total += partial[slot(g, r, s)]; }
    if (NORM) {
      var ss = 0.0;
      for (var s = 0u; s < slots; s++) { ss += partial[slot(g, ROWS, s)]; }
      total *= inverseSqrt(ss / f32(params.K) + params.eps);
    }
  }
  emit(wgRow0, lid, total);
}
