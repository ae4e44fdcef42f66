// The activations as vec4s, for the GEMVs that read whole 32-element chunks straight from the
// buffers (matmul_nbits_direct.wgsl and matmul_nbits_dp4a.wgsl; matmul-nbits.ts appends this file
// to them and routes them only where inOffset and upOffset are multiples of 4 and K of 32).

@group(0) @binding(4) var<storage, read> input: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> normWeight: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read> up: array<vec4<f32>>;

// Activation elements 4i .. 4i+3 of row 0 before the norm weight: the input, or (SILU)
// silu(gate) · up, with the clamp of matmul_nbits.wgsl's `activation`.
fn act4(i: u32) -> vec4<f32> {
  let x = input[params.inOffset / 4u + i];
  if (SILU) {
    return x * (1.0 / (1.0 + exp(min(-x, vec4<f32>(88.0))))) * up[params.upOffset / 4u + i];
  }
  return x;
}
