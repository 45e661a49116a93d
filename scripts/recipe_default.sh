#!/usr/bin/env bash
# The shipped agent (src/vidnav/assets/default_agent/) end to end, as docs/default_agent.md describes it: the
# benchmark, expert rollouts, six training runs with two DAgger rounds, the evaluation. Every command resumes
# after a kill (finished episodes, rollouts and checkpoints are kept), so rerun the script until it finishes.
# About 6 CPU hours on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"

# 1. the benchmark (defaults: 300 train houses, 50 unseen houses; seed 0): 719 s with 2 workers
vidnav data build --out data/vidnav

# 2. expert rollouts: the first path of all 300 train houses, 3 instructions each (900 episodes, 22.6k frames,
#    ~24 min in two processes), and of the 50 unseen houses for held-out scores (`vidnav validate`)
for i in 0 1; do
  OMP_NUM_THREADS=1 vidnav data rollouts --data data/vidnav --paths-per-house 1 --shard $i/2 --out data/rollouts/expert-s$i &
done; wait
vidnav data rollouts --data data/vidnav --split val_unseen --paths-per-house 1 --out data/rollouts/val-unseen-expert

# 3. the start phase: the first 13 frames of every trajectory only, where the instruction decides the first
#    turn (500 steps, 832 s)
vidnav train --preset tiny --memory uninavid --set current_pool=4 --set history_pool=1 \
    --data data/rollouts/expert-s0 --data data/rollouts/expert-s1 --first-frames 13 --max-steps 500 \
    --batch-size 16 --lr 5e-4 --warmup-steps 30 --out runs/start/lm500

# 4. labels of a course-holding expert for the same states, no rendering (~8 min for the two train folders)
for i in 0 1; do
  vidnav data relabel --data data/vidnav --rollouts data/rollouts/expert-s$i --out data/rollouts/expert-tol1-s$i &
done; wait
vidnav data relabel --data data/vidnav --rollouts data/rollouts/val-unseen-expert --out data/rollouts/val-unseen-expert-tol1

# 5. whole trajectories from the start-phase weights, the first 13 frames of every trajectory listed once more
#    (600 steps, 0.21 epoch, 1,282 s; training loss 1.41 -> 0.49)
OMP_NUM_THREADS=2 vidnav train --preset tiny --memory uninavid --init-from runs/start/lm500/final \
    --data data/rollouts/expert-tol1-s0 --data data/rollouts/expert-tol1-s1 --seed 1 --start-frames 13 --start-repeat 1 \
    --stride 2 --max-steps 600 --batch-size 16 --lr 3e-4 --warmup-steps 30 --save-steps 100 \
    --set current_pool=4 --set history_pool=1 --out runs/tol1/start600

# 6. DAgger round: model (b) from step 5 drives, mixed with the course-holding expert (beta 0.5), on one
#    instruction of every train house's first path (300 episodes, 25,638 labelled states, 28 min)
for i in 0 1; do
  OMP_NUM_THREADS=1 vidnav data rollouts --data data/vidnav --policy runs/tol1/start600/final --beta 0.5 \
      --forward-tolerance 1.0 --paths-per-house 1 --instructions-per-path 1 --shard $i/2 --source dagger-tol1 \
      --out data/rollouts/dagger-tol1-s$i &
done; wait

# 7. expert + DAgger sets together from (b) (600 steps, 2,091 s with a test run sharing the cores)
OMP_NUM_THREADS=2 vidnav train --preset tiny --memory uninavid --init-from runs/tol1/start600/final \
    --data data/rollouts/expert-tol1-s0 --data data/rollouts/expert-tol1-s1 \
    --data data/rollouts/dagger-tol1-s0 --data data/rollouts/dagger-tol1-s1 --seed 2 --start-frames 13 --start-repeat 1 \
    --stride 2 --max-steps 600 --batch-size 16 --lr 3e-4 --warmup-steps 30 --save-steps 100 \
    --set current_pool=4 --set history_pool=1 --out runs/tol1/dagger600

