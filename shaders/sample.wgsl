// Token selection on the GPU: greedy argmax, or sampling with repetition penalty, temperature,
// top-k, top-p and a counter-based RNG. One workgroup does everything, so the result is exact and
// deterministic; the step costs the caller a 4-byte read-back instead of the logits.
//
// Bindings:
//   0 params   uniform { vocab, logitsOffset, invTemperature: f32, topK, topP: f32, penalty: f32,
//                        invPenalty: f32, seed, greedy }            (written when settings change)
//   1 state    uniform { historyLength, stepIndex }                 (8 bytes written per token)
//   2 logits   storage read f32; the row [vocab] starts at element `logitsOffset`
//   3 history  storage read u32 [>= historyLength] token ids for the repetition penalty
//   4 work     storage read_write f32 [vocab] scratch owned by the sampler
//   5 out      storage read_write u32 [1] the chosen token id
//
// Contract (sampleReference in src/engine/kernels/sampler.ts is the same algorithm in TS):
//   1. work = logits; if penalty != 1, for every id in history: work[id] = x < 0 ? x·penalty : x·(1/penalty)
//      with x the unpenalised logit (HF RepetitionPenaltyLogitsProcessor; duplicates apply once).
//   2. greedy (temperature 0 or topK 1): out = argmax(work), ties to the lowest index.
//   3. otherwise the K = min(topK or CAP, CAP, vocab) highest values (order: value desc via the
//      sortable key, then index asc; CAP = WG = 256) become candidates; s_r = value_r · invTemperature;
//      p_r = exp(s_r − s_0); Z = Σ p_r (sequential). top-p keeps candidate r while the sum of
//      p before it is < topP·Z (r = 0 always kept; topP >= 1 keeps all). With
//      u = (pcg(pcg(stepIndex) ^ seed) >> 8) / 2^24 and T = the kept sum, out is the first kept r
//      whose running sum exceeds u·T (the last kept one if rounding leaves none).
//   Logits must be finite.
// Candidates come from an exact radix select (4 passes of 8 bits over sortable keys) followed by
// a deterministic compaction (each invocation owns a contiguous block) and a bitonic sort.

override WG: u32 = 256u;   // power of two; also the candidate cap CAP

struct Params {
  vocab: u32,
  logitsOffset: u32,
  invTemperature: f32,
  topK: u32,
  topP: f32,
  penalty: f32,
  invPenalty: f32,
  seed: u32,
  greedy: u32,
}

