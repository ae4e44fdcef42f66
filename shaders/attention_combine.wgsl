// Split-K (flash-decoding) combine for attention.wgsl's SPLIT specialisation (decode, seqLen = 1).
//
// Bindings:
//   0 params    uniform { heads, kvHeads, rowStride, qOffset, maxT, scale: f32, window } (`heads` and
//               `window` are read)
//   1 step      uniform Step (seqLen, pastLen, totalLen, flags)
//   2 partials  storage read f32 [heads, MAX_SPLITS, 2 + HEAD_DIM] = (m, l, acc[HEAD_DIM]) per split
//   3 out       storage read_write f32 [1, heads * HEAD_DIM]
//
// Contract: with seen = totalLen, or min(totalLen, window) with a window, numSplits =
//   min(MAX_SPLITS, ceil(seen / KEYS_PER_SPLIT)) (same formula as the split kernel) and
//   M = max_s m_s: out[h, d] = Σ_s e^(m_s − M) acc_s[d] / Σ_s e^(m_s − M) l_s.
// One workgroup per head; empty splits carry (m = -3e38, l = 0, acc = 0) and drop out.

override WG: u32 = 64u;
override HEAD_DIM: u32 = 96u;
override KEYS_PER_SPLIT: u32 = 64u;
override MAX_SPLITS: u32 = 64u;

struct Params {
  heads: u32,
  kvHeads: u32,
  rowStride: u32,
  qOffset: u32,
  maxT: u32,
  scale: f32,
  window: u32,
}

// struct Step: shaders/step.wgsl, appended by the kernel's TypeScript.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> partials: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let h = wid.x;
  if (h >= params.heads) { return; }
  var seen = step.totalLen;
  if (params.window > 0u) { seen = min(seen, params.window); }
  let numSplits = min(MAX_SPLITS, (seen + KEYS_PER_SPLIT - 1u) / KEYS_PER_SPLIT);
  let rowLen = HEAD_DIM + 2u;
  let base = h * MAX_SPLITS * rowLen;
  var mMax = -3.0e38;
  for (var s = 0u; s < numSplits; s++) { mMax = max(mMax, partials[base + s * rowLen]); }
  var total = 0.0;
  for (var s = 0u; s < numSplits; s++) {
    let pb = base + s * rowLen;
    total += exp(partials[pb] - mMax) * partials[pb + 1u];
  }
  let inv = 1.0 / total;
  for (var d = lid; d < HEAD_DIM; d += WG) {
    var a = 0.0;
    for (var s = 0u; s < numSplits; s++) {
      let pb = base + s * rowLen;
      a += exp(partials[pb] - mMax) * partials[pb + 2u + d];
    }
    out[h * HEAD_DIM + d] = a * inv;
  }
}
