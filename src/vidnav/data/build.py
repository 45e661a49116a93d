"""`vidnav data build`: the embedded benchmark in VLN-CE's R2R format.

    DIR/houses/train_0000.json ...          the houses (scene_id of each episode, relative to DIR)
    DIR/{split}/{split}.json.gz              {"episodes": [...], "instruction_vocab": {...}, "vidnav": {...}}
    DIR/{split}/{split}_gt.json.gz           {"<episode_id>": {"locations", "actions", "forward_steps"}}
    DIR/benchmark.json                       version, build arguments, counts, seconds

Splits: ``train`` and ``val_seen`` (other paths in the train houses) and ``val_unseen`` (houses never in
train). Each path gets three instructions, i.e. three episodes sharing a ``trajectory_id``, as in R2R.
Houses are built in parallel processes; every house's content depends only on its own seed, so the
output is the same for any number of workers.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidnav.errors import VidNavError
from vidnav.io import read_json, write_json
from vidnav.metrics import SUCCESS_DISTANCE

BENCHMARK_VERSION = "vidnav-minihouse-r2r-v1"
INSTRUCTIONS_PER_PATH = 3


@dataclass
class BuildConfig:
    train_houses: int = 300
    unseen_houses: int = 50
    episodes_per_house: int = 36  # train episodes per train house (paths × 3 instructions)
    val_seen_per_house: int = 3  # val_seen episodes per train house
    unseen_per_house: int = 21  # val_unseen episodes per unseen house
    seed: int = 0

    def check(self) -> None:
        for k in ("train_houses", "unseen_houses", "episodes_per_house", "val_seen_per_house", "unseen_per_house"):
            if getattr(self, k) < 0:
                raise VidNavError(f"--{k.replace('_', '-')} must be >= 0, got {getattr(self, k)}")
        for k in ("episodes_per_house", "val_seen_per_house", "unseen_per_house"):  # whole paths, as R2R
            n = getattr(self, k)
            if n % INSTRUCTIONS_PER_PATH:
                raise VidNavError(
                    f"--{k.replace('_', '-')} {n}: each path has {INSTRUCTIONS_PER_PATH} instructions "
                    f"(episodes), so give a multiple of {INSTRUCTIONS_PER_PATH}, e.g. "
                    f"{INSTRUCTIONS_PER_PATH * max(1, round(n / INSTRUCTIONS_PER_PATH))}"
                )
        if self.train_houses + self.unseen_houses == 0:
            raise VidNavError(
                "--train-houses and --unseen-houses are both 0: a benchmark with no houses has no "
                "episodes; give at least one house"
            )


def house_seed(seed: int, split: str, i: int) -> int:
    """Disjoint seed ranges for train and unseen houses."""
    return seed * 1_000_003 + (500_000 if split == "unseen" else 0) + i


def _house_job(job: tuple[str, str, int, dict[str, int], str]) -> dict:
    """Generate one house and its paths; return plain records (picklable, for worker processes)."""
    from vidnav.actions import FORWARD
    from vidnav.data.instructions import write_instructions
    from vidnav.data.paths import sample_paths
    from vidnav.geometry import quaternion_from_heading
    from vidnav.sim.housegen import generate_house
    from vidnav.sim.navmap import NavMap

    name, kind, hseed, want, out = job
    house = generate_house(hseed)
    house.save(Path(out) / "houses" / f"{name}.json")
    nav = NavMap(house)
    rng = np.random.default_rng([hseed, 0xB0B])
    n_paths = {split: math.ceil(n / INSTRUCTIONS_PER_PATH) for split, n in want.items()}
    paths = sample_paths(house, sum(n_paths.values()), rng, nav=nav)
    records, i = [], 0
    for split, n in n_paths.items():
        for p in paths[i : i + n]:
            texts = write_instructions(p.semantics, rng, n=INSTRUCTIONS_PER_PATH)
            sx, sz, h = p.start
            records.append(
                {
                    "split": split,
                    "scene_id": f"houses/{name}.json",
                    "start_position": [sx, 0.0, sz],
                    "start_rotation": [float(v) for v in quaternion_from_heading(h)],
                    "goal": [p.goal[0], 0.0, p.goal[1]],
                    "geodesic_distance": float(p.distance),
                    "reference_path": [[x, 0.0, z] for x, z in p.reference],
                    "texts": texts,
                    # as VLN-CE records the follower: the start, then one location per forward step
                    "gt_locations": [
                        [x, 0.0, z]
                        for (x, z, _), a in zip(p.rollout.poses, [FORWARD, *p.rollout.actions])
                        if a == FORWARD
                    ],
                    "gt_actions": list(p.rollout.actions),
                    "forward_steps": sum(1 for a in p.rollout.actions if a == FORWARD),
                }
            )
        i += n
    return {"name": name, "records": records, "short": sum(n_paths.values()) - len(paths)}


MANIFEST = "manifest.json"
SPLITS = ("train", "val_seen", "val_unseen")


def _written_by_build(out: Path) -> list[Path]:
    """The files a build writes (and ``--force`` may delete): never anything else in the folder."""
    names = [out / MANIFEST, out / "benchmark.json"]
    names += [p for p in (out / "houses").glob("*.json") if re.fullmatch(r"(train|unseen)_\d{4}\.json", p.name)]
    for split in SPLITS:
        names += [out / split / f"{split}.json.gz", out / split / f"{split}_gt.json.gz"]
    return [p for p in names if p.is_file()]


def _claim_folder(out: Path, cfg: BuildConfig, force: bool) -> None:
    """Build only into an empty folder or an earlier build (finished or killed) of the same config: anything else
    would be overwritten or mixed with stale houses. ``force``: delete what an earlier build wrote, then build."""
    if out.exists() and not out.is_dir():
        raise VidNavError(f"--out {out} is a file; give a folder for the benchmark")
    manifest = {"kind": "vidnav benchmark", "version": BENCHMARK_VERSION, "config": vars(cfg)}
    if out.is_dir() and any(out.iterdir()):
        old = None
        if (out / MANIFEST).is_file():
            old = read_json(out / MANIFEST, "build manifest")
        elif (out / "benchmark.json").is_file():  # a build from before manifests
            old = read_json(out / "benchmark.json", "benchmark.json")
            ours = (
                isinstance(old, dict)
                and old.get("version") == BENCHMARK_VERSION
                and isinstance(old.get("config"), dict)
            )
            old = {**manifest, "config": old["config"]} if ours else None
        if not isinstance(old, dict) or old.get("kind") != "vidnav benchmark":
            if not force:
                raise VidNavError(
                    f"--out {out} is not empty and not a vidnav build ({MANIFEST} missing); give an "
                    "empty or new folder (or --force to write over the files a build writes there)"
                )
        elif old != manifest and not force:
            was = old.get("config") if isinstance(old.get("config"), dict) else {}
            diff = ", ".join(f"{k} {was.get(k)} -> {v}" for k, v in manifest["config"].items() if was.get(k) != v)
            raise VidNavError(
                f"--out {out} holds an earlier build of another config ({diff or old.get('version')}); "
                "give another --out, or --force to delete that build and start over"
            )
        if force:
            for p in _written_by_build(out):
                p.unlink()
    try:
        write_json(out / MANIFEST, manifest)  # first: a killed build is recognised as this build on rerun
        (out / "houses").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise VidNavError(
            f"cannot write the benchmark into --out {out}: {e.strerror}; give a writable folder"
        ) from None


def build_benchmark(
    out: str | Path, cfg: BuildConfig | None = None, workers: int = 1, progress: bool = True, force: bool = False
) -> dict:
    """Build all splits into ``out``; returns the benchmark.json record. ``out`` must be empty, new, or an earlier
    (possibly killed) build of the same ``cfg``; ``force`` deletes an earlier build's files first (only those)."""
    from vidnav.data.episodes import Episode, Goal, GtPath, Instruction, InstructionVocab, write_split

    cfg = cfg or BuildConfig()
    cfg.check()
    out = Path(out)
    _claim_folder(out, cfg, force)
    jobs = [
        (
            f"train_{i:04d}",
            "train",
            house_seed(cfg.seed, "train", i),
            {"train": cfg.episodes_per_house, "val_seen": cfg.val_seen_per_house},
            str(out),
        )
        for i in range(cfg.train_houses)
    ]
    jobs += [
        (f"unseen_{i:04d}", "unseen", house_seed(cfg.seed, "unseen", i), {"val_unseen": cfg.unseen_per_house}, str(out))
        for i in range(cfg.unseen_houses)
    ]
    t0 = time.perf_counter()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    houses: dict[str, dict] = {}
    with Progress(
        TextColumn("building houses and paths"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        disable=not progress,
    ) as bar:
        task = bar.add_task("build", total=len(jobs))
        if workers > 1:
            from vidnav.pool import run_pool  # a worker that fails or dies ends the build instead of hanging

            for res in run_pool(_house_job, jobs, workers, what="build worker"):
                houses[res["name"]] = res
                bar.advance(task)
        else:
            for job in jobs:
                res = _house_job(job)
                houses[res["name"]] = res
                bar.advance(task)

    by_split: dict[str, list[dict]] = {"train": [], "val_seen": [], "val_unseen": []}
    for name, _kind, *_ in jobs:  # job order, not completion order: same output for any worker count
        for rec in houses[name]["records"]:
            by_split[rec["split"]].append(rec)
    vocab = InstructionVocab.build([t for r in by_split["train"] or by_split["val_unseen"] for t in r["texts"]])
    counts = {}
    for split, recs in by_split.items():
        episodes, gt, ep_id = [], {}, 0
        for traj, r in enumerate(recs):
            for text in r["texts"]:
                ep_id += 1
                episodes.append(
                    Episode(
                        episode_id=ep_id,
                        trajectory_id=traj + 1,
                        scene_id=r["scene_id"],
                        start_position=r["start_position"],
                        start_rotation=r["start_rotation"],
                        info={"geodesic_distance": r["geodesic_distance"]},
                        goals=[Goal(position=r["goal"], radius=SUCCESS_DISTANCE)],
                        reference_path=r["reference_path"],
                        instruction=Instruction(instruction_text=text, instruction_tokens=vocab.tokenize(text)),
                    )
                )
                gt[str(ep_id)] = GtPath(
                    locations=r["gt_locations"], actions=r["gt_actions"], forward_steps=r["forward_steps"]
                )
        write_split(out, split, episodes, vocab, gt, extra={"vidnav": {"version": BENCHMARK_VERSION, "seed": cfg.seed}})
        counts[split] = {"episodes": len(episodes), "paths": len(recs), "houses": len({r["scene_id"] for r in recs})}
    seconds = time.perf_counter() - t0
    meta = {
        "version": BENCHMARK_VERSION,
        "config": vars(cfg),
        "workers": workers,
        "splits": counts,
        "short_paths": sum(h["short"] for h in houses.values()),
        "seconds": round(seconds, 1),
    }
    write_json(out / "benchmark.json", meta)
    return meta
