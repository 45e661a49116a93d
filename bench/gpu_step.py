"""GPU check for #29: seconds per 4-action Agent call at step ~400, 7B-shaped random weights, bf16.

For each memory (default uninavid and streaming) and decoder (tree: k words from one LM call; sequential: one
call per token), optionally with the LM decoder under torch.compile, prints the median act() latency at steps
20 and 400 (the vision tower on the new frame included) and the ratio. The target: <= 0.05 s at step 400.

    python bench/gpu_step.py                       # on a machine with a CUDA GPU; about 5 minutes on an H100
    python bench/gpu_step.py --compile             # the same with torch.compile(dynamic=True) on the LM decoder
    python bench/gpu_step.py --device cpu --preset tiny --late 60   # a smoke run of this script on a CPU

Only frames' features and random weights: nothing to download. The streaming memory edits a DynamicCache
(entries evicted by index), so a static cache / CUDA graphs would need a ring-buffer cache with masks; not here.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_calls(agent, feats, frames, step: int, repeats: int, device) -> float:
    while agent.steps < step - 1:
        agent.observe_features(feats[agent.steps : agent.steps + 1])
    agent.plan()  # untimed: the entries of the frames observed since the last call
    times = []
    for _ in range(repeats):
        frame = frames[agent.steps]
        sync(device)
        t0 = time.perf_counter()
        agent.act(frame)
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="navid-7b")
    p.add_argument("--memories", default="uninavid,streaming")
    p.add_argument("--decodings", default="tree,sequential")
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--early", type=int, default=20)
    p.add_argument("--late", type=int, default=400)
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--compile", action="store_true", help="torch.compile(dynamic=True) the LM decoder")
    args = p.parse_args(argv)

    from vidnav.agent import Agent
    from vidnav.model import build_model

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here; run with --device cpu --preset tiny for a smoke run")
    dtype = getattr(torch, args.dtype)
    n = args.late + args.repeats + 2
    frames = torch.randint(0, 256, (n, 224, 224, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    frames = frames.numpy()
    print(
        f"preset {args.preset} (random weights), {device} {args.dtype}, compile {args.compile}; median of "
        f"{args.repeats} act() calls, k = 4 actions per call",
        flush=True,
    )
    feats = None
    for memory in args.memories.split(","):
        torch.manual_seed(0)
        model = build_model(args.preset, pretrained=False, device=device, dtype=dtype, memory=memory).eval()
        if args.compile:
            base = model._base_lm()
            base.model.forward = torch.compile(base.model.forward, dynamic=True)
        if feats is None:
            with torch.no_grad():
                feats = torch.cat([model.encode_frames(frames[i : i + 32]) for i in range(0, n, 32)])
        for decoding in args.decodings.split(","):
            model.decoding = decoding
            agent = Agent(model)
            instruction = "walk past the bicycles, turn left at the corner and stop next to the door"
            agent.reset(instruction)
            for f in frames[:3]:  # warm-up (kernels, compilation) outside the timed calls
                agent.act(f)
            agent.reset(instruction)
            with torch.no_grad():
                early = timed_calls(agent, feats, frames, args.early, args.repeats, device)
                late = timed_calls(agent, feats, frames, args.late, args.repeats, device)
            print(
                f"  {memory:9s} {decoding:10s} step {args.early}: {early:.3f} s  step {args.late}: {late:.3f} s  "
                f"ratio {late / early:.2f}  {'meets' if late <= 0.05 else 'misses'} <= 0.05 s",
                flush=True,
            )
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
