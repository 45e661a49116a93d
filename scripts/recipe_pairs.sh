#!/usr/bin/env bash
# Minimal pairs from the shipped agent (#28): every step resumes after a kill (or is quick to redo), so rerun the
# script until it prints the comparison. The figures are in docs/experiments.md (2026-12-04, "Minimal pairs").
# The run there used the 110 train houses whose expert rollouts were at hand (folders expert + expert-b); this
# script collects all 300, as configs/recipes/pairs-from-default.yaml would then read with its data: list edited.
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
# minimal pairs, no rendering: 8 other goals from each path's start (a few minutes)
for i in 0 1; do
  $V data pairs --data data/vidnav --rollouts data/rollouts/expert-s$i --out data/rollouts/pairs-s$i --goals-per-path 8
done
$V data pairs --data data/vidnav --rollouts data/rollouts/val-unseen-expert --out data/rollouts/val-unseen-pairs
$V train --config configs/recipes/pairs-from-default.yaml \
    --data data/rollouts/expert-s0 --data data/rollouts/expert-s1 --data data/rollouts/pairs-s0 --data data/rollouts/pairs-s1
M=runs/pairs/f-pairs600/final
for agent in default $M; do
  $V validate --agent $agent --data data/rollouts/val-unseen-pairs --pairs
done
for pair in default:runs/instruments/default-own $M:runs/pairs/eval-own; do
  OMP_NUM_THREADS=1 $V eval --agent "${pair%%:*}" --replan-when-blocked --break-loops --data data/vidnav \
      --split val_unseen --episodes 500 --workers 2 --out "${pair#*:}"
done
OMP_NUM_THREADS=1 $V eval --agent $M --replan-when-blocked --break-loops --instructions swapped --data data/vidnav \
    --split val_unseen --episodes 500 --workers 2 --out runs/pairs/eval-swapped
$V compare runs/instruments/default-own runs/pairs/eval-own --by-rooms
$V compare runs/pairs/eval-own runs/pairs/eval-swapped
