#!/usr/bin/env bash
# Runs on a borrowed GPU machine (x86-64 Linux, root, NVIDIA driver, no npm, no network), from the
# repository root, with `.device/` packed here by `node tools/device/pack.mjs` and carried along:
#   bash tools/device/run.sh [bench|sweep|checks|tune|runahead|prefill|f16gemm|next|attention|gemv|warm|kv|weights|reopen|autotune|all] [extra bench:node flags…]
# (`sweep` also runs bench/sweep-baseline.mjs first when pack.mjs was given --baseline REV.)
# It unpacks Node and the Vulkan loader, points Vulkan at the NVIDIA driver, prints the GPU, then
# runs the full-width benchmark (`bench`, the default: 32 generated layers, rounds 2), the GEMV
# tuning sweep (`sweep`; SWEEP_ARGS adds flags, e.g. "--gemm 128,512") and/or the GPU checks
# (`checks`); `all` runs checks, sweep, bench; `runahead` times native decode with run-ahead on and
# off, alternating, on one generated 32-layer model; `prefill` times the tiled GEMM against the wide
# one: isolated at M = 128 and 512 (the sweep's GEMM part), then 32-layer native prefill under the
# tiled GEMM and three wide tunings; `f16gemm` the wide GEMM in f16 arithmetic (tuning.gemmF16)
# against the default in f32, in 32-layer prefill; `next` is the A/B of what landed after a8e128e (timed on an H200
# on 2026-11-27, docs/h200/), now with today's defaults; `attention` times the attention defaults
# against other kernels and split policies; `gemv` the decode GEMVs (below); `warm` tuning.warmNext
# alone (below); `kv` the packed f16 KV cache (the default since 2026-12-06) against the f32 one
# (below); `weights` a q4 file's scales and embedding packed to fp16 against f32 (below); `reopen` the first token of a message in a chat the KV cache does not hold, cold
# and read ahead (`npm run bench:reopen -- --full`: 32 generated layers, chats of 256, 1024 and
# 3072 tokens; never run on a GPU yet); `autotune` what the decode autotune measures for each
# candidate tuning, what it keeps, and the kept one's decode tok/s against the default, then the
# same for the attention autotune at 2048 tokens of context (`npm run bench:autotune -- --full
# --attention-context 2048`: 32 generated layers; never run on a GPU yet).
# Logs and JSON go to $OUT (or .device-out/).
# The benchmark asks Dawn for shader-f16 on NVIDIA (off by default there; BENCH_F16=0 keeps it
# off), so both engines run q4f16 files with f16 as on most other GPUs' browsers; the sweep and
# the benchmark's kernel table ask for exact (unquantised) timestamps.
# Rule: everything it runs comes from .device/; it installs nothing outside /tmp except the
# Vulkan loader, and only when the machine has none.
set -u -o pipefail
what=${1:-bench}
[ $# -gt 0 ] && shift
D=$PWD/.device
OUT=${OUT:-$PWD/.device-out}
mkdir -p "$OUT" /tmp/device-node
# xz, or Python's lzma where the machine has no xz; writes to stdout.
xz_cat() { if command -v xz >/dev/null; then xz -dc "$1"; else python3 -c 'import lzma,sys; sys.stdout.buffer.write(lzma.open(sys.argv[1]).read())' "$1"; fi; }
xz_cat "$D/node.xz" > /tmp/device-node/node && chmod +x /tmp/device-node/node
export PATH=/tmp/device-node:$PATH
rm -rf /tmp/device-bench && mkdir -p /tmp/device-bench && xz_cat "$D/bench.tar.xz" | tar -C /tmp/device-bench -x
if ! ldconfig -p | grep -q 'libvulkan.so.1'; then
  for f in "$D"/debs/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$icd" ]; then export VK_ICD_FILENAMES=$icd; break; fi
done
export BENCH_COMMIT; BENCH_COMMIT=$(cat "$D/commit")
echo "node $(node -v); commit $BENCH_COMMIT; VK_ICD_FILENAMES=${VK_ICD_FILENAMES:-unset}"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.memory --format=csv 2>&1 | tee "$OUT/gpu.txt"
rc=0
if [ "$what" = checks ] || [ "$what" = all ]; then
  # Dawn hides shader-f16 on NVIDIA's Vulkan driver unless asked; only the checks ask (the f16 lines
  # must run here), so the benchmark keeps the path a browser on this machine would get.
  PHI3_DAWN_F16_ON_NVIDIA=1 node /tmp/device-bench/bench/device-checks.mjs --out "$OUT/checks.json" 2>&1 | tee "$OUT/checks.log" || rc=1
fi
if [ "$what" = sweep ] || [ "$what" = all ]; then
  # Exact timestamps: Dawn's default quantum is coarser than one small GEMV.
  # shellcheck disable=SC2086
  if [ -f /tmp/device-bench/bench/sweep-baseline.mjs ]; then
    echo "baseline sweep at $(cat /tmp/device-bench/bench/baseline-commit)" | tee "$OUT/sweep-baseline.log"
    # shellcheck disable=SC2086
    PHI3_DAWN_EXACT_TIMESTAMPS=1 node /tmp/device-bench/bench/sweep-baseline.mjs --out "$OUT/sweep-baseline.json" ${SWEEP_ARGS:-} 2>&1 | tee -a "$OUT/sweep-baseline.log" || rc=1
  fi
  # shellcheck disable=SC2086
  PHI3_DAWN_EXACT_TIMESTAMPS=1 node /tmp/device-bench/bench/sweep.mjs --out "$OUT/sweep.json" ${SWEEP_ARGS:-} 2>&1 | tee "$OUT/sweep.log" || rc=1
fi
if [ "$what" = bench ] || [ "$what" = all ]; then
  PHI3_DAWN_EXACT_TIMESTAMPS=1 PHI3_DAWN_F16_ON_NVIDIA=${BENCH_F16:-1} node /tmp/device-bench/bench/bench-node.mjs --full --rounds 2 --decode-steps 16 --out "$OUT/bench-node.json" "$@" 2>&1 | tee "$OUT/bench.log" || rc=1
fi
if [ "$what" = reopen ]; then
  PHI3_DAWN_F16_ON_NVIDIA=${BENCH_F16:-1} node /tmp/device-bench/bench/bench-reopen.mjs --full --rounds ${REOPEN_ROUNDS:-2} "$@" 2>&1 | tee "$OUT/reopen.log" || rc=1
fi
if [ "$what" = autotune ]; then
  PHI3_DAWN_F16_ON_NVIDIA=${BENCH_F16:-1} node /tmp/device-bench/bench/bench-autotune.mjs --full --attention-context ${ATTENTION_CONTEXT:-2048} "$@" 2>&1 | tee "$OUT/autotune.log" || rc=1
fi
if [ "$what" = tune ]; then
  # The native decode step profiled in context with each MatMulNBits tuning in TUNINGS (one JSON
  # object per line) applied to every matmul: 32 generated layers, reused between the runs.
  i=0
  while IFS= read -r tuning; do
    [ -z "$tuning" ] && continue
    i=$((i + 1))
    echo "tuning $i: $tuning" | tee -a "$OUT/tune.log"
    PHI3_DAWN_EXACT_TIMESTAMPS=1 PHI3_DAWN_F16_ON_NVIDIA=${BENCH_F16:-1} node /tmp/device-bench/bench/bench-node.mjs --layers 32 --dtype q4f16 --no-ort --rounds 1 --contexts 0 --prefill 128,512 --decode-steps 16 --profile-steps 3 --no-kernels --tuning "$tuning" --out "$OUT/tune-$i.json" 2>&1 | grep -E "decode at|prefill|profile at|tuning|Error" | tee -a "$OUT/tune.log" || rc=1
  done <<< "${TUNINGS:-}"
fi
if [ "$what" = prefill ]; then
  # tuning.gemm 'tiled' against 'wide' (the default on real GPUs): every GEMM tuning of the sweep on Phi-3's four
  # prefill shapes, then the 32-layer model's prefill (128 and 512 tokens) with the tiled GEMM
  # first and last and three wide tunings between (PREFILL_TUNINGS replaces those, one JSON per line).
  PHI3_DAWN_EXACT_TIMESTAMPS=1 PHI3_DAWN_F16_ON_NVIDIA=${BENCH_F16:-1} node /tmp/device-bench/bench/sweep.mjs --no-gemv --gemm 128,512 --out "$OUT/sweep-gemm.json" 2>&1 | tee "$OUT/sweep-gemm.log" || rc=1
  wide_tunings=${PREFILL_TUNINGS:-'{"gemm":"wide"}
{"gemm":"wide","gemmWideCols":2}
{"gemm":"wide","gemmWideThreads":64,"gemmWideRows":32,"gemmWideCols":2}'}
  i=0
  while IFS= read -r tuning; do
    [ -z "$tuning" ] && continue
    i=$((i + 1))
    echo "prefill $i: ${tuning}" | tee -a "$OUT/prefill.log"
    PHI3_DAWN_EXACT_TIMESTAMPS=1 PHI3_DAWN_F16_ON_NVIDIA=${BENCH_F16:-1} node /tmp/device-bench/bench/bench-node.mjs --layers 32 --dtype q4f16 --no-ort --rounds 1 --contexts 0 --prefill 128,512 --decode-steps 4 --profile-steps 1 --no-kernels --tuning "$tuning" --out "$OUT/prefill-$i.json" 2>&1 | grep -E "prefill|tuning|Error" | tee -a "$OUT/prefill.log" || rc=1
  done <<< "{\"gemm\":\"tiled\"}
$wide_tunings
{\"gemm\":\"tiled\"}"
fi
# A/B runs: each "label|flags" line on stdin is one fresh native bench:node process on one generated
# 32-layer model (made once, reused), with "$2" (bench:node flags) in common; logs to $OUT/$1.log,
# JSON to $OUT/$1-N.json. FROM / TO (1-based) run a slice, to split a list over two device calls.
ab_runs() {
  local name=$1 common=$2 i=0 label flags
  while IFS='|' read -r label flags; do
    [ -z "$label" ] && continue
    i=$((i + 1))
    if [ "$i" -lt "${FROM:-1}" ] || [ "$i" -gt "${TO:-99}" ]; then continue; fi
    echo "$name $i: $label" | tee -a "$OUT/$name.log"
    # shellcheck disable=SC2086
    eval "set -- $common $flags"
    PHI3_DAWN_EXACT_TIMESTAMPS=1 PHI3_DAWN_F16_ON_NVIDIA=${BENCH_F16:-1} node /tmp/device-bench/bench/bench-node.mjs --layers 32 --dtype q4f16 --no-ort --rounds 1 --no-kernels "$@" --out "$OUT/$name-$i.json" </dev/null 2>&1 | grep -E "decode at|decode matmuls|prefill|profile at|copy bandwidth|^\||Error" | tee -a "$OUT/$name.log" || rc=1
  done
}
# The warmNext rows of `gemv` and `warm`: each kernel reading a quarter, half and all of the next
# matmul's rows into L2 (tuning.warmNext; never timed on a GPU when written).
WARM_RUNS="warming a quarter of the next matmul's rows|--tuning '{\"warmNext\":0.25}'
warming half of the next matmul's rows|--tuning '{\"warmNext\":0.5}'
warming the next matmul's whole rows|--tuning '{\"warmNext\":1}'"
if [ "$what" = next ]; then
  # Everything that landed without a GPU after a8e128e (timed on an H200 at a1610e7, docs/h200/):
  # the defaults (first and last, for drift), run-ahead off, the tiled GEMM's A tile unpadded (as
  # at a8e128e), the staged GEMV prefetching its weights at 16 rows per workgroup and at 32, and
  # the wide prefill GEMM, each with the decode and prefill profiles.
  ab_runs next "--contexts 0,512 --prefill 128,512 --decode-steps 16 --profile-steps 1" <<'RUNS'
defaults|
run-ahead off|--no-run-ahead
tiled GEMM without the A-tile padding|--tuning '{"gemm":"tiled","gemmPadA":false}'
gemv prefetch|--tuning '{"gemvPrefetch":true}'
gemv prefetch, 4 rows per thread (32 per workgroup)|--tuning '{"gemvPrefetch":true,"rowsPerThread":4}'
wide gemm, 1 column per thread|--tuning '{"gemm":"wide","gemmWideCols":1}'
tiled gemm (padded)|--tuning '{"gemm":"tiled"}'
defaults again|
RUNS
fi
if [ "$what" = f16gemm ]; then
  # The wide prefill GEMM in f16 arithmetic (tuning.gemmF16, 2026-12-07; never timed on a GPU when
  # written; the autotune's 'wide-f16' candidate) against the default wide GEMM in f32, each twice
  # in alternation, at 128 and 512 tokens with the prefill profile (each kind's ms and TFLOP/s).
  ab_runs f16gemm "--contexts 0 --prefill 128,512 --decode-steps 4 --profile-steps 1" <<'RUNS'
defaults (wide GEMM in f32)|
wide GEMM in f16|--tuning '{"gemm":"wide","gemmF16":true}'
defaults again|
wide GEMM in f16 again|--tuning '{"gemm":"wide","gemmF16":true}'
RUNS
fi
if [ "$what" = attention ]; then
  # The attention defaults of real GPUs since c301be1 (attentionTuningFor: 'lanes', decode splits
  # capped at 24 per head, the blocked prefill; first and last) against the default before them
  # ('serial', 64-key splits up to 64, per-query prefill) and neighbouring split policies, at
  # contexts 512 to 3584 (the 4K model's limit, less the timed steps) and in 512-token prefill,
  # with the in-step decode profile and the prefill profile. Timed on an H200 at 7ec8a5e and
  # 703e900 (docs/benchmarks.md).
  ab_runs attention "--contexts 512,1024,2048,3584 --prefill 512 --decode-steps 16 --profile-steps 1" <<'RUNS'
defaults (lanes, at most 24 splits, blocked prefill)|
serial, 64-key splits up to 64, per-query prefill (before c301be1)|--attention '{"kernel":"serial","maxSplits":64,"prefill":"kernel"}'
lanes, at most 16 splits|--attention '{"maxSplits":16}'
lanes, at most 32 splits|--attention '{"maxSplits":32}'
lanes, 128-key splits, at most 24|--attention '{"keysPerSplit":128}'
lanes, per-query prefill|--attention '{"prefill":"kernel"}'
defaults again|
RUNS
fi
if [ "$what" = gemv ]; then
  # The decode GEMVs (MatMulNBitsTuning.gemv) with the in-step decode profile (each kind's ms, %
  # of copy bandwidth and the weight-read floor): NVIDIA's default since 6f65720 (the dp4a GEMV,
  # 32 threads per row × 8 row groups × 4 rows, 2 for o_proj; first and last) against the staged
  # GEMV it replaced, 4 rows for o_proj too
  # and the dp4a splits nearest it in the H200 sweep, its weights prefetched, and the 32-, 128- and
  # 256-token prefills with the wide GEMM always at 2 columns (gemmWideMinGroups 0) against the
  # 1-column rule below 256 workgroups, and each GEMV reading a quarter, half or all of the next
  # matmul's rows into L2 as it runs (warmNext; never timed on a GPU before: judge it by the step
  # time and decode tok/s, since the per-kind in-step times move the warming between kinds).
  # Tunings merge over the adapter's defaults field by field.
  ab_runs gemv "--contexts 0,512 --prefill 32,128,256 --decode-steps 16 --profile-steps 1" <<RUNS
defaults (dp4a 32 × 8 × 4 on NVIDIA, 32 × 8 × 2 for o_proj)|
staged 32 × 8 × 2 (before 6f65720)|--tuning '{"gemv":"staged"}'
dp4a 32 × 8 × 4 for o_proj too|--tuning '{"rowsPerThread":4}'
dp4a 32 × 8 × 6|--tuning '{"rowsPerThread":6}'
dp4a 32 × 4 × 8|--tuning '{"rowGroups":4,"rowsPerThread":8}'
dp4a 16 × 16 × 2|--tuning '{"threadsPerRow":16,"rowGroups":16,"rowsPerThread":2}'
dp4a, weights prefetched|--tuning '{"gemvPrefetch":true}'
wide GEMM always 2 columns (gemmWideMinGroups 0)|--tuning '{"gemmWideMinGroups":0}'
$WARM_RUNS
defaults again|
RUNS
fi
if [ "$what" = warm ]; then
  # tuning.warmNext alone (never timed on a GPU when written): the defaults first and last, each
  # kernel reading a quarter, half and all of the next matmul's rows into L2, at contexts 0, 512
  # and 2048 (attention's own reads grow with the context and share the cache), with the in-step
  # decode profile. Judge it by the step time and decode tok/s.
  ab_runs warm "--contexts 0,512,2048 --prefill 128 --decode-steps 16 --profile-steps 1" <<RUNS
defaults|
$WARM_RUNS
defaults again|
RUNS
fi
if [ "$what" = kv ]; then
  # The KV cache's storage (never timed on a GPU when it changed, 2026-12-06): f16 packed two per
  # u32 (the default on every device), against f32 (what GPUs without shader-f16 ran before),
  # alternating, at contexts 0, 512 and 2048 with the in-step decode profile. The f16 rows should
  # match the `f16`-typed cache's earlier figures (docs/benchmarks.md) and beat f32 at 2048.
  ab_runs kv "--contexts 0,512,2048 --prefill 512 --decode-steps 16 --profile-steps 1" <<'RUNS'
f16 cache (default)|
f32 cache|--precision f32
f32 cache again|--precision f32
f16 cache again|
RUNS
fi
if [ "$what" = weights ]; then
  # A q4 (fp32 scales) file on the f16 path: its block scales and embedding packed to fp16 at load
  # (LoadOptions.f16Weights, the default since 2026-12-07; never timed on a GPU when it landed)
  # against kept in f32 (--f32-weights), alternating, on one generated 32-layer q4 model, with the
  # in-step decode profile: a step reads 232 MB fewer scale bytes of about 2.3 GB, so decode
  # should gain up to a tenth where the GEMVs are bound by memory. Load times are in the JSON.
  ab_runs weights "--dtype q4 --contexts 0,512 --prefill 128,512 --decode-steps 16 --profile-steps 1" <<'RUNS'
scales and embedding packed to fp16 (default)|
kept f32|--f32-weights
kept f32 again|--f32-weights
packed again|
RUNS
fi
if [ "$what" = runahead ]; then
  # Decode with LoadOptions.runAhead on and off (--no-run-ahead), alternating (on, off, off, on),
  # each in fresh processes, on the same 32 generated layers: the A/B of submitting step N+1 before
  # step N's token is read back.
  i=0
  for flag in "" --no-run-ahead --no-run-ahead ""; do
    i=$((i + 1))
    echo "run $i: run-ahead ${flag:-on}" | tee -a "$OUT/runahead.log"
    # shellcheck disable=SC2086
    PHI3_DAWN_EXACT_TIMESTAMPS=1 PHI3_DAWN_F16_ON_NVIDIA=${BENCH_F16:-1} node /tmp/device-bench/bench/bench-node.mjs --layers 32 --dtype q4f16 --no-ort --rounds 1 --contexts 0,512 --prefill 128 --decode-steps 32 --profile-steps 1 --no-kernels $flag --out "$OUT/runahead-$i.json" "$@" 2>&1 | grep -E "decode at|profile at|Error" | tee -a "$OUT/runahead.log" || rc=1
  done
fi
# BUNDLE_OUT=1: the device tool returns at most 8 files, so every JSON in $OUT moves into
# $OUT/all-$what.tgz, next to the logs. Named per step, so that each run.sh of one device call can
# bundle its own (a call cut short by its time limit still returns the steps that finished).
if [ -n "${BUNDLE_OUT:-}" ]; then
  (cd "$OUT" && find . -name '*.json' -print0 | tar czf /tmp/run-out.tgz --null -T - && find . -name '*.json' -delete && mv /tmp/run-out.tgz "all-$what.tgz") || rc=1
fi
exit $rc
