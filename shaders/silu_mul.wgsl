// SiLU·up: the gated MLP activation (Phi-3's Sigmoid·Mul·Mul after gate and up projections).
//
// Bindings:
//   0 params  uniform { intermediate, gateStride, gateOffset, upStride, upOffset }
//   1 step    uniform Step (seqLen, pastLen, totalLen, flags)
//   2 gate    storage read f32, rows of `gateStride`; gate [seqLen, intermediate] starts at `gateOffset`
//   3 up      storage read f32, rows of `upStride`; up [seqLen, intermediate] starts at `upOffset`
//             (a fused gate_up row: same buffer, strides 2I, gateOffset 0, upOffset I)
//   4 out     storage read_write f32 [seqLen, intermediate]
//
// Contract: out[t, i] = g · sigmoid(g) · up[t, i] with g = gate[t, i], sigmoid(g) = 1 / (1 + e^(−g)).
// One invocation per (t, i) over a 2-D grid of workgroups.

override WG: u32 = 256u;

struct Params {
  intermediate: u32,
  gateStride: u32,
  gateOffset: u32,
  upStride: u32,
  upOffset: u32,
}

// struct Step: shaders/step.wgsl, appended by the kernel's TypeScript.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> gate: array<f32>;
@group(0) @binding(3) var<storage, read> up: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.y * nwg.x + wid.x) * WG + lid;
  let n = params.intermediate;
  if (idx >= step.seqLen * n) { return; }
  let t = idx / n;
  let i = idx % n;
  let g = gate[t * params.gateStride + params.gateOffset + i];
  // exp(88) is finite in f32, so the clamp keeps 1 + e^(−g) finite for very negative g.
  let sig = 1.0 / (1.0 + exp(min(-g, 88.0)));
  out[idx] = g * sig * up[t * params.upStride + params.upOffset + i];
}
