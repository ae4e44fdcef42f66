// Reads a rotary table (src/engine/kernels/rotary.ts `interleaveRotaryTable`): one cos/sin pair of
// the model as [rows, rotaryDim/2, 2], (cos, sin) of (position, frequency) side by side; f32 (two
// words per entry), or fp16 bits when ROTARY_F16 (one word, cos in the low half). Appended to the
// kernels that rotate (kv_append.wgsl, matmul_nbits_rope.wgsl); the host declares the binding
//   var<storage, read> rotaryTable: array<u32>;

override ROTARY_F16: bool = false;

// (cos, sin) of table entry i = row · rotaryDim/2 + frequency.
fn rotaryCosSin(i: u32) -> vec2<f32> {
  if (ROTARY_F16) { return unpack2x16float(rotaryTable[i]); }
  return vec2<f32>(bitcast<f32>(rotaryTable[2u * i]), bitcast<f32>(rotaryTable[2u * i + 1u]));
}
