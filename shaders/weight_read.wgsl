// Weight read: a yardstick for benchmarks, never part of a forward pass. It reads every word of one
// matmul's weights (packed int4 rows, scales, zero points) exactly once and does nothing else with
// them, so its time is what any kernel reading those bytes needs at the least, measured where the
// matmul runs (Phi3Runtime.timeDecodeWithout's `readInstead`; docs/benchmarks.md). A decode
// GEMV's in-step time against this one's is how far its arithmetic, staging and reductions keep it
// from the memory floor at its own size; the copy bandwidth is the floor of a 256 MiB copy.
//
// Bindings:
//   0 params     uniform { weightWords, scaleWords, zeroPointWords }: the vec4 words of `weights`
//                and the u32 words of `scales` and `zeroPoints` to read (0 zero-point words when
//                the matmul has none; the bound buffers may be longer)
//   1 weights    storage read vec4<u32> (weightWords,)
//   2 scales     storage read u32 (scaleWords,)
//   3 zeroPoints storage read u32 (zeroPointWords,)
//   4 sums       storage read_write u32, one word per invocation of the dispatch
//   5 chainIn    storage read f32: the replaced matmul's input, and
//   6 chainOut   storage read_write f32: its output, both bound but never touched (`params.touch`
//                is 0), so that the API orders this dispatch after the kernel that wrote the input
//                and the kernels that read the output after it, exactly as it orders the matmul
//                (a decode step is a chain of dependent dispatches; unbound, the read and its
//                neighbours could overlap and the floor would come out below any chain's)
//
// Contract: with SPAN = WG · 8, workgroups 0 .. W − 1 (W = ceil(weightWords / SPAN)) read weight
// words [g · SPAN, (g + 1) · SPAN); the rest read the run of scale words followed by zero-point
// words, SPAN per workgroup. Invocation lid of workgroup g reads words lid, lid + WG, …, lid + 7·WG
// of its span (coalesced across the workgroup), all 8 before it adds any, so it keeps 8 loads in
// flight; sums[g · WG + lid] = the wrapping u32 sum of every u32 lane it read, so Σ sums (mod 2^32)
// = Σ of all counted words of the three buffers: the test that each word is read once.
// No barrier, atomic or reduction: its only other traffic is one word written per 128 bytes of
// packed weights read (3%; per 32 bytes of scales), by which the floor overstates the time at most.

override WG: u32 = 256u;
const UNROLL: u32 = 8u;

struct Params {
  weightWords: u32,
  scaleWords: u32,
  zeroPointWords: u32,
  touch: u32, // always 0 (bindings 5 and 6)
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> weights: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> scales: array<u32>;
@group(0) @binding(3) var<storage, read> zeroPoints: array<u32>;
@group(0) @binding(4) var<storage, read_write> sums: array<u32>;
@group(0) @binding(5) var<storage, read> chainIn: array<f32>;
@group(0) @binding(6) var<storage, read_write> chainOut: array<f32>;

fn weightWord(i: u32) -> vec4<u32> {
  if (i < params.weightWords) { return weights[i]; }
  return vec4<u32>(0u);
}

// Word i of the scales-then-zero-points run, 0 past its end.
fn tailWord(i: u32) -> u32 {
  if (i < params.scaleWords) { return scales[i]; }
  if (i - params.scaleWords < params.zeroPointWords) { return zeroPoints[i - params.scaleWords]; }
  return 0u;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let g = wid.y * nwg.x + wid.x;
  let span = WG * UNROLL;
  let weightGroups = (params.weightWords + span - 1u) / span;
  var sum = 0u;
  if (g < weightGroups) {
    let i = g * span + lid;
    let a = weightWord(i) + weightWord(i + WG) + weightWord(i + 2u * WG) + weightWord(i + 3u * WG);
    let b = weightWord(i + 4u * WG) + weightWord(i + 5u * WG) + weightWord(i + 6u * WG) + weightWord(i + 7u * WG);
    let v = a + b;
    sum = v.x + v.y + v.z + v.w;
  } else {
    let i = (g - weightGroups) * span + lid;
    sum = tailWord(i) + tailWord(i + WG) + tailWord(i + 2u * WG) + tailWord(i + 3u * WG)
        + tailWord(i + 4u * WG) + tailWord(i + 5u * WG) + tailWord(i + 6u * WG) + tailWord(i + 7u * WG);
  }
  let slot = g * WG + lid;
  if (slot < arrayLength(&sums)) { sums[slot] = sum; }
  if (params.touch != 0u) { chainOut[0] = chainIn[0]; }
}
