"""Rollouts for training: expert and DAgger trajectories with frozen vision features cached on disk.

    collect_rollouts("data/vidnav", "train", "data/rollouts/expert")                  # the expert
    collect_rollouts("data/vidnav", "train", "data/rollouts/dagger-1",
                     policy="runs/tiny/final", beta=0.5, source="dagger-1")          # DAgger round 1

A rollout folder holds ``features/`` (a FeatureStore: tower features [T, N, C] per trajectory key) and
``trajectories.jsonl``, one line per episode: ``{"key", "instruction", "targets", "source", "episode_id",
"scene_id"}`` where ``targets[t]`` are the expert's next k action words from the state at frame t, as NaVid
and Uni-NaVid train (frames so far, instruction → next actions).

Expert rollouts render each trajectory once: R2R's three instructions per path share the frames, so the
three episodes point at one feature key. DAgger runs the current policy, mixed with the expert by β (at each
step the expert's action is executed with probability β), and labels every visited state with the expert's
next actions. Interrupted collection resumes: finished episodes are skipped, nothing is duplicated.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np

from vidnav.actions import ACTION_WORDS, STOP, WORD_ACTIONS
from vidnav.errors import VidNavError
from vidnav.io import JsonlAppender, read_jsonl_records, writer_lock
from vidnav.sim.navmap import FollowerConfig


def expert_targets(
    nav, pose: tuple[float, float, float], goal: tuple[float, float], k: int, follower: FollowerConfig | None = None
) -> list[str]:
    """The follower's next ``k`` actions from ``pose`` (simulated on the map, no rendering); after a
    ``stop`` the rest is ``stop``."""
    follower = follower or FollowerConfig()
    x, z, h = pose
    out = []
    for _ in range(k):
        a = STOP if out and out[-1] == "stop" else nav.expert_action(x, z, h, *goal, follower)
        out.append(ACTION_WORDS[a])
        if a != STOP:
            x, z, h, _ = nav.step(x, z, h, a)
    return out


def _follower_fields(follower: FollowerConfig) -> dict:
    """What a trajectory record says about the follower that labelled it (collector and relabel alike)."""
    return {"follower_tolerance": follower.forward_tolerance, "follower_stop_distance": follower.stop_distance}


def _check_same_follower(traj_path: Path, previous: list[dict], follower: FollowerConfig) -> None:
    """Resuming must not mix the labels of two followers in one folder (records from before a field existed
    were labelled with its default)."""
    want = _follower_fields(follower)
    defaults = _follower_fields(FollowerConfig())
    for field, option in (("follower_tolerance", "--forward-tolerance"), ("follower_stop_distance", "stop distance")):
        other = {r.get(field, defaults[field]) for r in previous} - {want[field]}
        if other:
            raise VidNavError(
                f"{traj_path} was collected with {option} {other.pop():g}, not {want[field]:g}; "
                f"resume with the same value or use another --out"
            )


def _check_manifest(out: Path, data_dir: str | Path, split: str) -> None:
    """OUT/manifest.json names what the folder is and a fingerprint of the episodes it was collected from; a
    rerun on other episodes (the data rebuilt at the same path, another benchmark) is refused, since it would skip
    the other benchmark's episodes as done and mix their labels. A folder from before manifests is adopted."""
    from vidnav.data.episodes import split_paths
    from vidnav.io import files_sha256, read_json, write_json

    path = out / "manifest.json"
    sha = files_sha256(*split_paths(data_dir, split))
    manifest = (
        read_json(path, "rollout manifest") if path.exists() else {"kind": "vidnav rollouts", "episodes_sha256": {}}
    )
    if not isinstance(manifest, dict) or manifest.get("kind") != "vidnav rollouts":
        raise VidNavError(f"{path} is not a vidnav rollout manifest; collect into another --out")
    old = manifest["episodes_sha256"].get(split)
    if old is not None and old != sha:
        raise VidNavError(
            f"{path}: {out} was collected from other episodes of split {split!r} (episodes_sha256 "
            f"{old[:12]}..., now {sha[:12]}... for {data_dir}); was the data rebuilt? collect into "
            "another --out"
        )
    if old is None:
        manifest["episodes_sha256"][split] = sha
        manifest.setdefault("data", {})[split] = str(Path(data_dir).resolve())
        write_json(path, manifest)


