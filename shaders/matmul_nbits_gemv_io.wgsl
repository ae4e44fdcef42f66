// The uniform and the bindings every decode GEMV shares (matmul-nbits.ts puts this file after the
// dequantiser, ahead of matmul_nbits.wgsl, matmul_nbits_direct.wgsl and matmul_nbits_dp4a.wgsl;
// their headers and matmul_nbits.wgsl's list what each binding holds). Bindings 4, 7 and 8 (the
// activations) are declared by each GEMV: as scalars in the staged one, as vec4s in
// matmul_nbits_gemv_vec4.wgsl for the others.

struct Params {
  K: u32,
  N: u32,
  nBlocks: u32,
  kPadded: u32,
  zpRowBytes: u32,
  maxM: u32,
  gridX: u32,
  inStride: u32, // elements between input rows (K, or the gate stride when SILU)
  inOffset: u32, // element offset of row 0 in input
  upStride: u32,
  upOffset: u32,
  eps: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> weights: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> scales: array<u32>;
@group(0) @binding(3) var<storage, read> zeroPoints: array<u32>;
@group(0) @binding(5) var<storage, read_write> output: array<f32>;
