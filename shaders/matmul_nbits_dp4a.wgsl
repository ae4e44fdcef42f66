// MatMulNBits decode GEMV (M = 1), "dp4a" variant: the activation row quantised to int8 once per
// workgroup, and the int4 weights dotted against it four at a time with dot4I8Packed (WGSL's
// packed_4x8_integer_dot_product; one DP4A instruction on most GPUs). Same bindings, work split,
// fusions and entry points as matmul_nbits.wgsl (read its header); tuning.gemv = 'dp4a'.
//
// Why: the f32 GEMVs spend about 17 integer and 16 float operations on every packed word (8
// weights: unpack, bias, dot) and read 8 activation vec4s per 32-element chunk from workgroup
// memory. Here a word costs 2 masks, a shift and 2 dot4I8Packed, and a chunk's activations are 2
// vec4<u32> (plus one vec2 of scales) — about a fifth of the arithmetic and a quarter of the
// workgroup-memory reads per weight byte, so more of the GPU's time can go to streaming weights.
//
// Numerics (not the f32 kernels' contract): the activation row a (after SILU and NORM's weight) is
// quantised per 32-element chunk c, as llama.cpp's q8_1 and onnxruntime's MatMulNBits at accuracy
// level 4 do: amax = max |a[k]| over the chunk, q[k] = round(a[k] · 127 / amax) (ties to even),
// â[k] = q[k] · amax / 127, and y[n] = Σ_k W[n, k] · â[k] (· 1/rms with NORM, applied to the row
// total as in matmul_nbits_direct.wgsl). The integer dot products are exact; each â[k] is within
// amax / 254 of a[k] (about 0.4% of the chunk's largest activation). dequantize.ts's
// `quantizeActivationsQ8` is the reference for this rounding.
//
// Work split: workgroups of TPR · RG threads own RG · ROWS rows, as in the staged kernel. Staging:
// thread t quantises chunks t, t + TPR · RG, … (each: 8 vec4 loads of the input, with NORM 8 of its
// weight, with SILU 8 of `up`), so the whole row sits in workgroup memory at 40–48 bytes per 32 elements
// (K = 8192: 10–12 KiB). Then every lane walks its chunks with a trip count fixed at compile time
// (CHUNKS and TPR are override constants), so its weight loads can all be in flight at once.
// Requires (checked in matmul-nbits.ts, which runs the staged kernel otherwise): K % 32 == 0,
// inOffset and upOffset multiples of 4, the language feature, and the workgroup memory below.
//
// Packed layout: weight word w of a chunk holds elements 8w .. 8w+7, byte j = element 8w+2j (low
// nibble) and 8w+2j+1 (high). So (word & 0x0f0f0f0f) holds the chunk's even elements of that word
// as 4 unsigned bytes, (word >> 4) & 0x0f0f0f0f the odd ones; qEven[c][w] packs q[8w], q[8w+2],
// q[8w+4], q[8w+6] as signed bytes and qOdd[c][w] the odd ones, so each dot4I8Packed pairs a
// weight nibble q_w with its activation (the nibbles, 0..15, are non-negative as signed bytes).
// The zero point comes out of the integer sum: Σ (q_w − zp) · q_a = Σ q_w · q_a − zp · Σ q_a, with
// Σ q_a kept per block half (BLOCK 16 splits a chunk in two; SPLIT = 2).

override TPR: u32 = 32u;     // threads per row group (a power of two)
override RG: u32 = 2u;       // row groups per workgroup
override ROWS: u32 = 4u;     // output rows per row group, 1..8
override CHUNKS: u32 = 96u;  // K / 32
override SPLIT: u32 = 1u;    // activation sums per chunk: 1, or 2 when BLOCK == 16
// BLOCK, HAS_ZP, SCALES_F16 and the fusion switches: matmul_nbits_gemv_io.wgsl.
// tuning.gemvPrefetch: load the thread's weights (ITERS · ROWS ≤ 16 vec4s, `pre` of
// matmul_nbits_prefetch.wgsl) before quantising the activations, so they are in flight meanwhile.
override PREFETCH: bool = false;

// Chunks per lane (derived; matmul-nbits.ts never sets it).
override ITERS: u32 = (CHUNKS + TPR - 1u) / TPR;

// Params and bindings: matmul_nbits_dequant.wgsl and matmul_nbits_gemv_io.wgsl; the activations
// as vec4s, and `act4`: matmul_nbits_gemv_vec4.wgsl.

var<workgroup> qEven: array<vec4<u32>, CHUNKS>;
var<workgroup> qOdd: array<vec4<u32>, CHUNKS>;
// Entry c · SPLIT + h: (amax / 127, amax / 127 · Σ q over the chunk, or over its half h when SPLIT is 2).
var<workgroup> qScale: array<vec2<f32>, CHUNKS * SPLIT>;

const NIBBLES = 0x0f0f0f0fu;

fn absMax4(v: vec4<f32>) -> f32 {
  let a = abs(v);
  return max(max(a.x, a.y), max(a.z, a.w));
}

