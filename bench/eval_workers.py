"""Evaluation throughput: episodes per minute with 1 and 2 worker processes, in one run.

    python bench/eval_workers.py --data data/vidnav --episodes 40 [--agent oracle]

Runs the same episodes twice into fresh temporary folders and prints episodes/min and the speed-up.
Needs a benchmark folder (`vidnav data build`); builds a small one in a temp folder when --data is omitted.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path)
    ap.add_argument("--episodes", type=int, default=40)
    ap.add_argument("--agent", default="oracle")
    args = ap.parse_args()
    from vidnav.eval.runner import evaluate

    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            from vidnav.data.build import BuildConfig, build_benchmark

            data = Path(tmp) / "bench"
            build_benchmark(
                data,
                BuildConfig(train_houses=0, unseen_houses=-(-args.episodes // 6), unseen_per_house=6),
                workers=2,
                progress=False,
            )
        rates = {}
        for workers in (1, 2):
            t = time.perf_counter()
            s = evaluate(
                data,
                "val_unseen",
                args.agent,
                Path(tmp) / f"w{workers}",
                episodes=args.episodes,
                workers=workers,
                progress=False,
            )
            dt = time.perf_counter() - t
            rates[workers] = s["episodes"] / dt * 60
            print(
                f"{args.agent}: {s['episodes']} episodes, {workers} worker(s): {dt:6.1f} s  "
                f"{rates[workers]:6.1f} episodes/min  (mean {s['steps']:.0f} steps/episode, SR {s['success']:.2f})"
            )
        print(f"speed-up 2 workers / 1 worker: {rates[2] / rates[1]:.2f}")


if __name__ == "__main__":
    main()
