// RMSNorm with an optional fused residual add (ONNX SimplifiedLayerNormalization and
// com.microsoft SkipSimplifiedLayerNormalization).
//
// Bindings:
//   0 params   uniform { rows: u32, n: u32, eps: f32 }
//   1 hidden   storage read_write f32 (rows, n)   the residual stream
//   2 delta    storage read       f32 (rows, n)   added to `hidden` first when ADD_DELTA
//   3 weight   storage read       f32 (n,)
//   4 out      storage read_write f32 (rows, n)
//
// Contract: if ADD_DELTA { hidden += delta }; out[r, i] = hidden[r, i] / sqrt(mean_i(hidden[r]^2) + eps) * weight[i]
// One workgroup per row; WG threads stride over the row and reduce in workgroup memory.

override WG: u32 = 256u;
override ADD_DELTA: bool = false;

struct Params {
  rows: u32,
  n: u32,
  eps: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> hidden: array<f32>;
@group(0) @binding(2) var<storage, read> delta: array<f32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x;
  if (row >= params.rows) { return; }
  let base = row * params.n;
  var sumSq = 0.0;
  for (var i = lid; i < params.n; i += WG) {
    var v = hidden[base + i];
    if (ADD_DELTA) {
      v += delta[base + i];
      hidden[base + i] = v;
    }
    sumSq += v * v;
  }
  partial[lid] = sumSq;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) { partial[lid] += partial[lid + stride]; }
    workgroupBarrier();
  }
  let scale = inverseSqrt(partial[0] / f32(params.n) + params.eps);
  for (var i = lid; i < params.n; i += WG) {
    out[base + i] = hidden[base + i] * scale * weight[i];
  }
}
