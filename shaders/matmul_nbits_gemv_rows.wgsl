// Output rows of both decode GEMVs (matmul-nbits.ts appends this file to matmul_nbits.wgsl and
// matmul_nbits_direct.wgsl, which declare what it uses: `params`, `output`, RG, ROWS, ACCUMULATE,
// ROPE_APPEND; ropeRow / ropeAppend come from matmul_nbits_rope.wgsl or its no-op stubs).
// Rule: `emit` must be called by every thread of a workgroup (ROPE_APPEND has a barrier in it).

var<workgroup> pairTotals: array<f32, RG * ROWS>; // ROPE_APPEND: row totals, read by the partner row

fn store(n: u32, v: f32) {
  if (ACCUMULATE) {
    output[n] = output[n] + v;
  } else {
    output[n] = v;
  }
}

// The weight row output row `row` computes: itself, or ROPE_APPEND's pairing permutation.
// Rows past N (last workgroup) recompute row N−1 and are never written.
fn weightRow(row: u32) -> u32 {
  let n = min(row, params.N - 1u);
  if (ROPE_APPEND) { return ropeRow(n); }
  return n;
}

// Writes output row wgRow0 + lid from its total (threads lid < RG·ROWS hold one). ROPE_APPEND
// exchanges the rotary pair's totals over a barrier (rows 2j and 2j + 1 of a workgroup; wgRow0 is
// even since RG·ROWS is).
fn emit(wgRow0: u32, lid: u32, total: f32) {
  let row = wgRow0 + lid;
  if (ROPE_APPEND) {
    if (lid < RG * ROWS) { pairTotals[lid] = total; }
    workgroupBarrier();
    if (lid < RG * ROWS && row < params.N) { ropeAppend(row, total, pairTotals[lid ^ 1u]); }
    return;
  }
  if (lid < RG * ROWS && row < params.N) { store(row, total); }
}
