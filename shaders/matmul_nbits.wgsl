// MatMulNBits decode GEMV (M = 1): y (N,) = W (N, K) · a (K,), W int4 per com.microsoft MatMulNBits.
// The "staged" GEMV (matmul_nbits_direct.wgsl and matmul_nbits_dp4a.wgsl are the others). This
// file is the body, `gemv`; matmul-nbits.ts prepends one of two entry points and appends the row
// reduction (matmul_nbits_gemv_reduce.wgsl): with `subgroups`, row sums are reduced by subgroupAdd
// (`rowSum`) and one workgroup-memory slot per subgroup; without, by a workgroup-memory tree.
// Assumption for the first: subgroups partition the 1-D workgroup by local_invocation_index in
// order, so a subgroup of size ≤ TPR lies inside one row group (true of every WebGPU backend we
// know; `subgroup_id` is not yet universally available); wider subgroups use the tree.
//
// Bindings (shared with matmul_nbits_gemm.wgsl, one bind group for both):
//   0 params     uniform { K, N, nBlocks, kPadded, zpRowBytes, maxM, gridX, inStride, inOffset,
//                upStride, upOffset, eps }
//   1 weights    storage read vec4<u32> (N, kPadded/32)   B's bytes [N, nBlocks, BLOCK/2]; one vec4
//                = 16 bytes = 32 elements; byte j holds element 2j (low nibble) and 2j+1 (high)
//   2 scales     storage read u32: f32 bits (N·nBlocks) or, when SCALES_F16, fp16 pairs (N·nBlocks/2)
//   3 zeroPoints storage read u32: bytes [N, zpRowBytes], 4-bit, block 2b low nibble, 2b+1 high;
//                read only when HAS_ZP (otherwise the zero point is 8)
//   4 input      storage read f32; row 0 is used: x[k] = input[inOffset + k], k < K (plain: the
//                (M, K) activations; SILU: the gate, rows of inStride = gateStride)
//   5 output     storage read_write f32 (M, N); only row 0 is written (ACCUMULATE: read, then written)
//   6 step       uniform Step (read only by ROPE_APPEND, for pastLen; the GEMM reads seqLen when ACCUMULATE)
//   7 normWeight storage read f32 (K,), read only when NORM
//   8 up         storage read f32, rows of upStride, up[k] = up[upOffset + k]; read only when SILU
//   group 1      ROPE_APPEND only: the interleaved cos/sin table and the KV caches
//                (matmul_nbits_rope.wgsl, which also reads binding 6); the plain pipelines have no group 1
//
// Contract: y[n] (+)= Σ_k a[k] · (q[n,k] − zp[n, k/BLOCK]) · scale[n, k/BLOCK], f32 accumulation,
// where the activation is built while staging (the three fusions are independent override switches):
//   x[k] = input[...]                              (SILU: silu(gate[k]) · up[k], as silu_mul.wgsl)
//   a[k] = x[k]                                    (NORM: x[k] / sqrt(mean_k(x²) + eps) · normWeight[k],
//                                                   as rmsnorm.wgsl; each workgroup sums x² while
//                                                   staging and scales its row totals by 1/rms at the end)
//   y[n] = Σ …                                     (ACCUMULATE: y[n] = y[n] + Σ …, the residual add)
// ROPE_APPEND (decode of a packed qkv row, NORM allowed, not ACCUMULATE or SILU): output row n
// computes weight row ropeRow(n), and the totals go to `ropeAppend` instead of `store`: rotary of q
// and k, k and v into the KV caches (bindings of group 1; contract in matmul_nbits_rope.wgsl).
// Requires kPadded % 32 == 0 (rows start on 16-byte boundaries); the TypeScript side routes other
// shapes to the GEMM kernel. Padding elements k ≥ K meet a zero activation, so they never count.
//
// Work split: a workgroup of TPR·RG threads owns RG·ROWS consecutive output rows. Its threads form
// RG row groups of TPR threads; row group g owns rows g·ROWS .. g·ROWS+ROWS−1, and its TPR threads
// stride over the rows' 32-element chunks, each thread accumulating all ROWS rows so that the
// activations it reads from workgroup memory are reused ROWS times. Every workgroup stages the
// whole activation once, so RG·ROWS also sets how far that cost is amortised. The activation is
// staged in tiles of TILE_K elements, pre-scaled for the dequantisation (see `tileA`).
// Workgroups form a 2-D grid (gridX per row of the grid) to respect the 65535 dispatch limit.

