"""Packed training sequences vs one sequence per sample: training cost per supervised frame.

    python bench/packed_training.py [--trajectories 8] [--frames 75] [--pack-frames 16 32] [--repeats 2]

Per-sample training (``vidnav train`` without ``--pack-frames``) runs, for every supervised frame t, the prompt,
the instruction and the history of frames 0..t-1 through the LM again; a packed sequence
(:mod:`vidnav.model.packing`, ``--pack-frames F``) holds them once for up to F supervised frames of one trajectory.
Both give the same loss (tests/model/test_packing.py checks it to float precision).

The model is the ``tiny`` preset with the shipped agent's memory and token budget (Uni-NaVid, current frame 4x4,
history 1 token per frame); the features are random (the cost does not depend on them), trajectories of
``--frames`` frames (the course-holding expert's mean is 75) with a real benchmark instruction. For the same
trajectories, every frame supervised, it times one forward + backward over:

  per-sample  batches of 16 samples (the shipped recipe's batch size), in the order of the frames
  packed F    batches of 4 sequences of F consecutive frames each

and prints milliseconds per supervised frame and the speed-up of each packed size over per-sample, median of
``--repeats`` passes. One thread per process unless OMP_NUM_THREADS says otherwise; ratios within one run are what
to read (the machine is shared).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

INSTRUCTION = (
    "Walk out of the bedroom into the hallway, turn left and go past the blue barrel on your right. "
    "Enter the kitchen and stop next to the red box."
)


def _targets(n: int, k: int) -> list[list[list[str]]]:
    words = ["forward", "forward", "left", "forward", "right", "forward"]
    seq = [words[i % len(words)] for i in range(n - 1)] + ["stop"]
    return [(seq[t : t + k] + ["stop"] * k)[:k] for t in range(n)]


def _step(model, batch) -> None:
    model.zero_grad(set_to_none=True)
    model(**batch).loss.backward()


def time_per_sample(model, feats, targets, batch_size: int) -> tuple[float, int]:
    items = [(j, t) for j in range(len(feats)) for t in range(feats[j].shape[0])]
    t0 = time.perf_counter()
    for i in range(0, len(items), batch_size):
        chunk = items[i : i + batch_size]
        _step(
            model,
            model.prepare_batch(
                [INSTRUCTION] * len(chunk), [feats[j][: t + 1] for j, t in chunk], [targets[j][t] for j, t in chunk]
            ),
        )
    return time.perf_counter() - t0, len(items)


def time_packed(model, feats, targets, pack: int, sequences: int) -> tuple[float, int]:
    chunks = [
        (j, list(range(s, min(s + pack, feats[j].shape[0]))))
        for j in range(len(feats))
        for s in range(0, feats[j].shape[0], pack)
    ]
    t0 = time.perf_counter()
    for i in range(0, len(chunks), sequences):
        group = chunks[i : i + sequences]
        _step(
            model,
            model.prepare_packed_batch(
                [INSTRUCTION] * len(group),
                [feats[j][: ts[-1] + 1] for j, ts in group],
                [ts for _, ts in group],
                [[targets[j][t] for t in ts] for j, ts in group],
            ),
        )
    return time.perf_counter() - t0, sum(len(ts) for _, ts in chunks)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trajectories", type=int, default=8)
    ap.add_argument("--frames", type=int, default=75, help="frames per trajectory")
    ap.add_argument("--pack-frames", type=int, nargs="+", default=[16, 32])
    ap.add_argument("--sequences", type=int, default=4, help="packed sequences per batch")
    ap.add_argument("--batch-size", type=int, default=16, help="per-sample batch size")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    from vidnav.model import build_model

    torch.manual_seed(0)
    model = build_model("tiny", memory="uninavid", current_pool=4, history_pool=1).train()
    g = torch.Generator().manual_seed(0)
    feats = [
        torch.randn(args.frames, model.num_patches, model.vision.hidden_size, generator=g).abs()
        for _ in range(args.trajectories)
    ]
    targets = [_targets(args.frames, model.config.num_actions) for _ in feats]
    runs = {"per-sample": lambda: time_per_sample(model, feats, targets, args.batch_size)}
    for f in args.pack_frames:
        runs[f"packed {f}"] = lambda f=f: time_packed(model, feats, targets, f, args.sequences)
    results: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):  # interleaved, so a busy spell of the machine hits every pipeline
        for name, run in runs.items():
            seconds, frames = run()
            results[name].append(1000 * seconds / frames)
    base = statistics.median(results["per-sample"])
    print(
        f"{args.trajectories} trajectories x {args.frames} frames, every frame supervised, forward + backward, "
        f"torch threads {torch.get_num_threads()}"
    )
    print(f"{'pipeline':<12} {'ms / frame':>10} {'speed-up':>9}")
    for name, ms in results.items():
        med = statistics.median(ms)
        print(f"{name:<12} {med:>10.1f} {base / med:>8.1f}x")


if __name__ == "__main__":
    main()
