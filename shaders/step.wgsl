// The per-step uniform, written once per step by src/engine/kernels/step.ts (16 bytes, its
// `writeStep`). Every kernel that binds it has this file appended to its source (step.ts's
// STEP_WGSL) instead of declaring the struct itself, so the layout is written once on each side.
struct Step {
  seqLen: u32,   // tokens processed in this step (1 for decode, S for prefill)
  pastLen: u32,  // tokens already in the KV cache before this step
  totalLen: u32, // pastLen + seqLen
  flags: u32,    // reserved (0)
}