override TPR: u32 = 32u;      // threads per row group, a power of two ≥ 4
override RG: u32 = 2u;        // row groups per workgroup
override ROWS: u32 = 4u;      // output rows per thread (and per row group), 1..MAX_ROWS
override TILE_K: u32 = 2048u; // activations staged per pass, a multiple of 32
// BLOCK, HAS_ZP, SCALES_F16 and the fusion switches: matmul_nbits_gemv_io.wgsl.
// Prefetch (tuning.gemvPrefetch): > 0 loads each tile's weights into registers (`pre`) before
// the tile is staged, so those loads are in flight while the workgroup stages activations instead
// of after its barrier. The value is the chunks per lane of a full tile, ceil(TILE_K / 32 / TPR),
// with PF_ITERS · ROWS ≤ 16, the slots of `Prefetched` (matmul_nbits_prefetch.wgsl). 0: off.
override PF_ITERS: u32 = 0u;

const MAX_ROWS: u32 = 8u;

// Params and bindings 0, 2, 3: matmul_nbits_dequant.wgsl; 1 and 5: matmul_nbits_gemv_io.wgsl. The
// activations as scalars:
@group(0) @binding(4) var<storage, read> input: array<f32>;
@group(0) @binding(7) var<storage, read> normWeight: array<f32>;
@group(0) @binding(8) var<storage, read> up: array<f32>;

// Activation tile, laid out [8][TILE_K/32] vec4s: entry j·C + c (C = TILE_K/32) holds elements
// 4j .. 4j+3 of chunk c (32 elements), pre-scaled by NIBBLE_SCALE (matmul_nbits_dequant.wgsl), so
// packed word w of the chunk meets entries 2w and 2w + 1. Threads read consecutive chunks, so each
// read is conflict-free.
var<workgroup> tileA: array<vec4<f32>, TILE_K / 4u>;
// x[m, k] before the norm: the input, or silu(gate) · up when SILU.
fn activation(m: u32, k: u32) -> f32 {
  let x = input[m * params.inStride + params.inOffset + k];
  if (SILU) {
    // exp(88) is finite in f32, so the clamp keeps 1 + e^(−x) finite for very negative x.
    return x * (1.0 / (1.0 + exp(min(-x, 88.0)))) * up[m * params.upStride + params.upOffset + k];
  }
  return x;
}

// Σ over one 32-element chunk of weight row n: w is the row's vec4 of the chunk, a0..a7 the
// chunk's staged activations (tileA entries c, C + c, …, 7C + c).
fn chunkSum(n: u32, chunk: u32, w: vec4<u32>, a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>, a4: vec4<f32>, a5: vec4<f32>, a6: vec4<f32>, a7: vec4<f32>) -> f32 {
  if (BLOCK >= 32u) {
    let b = chunk * 32u / BLOCK;
    let bias = nibbleBias(zeroPointAt(n, b));
    let s = scaleAt(n * params.nBlocks + b);
    return s * (dotWord(w.x, a0, a1, bias) + dotWord(w.y, a2, a3, bias) + dotWord(w.z, a4, a5, bias) + dotWord(w.w, a6, a7, bias));
  }
  // BLOCK == 16: the chunk's first two words are block 2·chunk, the last two 2·chunk + 1.
  let b = chunk * 2u;
  let bias0 = nibbleBias(zeroPointAt(n, b));
  let bias1 = nibbleBias(zeroPointAt(n, b + 1u));
  let s0 = scaleAt(n * params.nBlocks + b);
  let s1 = scaleAt(n * params.nBlocks + b + 1u);
  return s0 * (dotWord(w.x, a0, a1, bias0) + dotWord(w.y, a2, a3, bias0)) + s1 * (dotWord(w.z, a4, a5, bias1) + dotWord(w.w, a6, a7, bias1));
}

// PF_ITERS > 0: loads the tile at t0's weights of rows row0 .. row0 + ROWS − 1 for this lane into
// `pre`. Chunks past the tile load its last chunk (a valid address; never used).
fn prefetchTile(t0: u32, row0: u32, lane: u32) {
  let tileChunks = min(TILE_K, params.kPadded - t0) / 32u;
  let chunksPerRow = params.kPadded / 32u;
  for (var it = 0u; it < PF_ITERS; it++) {
    let c = min(lane + it * TPR, tileChunks - 1u);
    for (var r = 0u; r < ROWS; r++) {
      setPre(it * ROWS + r, weights[weightRow(row0 + r) * chunksPerRow + t0 / 32u + c]);
    }
  }
}

