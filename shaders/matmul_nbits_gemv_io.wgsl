// The overrides (quantisation, fusions) and the weight and output bindings every decode GEMV
// shares (the uniform, scales and zero points are matmul_nbits_dequant.wgsl's). matmul-nbits.ts
// puts this file after the dequantiser, ahead of matmul_nbits.wgsl, matmul_nbits_direct.wgsl and
// matmul_nbits_dp4a.wgsl, whose headers (and matmul_nbits.wgsl's) say what each binding holds.
// Bindings 4, 7 and 8 (the activations) are declared by each GEMV: as scalars in the staged one,
// as vec4s in matmul_nbits_gemv_vec4.wgsl for the others.

override BLOCK: u32 = 32u;          // quantisation block: 16, 32, 64 or 128
override HAS_ZP: bool = false;      // zero points in binding 3 (else 8)
override SCALES_F16: bool = false;  // scales are fp16 pairs
override NORM: bool = false;        // RMS-normalise the input row (binding 7, params.eps)
override SILU: bool = false;        // input = silu(gate) · up (binding 8)
override ACCUMULATE: bool = false;  // output += W·a
override ROPE_APPEND: bool = false; // rotary + KV append epilogue (matmul_nbits_rope.wgsl)

@group(0) @binding(1) var<storage, read> weights: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read_write> output: array<f32>;
