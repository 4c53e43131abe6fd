#!/usr/bin/env bash
# The `cpu` benchmark budget (same data, presets, epochs and seeds as on the 2-core CPU) run on a lent
# GPU machine with 16 cores, as one prepared script: seen protocol, then unseen with the time left.
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
T0=$(date +%s)
timeout "${SEEN_S:-270}" $PY -m ifkd bench quality --budget "$BUDGET" --out "$R/seen" \
  --jobs "${JOBS:-8}" --device "$DEVICE" 2>&1 | tee "$OUT/seen.log" | grep -v -E "^\s*(epoch|evaluate)" | tail -n 60
echo "seen took $(( $(date +%s) - T0 )) s"
T1=$(date +%s)
[ "${UNSEEN_S:-100}" -gt 0 ] && timeout "${UNSEEN_S:-100}" $PY -m ifkd bench generalise --protocol unseen --budget "$BUDGET" \
  --out "$R/unseen" --jobs "${JOBS:-8}" --device "$DEVICE" 2>&1 | tee "$OUT/unseen.log" | tail -n 20
echo "unseen took $(( $(date +%s) - T1 )) s"
# real meshes: ../shared is not copied to a device machine; carry a copy as .realdata/meshes
# (cp -rL ../shared/realdata/meshes .realdata/; both .whl and .realdata in .git/info/exclude)
MESHES=${MESHES:-../shared/realdata/meshes}
[ -d "$MESHES" ] || MESHES=.realdata/meshes
T2=$(date +%s)
[ "${REAL_S:-120}" -gt 0 ] && timeout "${REAL_S:-120}" $PY -m ifkd bench generalise --protocol real --budget "$BUDGET" \
  --meshes "$MESHES" --out "$R/real" --jobs "${JOBS:-8}" --device "$DEVICE" 2>&1 \
  | tee "$OUT/real.log" | tail -n 20
echo "real took $(( $(date +%s) - T2 )) s"
T3=$(date +%s)
[ "${EQUAL_S:-0}" -gt 0 ] && timeout "${EQUAL_S:-0}" $PY -m ifkd bench generalise --protocol unseen --budget "$BUDGET" \
  --out "$R/unseen" --equal-time --jobs "${JOBS:-8}" --device "$DEVICE" 2>&1 | tee "$OUT/equal.log" | tail -n 20
echo "equal time took $(( $(date +%s) - T3 )) s"
cd "$R"
tar czf "$OUT/results.tgz" --exclude='*/data' --exclude='*/data_real' --exclude='*.safetensors' --exclude='*/runs-time' . 2>/dev/null
# weights (the scored 'last' checkpoints, seed 0) for the report's figures and the shipped model;
# at most 16 MB a file comes back, so a few methods per archive
pack() { tar czf "$OUT/$1.tgz" $(for r in "${@:2}"; do ls -d seen/runs/$r/config.json seen/runs/$r/metrics.jsonl \
  seen/runs/$r/checkpoints/last.safetensors seen/runs/$r/checkpoints/last.json 2>/dev/null; done); }
pack weights_a ifkd-s0 teacher-s0 teacher-simple-s0 global-s0
pack weights_b ifkd-nokd-s0
pack weights_c camera-s0
ls -la "$OUT"
