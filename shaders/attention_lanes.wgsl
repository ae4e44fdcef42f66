// Causal attention over the static KV cache, "lanes" kernel (AttentionTuning.kernel 'lanes'):
// the same contract, bindings, split-K partials and precision rules as attention.wgsl (read its
// header), with the work of a key tile spread over lanes instead of serialised per thread.
//
// Why: in attention.wgsl each thread scores whole keys (one 96-dim row each) and then owns one or
// two head dims for P·V, looping over the tile's keys with one scalar cache load per key. A decode
// split of 64 keys is thus 8–16 dependent rounds of loads per thread, on 64 threads: the likely
// reason split-K decode attention read K and V at about a sixth of the copy bandwidth on an H200
// (docs/benchmarks.md).
// Here, per tile of KT keys:
//   scores  LPK lanes per key, each lane reading every LPK-th KV4 of the key's row (adjacent lanes,
//           adjacent 8- or 16-byte words: whole sectors), QK_PASSES passes of WG / LPK keys, then
//           one workgroup-memory vec4 of the LPK partials per key;
//   softmax every thread finds the tile max by reading the KT scores (broadcast reads, no tree of
//           barriers); thread k < KT turns its key's score into p and keeps its share of the sum;
//   P·V     thread (d4, kq) = (lid % D4, lid / D4) for lid < KQ · D4 owns the vec4 of dims d4 for
//           keys kq, kq + KQ, …: PV_ITERS independent KV4 loads (a constant trip count), each
//           key's row read whole by D4 adjacent lanes; the KQ partial accumulators are summed once,
//           at the end.
// Requires HEAD_DIM % 4 == 0 and HEAD_DIM / 4 ≤ WG. KQ = floor(WG / D4), PV_ITERS = ceil(KT / KQ)
// and QK_PASSES = KT · LPK / WG are computed by attention.ts and passed as overrides.
//
// Bindings: as attention.wgsl, except that binding 4 (vCache) is read as KV4.

override WG: u32 = 128u;
override HEAD_DIM: u32 = 96u;
override SPLIT: bool = false;
override KEYS_PER_SPLIT: u32 = 64u;
override MAX_SPLITS: u32 = 64u;
override KQ: u32 = 5u;         // key groups of the P·V phase: WG / (HEAD_DIM / 4)
override PV_ITERS: u32 = 13u;  // keys per P·V thread per tile: ceil(KT / KQ)
override QK_PASSES: u32 = 2u;  // score passes per tile: KT · LPK / WG
const LPK: u32 = 4u;           // lanes per key in the score phase (one vec4 of partial sums per key)
const KT: u32 = 64u;           // keys per tile

// Uniforms, the other bindings, `qs`, `workOf` and `stageQ`: attention_common.wgsl.
@group(0) @binding(4) var<storage, read> vCache: array<KV4>;

var<workgroup> partSums: array<vec4<f32>, KT>; // [key slot][lane part]
var<workgroup> ps: array<f32, KT>;             // the tile's scores, then its p (0 past the end)
var<workgroup> accs: array<vec4<f32>, WG>;     // the P·V accumulators, summed at the end
var<workgroup> ls: array<f32, KT>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  // z = 1 only in a decode dispatch set up with warmNext (attention.ts; matmul_nbits_warm_next.wgsl;
  // WARM is false, and this dead code, in every other pipeline).
  if (WARM && wid.z != 0u) { warmRun(wid.y * nwg.x + wid.x, lid, WG); return; }
  let D4 = HEAD_DIM / 4u;
  let w = workOf(wid, nwg);
  if (!w.inGrid) { return; }
  stageQ(w, lid);
  workgroupBarrier();

  let cacheBase = w.g * params.maxT;
  let part = lid % LPK;
  let keySlot = lid / LPK;
  let d4 = lid % D4;
  let kq = lid / D4;
  var m = NEG_BIG;              // running max, identical in every invocation
  var l = 0.0;                  // thread k < KT: its key slot's share of the running sum
  var acc = vec4<f32>(0.0);     // thread (d4, kq): dims 4·d4 .. 4·d4+3 over keys kq, kq + KQ, …
  for (var start = w.kBegin; start < w.kEnd; start += KT) {
    let base = start % params.maxT; // the tile's first row (keyRow)
    let last = w.kEnd - 1u - start; // the tile's keys are start + [0, last]
    // Scores: LPK lanes per key; keys past kEnd read key kEnd − 1's row (valid) and are masked below.
    for (var qp = 0u; qp < QK_PASSES; qp++) {
      let slot = qp * (WG / LPK) + keySlot;
      let kb = (cacheBase + keyRow(base, min(slot, last))) * D4;
      var dot4 = vec4<f32>(0.0);
      for (var i = part; i < D4; i += LPK) { dot4 += qs[i] * kv4(kCache[kb + i]); }
      partSums[slot][part] = dot4.x + dot4.y + dot4.z + dot4.w;
    }
    workgroupBarrier();
    if (lid < KT) {
      var s = NEG_BIG;
      if (start + lid < w.kEnd) {
        let parts = partSums[lid];
        s = (parts.x + parts.y) + (parts.z + parts.w);
      }
      ps[lid] = s;
    }
    workgroupBarrier();
    var tileMax = NEG_BIG;
    for (var k = 0u; k < KT; k++) { tileMax = max(tileMax, ps[k]); }
    let mNew = max(m, tileMax);
    let alpha = exp(m - mNew);
    workgroupBarrier(); // every thread has read the scores before they become p
    if (lid < KT) {
      var p = 0.0;
      if (start + lid < w.kEnd) { p = exp(ps[lid] - mNew); }
      ps[lid] = p;
      l = l * alpha + p;
    }
    workgroupBarrier();
    acc *= alpha;
    if (kq < KQ) {
      for (var it = 0u; it < PV_ITERS; it++) {
        let slot = kq + it * KQ;
        if (slot < KT) {
          acc += ps[slot] * kv4(vCache[(cacheBase + keyRow(base, min(slot, last))) * D4 + d4]);
        }
      }
    }
    m = mNew;
    workgroupBarrier(); // the next tile overwrites partSums and ps
  }

  accs[lid] = acc;
  if (lid < KT) { ls[lid] = l; }
  workgroupBarrier();
  if (lid < D4) {
    var a = vec4<f32>(0.0);
    for (var j = 0u; j < KQ; j++) { a += accs[j * D4 + lid]; }
    var total = 0.0;
    for (var k = 0u; k < KT; k++) { total += ls[k]; }
    if (SPLIT) {
      let pb = (w.h * MAX_SPLITS + w.split) * (HEAD_DIM + 2u);
      if (lid == 0u) {
        out[pb] = m;
        out[pb + 1u] = total;
      }
      for (var c = 0u; c < 4u; c++) { out[pb + 2u + 4u * lid + c] = a[c]; }
    } else {
      let ob = (w.t * params.heads + w.h) * HEAD_DIM + 4u * lid;
      let inv = 1.0 / total;
      for (var c = 0u; c < 4u; c++) { out[ob + c] = a[c] * inv; }
    }
  }
}
