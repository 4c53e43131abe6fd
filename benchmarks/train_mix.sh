#!/usr/bin/env bash
# The shipped cpu-size weights trained on the procedural + real-shape mix (issue #15), on one core.
#
# Usage: benchmarks/train_mix.sh SYNTH REAL RUNS
#   SYNTH = ifkd data synth --out SYNTH --per-category 30 --views 8 --seed 0
#   REAL  = ifkd data real --out REAL
#   RUNS  = folder for the teacher and student runs (RUNS/teacher-mix, RUNS/ifkd-mix)
# Threads: TEACHER_THREADS and STUDENT_THREADS (default 1 each; the other core runs benchmarks).
# Resumable: rerun the same command and each run continues from its last checkpoint (a finished run
# has no epochs left and returns at once). Real shapes weigh 1.5 against procedural ones (data.source_weights); the student's
# validation IoU on the real val split is logged beside the procedural one (data.val_extra).
set -euo pipefail
SYNTH=$1 REAL=$2 RUNS=$3
mkdir -p "$RUNS"

# run NAME ARGS...: train into RUNS/NAME, resuming it if it started.
run() {
  local name=$1; shift
  local out="$RUNS/$name"
  local resume=()
  [ -f "$out/config.json" ] && resume=(--resume)
  python -m ifkd train "$@" --out "$out" "${resume[@]}"
}

OMP_NUM_THREADS=${TEACHER_THREADS:-1} run teacher-mix teacher --data "$SYNTH" --data-extra "$REAL" --preset cpu --kind ifnet \
  --set data.source_weights=1,1.5 --set train.epochs_recon=25 --set train.val_shapes=39

OMP_NUM_THREADS=${STUDENT_THREADS:-1} run ifkd-mix student --data "$SYNTH" --data-extra "$REAL" --preset cpu --method ifkd \
  --teacher "$RUNS/teacher-mix" \
  --set data.source_weights=1,1.5 --set data.val_extra=true \
  --set train.epochs_recon=105 --set train.epochs_kd=45 \
  --set student.kd_feature=point --set train.kd_weight=0.5 --set train.val_shapes=39
