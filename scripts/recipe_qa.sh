#!/usr/bin/env bash
# Embodied-question co-training from the shipped agent (#28): every step resumes after a kill, so rerun the
# script until it prints the comparison. About 2 CPU hours on 2 cores; the figures are in docs/experiments.md.
set -euo pipefail
cd "$(dirname "$0")/.."
V=.venv/bin/vidnav
$V data build --out data/vidnav                                   # 300 train + 50 unseen houses (seed 0)
# course-holding expert (--forward-tolerance 1.0) on every train house's first path, in two processes
for i in 0 1; do
  OMP_NUM_THREADS=1 $V data rollouts --data data/vidnav --paths-per-house 1 --forward-tolerance 1.0 \
      --shard $i/2 --out data/rollouts/expert-s$i &
done; wait
$V data rollouts --data data/vidnav --split val_unseen --paths-per-house 1 --out data/rollouts/val-unseen-expert
$V train --config configs/recipes/qa-from-default.yaml
$V validate --agent runs/qa/f-qa200/final --data data/rollouts/val-unseen-expert --samples 512 \
    --swap-instructions --questions data/vidnav --out runs/qa/f-qa200-validate.json
for pair in default:runs/qa/eval-default runs/qa/f-qa200/final:runs/qa/eval-f-qa200; do
  OMP_NUM_THREADS=1 $V eval --agent "${pair%%:*}" --replan-when-blocked --break-loops --data data/vidnav \
      --split val_unseen --episodes 500 --workers 2 --out "${pair#*:}"
done
$V compare runs/qa/eval-default runs/qa/eval-f-qa200 --by-rooms