def _check_done_keys(traj_path: Path, previous: list[dict], store) -> None:
    """Every trajectory listed as collected must have its features in the store, or resuming would skip it for
    good while training cannot read it."""
    lost = sorted({r["key"] for r in previous} - set(store.keys()))
    if lost:
        raise VidNavError(
            f"{traj_path} lists trajectories whose features are not in {store.root} "
            f"({', '.join(lost[:3])}{' ...' if len(lost) > 3 else ''}); restore the folder from a copy, "
            "or collect again into a new --out"
        )


class _Encoder:
    """The frozen vision tower of a preset (only the tower is used; features are what the model reads)."""

    def __init__(self, model):
        self.model = model

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.model.encode_frames(frames).to(torch.float16).cpu().numpy()


def _policy_and_encoder(policy: str | None, preset: str, device: str | None = None, dtype: str | None = None):
    """The policy (None for the expert), the frame encoder and the model both use, on ``device`` in ``dtype``."""
    from vidnav.model import build_model

    if policy is None:
        model = build_model(preset, device=device, dtype=dtype)
        return None, _Encoder(model), model
    import torch

    from vidnav.agent import load_agent

    agent = load_agent(policy, device=device, dtype=getattr(torch, dtype) if dtype else None)
    return agent, _Encoder(agent.model), agent.model


def _placement(model) -> dict:
    """Where ``model`` runs, read from its weights: ``{"device": "cuda:0", "dtype": "bfloat16"}``."""
    p = next(model.parameters())
    return {"device": str(p.device), "dtype": str(p.dtype).removeprefix("torch.")}


def parse_shard(shard: str) -> tuple[int, int]:
    """``"I/N"`` -> (I, N) with 0 <= I < N."""
    try:
        index, count = (int(x) for x in shard.split("/"))
    except ValueError:
        raise VidNavError(f"--shard must look like I/N (e.g. 0/2), got {shard!r}") from None
    if count < 1 or not 0 <= index < count:
        raise VidNavError(f"--shard {shard}: need N >= 1 and 0 <= I < N")
    return index, count


def select_episodes(
    episodes: list,
    *,
    episodes_limit: int | None = None,
    paths_per_house: int | None = None,
    skip_paths: int = 0,
    instructions_per_path: int | None = None,
) -> list:
    """The episodes a rollout run covers, in split order: with ``paths_per_house`` K and ``skip_paths`` S, those
    on paths S+1 .. S+K of every house (paths counted in the order they first appear in the split); with
    ``instructions_per_path`` J, only the first J episodes (instructions) of each path; then the first
    ``episodes_limit`` of what is left."""
    if skip_paths < 0:
        raise VidNavError(f"--skip-paths must be >= 0, got {skip_paths}")
    if skip_paths and paths_per_house is None:
        raise VidNavError("--skip-paths needs --paths-per-house (how many paths to take after the skipped ones)")
    selected = list(episodes)
    if paths_per_house is not None:  # spread a budget over many houses: K paths of each
        if paths_per_house < 1:
            raise VidNavError(f"--paths-per-house must be >= 1, got {paths_per_house}")
        seen: dict[str, list] = {}
        for e in selected:
            trajs = seen.setdefault(e.scene_id, [])
            if e.trajectory_id not in trajs:
                trajs.append(e.trajectory_id)
        keep = {t for trajs in seen.values() for t in trajs[skip_paths : skip_paths + paths_per_house]}
        selected = [e for e in selected if e.trajectory_id in keep]
    if instructions_per_path is not None:  # DAgger: more paths for the same budget
        if instructions_per_path < 1:
            raise VidNavError(f"--instructions-per-path must be >= 1, got {instructions_per_path}")
        taken: dict[int, int] = {}
        kept = []
        for e in selected:
            taken[e.trajectory_id] = taken.get(e.trajectory_id, 0) + 1
            if taken[e.trajectory_id] <= instructions_per_path:
                kept.append(e)
        selected = kept
    return selected if episodes_limit is None else selected[:episodes_limit]


