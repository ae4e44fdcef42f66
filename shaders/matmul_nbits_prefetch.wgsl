// Weight prefetch slots of the staged and dp4a decode GEMVs (tuning.gemvPrefetch; matmul-nbits.ts
// appends this file to matmul_nbits.wgsl and matmul_nbits_dp4a.wgsl): a thread's weight vec4s
// loaded before the workgroup stages its activations, slot iteration · ROWS + row.
//
// Named fields behind a `switch` (setPre / getPre) instead of a private array: an array indexed by
// anything a driver's compiler does not fold to a constant can go through memory (the accumulators
// did on SwiftShader, see addChunk in matmul_nbits.wgsl), turning the prefetch into extra memory
// traffic; a switch over fields keeps the slots in registers whether or not the loops are unrolled.
// Rule: GEMV_PREFETCH_MAX in matmul-nbits.ts is the number of fields.
struct Prefetched {
  p0: vec4<u32>, p1: vec4<u32>, p2: vec4<u32>, p3: vec4<u32>,
  p4: vec4<u32>, p5: vec4<u32>, p6: vec4<u32>, p7: vec4<u32>,
  p8: vec4<u32>, p9: vec4<u32>, p10: vec4<u32>, p11: vec4<u32>,
  p12: vec4<u32>, p13: vec4<u32>, p14: vec4<u32>, p15: vec4<u32>,
}
var<private> pre: Prefetched;

fn setPre(i: u32, v: vec4<u32>) {
  switch i {
    case 0u: { pre.p0 = v; }
    case 1u: { pre.p1 = v; }
    case 2u: { pre.p2 = v; }
    case 3u: { pre.p3 = v; }
    case 4u: { pre.p4 = v; }
    case 5u: { pre.p5 = v; }
    case 6u: { pre.p6 = v; }
    case 7u: { pre.p7 = v; }
    case 8u: { pre.p8 = v; }
    case 9u: { pre.p9 = v; }
    case 10u: { pre.p10 = v; }
    case 11u: { pre.p11 = v; }
    case 12u: { pre.p12 = v; }
    case 13u: { pre.p13 = v; }
    case 14u: { pre.p14 = v; }
    default: { pre.p15 = v; }
  }
}

fn getPre(i: u32) -> vec4<u32> {
  switch i {
    case 0u: { return pre.p0; }
    case 1u: { return pre.p1; }
    case 2u: { return pre.p2; }
    case 3u: { return pre.p3; }
    case 4u: { return pre.p4; }
    case 5u: { return pre.p5; }
    case 6u: { return pre.p6; }
    case 7u: { return pre.p7; }
    case 8u: { return pre.p8; }
    case 9u: { return pre.p9; }
    case 10u: { return pre.p10; }
    case 11u: { return pre.p11; }
    case 12u: { return pre.p12; }
    case 13u: { return pre.p13; }
    case 14u: { return pre.p14; }
    default: { return pre.p15; }
  }
}
