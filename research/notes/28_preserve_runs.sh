#!/usr/bin/env bash
# Issue #28 point 4: T2VUnlearning's preservation set, default rule (neighbours) vs the conditioning rule,
# toy world, seed 0, one run at a time. Results: runs/i28_pre/<concept>_<rule>/eval/metrics.json
set -u
cd "$(dirname "$0")/../.."
run() {  # concept rule rows
  local c="$1" rule="$2" rows="$3" d="runs/i28_pre/${1// /_}_$2"
  [ -f "$d/eval/metrics.json" ] && { echo "reuse $d"; return; }
  echo "$(date +%T) start $d"
  timeout 1500 python -m unlearn.cli fit --config configs/toy_shapes.yaml --seed_everything 0 \
    --data.init_args.seed 0 --data.init_args.concept "$c" --data.init_args.preserve_rule "$rule" \
    --trainer.default_root_dir "$d" --trainer.logger.init_args.save_dir "$d" \
    --trainer.callbacks.rows "$rows" --trainer.callbacks.sample_videos 0 > "$d.log" 2>&1
  echo "$(date +%T) done $d rc=$?"
}
mkdir -p runs/i28_pre
run "red ring" conditioning "[original, t2vunlearning]"
run "blue square" conditioning "[original, t2vunlearning]"
run "blue square" neighbours "[t2vunlearning]"
run "red ring" neighbours "[t2vunlearning]"