// Quantises chunk c into qEven / qOdd / qScale; returns its Σx² (before the norm weight) for NORM.
fn stageChunk(c: u32) -> f32 {
  var v: array<vec4<f32>, 8>;
  var sumSq = 0.0;
  var amax = 0.0;
  for (var j = 0u; j < 8u; j++) {
    var x = act4(c * 8u + j);
    if (NORM) {
      sumSq += dot(x, x);
      x *= normWeight[c * 8u + j];
    }
    v[j] = x;
    amax = max(amax, absMax4(x));
  }
  let inv = select(0.0, 127.0 / amax, amax > 0.0);
  let scale = amax / 127.0;
  var even: vec4<u32>;
  var odd: vec4<u32>;
  var sums = vec2<i32>(0);
  for (var w = 0u; w < 4u; w++) {
    let lo = vec4<i32>(round(v[2u * w] * inv));
    let hi = vec4<i32>(round(v[2u * w + 1u] * inv));
    even[w] = pack4xI8(vec4<i32>(lo.x, lo.z, hi.x, hi.z));
    odd[w] = pack4xI8(vec4<i32>(lo.y, lo.w, hi.y, hi.w));
    let s = lo.x + lo.y + lo.z + lo.w + hi.x + hi.y + hi.z + hi.w;
    if (w < 2u) { sums.x += s; } else { sums.y += s; }
  }
  qEven[c] = even;
  qOdd[c] = odd;
  if (SPLIT == 2u) {
    qScale[2u * c] = vec2<f32>(scale, scale * f32(sums.x));
    qScale[2u * c + 1u] = vec2<f32>(scale, scale * f32(sums.y));
  } else {
    qScale[c] = vec2<f32>(scale, scale * f32(sums.x + sums.y));
  }
  return sumSq;
}

// Σ q_w · q_a over packed word pairs: the 8 products of one weight word.
fn dotWordQ8(word: u32, even: u32, odd: u32) -> i32 {
  return dot4I8Packed(word & NIBBLES, even) + dot4I8Packed((word >> 4u) & NIBBLES, odd);
}

fn gemv(wid: vec3<u32>, lid: u32, sgSize: u32, sgLane: u32) {
  let wgRow0 = (wid.x + wid.y * params.gridX) * RG * ROWS;
  if (wgRow0 >= params.N) { return; }
  let WG = TPR * RG;
  let lane = lid % TPR;
  let group = lid / TPR;
  let row0 = wgRow0 + group * ROWS;

  if (PREFETCH) {
    for (var i = 0u; i < ITERS; i++) {
      // Past the row's last chunk: a valid address, never used.
      let c = min(lane + i * TPR, CHUNKS - 1u);
      for (var r = 0u; r < ROWS; r++) { setPre(i * ROWS + r, weights[weightRow(row0 + r) * CHUNKS + c]); }
    }
  }
  var sumSq = 0.0;
  for (var c = lid; c < CHUNKS; c += WG) { sumSq += stageChunk(c); }
  workgroupBarrier();

  // Row r's sum lives in component r % 4 of accLo (r < 4) or accHi (see matmul_nbits.wgsl).
  var accLo = vec4<f32>(0.0);
  var accHi = vec4<f32>(0.0);
  for (var i = 0u; i < ITERS; i++) {
    let c = lane + i * TPR;
    if (c < CHUNKS) {
      let e = qEven[c];
      let o = qOdd[c];
      let s0 = qScale[c * SPLIT];
      for (var r = 0u; r < ROWS; r++) {
        let n = weightRow(row0 + r);
        var w: vec4<u32>;
        if (PREFETCH) {
          w = getPre(i * ROWS + r);
        } else {
          w = weights[n * CHUNKS + c];
        }
        let d0 = dotWordQ8(w.x, e.x, o.x) + dotWordQ8(w.y, e.y, o.y);
        let d1 = dotWordQ8(w.z, e.z, o.z) + dotWordQ8(w.w, e.w, o.w);
        var sum: f32;
        if (BLOCK >= 32u) {
          let b = c * 32u / BLOCK;
          sum = scaleAt(n * params.nBlocks + b) * (s0.x * f32(d0 + d1) - zeroPointAt(n, b) * s0.y);
        } else {
          // BLOCK == 16: words 0–1 are block 2c, words 2–3 block 2c + 1.
          let b = c * 2u;
          let s1 = qScale[c * 2u + 1u];
          sum = scaleAt(n * params.nBlocks + b) * (s0.x * f32(d0) - zeroPointAt(n, b) * s0.y)
              + scaleAt(n * params.nBlocks + b + 1u) * (s1.x * f32(d1) - zeroPointAt(n, b + 1u) * s1.y);
        }
        accLo += select(vec4<f32>(0.0), vec4<f32>(sum), vec4<u32>(r) == vec4<u32>(0u, 1u, 2u, 3u));
        accHi += select(vec4<f32>(0.0), vec4<f32>(sum), vec4<u32>(r) == vec4<u32>(4u, 5u, 6u, 7u));
      }
    }
  }

  finishRows(wgRow0, lid, sgSize, sgLane, accLo, accHi, sumSq);
}