// Adds tile chunk c (weight chunk `chunk`) of rows row0 .. row0 + ROWS − 1 into the thread's
// accumulators: row r's sum goes to component r % 4 of accLo (r < 4) or accHi, through a one-hot
// select instead of indexing a private array by r, which keeps them in registers everywhere
// (dynamically indexed private arrays went through memory on SwiftShader). The weights come from
// `pre` (iteration `it`) with prefetch, else from the buffer.
fn addChunk(c: u32, chunk: u32, row0: u32, it: u32, accLo: ptr<function, vec4<f32>>, accHi: ptr<function, vec4<f32>>) {
  let C = TILE_K / 32u;
  let a0 = tileA[c];
  let a1 = tileA[C + c];
  let a2 = tileA[2u * C + c];
  let a3 = tileA[3u * C + c];
  let a4 = tileA[4u * C + c];
  let a5 = tileA[5u * C + c];
  let a6 = tileA[6u * C + c];
  let a7 = tileA[7u * C + c];
  for (var r = 0u; r < ROWS; r++) {
    let n = weightRow(row0 + r);
    var w: vec4<u32>;
    if (PF_ITERS > 0u) {
      w = getPre(it * ROWS + r);
    } else {
      w = weights[n * (params.kPadded / 32u) + chunk];
    }
    let sum = chunkSum(n, chunk, w, a0, a1, a2, a3, a4, a5, a6, a7);
    *accLo += select(vec4<f32>(0.0), vec4<f32>(sum), vec4<u32>(r) == vec4<u32>(0u, 1u, 2u, 3u));
    *accHi += select(vec4<f32>(0.0), vec4<f32>(sum), vec4<u32>(r) == vec4<u32>(4u, 5u, 6u, 7u));
  }
}

fn gemv(wid: vec3<u32>, lid: u32, sgSize: u32, sgLane: u32) {
  let wgRow0 = (wid.x + wid.y * params.gridX) * RG * ROWS;
  if (wgRow0 >= params.N) { return; }
  let WG = TPR * RG;
  let lane = lid % TPR;
  let group = lid / TPR;
  let row0 = wgRow0 + group * ROWS;
  let C = TILE_K / 32u;
  // Rows 0..3 of the thread's sums, and 4..7 (`addChunk`).
  var accLo = vec4<f32>(0.0);
  var accHi = vec4<f32>(0.0);

  if (PF_ITERS > 0u) { prefetchTile(0u, row0, lane); }
  // NORM: Σx² of the elements this thread stages (the inverse RMS is a scalar of the row, so the
  // tile holds x · normWeight and the row totals are scaled once at the end; no RMS pass first).
  var sumSq = 0.0;

  for (var t0 = 0u; t0 < params.kPadded; t0 += TILE_K) {
    let tileLen = min(TILE_K, params.kPadded - t0);
    if (PF_ITERS > 0u && t0 > 0u) { prefetchTile(t0, row0, lane); }
    // Stage a[t0 .. t0+tileLen) by words of 8 elements; zeros past K.
    for (var g = lid; g < tileLen / 8u; g += WG) {
      let k = t0 + g * 8u;
      let kLo = vec4<u32>(k) + vec4<u32>(0u, 1u, 2u, 3u);
      let kHi = kLo + vec4<u32>(4u);
      let last = vec4<u32>(params.K - 1u);
      let iLo = min(kLo, last);
      let iHi = min(kHi, last);
      var lo = vec4<f32>(activation(0u, iLo.x), activation(0u, iLo.y), activation(0u, iLo.z), activation(0u, iLo.w));
      var hi = vec4<f32>(activation(0u, iHi.x), activation(0u, iHi.y), activation(0u, iHi.z), activation(0u, iHi.w));
      let inLo = kLo < vec4<u32>(params.K);
      let inHi = kHi < vec4<u32>(params.K);
      if (NORM) {
        // Past K the indices repeat element K − 1: count each element once.
        sumSq += dot(select(vec4<f32>(0.0), lo * lo, inLo), vec4<f32>(1.0)) + dot(select(vec4<f32>(0.0), hi * hi, inHi), vec4<f32>(1.0));
        lo *= vec4<f32>(normWeight[iLo.x], normWeight[iLo.y], normWeight[iLo.z], normWeight[iLo.w]);
        hi *= vec4<f32>(normWeight[iHi.x], normWeight[iHi.y], normWeight[iHi.z], normWeight[iHi.w]);
      }
      let c = g >> 2u;
      let j = g & 3u;
      tileA[(2u * j) * C + c] = select(vec4<f32>(0.0), lo * NIBBLE_SCALE, inLo);
      tileA[(2u * j + 1u) * C + c] = select(vec4<f32>(0.0), hi * NIBBLE_SCALE, inHi);
    }
    workgroupBarrier();

    // With prefetch the chunk loop has the constant trip count PF_ITERS, so `pre` is indexed by
    // constants; without, it strides by TPR to the tile's end.
    if (PF_ITERS > 0u) {
      for (var it = 0u; it < PF_ITERS; it++) {
        let c = lane + it * TPR;
        if (c < tileLen / 32u) { addChunk(c, t0 / 32u + c, row0, it, &accLo, &accHi); }
      }
    } else {
      for (var c = lane; c < tileLen / 32u; c += TPR) { addChunk(c, t0 / 32u + c, row0, 0u, &accLo, &accHi); }
    }
    workgroupBarrier();
  }

  finishRows(wgRow0, lid, sgSize, sgLane, accLo, accHi, sumSq);
}
