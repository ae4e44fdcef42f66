// Embedding gather (ONNX Gather on the embedding table) for one part of a table split across
// buffers: out[t, :] = table[ids[t], :] for the tokens whose id lies in this part.
//
// Bindings:
//   0 params  uniform { hidden: u32, firstRow: u32, rows: u32, zeroPastEnd: u32 }
//   1 step    uniform Step (src/engine/kernels/step.ts); seqLen tokens are gathered
//   2 ids     storage read u32 (maxSeq,)
//   3 table   storage read u32: this part's rows [firstRow, firstRow + rows) of the table, as f32
//             bits (rows, hidden) or, when TABLE_F16, raw fp16 pairs (rows·hidden halves)
//   4 out     storage read_write f32 (maxSeq, hidden)
//
// Contract: for t < seqLen with firstRow ≤ ids[t] < firstRow + rows, out[t, :] = table row as f32.
// The last part has zeroPastEnd = 1 and writes zeros for ids ≥ firstRow + rows (out-of-range ids
// never read out of bounds). Tokens whose id belongs to another part are left untouched, so the
// caller dispatches every part over the same tokens.
// One workgroup per token (2-D grid of GRID_X columns); WG threads stride over the row.

override WG: u32 = 256u;
override GRID_X: u32 = 65535u;
override TABLE_F16: bool = false;

struct Params {
  hidden: u32,
  firstRow: u32,
  rows: u32,
  zeroPastEnd: u32,
}

// struct Step: shaders/step.wgsl, appended by the kernel's TypeScript.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<uniform> stepInfo: Step;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read> table: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

fn tableAt(i: u32) -> f32 {
  if (TABLE_F16) {
    let pair = unpack2x16float(table[i >> 1u]);
    return select(pair.x, pair.y, (i & 1u) == 1u);
  }
  return bitcast<f32>(table[i]);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let token = wid.x + wid.y * GRID_X;
  if (token >= stepInfo.seqLen) { return; }
  let id = ids[token];
  if (id < params.firstRow) { return; }
  let local = id - params.firstRow;
  let dst = token * params.hidden;
  if (local >= params.rows) {
    if (params.zeroPastEnd != 0u) {
      for (var i = lid; i < params.hidden; i += WG) { out[dst + i] = 0.0; }
    }
    return;
  }
  let src = local * params.hidden;
  for (var i = lid; i < params.hidden; i += WG) {
    out[dst + i] = tableAt(src + i);
  }
}
