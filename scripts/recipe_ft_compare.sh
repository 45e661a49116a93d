#!/usr/bin/env bash
# Two levers measured in closed loop against the same control (2026-12-07; figures in docs/experiments.md):
#   #29  the streaming memory against the shipped uninavid memory (configs/recipes/ft-streaming.yaml)
#   #28  minimal pairs of every train path beside the paths (configs/recipes/ft-pairs.yaml)
# The control (configs/recipes/ft-uninavid.yaml) and both levers fine-tune the shipped agent (f) for the same 300
# steps on the same expert rollouts. Every step resumes after a kill: rerun the script until it prints the tables.
# EPISODES (default 100): the first N val_unseen episodes every agent is evaluated on.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
N=${EPISODES:-100}
[ -f data/vidnav/val_unseen/val_unseen.json.gz ] || vidnav data build --out data/vidnav  # a rerun rebuilds it all
# course-holding expert rollouts of the first path of every train house (3 instructions each), two processes
for i in 0 1; do
  OMP_NUM_THREADS=1 vidnav data rollouts --data data/vidnav --paths-per-house 1 --forward-tolerance 1.0 \
      --shard $i/2 --out data/rollouts/expert-tol1-s$i &
done; wait
for i in 0 1; do  # minimal pairs of those paths (on the map, no rendering)
  [ -f data/rollouts/pairs-tol1-s$i/trajectories.jsonl ] || vidnav data pairs --data data/vidnav \
      --rollouts data/rollouts/expert-tol1-s$i --out data/rollouts/pairs-tol1-s$i --goals-per-path 4
done
for run in uninavid streaming pairs; do
  OMP_NUM_THREADS=2 vidnav train --config configs/recipes/ft-$run.yaml --no-progress
done
for run in uninavid streaming pairs; do  # as a user runs them: the checkpoints carry the run options of (f)
  vidnav eval --agent runs/ft/${run}300/final --data data/vidnav --split val_unseen --episodes $N --workers 2 \
      --out runs/ft/eval/${run}300
done
for run in uninavid pairs; do  # does it read? the same episodes, each with another path's instruction
  vidnav eval --agent runs/ft/${run}300/final --data data/vidnav --split val_unseen --episodes $N --workers 2 \
      --instructions swapped --out runs/ft/eval/${run}300-swapped
done
vidnav compare runs/ft/eval/uninavid300 runs/ft/eval/streaming300
vidnav compare runs/ft/eval/uninavid300 runs/ft/eval/pairs300
vidnav compare runs/ft/eval/pairs300 runs/ft/eval/pairs300-swapped
vidnav compare runs/ft/eval/uninavid300 runs/ft/eval/uninavid300-swapped
