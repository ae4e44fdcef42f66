// KV-cache append: copy this step's k and v into the static caches, optionally rotating k on the
// way (ROTARY: the rotary of k fused into the append; q is then rotated by rotary.wgsl alone).
//
// Bindings:
//   0 params  uniform { kvHeads, headDim, rowStride, kOffset, vOffset, maxT, rotaryDim, cacheLen }
//   1 step    uniform Step (seqLen, pastLen, totalLen, flags)
//   2 kSrc    storage read f32, rows of `rowStride`; k [seqLen, kvHeads, headDim] starts at `kOffset`
//   3 vSrc    storage read f32, rows of `rowStride`; v [seqLen, kvHeads, headDim] starts at `vOffset`
//             (kSrc and vSrc may be the same packed qkv buffer)
//   4 kCache  storage read_write f32 [kvHeads, maxT, headDim]
//   5 vCache  storage read_write f32 [kvHeads, maxT, headDim]
//   6 cosC    storage read [cacheLen, rotaryDim/2] f32, or fp16 bits two per u32 when F16 (ROTARY only;
//   7 sinC    same layout                                a 4-byte placeholder otherwise)
//
// Contract: kCache[g, pastLen + t, d] = k[t, g, d]; vCache[g, pastLen + t, d] = v[t, g, d]
// for t < seqLen, g < kvHeads, d < headDim. Positions >= maxT are dropped (the caller checks capacity).
// With ROTARY, k is first rotated exactly as rotary.wgsl does (non-interleaved, position pastLen + t).
// One invocation per (t, g, d) over a 2-D grid of workgroups.

override WG: u32 = 64u;
override ROTARY: bool = false;
override F16: bool = false;

struct Params {
  kvHeads: u32,
  headDim: u32,
  rowStride: u32,
  kOffset: u32,
  vOffset: u32,
  maxT: u32,
  rotaryDim: u32,
  cacheLen: u32,
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
@group(0) @binding(6) var<storage, read> cosC: array<u32>;
@group(0) @binding(7) var<storage, read> sinC: array<u32>;

fn cacheAt(useSin: bool, i: u32) -> f32 {
  if (F16) {
    let word = select(cosC[i >> 1u], sinC[i >> 1u], useSin);
    return unpack2x16float(word)[i & 1u];
  }
  return bitcast<f32>(select(cosC[i], sinC[i], useSin));
}

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
  var kv = kSrc[src + params.kOffset];
  if (ROTARY && d < params.rotaryDim) {
    let half = params.rotaryDim / 2u;
    let i = d % half;
    let at = min(pos, params.cacheLen - 1u) * half + i;
    let c = cacheAt(false, at);
    let s = cacheAt(true, at);
    if (d < half) {
      kv = kv * c - kSrc[src + params.kOffset + half] * s;
    } else {
      kv = kv * c + kSrc[src + params.kOffset - half] * s;
    }
  }
  kCache[dst] = kv;
  vCache[dst] = vSrc[src + params.vOffset];
}