def collect_rollouts(
    data_dir: str | Path,
    split: str,
    out: str | Path,
    *,
    policy: str | None = None,
    beta: float = 1.0,
    episodes: int | None = None,
    paths_per_house: int | None = None,
    skip_paths: int = 0,
    instructions_per_path: int | None = None,
    preset: str = "tiny",
    k: int | None = None,
    max_steps: int = 500,
    seed: int = 0,
    source: str | None = None,
    shard: str | None = None,
    follower: FollowerConfig | None = None,
    progress: bool = True,
    device: str | None = None,
    dtype: str | None = None,
) -> dict:
    """Collect expert (``policy=None``) or DAgger rollouts for the first ``episodes`` of ``split`` (with
    ``paths_per_house``: of the episodes on the first K paths of every house, after the first ``skip_paths``;
    with ``instructions_per_path``: only the first J of each path's instructions; see ``select_episodes``).
    ``shard="I/N"`` keeps every N-th of the selected *paths* starting at the I-th, with all their episodes, so
    N processes can collect into N folders at once and each path is rendered and encoded by one process only.
    ``follower`` is the expert that acts and labels (default: the benchmark's reference follower). Every record
    keeps the pose of each state. ``device`` (cpu, cuda, cuda:N, mps) and ``dtype`` (float32, bfloat16,
    float16) place the policy and the vision tower; every record names the device and dtype they ran in."""
    from vidnav.data.episodes import load_split
    from vidnav.data.features import FeatureStore
    from vidnav.sim.env import VLNEnv

    if not 0.0 <= beta <= 1.0:
        raise VidNavError(f"--beta must be in [0, 1], got {beta}")
    if policy is None and beta != 1.0:
        raise VidNavError("--beta < 1 mixes in a policy: give --policy <checkpoint folder>")
    from vidnav.pool import check_device

    check_device(device, dtype)  # before the model loads
    source = source or ("expert" if policy is None else f"dagger-b{beta:g}")
    follower = follower or FollowerConfig()
    out = Path(out)
    with writer_lock(out, "rollouts"):  # before reading what is done: one job per folder
        eps = load_split(data_dir, split)
        _check_manifest(out, data_dir, split)
        selected = select_episodes(
            eps.episodes,
            episodes_limit=episodes,
            paths_per_house=paths_per_house,
            skip_paths=skip_paths,
            instructions_per_path=instructions_per_path,
        )
        if shard is not None:  # whole paths per shard: a path's frames are rendered and encoded once
            index, count = parse_shard(shard)
            order = {t: i for i, t in enumerate(dict.fromkeys(e.trajectory_id for e in selected))}
            selected = [e for e in selected if order[e.trajectory_id] % count == index]
        agent, encode, model = _policy_and_encoder(policy, preset, device, dtype)
        placement = _placement(model)
        k = k or model.config.num_actions
        env = VLNEnv(data_dir=data_dir, max_steps=max_steps)
        traj_path = out / "trajectories.jsonl"
        previous = read_jsonl_records(traj_path, "episode_id", "trajectories", repair=True)
        _check_same_follower(traj_path, previous, follower)
        done = {r["episode_id"] for r in previous}
        store = None
        if previous or (out / "features" / "meta.json").exists():  # check the folder before rendering anything
            _check_done_keys(traj_path, previous, FeatureStore(out / "features"))
        stats = {"episodes": 0, "frames_encoded": 0, "skipped": len(done), "success": 0}
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        columns = [
            TextColumn(f"rollouts {source} on {split}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
        ]
        with JsonlAppender(traj_path) as lines, Progress(*columns, disable=not progress) as bar:
            task_id = bar.add_task("collect", total=len(selected), completed=len(done))
            for ep in selected:
                eid = str(ep.episode_id)
                if eid in done:
                    continue
                task = env.task_from_episode(ep, eps.gt.get(eid) if eps.gt else None)
                # the expert's frames depend only on the path: one key per trajectory
                key = f"{split}/traj-{ep.trajectory_id}" if policy is None else f"{split}/{source}/ep-{eid}"
                rng = np.random.default_rng([seed, zlib.crc32(f"{source}/{eid}".encode())])
                frames, feats, targets, poses, info = _roll_episode(env, task, agent, encode, k, follower, beta, rng)
                if store is None:
                    shape = feats[0].shape[1:] if feats else encode(frames[0][None]).shape[1:]
                    store = FeatureStore(out / "features", shape=tuple(shape), encoder=model.config.vision_tower)
                if key not in store:
                    arr = (
                        np.concatenate(feats)
                        if feats
                        else np.concatenate([encode(np.stack(frames[i : i + 32])) for i in range(0, len(frames), 32)])
                    )
                    store.add(key, arr)
                    stats["frames_encoded"] += len(arr)
                lines.write(
                    {
                        "key": key,
                        "instruction": task.instruction,
                        "targets": targets,
                        "source": source,
                        "episode_id": eid,
                        "trajectory_id": str(ep.trajectory_id),
                        "scene_id": ep.scene_id,
                        "success": float(info["success"]),
                        "poses": poses,
                        **_follower_fields(follower),
                        **placement,
                    }
                )
                stats["episodes"] += 1
                stats["success"] += float(info["success"])
                bar.advance(task_id)
        env.close()
        return stats


def _roll_episode(env, task, agent, encode, k: int, follower: FollowerConfig, beta: float, rng):
    """Run one episode to its end: the expert alone (``agent`` None) or DAgger (the policy, mixed with the expert
    by ``beta``). Returns the frames, their features (DAgger only: the policy encodes as it goes), each state's
    targets (the follower's next ``k`` actions) and pose, and the last step's info."""
    obs, info = env.reset(options={"task": task})
    nav = env.navmap
    frames, targets, poses, feats, executed = [obs["rgb"]], [], [], [], []
    if agent is not None:
        agent.reset(task.instruction)
    queue: list[str] = []
    while True:
        # the expert's next k actions: simulated from this state under DAgger; for the expert itself they are the
        # actions it goes on to take (filled in below), so one follower call per step
        tgt = (
            expert_targets(nav, env.pose, task.goal, k, follower)
            if agent is not None
            else [ACTION_WORDS[nav.expert_action(*env.pose, *task.goal, follower)]]
        )
        targets.append(tgt)
        poses.append([round(float(v), 5) for v in env.pose])
        word = tgt[0]
        if agent is not None:  # DAgger: the policy sees the frame whatever gets executed
            import torch

            f = encode(frames[-1][None])
            feats.append(f)
            p = next(agent.model.parameters())  # the cached fp16 features, on the policy's device and dtype
            agent.observe_features(torch.from_numpy(f).to(p.device, p.dtype))
            if not queue:
                queue = agent.plan()
            mine = queue.pop(0)
            if rng.random() >= beta:  # with probability beta the expert's action is executed instead
                word = mine
            if word != mine:  # the rest of the policy's plan assumed its own action: plan again
                queue = []
        executed.append(word)
        obs, _, terminated, truncated, info = env.step(WORD_ACTIONS[word])
        if terminated or truncated:
            break
        frames.append(obs["rgb"])
    if agent is None:
        padded = executed + ["stop"] * k
        targets = [padded[t : t + k] for t in range(len(executed))]
    return frames, feats, targets, poses, info


def relabel_rollouts(
    data_dir: str | Path, src: str | Path, out: str | Path, follower: FollowerConfig, *, progress: bool = True
) -> dict:
    """Label every state of the rollout folder ``src`` again with another ``follower``, without rendering:
    the frames (and their cached features) stay, each state's pose is replayed on the map, and its targets
    become the new follower's next k actions from there (the DAgger labelling rule). Writes
    ``out/trajectories.jsonl`` (atomically) and links ``out/features`` to ``src``'s feature store.

    Poses come from the record (collections since poses were stored) or, for expert records without them,
    from replaying the recorded actions from the episode's start; DAgger records without poses cannot be
    replayed (their executed actions were not kept) and raise."""
    from vidnav.data.dataset import FEATURES, TRAJECTORIES
    from vidnav.data.episodes import load_split
    from vidnav.io import atomic_write_text, dumps_json
    from vidnav.sim.env import VLNEnv

    src, out = Path(src), Path(out)
    if src.resolve() == out.resolve():
        raise VidNavError(f"relabel --out {out} is the source folder; write the new labels to another folder")
    records = read_jsonl_records(src / TRAJECTORIES, "episode_id", "trajectories")
    if not records:
        raise VidNavError(f"{src / TRAJECTORIES} holds no trajectories; collect rollouts first")
    if not (src / FEATURES / "meta.json").exists():
        raise VidNavError(f"{src / FEATURES} is not a feature store; is {src} a rollout folder?")
    link = out / FEATURES
    if (link.exists() or link.is_symlink()) and link.resolve() != (src / FEATURES).resolve():
        raise VidNavError(f"{link} exists and is not {src / FEATURES}; relabel into a new --out folder")
    env = VLNEnv(data_dir=data_dir)
    splits: dict[str, tuple] = {}
    lines, changed, stops, total = [], 0, 0, 0
    done: dict[tuple, list] = {}  # R2R's three instructions of a path share its states: label them once
    from rich.progress import track

    for rec in track(records, description=f"relabel {src.name}", disable=not progress):
        split = rec["key"].split("/")[0]
        if split not in splits:
            eps = load_split(data_dir, split)
            splits[split] = eps, {str(e.episode_id): e for e in eps.episodes}
        eps, by_id = splits[split]
        ep = by_id.get(str(rec["episode_id"]))
        if ep is None:
            raise VidNavError(
                f"{src / TRAJECTORIES}: episode {rec['episode_id']} is not in the {split} split of "
                f"{data_dir}; relabel with the benchmark the rollouts were collected on (--data)"
            )
        task = env.task_from_episode(ep, eps.gt_for(ep))
        nav = env.navmap_for(task.house)  # records come grouped by house, so the env's one-house cache serves
        poses = rec.get("poses") or _replay_expert(nav, task, rec, src)
        k = len(rec["targets"][0])
        ident = (rec["key"], ep.scene_id, tuple(task.goal), k)
        if ident not in done:
            done.clear()  # a path's episodes are consecutive
            done[ident] = [expert_targets(nav, tuple(p), task.goal, k, follower) for p in poses]
        targets = done[ident]
        changed += sum(a != b for a, b in zip(targets, rec["targets"]))
        stops += sum(t[0] == "stop" for t in targets)
        total += len(targets)
        lines.append(dumps_json({**rec, "targets": targets, "poses": poses, **_follower_fields(follower)}))
    out.mkdir(parents=True, exist_ok=True)
    if not link.exists():
        link.symlink_to(os.path.relpath(src.resolve() / FEATURES, out.resolve()), target_is_directory=True)
    atomic_write_text(out / TRAJECTORIES, "".join(x + "\n" for x in lines))
    return {"episodes": len(lines), "states": total, "targets_changed": changed, "stop_first": stops}


def _replay_expert(nav, task, rec: dict, src: Path) -> list[list[float]]:
    """The poses of an expert record without stored poses: its first target words are the actions taken."""
    if rec.get("source", "expert") != "expert":
        raise VidNavError(
            f"{src / 'trajectories.jsonl'}: episode {rec['episode_id']} ({rec.get('source')}) has no "
            "'poses' and is not an expert record, so its states cannot be replayed; collect it again"
        )
    x, z, h = task.start
    poses = []
    for words in rec["targets"]:
        poses.append([x, z, h])
        if words[0] != "stop":
            x, z, h, _ = nav.step(x, z, h, WORD_ACTIONS[words[0]])
    if rec["targets"][-1][0] != "stop" or nav.distance(x, z, *task.goal) > 0.5:
        raise VidNavError(
            f"{src / 'trajectories.jsonl'}: replaying episode {rec['episode_id']} does not end at its "
            "goal; was the benchmark rebuilt since the rollouts were collected? collect them again"
        )
    return poses
