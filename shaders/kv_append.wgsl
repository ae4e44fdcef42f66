// KV-cache append: copy this step's k and v into the static caches.
//
// Bindings:
//   0 params  uniform { kvHeads, headDim, rowStride, kOffset, vOffset, maxT }
//   1 step    uniform Step (seqLen, pastLen, totalLen, flags)
//   2 kSrc    storage read f32, rows of `rowStride`; k [seqLen, kvHeads, headDim] starts at `kOffset`
//   3 vSrc    storage read f32, rows of `rowStride`; v [seqLen, kvHeads, headDim] starts at `vOffset`
//             (kSrc and vSrc may be the same packed qkv buffer)
//   4 kCache  storage read_write f32 [kvHeads, maxT, headDim]
//   5 vCache  storage read_write f32 [kvHeads, maxT, headDim]
//
// Contract: kCache[g, pastLen + t, d] = k[t, g, d]; vCache[g, pastLen + t, d] = v[t, g, d]
// for t < seqLen, g < kvHeads, d < headDim. Positions >= maxT are dropped (the caller checks capacity).
// One invocation per (t, g, d) over a 2-D grid of workgroups.

override WG: u32 = 64u;

struct Params {
  kvHeads: u32,
  headDim: u32,
  rowStride: u32,
  kOffset: u32,
  vOffset: u32,
  maxT: u32,
}

struct Step {
  seqLen: u32,
  pastLen: u32,
  totalLen: u32,
  flags: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> kSrc: array<f32>;
@group(0) @binding(3) var<storage, read> vSrc: array<f32>;
@group(0) @binding(4) var<storage, read_write> kCache: array<f32>;
@group(0) @binding(5) var<storage, read_write> vCache: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.y * nwg.x + wid.x) * WG + lid;
  let perToken = params.kvHeads * params.headDim;
  if (idx >= step.seqLen * perToken) { return; }
  let t = idx / perToken;
  let rem = idx % perToken;
  let g = rem / params.headDim;
  let d = rem % params.headDim;
  let pos = step.pastLen + t;
  if (pos >= params.maxT) { return; }
  let src = t * params.rowStride + rem;
  let dst = (g * params.maxT + pos) * params.headDim + d;
  kCache[dst] = kSrc[src + params.kOffset];
  vCache[dst] = vSrc[src + params.vOffset];
}
