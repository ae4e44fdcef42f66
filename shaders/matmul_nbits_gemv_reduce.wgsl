// The row reduction of the staged and dp4a decode GEMVs (matmul-nbits.ts appends this file to
// matmul_nbits.wgsl and matmul_nbits_dp4a.wgsl, which declare what it uses: `params`, TPR, RG,
// ROWS, NORM, `rowSum` from the entry point, and `emit` from matmul_nbits_gemv_rows.wgsl).
//
// Each thread holds its share of ROWS row sums (row r in component r % 4 of accLo, r < 4, or of
// accHi) and, with NORM, the Σx² of the activations it staged. A row's sum is reduced over its row
// group's TPR lanes: by subgroupAdd first where subgroups lie inside row groups (sgSize ≤ TPR,
// leaving TPR / sgSize slots), else by a workgroup-memory tree. Σx² is reduced the same way as one
// more row per row group and summed over the RG groups, since staging spreads the activation over
// the whole workgroup; the row totals are then scaled by 1 / rms.
// Rule: every thread of the workgroup calls `finishRows` (barriers, and `emit`'s).

// [row of the workgroup, then (NORM) Σx² of row group g at row RG·ROWS + g][lane slot]
var<workgroup> partial: array<f32, RG * (ROWS + 1u) * TPR>;

fn finishRows(wgRow0: u32, lid: u32, sgSize: u32, sgLane: u32, accLo: vec4<f32>, accHi: vec4<f32>, sumSq: f32) {
  let lane = lid % TPR;
  let group = lid / TPR;
  if (sgSize > 1u && sgSize <= TPR) {
    let slots = TPR / sgSize;
    for (var r = 0u; r < ROWS; r++) {
      let s = rowSum(select(accLo[r % 4u], accHi[r % 4u], r >= 4u));
      if (sgLane == 0u) { partial[(group * ROWS + r) * TPR + lane / sgSize] = s; }
    }
    if (NORM) {
      let s = rowSum(sumSq);
      if (sgLane == 0u) { partial[(RG * ROWS + group) * TPR + lane / sgSize] = s; }
    }
    workgroupBarrier();
    var total = 0.0;
    if (lid < RG * ROWS) {
      for (var i = 0u; i < slots; i++) { total += partial[lid * TPR + i]; }
      if (NORM) { total *= rowInvRms(slots); }
    }
    emit(wgRow0, lid, total);
    return;
  }
  // No subgroups, or one wider than a row group (e.g. 64 lanes, TPR 32): the workgroup-memory tree.
  for (var r = 0u; r < ROWS; r++) {
    partial[(group * ROWS + r) * TPR + lane] = select(accLo[r % 4u], accHi[r % 4u], r >= 4u);
  }
  if (NORM) { partial[(RG * ROWS + group) * TPR + lane] = sumSq; }
  workgroupBarrier();
  for (var stride = TPR / 2u; stride > 0u; stride /= 2u) {
    if (lane < stride) {
      for (var r = 0u; r < ROWS; r++) {
        let i = (group * ROWS + r) * TPR + lane;
        partial[i] += partial[i + stride];
      }
      if (NORM) {
        let i = (RG * ROWS + group) * TPR + lane;
        partial[i] += partial[i + stride];
      }
    }
    workgroupBarrier();
  }
  var total = select(0.0, partial[min(lid, RG * ROWS - 1u) * TPR], lid < RG * ROWS);
  if (NORM && lid < RG * ROWS) { total *= rowInvRms(1u); }
  emit(wgRow0, lid, total);
}

// NORM: 1 / rms of the input row from the first `slots` Σx² slots of every row group.
fn rowInvRms(slots: u32) -> f32 {
  var ss = 0.0;
  for (var g = 0u; g < RG; g++) {
    for (var i = 0u; i < slots; i++) { ss += partial[(RG * ROWS + g) * TPR + i]; }
  }
  return inverseSqrt(ss / f32(params.K) + params.eps);
}
