// Causal attention for prefill (seqLen > 1), "blocked" (AttentionTuning.prefill 'blocked'): one
// workgroup per (block of QB queries, head) instead of one per (query, head), so every K and V row
// a block needs is fetched once for QB queries (through the cache) rather than once per query.
// Same contract, bindings and precision rules as attention.wgsl (read its header; attention.ts
// appends attention_common.wgsl); it never runs split-K (decode keeps its kernel).
//
// Work split: WG = QB · LANES threads; thread (row, lane) = (lid / LANES, lid % LANES) serves
// query row `row` of the block. Per tile of KT keys:
//   scores  the thread scores keys lane, lane + LANES, … (KPL of them) for its row, whole 96-dim
//           dot products against its row of q in workgroup memory;
//   softmax each thread reads its row's KT scores for the tile max (broadcast reads), then turns
//           its own scores into p and keeps its share of the row's sum;
//   P·V     the thread owns dims 4·(lane + LANES·i) .. +3 (i < DL) of its row's output and walks
//           the tile's KT keys, one KV4 load of V per key and owned vec4.
// With a window, the block's tiles start at its first row's first key and each row masks the keys
// outside its own [kLow, kLimit). Rows past the block's last query (a partial last block) compute
// the last query's values and write nothing. Requires HEAD_DIM % 4 == 0 and
// HEAD_DIM / 4 ≤ LANES · MAX_DL (HEAD_DIM ≤ 128); DL = ceil(HEAD_DIM / 4 / LANES) is set by
// attention.ts.

override WG: u32 = 128u;           // QB · LANES
override HEAD_DIM: u32 = 96u;
override SPLIT: bool = false;       // never true here (attention_common.wgsl's workOf reads it)
override KEYS_PER_SPLIT: u32 = 64u; // unused, as SPLIT
override MAX_SPLITS: u32 = 64u;     // unused, as SPLIT
override DL: u32 = 3u;              // vec4s of the head per lane, ≤ MAX_DL
const LANES: u32 = 8u;              // threads per query row
const QB: u32 = 16u;                // query rows per workgroup: WG / LANES
const KPL: u32 = 4u;                // keys per lane per tile
const KT: u32 = 32u;                // keys per tile: LANES · KPL
const MAX_DL: u32 = 4u;

// Uniforms, the other bindings and NEG_BIG: attention_common.wgsl.
@group(0) @binding(4) var<storage, read> vCache: array<KV4>;

var<workgroup> qRows: array<vec4<f32>, QB * (HEAD_DIM / 4u)>; // [row][d4], q · scale
var<workgroup> sp: array<f32, QB * KT>;                       // [row][key]: scores, then p
var<workgroup> lSums: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let D4 = HEAD_DIM / 4u;
  let blocks = (step.seqLen + QB - 1u) / QB;
  let wgIndex = wid.y * nwg.x + wid.x;
  if (wgIndex >= blocks * params.heads) { return; }
  let h = wgIndex % params.heads;
  let block = wgIndex / params.heads;
  let g = h / (params.heads / params.kvHeads);
  let row = lid / LANES;
  let lane = lid % LANES;
  let t = block * QB + row;
  let tLast = min(block * QB + QB, step.seqLen) - 1u;

  for (var i = lid; i < QB * D4; i += WG) {
    let tq = min(block * QB + i / D4, tLast);
    let e = tq * params.rowStride + params.qOffset + h * HEAD_DIM + 4u * (i % D4);
    qRows[i] = vec4<f32>(q[e], q[e + 1u], q[e + 2u], q[e + 3u]) * params.scale;
  }
  workgroupBarrier();

  let kLimit = step.pastLen + min(t, tLast) + 1u; // this row's keys: [kLow, kLimit)
  let kLow = firstKey(kLimit);
  let kEnd = step.pastLen + tLast + 1u;           // the block's keys: [kFirst, kEnd)
  let kFirst = firstKey(step.pastLen + block * QB + 1u);
  let cacheBase = g * params.maxT;
  let qRow = row * D4;
  let spRow = row * KT;
  var m = NEG_BIG;            // the row's running max, identical in its LANES threads
  var l = 0.0;                // this thread's share of the row's running sum
  var acc: array<vec4<f32>, MAX_DL>;
  for (var start = kFirst; start < kEnd; start += KT) {
    let base = start % params.maxT; // the tile's first row (keyRow)
    for (var r = 0u; r < KPL; r++) {
      let j = start + lane + LANES * r;
      var s = NEG_BIG;
      if (j >= kLow && j < kLimit) {
        let kb = (cacheBase + keyRow(base, lane + LANES * r)) * D4;
        var dot4 = vec4<f32>(0.0);
        for (var d = 0u; d < D4; d++) { dot4 += qRows[qRow + d] * kv4(kCache[kb + d]); }
        s = dot4.x + dot4.y + dot4.z + dot4.w;
      }
      sp[spRow + lane + LANES * r] = s;
    }
    workgroupBarrier();
    var tileMax = NEG_BIG;
    for (var k = 0u; k < KT; k++) { tileMax = max(tileMax, sp[spRow + k]); }
    let mNew = max(m, tileMax);
    let alpha = exp(m - mNew);
    workgroupBarrier(); // the row's scores are read before they become p
    l *= alpha;
    for (var r = 0u; r < KPL; r++) {
      let i = spRow + lane + LANES * r;
      var p = 0.0;
      let j = start + lane + LANES * r;
      if (j >= kLow && j < kLimit) { p = exp(sp[i] - mNew); }
      sp[i] = p;
      l += p;
    }
    workgroupBarrier();
    // Keys past the block's end load key kEnd − 1's row (valid) and meet p = 0.
    for (var i = 0u; i < DL; i++) { acc[i] *= alpha; }
    for (var k = 0u; k < KT; k++) {
      let p = sp[spRow + k];
      let vb = (cacheBase + keyRow(base, min(k, kEnd - 1u - start))) * D4;
      for (var i = 0u; i < DL; i++) {
        let d = lane + LANES * i;
        if (d < D4) { acc[i] += p * kv4(vCache[vb + d]); }
      }
    }
    m = mNew;
    workgroupBarrier(); // the next tile overwrites sp
  }

  lSums[lid] = l;
  workgroupBarrier();
  if (t <= tLast) {
    var total = 0.0;
    for (var j = 0u; j < LANES; j++) { total += lSums[row * LANES + j]; }
    let inv = 1.0 / total;
    let ob = (t * params.heads + h) * HEAD_DIM;
    for (var i = 0u; i < DL; i++) {
      let d = lane + LANES * i;
      if (d < D4) {
        let v = acc[i] * inv;
        for (var c = 0u; c < 4u; c++) { out[ob + 4u * d + c] = v[c]; }
      }
    }
  }
}
