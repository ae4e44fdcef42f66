// KV-cache append: copy this step's k and v into the static caches, optionally rotating k on the
// way (ROTARY: the rotary of k fused into the append), and optionally rotating q in place in the
// same dispatch (entry points mainSeparateQ / mainPackedQ; q then needs no dispatch of its own).
//
// Bindings (an entry point's auto layout holds only the ones it uses):
//   0 params  uniform { kvHeads, headDim, rowStride, kOffset, vOffset, maxT, rotaryDim, cacheLen,
//                       qHeads, qRowStride, qOffset, _pad }
//   1 step    uniform Step (seqLen, pastLen, totalLen, flags)
//   2 kSrc    storage read f32, rows of `rowStride`; k [seqLen, kvHeads, headDim] starts at `kOffset`
//   3 vSrc    storage read f32, rows of `rowStride`; v [seqLen, kvHeads, headDim] starts at `vOffset`
//             (kSrc and vSrc may be the same packed qkv buffer)          [main, mainSeparateQ]
//   4 kCache  storage read_write [kvHeads, maxT, headDim] cache elements, as KVW words
//   5 vCache  storage read_write, the same layout
//   6 rotaryTable  storage read: the model's rotary table of cacheLen rows (rotary_table.wgsl,
//             appended after this file; ROTARY only, a 4-byte placeholder otherwise)
//   8 qSrc    storage read_write f32, rows of `qRowStride`; q [seqLen, qHeads, headDim] at `qOffset`,
//             a buffer other than kSrc/vSrc                                    [mainSeparateQ]
//   9 qkv     storage read_write f32, one buffer holding q, k and v (rows of `rowStride`, q rows of
//             `qRowStride`): WebGPU forbids binding one buffer read and read_write in a dispatch, so
//             the packed case reads k and v through this binding                [mainPackedQ]
//
// Contract: kCache[g, (pastLen + t) mod maxT, d] = k[t, g, d]; vCache[g, (pastLen + t) mod maxT, d]
// = v[t, g, d] for t < seqLen, g < kvHeads, d < headDim: the cache is a ring of maxT rows, as
// attention reads it (attention_common.wgsl); an unwrapped cache (every position < maxT, which
// model.ts ensures unless it keeps a windowed model's ring) is the plain layout.
// With ROTARY, k is first rotated (non-interleaved, "rotate half": for i < rotaryDim/2 and
// j = i + rotaryDim/2, x[i] = x1·cos − x2·sin and x[j] = x2·cos + x1·sin at position pastLen + t,
// table row clamped to cacheLen - 1; dims ≥ rotaryDim pass through); k in the source rows stays
// unrotated. mainSeparateQ / mainPackedQ (ROTARY required) also rotate q in place the same way,
// with the same positions and table.
// q's region must not overlap k's or v's (they are read while q is written).
// Invocations: main: one per (t, g, storage word of KV_PER_WORD dims d); the q entry points: the
// same, followed by one per (t, h, i < rotaryDim/2) of q. The linear index runs over a 2-D grid of
// workgroups. headDim must be even (the f16 path's words never straddle two heads).
//
// Precision: KVW, KV_PER_WORD and kvWord (the cache's storage: f32, or f16 packed two per u32) are
// defined by the prelude that src/engine/kernels/precision-wgsl.ts prepends. The rotation is
// computed in f32 and the result is rounded once, on store; each invocation writes whole words, so
// no two invocations share one. q (rotated in place) and the sources stay f32 on both paths.

override WG: u32 = 64u;
override ROTARY: bool = false;

struct Params {
  kvHeads: u32,
  headDim: u32,
  rowStride: u32,
  kOffset: u32,
  vOffset: u32,
  maxT: u32,
  rotaryDim: u32,
  cacheLen: u32,
  qHeads: u32,
  qRowStride: u32,
  qOffset: u32,
  _pad: u32,
}

// struct Step: shaders/step.wgsl, appended by the kernel's TypeScript.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> kSrc: array<f32>;
@group(0) @binding(3) var<storage, read> vSrc: array<f32>;
@group(0) @binding(4) var<storage, read_write> kCache: array<KVW>;
@group(0) @binding(5) var<storage, read_write> vCache: array<KVW>;
@group(0) @binding(6) var<storage, read> rotaryTable: array<u32>;
@group(0) @binding(8) var<storage, read_write> qSrc: array<f32>;
@group(0) @binding(9) var<storage, read_write> qkv: array<f32>;

/** (cos, sin) for position `pos` and frequency `i` < rotaryDim/2. */
fn rot(pos: u32, i: u32) -> vec2<f32> {
  return rotaryCosSin(min(pos, params.cacheLen - 1u) * (params.rotaryDim / 2u) + i);
}

/** One k/v element: where it comes from (relative to a row offset) and where it goes. */
struct KvItem {
  src: u32,    // t * rowStride + g * headDim + d (add kOffset / vOffset)
  partner: u32, // src of the element k[t, g, d] is rotated with (src itself when not rotated)
  dst: u32,
  d: u32,
  pos: u32,
}

