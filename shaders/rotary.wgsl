// Rotary position embedding, non-interleaved ("rotate half"), in place: com.microsoft
// RotaryEmbedding with interleaved=0 and GroupQueryAttention's do_rotary.
//
// Bindings:
//   0 params  uniform { heads, headDim, rotaryDim, rowStride, offset, cacheLen }
//   1 step    uniform Step (seqLen, pastLen, totalLen, flags)
//   2 x       storage read_write f32, rows of `rowStride` elements; the tensor [seqLen, heads, headDim]
//             starts at element `offset` of each row (q, k, or q and k together inside a packed qkv row)
//   3 cosC    storage read, [cacheLen, rotaryDim/2]: f32 values, or raw fp16 bits packed two per u32 when F16
//   4 sinC    storage read, same layout as cosC
//
// Contract: for token t (position p = pastLen + t), head h and i < rotaryDim/2, with j = i + rotaryDim/2:
//   x[t, h, i] = x1 * cos[p, i] - x2 * sin[p, i];  x[t, h, j] = x2 * cos[p, i] + x1 * sin[p, i]
//   where x1, x2 are the old x[t, h, i], x[t, h, j]. Dimensions >= rotaryDim are left unchanged.
// One invocation per (t, h, i); the linear index runs over a 2-D grid of workgroups.

override WG: u32 = 64u;
override F16: bool = false;

struct Params {
  heads: u32,
  headDim: u32,
  rotaryDim: u32,
  rowStride: u32,
  offset: u32,
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
@group(0) @binding(2) var<storage, read_write> x: array<f32>;
@group(0) @binding(3) var<storage, read> cosC: array<u32>;
@group(0) @binding(4) var<storage, read> sinC: array<u32>;

fn cacheAt(useSin: bool, i: u32) -> f32 {
  if (F16) {
    let word = select(cosC[i >> 1u], sinC[i >> 1u], useSin);
    return unpack2x16float(word)[i & 1u];
  }
  return bitcast<f32>(select(cosC[i], sinC[i], useSin));
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let half = params.rotaryDim / 2u;
  let idx = (wid.y * nwg.x + wid.x) * WG + lid;
  let perToken = params.heads * half;
  if (idx >= step.seqLen * perToken) { return; }
  let t = idx / perToken;
  let rem = idx % perToken;
  let h = rem / half;
  let i = rem % half;
  let pos = min(step.pastLen + t, params.cacheLen - 1u);
  let c = cacheAt(false, pos * half + i);
  let s = cacheAt(true, pos * half + i);
  let base = t * params.rowStride + params.offset + h * params.headDim;
  let x1 = x[base + i];
  let x2 = x[base + i + half];
  x[base + i] = x1 * c - x2 * s;
  x[base + i + half] = x2 * c + x1 * s;
}
