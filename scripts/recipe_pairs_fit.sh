#!/usr/bin/env bash
# Can the shipped agent's architecture use the words at all? (#28) Fit minimal pairs of 20 train houses from (f)
# and score the branch frames of those same pairs and of unseen houses' pairs. Every step resumes after a kill
# (or is quick to redo): rerun the script until it prints the scores. Figures: docs/experiments.md, 2026-12-07.
set -euo pipefail
cd "$(dirname "$0")/.."
V=.venv/bin/vidnav
[ -f data/vidnav/val_unseen/val_unseen.json.gz ] || $V data build --out data/vidnav  # a rerun rebuilds it all
# course-holding expert on the first path of every 15th train house (20 houses), in two processes
for i in 0 1; do
  OMP_NUM_THREADS=1 $V data rollouts --data data/vidnav --paths-per-house 1 --forward-tolerance 1.0 \
      --shard $i/30 --out data/rollouts/fit-expert-s$i &
done; wait
OMP_NUM_THREADS=1 $V data rollouts --data data/vidnav --split val_unseen --paths-per-house 1 --shard 0/2 \
    --out data/rollouts/val-unseen-expert
for i in 0 1; do
  $V data pairs --data data/vidnav --rollouts data/rollouts/fit-expert-s$i --out data/rollouts/fit-pairs-s$i \
      --goals-per-path 8
done
$V data pairs --data data/vidnav --rollouts data/rollouts/val-unseen-expert --out data/rollouts/val-unseen-pairs
OMP_NUM_THREADS=2 $V train --config configs/recipes/pairs-fit.yaml --no-progress
OMP_NUM_THREADS=2 $V train --config configs/recipes/pairs-fit-packed.yaml --no-progress
for agent in default runs/pairs/fit400/final runs/pairs/fit-packed300/final; do
  for pairs in "data/rollouts/fit-pairs-s0 --data data/rollouts/fit-pairs-s1" data/rollouts/val-unseen-pairs; do
    $V validate --agent $agent --data $pairs --pairs
  done
done
