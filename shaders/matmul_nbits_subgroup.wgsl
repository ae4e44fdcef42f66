// MatMulNBits decode GEMV (M = 1), subgroup variant: identical to matmul_nbits.wgsl (read its
// header for bindings and contract; keep the two in step) except that the per-row sums are reduced
// with subgroupAdd and one workgroup-memory slot per subgroup. Chosen by createMatMulNBits when the
// device has the `subgroups` feature.
//
// Assumption: subgroups partition the 1-D workgroup by local_invocation_index in order, so that
// lid / subgroup_size names the subgroup (true of every WebGPU backend we know; the
// `subgroup_id` builtin is not yet universally available). Any subgroup size from 4 to 128 works.
enable subgroups;

override WG: u32 = 64u;       // threads per workgroup, a power of two
override ROWS: u32 = 4u;      // output rows per workgroup, 1..MAX_ROWS
override TILE_K: u32 = 2048u; // activations staged per pass, a multiple of 32
override BLOCK: u32 = 32u;    // quantisation block: 16, 32, 64 or 128
override HAS_ZP: bool = false;
override SCALES_F16: bool = false;

const MAX_ROWS: u32 = 8u;

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
@group(0) @binding(1) var<storage, read> weights: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> scales: array<u32>;
@group(0) @binding(3) var<storage, read> zeroPoints: array<u32>;
@group(0) @binding(4) var<storage, read> input: array<f32>;
@group(0) @binding(5) var<storage, read_write> output: array<f32>;

// Activation tile, laid out [8][TILE_K/32] vec4s: for chunk c (32 elements) and packed word j
// (8 elements), entry (2j)·C + c holds elements 0,2,4,6 of the word and (2j+1)·C + c elements
// 1,3,5,7, where C = TILE_K/32. Threads read consecutive chunks, so each read is conflict-free.
var<workgroup> tileA: array<vec4<f32>, TILE_K / 4u>;
// One slot per (row, subgroup); subgroups have at least 4 invocations.
var<workgroup> partial: array<f32, ROWS * (WG / 4u)>;

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

// Σ over one packed word's 8 elements of (q − zp) · a, with aLo = a[0,2,4,6], aHi = a[1,3,5,7].
fn dotWord(word: u32, aLo: vec4<f32>, aHi: vec4<f32>, zp: f32) -> f32 {
  let w = vec4<u32>(word);
  let lo = vec4<f32>((w >> vec4<u32>(0u, 8u, 16u, 24u)) & vec4<u32>(0xfu));
  let hi = vec4<f32>((w >> vec4<u32>(4u, 12u, 20u, 28u)) & vec4<u32>(0xfu));
  return dot(lo - vec4<f32>(zp), aLo) + dot(hi - vec4<f32>(zp), aHi);
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
  @builtin(subgroup_size) sgSize: u32,
  @builtin(subgroup_invocation_id) sgLane: u32,
) {
  let row0 = (wid.x + wid.y * params.gridX) * ROWS;
  if (row0 >= params.N) { return; }
  let chunksPerRow = params.kPadded / 32u;
  let C = TILE_K / 32u;
  var acc: array<f32, MAX_ROWS>;

  for (var t0 = 0u; t0 < params.kPadded; t0 += TILE_K) {
    let tileLen = min(TILE_K, params.kPadded - t0);
    // Stage a[t0 .. t0+tileLen) by words of 8 elements; zeros past K.
    for (var g = lid; g < tileLen / 8u; g += WG) {
      let k = t0 + g * 8u;
      var v: array<f32, 8>;
      for (var e = 0u; e < 8u; e++) {
        v[e] = select(0.0, input[min(k + e, params.K - 1u)], k + e < params.K);
      }
      let c = g >> 2u;
      let j = g & 3u;
      tileA[(2u * j) * C + c] = vec4<f32>(v[0], v[2], v[4], v[6]);
      tileA[(2u * j + 1u) * C + c] = vec4<f32>(v[1], v[3], v[5], v[7]);
    }
    workgroupBarrier();

    for (var c = lid; c < tileLen / 32u; c += WG) {
      let a0 = tileA[c];
      let a1 = tileA[C + c];
      let a2 = tileA[2u * C + c];
      let a3 = tileA[3u * C + c];
      let a4 = tileA[4u * C + c];
      let a5 = tileA[5u * C + c];
      let a6 = tileA[6u * C + c];
      let a7 = tileA[7u * C + c];
      let chunk = t0 / 32u + c;
      for (var r = 0u; r < ROWS; r++) {
        // Rows past N (last workgroup) recompute row N−1 and are never written.
        let n = min(row0 + r, params.N - 1u);
        let w = weights[n * chunksPerRow + chunk];
        if (BLOCK >= 32u) {
          let b = chunk * 32u / BLOCK;
          let zp = zeroPointAt(n, b);
          let s = scaleAt(n * params.nBlocks + b);
          acc[r] += s * (dotWord(w.x, a0, a1, zp) + dotWord(w.y, a2, a3, zp) + dotWord(w.z, a4, a5, zp) + dotWord(w.w, a6, a7, zp));
        } else {
          // BLOCK == 16: the chunk's first two words are block 2·chunk, the last two 2·chunk + 1.
          let b = chunk * 2u;
          let zp0 = zeroPointAt(n, b);
          let zp1 = zeroPointAt(n, b + 1u);
          let s0 = scaleAt(n * params.nBlocks + b);
          let s1 = scaleAt(n * params.nBlocks + b + 1u);
          acc[r] += s0 * (dotWord(w.x, a0, a1, zp0) + dotWord(w.y, a2, a3, zp0)) + s1 * (dotWord(w.z, a4, a5, zp1) + dotWord(w.w, a6, a7, zp1));
        }
      }
    }
    workgroupBarrier();
  }

  let maxSubgroups = WG / 4u;
  let sgId = lid / sgSize;
  for (var r = 0u; r < ROWS; r++) {
    let sum = subgroupAdd(acc[r]);
    if (sgLane == 0u) { partial[r * maxSubgroups + sgId] = sum; }
  }
  workgroupBarrier();
  if (lid < ROWS && row0 + lid < params.N) {
    let nSubgroups = (WG + sgSize - 1u) / sgSize;
    var total = 0.0;
    for (var i = 0u; i < nSubgroups; i++) { total += partial[lid * maxSubgroups + i]; }
    output[row0 + lid] = total;
  }
}