# 8. the same data, the last 8 frames of every trajectory (where the labels say stop) listed twice more
#    (400 steps, 81,973 samples, 0.08 epoch, 995 s alone; scratch script `stop`)
OMP_NUM_THREADS=2 vidnav train --preset tiny --memory uninavid --set current_pool=4 --set history_pool=1 \
    --init-from runs/tol1/dagger600/final \
    --data data/rollouts/expert-tol1-s0 --data data/rollouts/expert-tol1-s1 \
    --data data/rollouts/dagger-tol1-s0 --data data/rollouts/dagger-tol1-s1 --seed 3 --stride 2 \
    --start-frames 13 --start-repeat 1 --end-frames 8 --end-repeat 2 \
    --max-steps 400 --lr 2e-4 --batch-size 16 --warmup-steps 20 --save-steps 100 --out runs/tol1/stop400

# 9. DAgger round 2: model (d) from step 8 drives, mixed with the course-holding expert (beta 0.5, mixing seed 1),
#    on the same 300 episodes as step 6 (23,125 labelled states, 35 min; scratch script `dagger2`)
for i in 0 1; do
  OMP_NUM_THREADS=1 vidnav data rollouts --data data/vidnav --policy runs/tol1/stop400/final --beta 0.5 --seed 1 \
      --forward-tolerance 1.0 --paths-per-house 1 --instructions-per-path 1 --shard $i/2 --source dagger2-tol1 \
      --out data/rollouts/dagger2-tol1-s$i &
done; wait

# 10. from (d): expert + both DAgger rounds, the trajectory ends listed twice more as in step 8
#     (400 steps, 102,457 samples, 1,037 s; scratch script `round2`)
OMP_NUM_THREADS=2 vidnav train --preset tiny --memory uninavid --set current_pool=4 --set history_pool=1 \
    --init-from runs/tol1/stop400/final \
    --data data/rollouts/expert-tol1-s0 --data data/rollouts/expert-tol1-s1 \
    --data data/rollouts/dagger-tol1-s0 --data data/rollouts/dagger-tol1-s1 \
    --data data/rollouts/dagger2-tol1-s0 --data data/rollouts/dagger2-tol1-s1 --seed 4 --stride 2 \
    --start-frames 13 --start-repeat 1 --end-frames 8 --end-repeat 2 \
    --max-steps 400 --lr 2e-4 --batch-size 16 --warmup-steps 20 --save-steps 100 --out runs/tol1/r2-end400

# 11. from (e): 1,200 more steps on the same three sets, the same listing (102,457 samples, 0.19 epoch, 3,227 s;
#     scratch script `long`)
OMP_NUM_THREADS=2 vidnav train --preset tiny --memory uninavid --set current_pool=4 --set history_pool=1 \
    --init-from runs/tol1/r2-end400/final \
    --data data/rollouts/expert-tol1-s0 --data data/rollouts/expert-tol1-s1 \
    --data data/rollouts/dagger-tol1-s0 --data data/rollouts/dagger-tol1-s1 \
    --data data/rollouts/dagger2-tol1-s0 --data data/rollouts/dagger2-tol1-s1 --seed 6 --stride 2 \
    --start-frames 13 --start-repeat 1 --end-frames 8 --end-repeat 2 \
    --max-steps 1200 --lr 2e-4 --batch-size 16 --warmup-steps 20 --save-steps 100 --out runs/tol1/long1200

# 12. evaluation on the unseen houses (~31 min for 500 episodes with 2 workers), then ship with the run options it
#     was measured with (run_options.json: vidnav eval --agent default then re-plans and breaks loops unasked)
OMP_NUM_THREADS=1 vidnav eval --agent runs/tol1/long1200/final --replan-when-blocked --break-loops --data data/vidnav \
    --split val_unseen --episodes 500 --workers 2 --out runs/tol1/long1200-loops
cp runs/tol1/long1200/final/{config.json,model.safetensors} src/vidnav/assets/default_agent/
python -c 'from vidnav.run_options import PlanOptions, write_run_options; write_run_options(
    "src/vidnav/assets/default_agent", PlanOptions(replan_when_blocked=True, break_loops=True))'
