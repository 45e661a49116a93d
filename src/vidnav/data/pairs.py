"""Minimal pairs: training samples whose frames cannot tell the action, only the words can.

For an expert trajectory A (start pose s, goal g_A) we sample other goals g_B in the same house and write, for
each, the path s -> g_B's instruction. Up to the frame where the expert heading for g_B would first act
differently from A (the *branch*: another door, another turn at the start, stopping earlier or walking on), the
frames A recorded are exactly the frames a walk to g_B would have shown. The pair sample is A's frames 0..branch
with g_B's instruction and, at every one of those states, the g_B follower's next k actions (computed on the
map, no rendering). Trained beside A itself, the branch frame is seen twice with the same history and two
instructions that ask for two different actions.

A pair record points at A's feature key with ``"prefix": true`` (its targets cover the first frames of the
stored trajectory) and records the branch, the other goal and the poses, so it can be checked and relabelled.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vidnav.errors import VidNavError
from vidnav.sim.navmap import FollowerConfig

SOURCE = "pair"


def branch_frame(own: list[list[str]], other: list[list[str]]) -> int | None:
    """The first frame whose first action differs between two label sequences of the same states, else None."""
    for t, (a, b) in enumerate(zip(own, other)):
        if a[0] != b[0]:
            return t
    return None


def pairs_for_trajectory(
    nav,
    house,
    rec: dict,
    start: tuple[float, float, float],
    n_goals: int,
    rng: np.random.Generator,
    follower: FollowerConfig,
) -> list[dict]:
    """Up to ``n_goals`` pair records for the expert record ``rec`` (with ``poses``) that starts at ``start``."""
    from vidnav.data.instructions import write_instructions
    from vidnav.data.paths import sample_paths
    from vidnav.data.rollouts import expert_targets

    poses = rec["poses"]
    k = len(rec["targets"][0])
    out, texts = [], {rec["instruction"]}
    for path in sample_paths(house, n_goals, rng, nav=nav, start=start):
        labels = []
        for t, pose in enumerate(poses):  # stop at the branch: later states are off the way to g_B
            labels.append(expert_targets(nav, tuple(pose), path.goal, k, follower))
            if labels[-1][0] != rec["targets"][t][0]:
                break
        branch = branch_frame(rec["targets"], labels)
        if branch is None:
            continue  # the same actions as A all the way: the words would not decide anything here
        text = write_instructions(path.semantics, rng, n=1)[0]
        if text in texts:
            continue
        texts.add(text)
        out.append(
            {
                "key": rec["key"],
                "instruction": text,
                "targets": labels,
                "prefix": True,
                "source": SOURCE,
                "episode_id": f"{rec['episode_id']}~{len(out)}",
                "scene_id": rec.get("scene_id", ""),
                "pair_of": str(rec["episode_id"]),
                "branch": branch,
                "goal": [float(v) for v in path.goal],
                "poses": poses[: branch + 1],
                "follower_tolerance": follower.forward_tolerance,
                "follower_stop_distance": follower.stop_distance,
            }
        )
    return out


def make_pairs(
    data_dir: str | os.PathLike,
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    goals_per_path: int = 4,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Write ``out/trajectories.jsonl`` with minimal pairs of every path in the expert rollout folder ``src``
    (one path's R2R instructions share its frames: each path is paired once) and link ``out/features`` to
    ``src``'s feature store. Deterministic given ``seed``; written atomically, so a rerun starts over."""
    from rich.progress import track

    from vidnav.data.dataset import FEATURES, TRAJECTORIES
    from vidnav.data.episodes import load_split
    from vidnav.io import atomic_write_text, dumps_json, read_jsonl_records
    from vidnav.sim.env import VLNEnv

    src, out = Path(src), Path(out)
    if goals_per_path < 1:
        raise VidNavError(f"--goals-per-path must be >= 1, got {goals_per_path}")
    if src.resolve() == out.resolve():
        raise VidNavError(f"pairs --out {out} is the source folder; write the pairs to another folder")
    records = read_jsonl_records(src / TRAJECTORIES, "episode_id", "trajectories")
    if not records:
        raise VidNavError(f"{src / TRAJECTORIES} holds no trajectories; collect expert rollouts first")
    if not (src / FEATURES / "meta.json").exists():
        raise VidNavError(f"{src / FEATURES} is not a feature store; is {src} a rollout folder?")
    link = out / FEATURES
    if (link.exists() or link.is_symlink()) and link.resolve() != (src / FEATURES).resolve():
        raise VidNavError(f"{link} exists and is not {src / FEATURES}; write the pairs into a new --out folder")
    env = VLNEnv(data_dir=data_dir)
    splits: dict[str, tuple] = {}
    lines, keys, branches, skipped = [], set(), [], 0
    for rec in track(records, description=f"pairs {src.name}", disable=not progress):
        if rec["key"] in keys:
            continue
        keys.add(rec["key"])
        if rec.get("source", "expert") != "expert" or not rec.get("poses"):
            skipped += 1  # a DAgger walk is not a route an instruction describes
            continue
        split = rec["key"].split("/")[0]
        if split not in splits:
            eps = load_split(data_dir, split)
            splits[split] = eps, {str(e.episode_id): e for e in eps.episodes}
        eps, by_id = splits[split]
        ep = by_id.get(str(rec["episode_id"]))
        if ep is None:
            raise VidNavError(
                f"{src / TRAJECTORIES}: episode {rec['episode_id']} is not in the {split} split of "
                f"{data_dir}; make pairs with the benchmark the rollouts were collected on (--data)"
            )
        task = env.task_from_episode(ep, eps.gt_for(ep))
        if len(rec["poses"]) != len(rec["targets"]):
            raise VidNavError(
                f"{src / TRAJECTORIES}: episode {rec['episode_id']} has {len(rec['poses'])} poses "
                f"for {len(rec['targets'])} frames; collect it again"
            )
        follower = FollowerConfig(
            forward_tolerance=float(rec.get("follower_tolerance", 0.5)),
            stop_distance=float(rec.get("follower_stop_distance", 0.25)),
        )
        rng = np.random.default_rng([seed, *map(ord, rec["key"])])
        for pair in pairs_for_trajectory(
            env.navmap_for(task.house), task.house, rec, tuple(task.start), goals_per_path, rng, follower
        ):
            branches.append(pair["branch"])
            lines.append(dumps_json(pair))
    if not lines:
        raise VidNavError(
            f"no minimal pairs from {src}: it needs expert records with poses (collected by "
            "`vidnav data rollouts`); DAgger records are not paired"
        )
    out.mkdir(parents=True, exist_ok=True)
    if not link.exists():
        link.symlink_to(os.path.relpath(src.resolve() / FEATURES, out.resolve()), target_is_directory=True)
    atomic_write_text(out / TRAJECTORIES, "".join(x + "\n" for x in lines))
    b = np.asarray(branches)
    return {
        "paths": len(keys) - skipped,
        "pairs": len(lines),
        "skipped_not_expert": skipped,
        "branch_at_start": int((b == 0).sum()),
        "branch_median_frame": float(np.median(b)),
    }