fn kvItem(idx: u32) -> KvItem {
  let perToken = params.kvHeads * params.headDim;
  let t = idx / perToken;
  let rem = idx % perToken;
  let g = rem / params.headDim;
  let d = rem % params.headDim;
  let pos = step.pastLen + t;
  let src = t * params.rowStride + rem;
  let half = params.rotaryDim / 2u;
  var partner = src;
  if (ROTARY && d < params.rotaryDim) {
    partner = select(src - half, src + half, d < half);
  }
  return KvItem(src, partner, (g * params.maxT + pos % params.maxT) * params.headDim + d, d, pos);
}

/** k after the fused rotary: x is k[t, g, d], other is its rotate-half partner. */
fn kValue(it: KvItem, x: f32, other: f32) -> f32 {
  if (!ROTARY || it.d >= params.rotaryDim) { return x; }
  let half = params.rotaryDim / 2u;
  let cs = rot(it.pos, it.d % half);
  return select(x * cs.x + other * cs.y, x * cs.x - other * cs.y, it.d < half);
}

/** One rotate-half pair of q: element indices of x1, x2 (rows of qRowStride, at qOffset) and (cos, sin). */
struct QItem {
  a: u32,
  b: u32,
  cs: vec2<f32>,
}

fn qItem(j: u32) -> QItem {
  let half = params.rotaryDim / 2u;
  let perToken = params.qHeads * half;
  let t = j / perToken;
  let rem = j % perToken;
  let h = rem / half;
  let i = rem % half;
  let a = t * params.qRowStride + params.qOffset + h * params.headDim + i;
  return QItem(a, a + half, rot(step.pastLen + t, i));
}

// Element `e` of this step's k (rotated) and v, from kSrc / vSrc (kvPairPacked: from qkv).
fn kvPair(e: u32) -> vec2<f32> {
  let it = kvItem(e);
  return vec2<f32>(kValue(it, kSrc[it.src + params.kOffset], kSrc[it.partner + params.kOffset]), vSrc[it.src + params.vOffset]);
}

fn kvPairPacked(e: u32) -> vec2<f32> {
  let it = kvItem(e);
  return vec2<f32>(kValue(it, qkv[it.src + params.kOffset], qkv[it.partner + params.kOffset]), qkv[it.src + params.vOffset]);
}

fn writeWords(it: KvItem, first: vec2<f32>, second: vec2<f32>) {
  kCache[it.dst / KV_PER_WORD] = kvWord(first.x, second.x);
  vCache[it.dst / KV_PER_WORD] = kvWord(first.y, second.y);
}

// Storage word `w` of this step's k and v: elements w·KV_PER_WORD … (one head of one token),
// read from kSrc / vSrc, or from qkv (storeWordsPacked: an entry point's bindings are those its
// functions use, so mainPackedQ must not reach kSrc).
fn storeWords(w: u32) {
  let e = w * KV_PER_WORD;
  let it = kvItem(e);
  var second = vec2<f32>(0.0);
  if (KV_PER_WORD == 2u) { second = kvPair(e + 1u); }
  writeWords(it, kvPair(e), second);
}

fn storeWordsPacked(w: u32) {
  let e = w * KV_PER_WORD;
  let it = kvItem(e);
  var second = vec2<f32>(0.0);
  if (KV_PER_WORD == 2u) { second = kvPairPacked(e + 1u); }
  writeWords(it, kvPairPacked(e), second);
}

fn linearIndex(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.y * nwg.x + wid.x) * WG + lid;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let idx = linearIndex(wid, nwg, lid);
  if (idx >= step.seqLen * params.kvHeads * params.headDim / KV_PER_WORD) { return; }
  storeWords(idx);
}

@compute @workgroup_size(WG)
fn mainSeparateQ(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let idx = linearIndex(wid, nwg, lid);
  let kvCount = step.seqLen * params.kvHeads * params.headDim / KV_PER_WORD;
  if (idx < kvCount) {
    storeWords(idx);
    return;
  }
  let j = idx - kvCount;
  if (j >= step.seqLen * params.qHeads * (params.rotaryDim / 2u)) { return; }
  let q = qItem(j);
  let x1 = qSrc[q.a];
  let x2 = qSrc[q.b];
  qSrc[q.a] = x1 * q.cs.x - x2 * q.cs.y;
  qSrc[q.b] = x2 * q.cs.x + x1 * q.cs.y;
}

@compute @workgroup_size(WG)
fn mainPackedQ(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let idx = linearIndex(wid, nwg, lid);
  let kvCount = step.seqLen * params.kvHeads * params.headDim / KV_PER_WORD;
  if (idx < kvCount) {
    storeWordsPacked(idx);
    return;
  }
  let j = idx - kvCount;
  if (j >= step.seqLen * params.qHeads * (params.rotaryDim / 2u)) { return; }
  let q = qItem(j);
  let x1 = qkv[q.a];
  let x2 = qkv[q.b];
  qkv[q.a] = x1 * q.cs.x - x2 * q.cs.y;
  qkv[q.b] = x2 * q.cs.x + x1 * q.cs.y;
}
