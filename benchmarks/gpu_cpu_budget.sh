#!/usr/bin/env bash
# The `cpu` benchmark budget (same data, presets, epochs and seeds as on the 2-core CPU) run on a lent
# GPU machine with 16 cores, as one prepared script: seen (+ equal-time runs), unseen, real.
# Everything it makes lands in benchmarks/results/cpu/ and is packed into $OUT.
# Local rehearsal: PY=.venv/bin/python BUDGET=smoke DEVICE=cpu JOBS=2 SKIP_INSTALL=1 OUT=/tmp/o bash ...
set -u
PY=${PY:-python3} BUDGET=${BUDGET:-cpu} DEVICE=${DEVICE:-cuda}
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD/src
if [ -z "${SKIP_INSTALL:-}" ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  nvidia-smi -L
fi
$PY -c "import torch, trimesh, mcubes; print(torch.__version__, torch.cuda.is_available())" || exit 1
R=benchmarks/results/$BUDGET
J=${JOBS:-16}
# SELECT="--methods ... --seeds 1 2" adds runs to results already there (kept by the harness);
# EQUAL="" skips the equal-wall-time runs.
SELECT=${SELECT:-} EQUAL=${EQUAL---equal-time}
# results so far (no data, no weights) into $OUT after every stage: a cut-off run still reports
save() { (cd "$R" && tar czf "$OUT/results.tgz" --exclude='*/data' --exclude='*/data_real' \
  --exclude='*.safetensors' --exclude='*/runs-time' . 2>/dev/null); }
# 1. seen (the main table) with its equal-wall-time runs; 2. unseen; 3. real (scores the seen runs).
T0=$(date +%s)
timeout "${SEEN_S:-240}" $PY -m ifkd bench quality --budget "$BUDGET" --out "$R/seen" $EQUAL $SELECT \
  --jobs "$J" --device "$DEVICE" 2>&1 | tee "$OUT/seen.log" | grep -v -E "^\s*(epoch|evaluate)" | tail -n 40
echo "seen took $(( $(date +%s) - T0 )) s"; save
T1=$(date +%s)
[ "${UNSEEN_S:-200}" -gt 0 ] && timeout "${UNSEEN_S:-200}" $PY -m ifkd bench generalise --protocol unseen \
  --budget "$BUDGET" --out "$R/unseen" $SELECT --jobs "$J" --device "$DEVICE" 2>&1 | tee "$OUT/unseen.log" \
  | grep -v -E "^\s*(epoch|evaluate)" | tail -n 30
echo "unseen took $(( $(date +%s) - T1 )) s"; save
# real meshes: ../shared is not copied to a device machine; carry a copy as .realdata/meshes
# (cp -rL ../shared/realdata/meshes .realdata/; both .whl and .realdata in .git/info/exclude)
MESHES=${MESHES:-../shared/realdata/meshes}
[ -d "$MESHES" ] || MESHES=.realdata/meshes
T2=$(date +%s)
[ "${REAL_S:-100}" -gt 0 ] && timeout "${REAL_S:-100}" $PY -m ifkd bench generalise --protocol real --budget "$BUDGET" \
  --meshes "$MESHES" --out "$R/real" $SELECT --jobs "$J" --device "$DEVICE" 2>&1 \
  | tee "$OUT/real.log" | tail -n 20
echo "real took $(( $(date +%s) - T2 )) s"; save
cd "$R"
# weights (the scored 'last' checkpoints, seed 0) for the report's figures and the shipped model;
# at most 16 MB a file comes back, so a few methods per archive
pack() { local f; f=$(for r in "${@:2}"; do ls -d seen/runs/$r/checkpoints/last.safetensors >/dev/null 2>&1 && \
  ls -d seen/runs/$r/config.json seen/runs/$r/metrics.jsonl seen/runs/$r/checkpoints/last.*; done 2>/dev/null)
  [ -n "$f" ] && tar czf "$OUT/$1.tgz" $f || echo "$1: no weights trained by this call"; }
pack weights_a ifkd-s0 ifkd-nokd-s0 ifkd-global-s0 global-s0 camera-s0 teacher-s0
ls -la "$OUT"
