// Companion of a decode kernel (tuning.warmNext): the next matmul's packed weights pulled into the
// GPU's cache while the kernel runs. Its hosts (a plain decode GEMV, matmul-nbits.ts; decode
// attention, attention.ts) are dispatched with two layers of workgroups along z: layer 0 is the
// kernel, unchanged; workgroup g < `groups` of layer 1 reads its run of the next matmul's weight
// rows and does nothing else with them (`warmRun`; the host's entry point calls it for z = 1 and
// returns). The words read stay in the last-level cache (L2), so the next GEMV finds them there
// instead of in device memory.
//
// Why: a decode step is a chain of dependent dispatches, and each GEMV ramps up from an idle GPU
// and drains at its end, when memory sits idle; on an H200 a kernel that only reads one matmul's
// bytes in its place in the step reached 30–82% of copy bandwidth (docs/benchmarks.md). Layer 1 is
// launched after every layer-0 workgroup, so it fills those idle stretches with the next matmul's
// reads. Whether that wins depends on the cache size and the GPU's scheduling: opt-in, measured
// with `run.sh gemv` (tools/device/run.sh), never assumed.
//
// Bindings (group 1; group 0 is the host's own):
//   0 warm       uniform { rows, rowWords, prefixWords, groups }: the next matmul's rows (its N),
//                16-byte words per packed row (kPadded / 32), the leading words of each row to read
//                (the next GEMV's lanes walk a row from its start, so every workgroup of it gets
//                the same share from the cache), and the layer-1 workgroups that read (a GEMV:
//                its own gridX · gridY; attention: one run of WG · 8 words each)
//   1 warmWeights storage read vec4<u32> (rows · rowWords,): the next matmul's packed rows
//   2 warmSums   storage read_write u32 (groups · WG,): one word per reading invocation
//
// Contract: the words {row · rowWords + j : row < rows, j < prefixWords}, in the order
// i = row · prefixWords + j, are cut into `groups` runs of ceil(rows · prefixWords / groups);
// layer-1 workgroup g (its index in the host's grid) reads run g, its invocation lid the words
// lid, lid + WG, … of it (coalesced, eight loads in flight: a host with few workgroups, such as
// down_proj's 96 on Phi-3, still keeps megabytes of reads outstanding), and writes the wrapping u32
// sum of every lane it read to warmSums[g · WG + lid]. So Σ warmSums (mod 2^32) = the sum of the
// prefix words (the test that each is read exactly once), and the loads feed a store, which no
// compiler may drop.

// The hosts' entry points test it (warm-next.ts's stub sets it false).
const WARM = true;

struct Warm {
  rows: u32,
  rowWords: u32,
  prefixWords: u32,
  groups: u32,
}

@group(1) @binding(0) var<uniform> warm: Warm;
@group(1) @binding(1) var<storage, read> warmWeights: array<vec4<u32>>;
@group(1) @binding(2) var<storage, read_write> warmSums: array<u32>;

// Prefix word i (order above), or 0 at and past `end`.
fn warmWord(i: u32, end: u32) -> vec4<u32> {
  if (i >= end) { return vec4<u32>(0u); }
  let row = i / warm.prefixWords;
  return warmWeights[row * warm.rowWords + (i - row * warm.prefixWords)];
}

// Layer-1 workgroup g of a host whose workgroups have WG invocations (workgroups past `groups`, in
// a host grid sized for its own work, read nothing).
fn warmRun(g: u32, lid: u32, WG: u32) {
  if (g >= warm.groups) { return; }
  let total = warm.rows * warm.prefixWords;
  let run = (total + warm.groups - 1u) / warm.groups;
  let begin = min(g * run, total);
  let end = min(begin + run, total);
  var sum = vec4<u32>(0u);
  for (var i = begin + lid; i < end; i += 8u * WG) {
    let a = warmWord(i, end) + warmWord(i + WG, end) + warmWord(i + 2u * WG, end) + warmWord(i + 3u * WG, end);
    let b = warmWord(i + 4u * WG, end) + warmWord(i + 5u * WG, end) + warmWord(i + 6u * WG, end) + warmWord(i + 7u * WG, end);
    sum += a + b;
  }
  warmSums[g * WG + lid] = sum.x + sum.y + sum.z + sum.w;
}