struct State {
  historyLength: u32,
  stepIndex: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<uniform> state: State;
@group(0) @binding(2) var<storage, read> logits: array<f32>;
@group(0) @binding(3) var<storage, read> history: array<u32>;
@group(0) @binding(4) var<storage, read_write> work: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<u32>;

const NONE: u32 = 0xffffffffu;

var<workgroup> bins: array<atomic<u32>, 256>;
var<workgroup> redV: array<f32, WG>;
var<workgroup> redI: array<u32, WG>;
var<workgroup> candKey: array<u32, WG>;
var<workgroup> candIdx: array<u32, WG>;
var<workgroup> countGt: array<u32, WG>;
var<workgroup> countEq: array<u32, WG>;
var<workgroup> probs: array<f32, WG>;
var<workgroup> selPrefix: u32;
var<workgroup> selRemaining: u32;

// Monotonic map f32 -> u32: a > b (as numbers, -0 < +0) iff key(a) > key(b).
fn sortKey(v: f32) -> u32 {
  let b = bitcast<u32>(v);
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn keyValue(k: u32) -> f32 {
  return bitcast<f32>(select(~k, k & 0x7fffffffu, (k & 0x80000000u) != 0u));
}

fn pcg(v: u32) -> u32 {
  let s = v * 747796405u + 2891336453u;
  let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
  return (w >> 22u) ^ w;
}

// (keyA, idxA) comes before (keyB, idxB): larger value first, then lower index.
fn before(ka: u32, ia: u32, kb: u32, ib: u32) -> bool {
  return ka > kb || (ka == kb && ia < ib);
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  let V = params.vocab;
  let off = params.logitsOffset;

  // 1. Copy and penalise.
  for (var i = lid; i < V; i += WG) { work[i] = logits[off + i]; }
  storageBarrier();
  if (params.penalty != 1.0) {
    for (var h = lid; h < state.historyLength; h += WG) {
      let id = history[h];
      if (id < V) {
        let x = logits[off + id];
        work[id] = select(x * params.invPenalty, x * params.penalty, x < 0.0);
      }
    }
  }
  storageBarrier();

  // 2. Greedy.
  if (params.greedy != 0u) {
    var bestV = 0.0;
    var bestI = NONE;
    for (var i = lid; i < V; i += WG) {
      let v = work[i];
      if (bestI == NONE || v > bestV) { bestV = v; bestI = i; }
    }
    redV[lid] = bestV;
    redI[lid] = bestI;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s /= 2u) {
      if (lid < s) {
        let oi = redI[lid + s];
        let ov = redV[lid + s];
        let mi = redI[lid];
        if (oi != NONE && (mi == NONE || ov > redV[lid] || (ov == redV[lid] && oi < mi))) {
          redV[lid] = ov;
          redI[lid] = oi;
        }
      }
      workgroupBarrier();
    }
    if (lid == 0u) { out[0] = redI[0]; }
    return;
  }

  // 3a. Radix select: the K-th largest key and how many elements equal to it are taken.
  var K = WG;
  if (params.topK != 0u) { K = min(params.topK, WG); }
  K = min(K, V);
  var prefix = 0u;
  var mask = 0u;
  var remaining = K;
  for (var radixPass = 0u; radixPass < 4u; radixPass++) {
    let shift = 24u - 8u * radixPass;
    for (var b = lid; b < 256u; b += WG) { atomicStore(&bins[b], 0u); }
    workgroupBarrier();
    for (var i = lid; i < V; i += WG) {
      let k = sortKey(work[i]);
      if ((k & mask) == prefix) { atomicAdd(&bins[(k >> shift) & 255u], 1u); }
    }
    workgroupBarrier();
    if (lid == 0u) {
      var cum = 0u;
      for (var b = 255i; b >= 0i; b--) {
        let c = atomicLoad(&bins[u32(b)]);
        if (cum + c >= remaining) {
          selPrefix = prefix | (u32(b) << shift);
          selRemaining = remaining - cum;
          break;
        }
        cum += c;
      }
    }
    prefix = workgroupUniformLoad(&selPrefix);
    remaining = workgroupUniformLoad(&selRemaining);
    mask |= 255u << shift;
  }
  let threshold = prefix;
  let above = K - remaining;

  // 3b. Deterministic compaction: keys > threshold in index order, then the first `remaining`
  // keys == threshold in index order.
  let chunk = (V + WG - 1u) / WG;
  let lo = min(V, lid * chunk);
  let hi = min(V, lo + chunk);
  var nGt = 0u;
  var nEq = 0u;
  for (var i = lo; i < hi; i++) {
    let k = sortKey(work[i]);
    nGt += select(0u, 1u, k > threshold);
    nEq += select(0u, 1u, k == threshold);
  }
  countGt[lid] = nGt;
  countEq[lid] = nEq;
  candKey[lid] = 0u;
  candIdx[lid] = NONE;
  workgroupBarrier();
  if (lid == 0u) {
    var sGt = 0u;
    var sEq = 0u;
    for (var j = 0u; j < WG; j++) {
      let g = countGt[j];
      let e = countEq[j];
      countGt[j] = sGt;
      countEq[j] = sEq;
      sGt += g;
      sEq += e;
    }
  }
  workgroupBarrier();
  var pGt = countGt[lid];
  var pEq = countEq[lid];
  for (var i = lo; i < hi; i++) {
    let k = sortKey(work[i]);
    if (k > threshold) {
      candKey[pGt] = k;
      candIdx[pGt] = i;
      pGt++;
    } else if (k == threshold) {
      if (pEq < remaining) {
        candKey[above + pEq] = k;
        candIdx[above + pEq] = i;
      }
      pEq++;
    }
  }
  workgroupBarrier();

  // 3c. Bitonic sort of the WG slots (empty slots hold key 0 / NONE and sort last).
  for (var k = 2u; k <= WG; k <<= 1u) {
    for (var j = k >> 1u; j > 0u; j >>= 1u) {
      let partner = lid ^ j;
      if (partner > lid) {
        let ka = candKey[lid];
        let ia = candIdx[lid];
        let kb = candKey[partner];
        let ib = candIdx[partner];
        // In blocks where (lid & k) == 0 the pair ends in candidate order, elsewhere reversed.
        let inOrder = (lid & k) == 0u;
        if (select(before(ka, ia, kb, ib), before(kb, ib, ka, ia), inOrder)) {
          candKey[lid] = kb;
          candIdx[lid] = ib;
          candKey[partner] = ka;
          candIdx[partner] = ia;
        }
      }
      workgroupBarrier();
    }
  }

  // 3d. Temperature, softmax, top-p and the draw, sequentially so the order of sums is fixed.
  if (lid == 0u) {
    let s0 = keyValue(candKey[0]) * params.invTemperature;
    var z = 0.0;
    for (var r = 0u; r < K; r++) {
      let p = exp(keyValue(candKey[r]) * params.invTemperature - s0);
      probs[r] = p;
      z += p;
    }
    var n = K;
    var total = z;
    if (params.topP < 1.0) {
      let limit = params.topP * z;
      var cum = 0.0;
      n = 0u;
      for (var r = 0u; r < K; r++) {
        if (r > 0u && cum >= limit) { break; }
        cum += probs[r];
        n = r + 1u;
      }
      total = cum;
    }
    let u = f32(pcg(pcg(state.stepIndex) ^ params.seed) >> 8u) / 16777216.0;
    let drawPoint = u * total;
    var pick = n - 1u;
    var running = 0.0;
    for (var r = 0u; r < n; r++) {
      running += probs[r];
      if (running > drawPoint) {
        pick = r;
        break;
      }
    }
    out[0] = candIdx[pick];
  }
}
