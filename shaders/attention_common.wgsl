// What both attention kernels share (attention.ts appends this file to attention.wgsl or
// attention_lanes.wgsl, after the precision prelude): the uniforms, the bindings other than the
// V cache (whose element type each kernel picks), the staged q row, and which (query, head, key
// range) a workgroup owns. Each kernel declares the overrides WG, HEAD_DIM, SPLIT, KEYS_PER_SPLIT
// and MAX_SPLITS; the contract is attention.wgsl's header.

const NEG_BIG: f32 = -3.0e38;

struct Params {
  heads: u32,
  kvHeads: u32,
  rowStride: u32,
  qOffset: u32,
  maxT: u32,
  scale: f32,
  window: u32, // keys a query sees, itself included (GroupQueryAttention local_window_size); 0: all
}

// struct Step: shaders/step.wgsl, appended by the kernel's TypeScript.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> q: array<f32>;
@group(0) @binding(3) var<storage, read> kCache: array<KV4>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

var<workgroup> qs: array<vec4<f32>, HEAD_DIM / 4u>; // q · scale

// Position p of the cache lives in row p mod maxT. A cache that never wraps (every position below
// maxT) is the plain layout; model.ts keeps a windowed model's cache as a ring of window + maxPrefill
// rows, which every key a query attends fits in, the step's own keys included. So within a tile
// that starts at position `start`, key start + i (i below the keys the query attends, hence below
// maxT) is in row keyRow(start % maxT, i): one conditional subtraction per key, no division.
fn keyRow(base: u32, i: u32) -> u32 {
  let r = base + i;
  return select(r, r - params.maxT, r >= params.maxT);
}

// A query whose keys end (exclusive) at `end` sees keys [firstKey(end), end): all of them, or with
// a window W its last W.
fn firstKey(end: u32) -> u32 {
  if (params.window > 0u && end > params.window) { return end - params.window; }
  return 0u;
}

// A workgroup's share: query t of head h (kv head g), keys [kBegin, kEnd), split `split` of
// `numSplits` (1 unless SPLIT) of the keys the query sees. `inGrid` is false for the grid's spare
// workgroups.
struct Work {
  inGrid: bool,
  t: u32,
  h: u32,
  g: u32,
  split: u32,
  kBegin: u32,
  kEnd: u32,
}

fn workOf(wid: vec3<u32>, nwg: vec3<u32>) -> Work {
  var w: Work;
  // SPLIT runs for decode only (seqLen = 1): its one query sees `seen` keys, ending at totalLen.
  let seen = step.totalLen - firstKey(step.totalLen);
  var numSplits = 1u;
  if (SPLIT) { numSplits = min(MAX_SPLITS, (seen + KEYS_PER_SPLIT - 1u) / KEYS_PER_SPLIT); }
  let wgIndex = wid.y * nwg.x + wid.x;
  w.inGrid = wgIndex < step.seqLen * params.heads * numSplits;
  w.split = wgIndex % numSplits;
  w.h = (wgIndex / numSplits) % params.heads;
  w.t = wgIndex / (numSplits * params.heads);
  w.g = w.h / (params.heads / params.kvHeads);
  w.kEnd = step.pastLen + w.t + 1u;
  w.kBegin = firstKey(w.kEnd);
  if (SPLIT) {
    let chunk = (seen + numSplits - 1u) / numSplits;
    w.kBegin += w.split * chunk;
    w.kEnd = min(w.kEnd, w.kBegin + chunk);
  }
  return w;
}

// Stages q[t, h, :] · scale into `qs` (the caller's barrier publishes it).
fn stageQ(w: Work, lid: u32) {
  let qBase = w.t * params.rowStride + params.qOffset + w.h * HEAD_DIM;
  for (var d = lid; d < HEAD_DIM / 4u; d += WG) {
    let e = qBase + 4u * d;
    qs[d] = vec4<f32>(q[e], q[e + 1u], q[e + 2u], q[e + 3u]) * params.scale;
  }
}
