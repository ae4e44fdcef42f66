// Causal attention over the static KV cache with a streaming (online) softmax; decode and prefill.
// GroupQueryAttention / MultiHeadAttention semantics with a causal mask.
// attention.ts appends attention_common.wgsl (the uniforms, bindings 0–3 and 5, `qs`, `workOf`,
// `stageQ`); the 'lanes' kernel (attention_lanes.wgsl) meets the same contract.
//
// Bindings:
//   0 params   uniform { heads, kvHeads, rowStride, qOffset, maxT, scale: f32, window }
//   1 step     uniform Step (seqLen, pastLen, totalLen, flags)
//   2 q        storage read f32, rows of `rowStride`; q [seqLen, heads, HEAD_DIM] starts at `qOffset`
//   3 kCache   storage read [kvHeads, maxT, HEAD_DIM] cache elements, position p in row p mod maxT
//              (a ring; attention_common.wgsl's keyRow), read as KV4: HEAD_DIM a multiple of 4
//   4 vCache   storage read, the same layout, read element by element as KVW words
//   5 out      storage read_write f32 [seqLen, heads * HEAD_DIM]           (SPLIT = false)
//              or partials [heads, MAX_SPLITS, 2 + HEAD_DIM] = (m, l, acc) (SPLIT = true, seqLen = 1)
//
// Contract: query t sits at position pastLen + t and attends keys 0..pastLen+t, or with a window
//   W > 0 (GroupQueryAttention's local_window_size) its last W of them, itself included; head h
//   reads kv head g = h / (heads / kvHeads). out[t, h, :] = softmax_j(scale · q·k_j) · v_j.
// One workgroup per (t, h) (SPLIT = false), or per (h, split) for decode (SPLIT = true): split s
//   covers keys [first + s·chunk, first + (s+1)·chunk) of the `seen` keys [first, totalLen) the
//   query attends, with numSplits = min(MAX_SPLITS, ceil(seen / KEYS_PER_SPLIT)),
//   chunk = ceil(seen / numSplits), and writes its unnormalised (max, sum, acc) for
//   attention_combine.wgsl, which derives numSplits by the same formula.
// Keys are processed in tiles of WG·KPT (KPT scores per invocation); workgroup memory is
// O(WG + HEAD_DIM), never O(maxT), so any context length works.
//
// Precision: KV4, KVW, kv4 and kvAt (the cache's storage: f32, or f16 packed two per u32) are
// defined by the prelude that src/engine/kernels/precision-wgsl.ts prepends. Cache values are
// converted to f32 as they are loaded; q, the scores, the softmax state (m, l), the output
// accumulators and the split-K partials are f32 on both paths, so f16 storage rounds each cached
// value once and nothing else.

override WG: u32 = 64u;          // power of two: tree-reduction width
override KPT: u32 = 4u;          // keys per invocation per tile, <= MAX_KPT
override TILE: u32 = WG * KPT;    // keys per tile
const MAX_KPT: u32 = 8u;
const PV_GROUP: u32 = 8u;        // keys per unrolled group of the P·V loop
override HEAD_DIM: u32 = 96u;
override SPLIT: bool = false;
override KEYS_PER_SPLIT: u32 = 64u;
override MAX_SPLITS: u32 = 64u;

// Uniforms, the other bindings, `qs`, `workOf` and `stageQ`: attention_common.wgsl.
@group(0) @binding(4) var<storage, read> vCache: array<KVW>;

var<workgroup> acc: array<f32, HEAD_DIM>;
var<workgroup> ps: array<f32, TILE>;
var<workgroup> red: array<f32, WG>;

fn reduceMax(lid: u32, v: f32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s /= 2u) {
    if (lid < s) { red[lid] = max(red[lid], red[lid + s]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

fn reduceSum(lid: u32, v: f32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s /= 2u) {
    if (lid < s) { red[lid] += red[lid + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  // z = 1 only in a decode dispatch set up with warmNext (attention.ts; matmul_nbits_warm_next.wgsl;
  // WARM is false, and this dead code, in every other pipeline).
  if (WARM && wid.z != 0u) { warmRun(wid.y * nwg.x + wid.x, lid, WG); return; }
  let w = workOf(wid, nwg);
  if (!w.inGrid) { return; }
  stageQ(w, lid);
  for (var d = lid; d < HEAD_DIM; d += WG) { acc[d] = 0.0; }
  workgroupBarrier();

  let cacheBase = w.g * params.maxT;
  var m = NEG_BIG;   // running max, identical in every invocation
  var l = 0.0;       // this invocation's share of the running sum, reduced once at the end
  for (var start = w.kBegin; start < w.kEnd; start += TILE) {
    let base = start % params.maxT; // the tile's first row (keyRow)
    var s: array<f32, MAX_KPT>;
    var tileMax = NEG_BIG;
    for (var r = 0u; r < KPT; r++) {
      let j = start + r * WG + lid;
      s[r] = NEG_BIG;
      if (j < w.kEnd) {
        let kb = (cacheBase + keyRow(base, r * WG + lid)) * (HEAD_DIM / 4u);
        var dot4 = vec4<f32>(0.0);
        for (var d = 0u; d < HEAD_DIM / 4u; d++) { dot4 += qs[d] * kv4(kCache[kb + d]); }
        let dot = dot4.x + dot4.y + dot4.z + dot4.w;
        s[r] = dot;
        tileMax = max(tileMax, dot);
      }
    }
    let mNew = max(m, reduceMax(lid, tileMax));
    let alpha = exp(m - mNew);
    l *= alpha;
    for (var r = 0u; r < KPT; r++) {
      let jl = r * WG + lid;
      var p = 0.0;
      if (start + jl < w.kEnd) { p = exp(s[r] - mNew); }
      ps[jl] = p;
      l += p;
    }
    workgroupBarrier();
    // P·V in groups of PV_GROUP keys: the inner loop's trip count is a constant, so it unrolls
    // and its PV_GROUP loads issue together instead of one dependent load per key (in decode one
    // split is 64 keys, which was 64 serial loads per head dim). Keys past n load key n − 1's
    // row (always valid) and meet p = 0 (ps is zeroed past n above), so they add exactly 0.
    let n = min(TILE, w.kEnd - start);
    for (var d = lid; d < HEAD_DIM; d += WG) {
      var a = acc[d] * alpha;
      for (var j0 = 0u; j0 < n; j0 += PV_GROUP) {
        for (var u = 0u; u < PV_GROUP; u++) {
          let jj = j0 + u;
          let e = (cacheBase + keyRow(base, min(jj, n - 1u))) * HEAD_DIM + d;
          a += ps[min(jj, TILE - 1u)] * kvAt(vCache[e / KV_PER_WORD], e);
        }
      }
      acc[d] = a;
    }
    m = mNew;
    workgroupBarrier();
  }
  l = reduceSum(lid, l);

  if (SPLIT) {
    let pb = (w.h * MAX_SPLITS + w.split) * (HEAD_DIM + 2u);
    if (lid == 0u) {
      out[pb] = m;
      out[pb + 1u] = l;
    }
    for (var d = lid; d < HEAD_DIM; d += WG) { out[pb + 2u + d] = acc[d]; }
  } else {
    let ob = (w.t * params.heads + w.h) * HEAD_DIM;
    let inv = 1.0 / l;
    for (var d = lid; d < HEAD_DIM; d += WG) { out[ob + d] = acc[d] * inv; }
  }
}
