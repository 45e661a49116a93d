"""Frozen-feature cache: the cost of a training sample with features read from disk vs encoded from frames.

    python bench/feature_cache.py [--episodes 6] [--samples 48] [--batch-size 8]

Builds a small benchmark and expert rollouts (features cached by the collector) in a temp folder, then
replays the same trajectories to get their frames back (as a pipeline without the cache would keep them:
decoded uint8 video in RAM, the best case for it). For the same random batches of training samples
(frames 0..t, instruction, next k actions) it times, in one run:

  cached      NavCollator reads frames 0..t from the memory-mapped fp16 store, then one train step
  re-encoded  the frozen tower encodes frames 0..t of every sample (what each epoch costs without a cache,
              as trainers that feed each sample its video clip do), then the same collate + train step

It also times the tower alone (ms per frame) and derives the epoch cost of the cheapest uncached pipeline
one can think of: every distinct frame of the rollout set encoded once per epoch (which needs the epoch's
features held somewhere: a cache by another name), so the second ratio is a lower bound.

The train step is the `tiny` preset's forward + backward with the shipped agent's token budget (Uni-NaVid,
current frame pooled 4x4, history 1 token per frame). Prints milliseconds per sample and the speed-ups.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def replay_frames(data: Path, rollout_dir: Path) -> dict[str, np.ndarray]:
    """Frames of every trajectory in a rollout folder, re-rendered by replaying its executed actions."""
    from vidnav.actions import WORD_ACTIONS
    from vidnav.data.dataset import read_trajectories
    from vidnav.data.episodes import load_split
    from vidnav.sim.env import VLNEnv

    eps = load_split(data, "train")
    by_id = {str(e.episode_id): e for e in eps.episodes}
    env = VLNEnv(data_dir=data)
    frames: dict[str, np.ndarray] = {}
    for traj in read_trajectories(rollout_dir):
        if traj.key in frames:
            continue
        obs, _ = env.reset(options={"episode": by_id[traj.episode_id], "gt": (eps.gt or {}).get(traj.episode_id)})
        seen = [obs["rgb"]]
        for words in traj.targets[:-1]:
            obs, *_ = env.step(WORD_ACTIONS[words[0]])
            seen.append(obs["rgb"])
        frames[traj.key] = np.stack(seen)
    env.close()
    return frames


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--episodes", type=int, default=6, help="expert episodes to collect (2 paths of 3 instructions)")
    ap.add_argument("--samples", type=int, default=48, help="training samples timed per pipeline")
    ap.add_argument("--batch-size", type=int, default=8)
    args = ap.parse_args()
    from vidnav.data.build import BuildConfig, build_benchmark
    from vidnav.data.dataset import NavCollator, NavSamples
    from vidnav.data.rollouts import collect_rollouts
    from vidnav.model import build_model

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        data, rollouts = Path(tmp) / "bench", Path(tmp) / "expert"
        build_benchmark(
            data,
            BuildConfig(
                train_houses=1, unseen_houses=0, episodes_per_house=args.episodes, val_seen_per_house=0, seed=5
            ),
            workers=1,
            progress=False,
        )
        collect_rollouts(data, "train", rollouts, episodes=args.episodes, progress=False)
        frames = replay_frames(data, rollouts)
        samples = NavSamples(rollouts, stride=2)  # as the shipped agent was trained
        model = build_model("tiny", memory="uninavid", current_pool=4, history_pool=1)
        model.train()
        collate = NavCollator(model, samples, with_index=False)
        # the replayed frames must be the ones the collector encoded
        key = samples.trajectories[0].key
        again = model.encode_frames(frames[key][:4]).to(torch.float16).float()
        stored = samples.features(0, 3)
        assert frames[key].shape[0] == samples.stores[0].index[key][2], "replay gave a different frame count"
        assert torch.allclose(again, stored, atol=5e-2), "replayed frames do not match the cached features"

        rng = np.random.default_rng(0)
        picks = rng.choice(len(samples), size=min(args.samples, len(samples)), replace=False)
        batches = [
            [samples[int(i)] for i in picks[j : j + args.batch_size]] for j in range(0, len(picks), args.batch_size)
        ]

        def step(batch: dict) -> None:
            model.zero_grad(set_to_none=True)
            model(**batch).loss.backward()

        class Reencoded:
            """The dataset's ``features(trajectory, t)`` with the tower run on the frames instead of the store."""

            def features(self, trajectory: int, t: int) -> torch.Tensor:
                with torch.no_grad():
                    feats = model.encode_frames(frames[samples.trajectories[trajectory].key][: t + 1])
                return feats.to(torch.float16).float()  # the precision the store keeps

        encoded = NavCollator(model, Reencoded(), with_index=False)
        step(collate(batches[0]))  # warm-up (allocations, tokenizer caches)
        per_sample = {}
        for name, make in (("cached", collate), ("re-encoded", encoded)):
            t0, data_s = time.perf_counter(), 0.0
            for items in batches:
                t1 = time.perf_counter()
                batch = make(items)
                data_s += time.perf_counter() - t1
                step(batch)
            per_sample[name] = (time.perf_counter() - t0) / len(picks)
            print(
                f"{name:10s} {per_sample[name] * 1000:7.1f} ms/sample  (data {data_s / len(picks) * 1000:7.1f} ms, "
                f"train step {(per_sample[name] - data_s / len(picks)) * 1000:6.1f} ms)"
            )
        probe = frames[key][:32]
        t0 = time.perf_counter()
        with torch.no_grad():
            model.encode_frames(probe)
        per_frame = (time.perf_counter() - t0) / len(probe)
        distinct = sum(len(f) for f in frames.values())
        once = per_sample["cached"] + per_frame * distinct / len(samples)
        mean_frames = np.mean([samples[int(i)]["t"] + 1 for i in picks])
        print(
            f"tower alone {per_frame * 1000:.1f} ms/frame; {len(picks)} timed samples with {mean_frames:.1f} frames "
            f"each on average; rollout set: {len(samples)} samples, {distinct} distinct frames "
            f"({len(samples.trajectories)} trajectories); batch size {args.batch_size}, "
            f"torch threads {torch.get_num_threads()}"
        )
        print(
            f"speed-up of the cache: {per_sample['re-encoded'] / per_sample['cached']:.1f}x over re-encoding each "
            f"sample's frames; {once / per_sample['cached']:.2f}x over encoding each distinct frame once per epoch"
        )


if __name__ == "__main__":
    main()
