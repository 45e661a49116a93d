"""Validation cost: loss and plan from two prefills (model(**batch) + model.plan) vs one (model.score_and_plan).

    python bench/validate_prefill.py [--frames 40] [--batch 16] [--repeats 3]

`vidnav validate` and `--eval-data` need, per batch, the teacher-forced loss and the greedy plan. Both start
with the same context (prompt, instruction, history and current-frame tokens); score_and_plan runs it through
the LM once and reuses the KV cache. This times both ways on a random-weight `tiny` model with the shipped
agent's token budget (current frame 4×4, history 1 token per frame), best of ``--repeats``, one torch thread,
and prints the speed-up as a ratio within the run (tests/model/test_modeling.py checks that the outputs agree).
"""

from __future__ import annotations

import argparse
import time

import torch

from vidnav.model import build_model


def best_time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=40, help="frames per sample (expert trajectories average 75)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build_model("tiny", current_pool=4, history_pool=1).eval()
    n, c = model.num_patches, model.vision.hidden_size
    instructions = ["leave the bedroom, walk past the desk and stop at the red barrel in the kitchen"] * args.batch
    feats = [torch.randn(max(1, args.frames - i), n, c) for i in range(args.batch)]
    batch = model.prepare_batch(instructions, feats, [["forward", "left", "forward", "stop"]] * args.batch)

    def two():
        with torch.no_grad():
            model(**batch)
        model.plan(batch)

    def one():
        model.score_and_plan(batch)

    t2, t1 = best_time(two, args.repeats), best_time(one, args.repeats)
    print(f"tiny, {args.batch} samples of up to {args.frames} frames, 1 thread, best of {args.repeats}")
    print(f"forward + plan (two prefills): {t2 * 1000:8.1f} ms per batch")
    print(f"score_and_plan (one prefill):  {t1 * 1000:8.1f} ms per batch   speed-up {t2 / t1:.2f}x")


if __name__ == "__main__":
    main()
