"""Training samples from rollout folders: (instruction, features of frames 0..t, the expert's next k actions).

A rollout folder ``R/`` (written by the rollout collector, or by :func:`write_rollout`) holds

    R/features/           a FeatureStore: frozen tower features [T, N, C] (fp16) per trajectory key
    R/trajectories.jsonl  one JSON object per line and trajectory:
                          {"key", "instruction", "targets": [[word, ...] for each frame t], "source",
                           "episode_id", "scene_id"}

``targets[t]`` holds the expert's next k action words (forward / left / right / stop) from the state seen at
frame t, so a trajectory of T frames yields T samples. A record with ``"prefix": true`` (a minimal pair,
:mod:`vidnav.data.pairs`) gives targets for the first frames of its key's stored frames only. Several folders can be combined (DAgger aggregation):
samples are ordered by folder (as given), then by line, then by frame, so the same folders always give the
same sample indices; shuffling is the sampler's job (seeded by the trainer).

Features stay on disk (memory-mapped) until the collator builds a batch, so datasets much larger than RAM
are fine.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from vidnav.actions import ACTIONS as ACTION_WORDS  # the model's words, in its order
from vidnav.data.features import FeatureStore
from vidnav.data.sampling import FrameSampling, inflections, listed_frames  # noqa: F401 (inflections: re-exported)
from vidnav.errors import VidNavError
from vidnav.io import atomic_write_text

TRAJECTORIES = "trajectories.jsonl"
FEATURES = "features"
REQUIRED = {"key": str, "instruction": str, "targets": list}


@dataclass
class Trajectory:
    """One trajectory line of a rollout folder (features stay in the store)."""

    key: str
    instruction: str
    targets: list[list[str]]
    rollout: int  # index of its folder in NavSamples.rollout_dirs
    source: str = "expert"
    episode_id: str = ""
    scene_id: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def length(self) -> int:
        return len(self.targets)


def read_trajectories(rollout_dir: str | os.PathLike, rollout: int = 0) -> list[Trajectory]:
    """Parse ``R/trajectories.jsonl``; any malformed line raises VidNavError naming the file and line."""
    path = Path(rollout_dir) / TRAJECTORIES
    if not Path(rollout_dir).is_dir():
        raise VidNavError(f"rollout folder not found: {rollout_dir}; collect rollouts first (or check --data)")
    if not path.is_file():
        raise VidNavError(
            f"{path} not found: a rollout folder needs trajectories.jsonl and features/; "
            "is this the folder the rollout collector wrote?"
        )
    out: list[Trajectory] = []
    seen: dict[tuple[str, str], int] = {}
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                obj = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise VidNavError(
                    f"{where}: not valid JSON ({e}); fix or remove the line (a line cut by a crash can be deleted)"
                ) from None
            if not isinstance(obj, dict):
                raise VidNavError(f"{where}: expected a JSON object, got {type(obj).__name__}")
            for name, kind in REQUIRED.items():
                if name not in obj:
                    raise VidNavError(f"{where}: missing field {name!r} (needs {', '.join(REQUIRED)})")
                if not isinstance(obj[name], kind):
                    raise VidNavError(
                        f"{where}: field {name!r} must be a {kind.__name__}, got {type(obj[name]).__name__}"
                    )
            if not obj["instruction"].strip():
                raise VidNavError(f"{where}: empty instruction for trajectory {obj['key']!r}")
            if not obj["targets"]:
                raise VidNavError(f"{where}: trajectory {obj['key']!r} has no targets (needs one list per frame)")
            targets = []
            for t, words in enumerate(obj["targets"]):
                if isinstance(words, str):
                    words = words.split()
                if not isinstance(words, list) or not words or any(w not in ACTION_WORDS for w in words):
                    raise VidNavError(
                        f"{where}: targets[{t}] = {words!r} of {obj['key']!r} must be a non-empty "
                        f"list of words from {', '.join(ACTION_WORDS)}"
                    )
                targets.append(list(words))
            # R2R gives a path three instructions: their episodes share the path's frames (one feature key)
            ident = (obj["key"], obj["instruction"])
            if ident in seen:
                raise VidNavError(
                    f"{where}: trajectory key {obj['key']!r} with the same instruction repeats line "
                    f"{seen[ident]}; remove the duplicate line"
                )
            seen[ident] = lineno
            known = {"key", "instruction", "targets", "source", "episode_id", "scene_id"}
            out.append(
                Trajectory(
                    key=obj["key"],
                    instruction=obj["instruction"],
                    targets=targets,
                    rollout=rollout,
                    source=str(obj.get("source", "expert")),
                    episode_id=str(obj.get("episode_id", "")),
                    scene_id=str(obj.get("scene_id", "")),
                    extra={k: v for k, v in obj.items() if k not in known},
                )
            )
    return out


class NavSamples(Dataset):
    """(trajectory, frame t) pairs from one or more rollout folders, in a fixed order.

    ``max_history``: keep at most this many frames (the current one included) per sample; None = all.
    ``sampling`` (or its fields as keyword arguments, e.g. ``stride=3``): which frames are samples and how often,
    :class:`vidnav.data.sampling.FrameSampling`. Items are small dicts; :class:`NavCollator` loads the features.
    """

    def __init__(
        self,
        rollout_dirs: str | os.PathLike | Sequence[str | os.PathLike],
        max_history: int | None = None,
        sampling: FrameSampling | None = None,
        *,
        check_finite: bool = True,
        **knobs,
    ):
        if isinstance(rollout_dirs, (str, os.PathLike)):
            rollout_dirs = [rollout_dirs]
        if not rollout_dirs:
            raise VidNavError("no rollout folders given; pass at least one --data folder")
        if max_history is not None and int(max_history) < 1:
            raise VidNavError(f"max_history must be >= 1 (or None for all frames), got {max_history}")
        if sampling is not None and knobs:
            raise VidNavError(f"give NavSamples a FrameSampling or its fields ({', '.join(knobs)}), not both")
        try:
            self.sampling = sampling or FrameSampling(**knobs)
        except TypeError as e:  # an unknown keyword
            raise VidNavError(f"NavSamples: {e}; frame-sampling settings are the FrameSampling fields") from None
        self.rollout_dirs = [Path(d) for d in rollout_dirs]
        self.max_history = None if max_history is None else int(max_history)
        self.stores: list[FeatureStore] = []
        self.trajectories: list[Trajectory] = []
        for r, root in enumerate(self.rollout_dirs):
            trajs = read_trajectories(root, rollout=r)
            if not (root / FEATURES / "meta.json").is_file():
                raise VidNavError(
                    f"{root / FEATURES} is not a feature store (missing meta.json); "
                    "a rollout folder needs features/ next to trajectories.jsonl"
                )
            store = FeatureStore(root / FEATURES)
            if check_finite:  # inf/NaN features: refused here, naming folder and key, not at the first batch
                store.check_finite()
            if self.stores and store.shape != self.stores[0].shape:
                raise VidNavError(
                    f"{root / FEATURES} holds features of shape {store.shape} but "
                    f"{self.rollout_dirs[0] / FEATURES} holds {self.stores[0].shape}; "
                    "combine rollouts made with the same vision tower"
                )
            for traj in trajs:
                if traj.key not in store:
                    raise VidNavError(
                        f"{root / FEATURES} has no features for trajectory {traj.key!r} "
                        f"(listed in {root / TRAJECTORIES}); re-collect that rollout"
                    )
                n = store.index[traj.key][2]
                if n != traj.length and not (traj.extra.get("prefix") is True and n > traj.length):
                    raise VidNavError(
                        f"trajectory {traj.key!r} in {root / TRAJECTORIES} has {traj.length} target "
                        f"lists but {n} feature frames in {root / FEATURES}; they must match "
                        '(one target list per frame; a record with "prefix": true may cover '
                        "only the first frames)"
                    )
            self.stores.append(store)
            self.trajectories.extend(trajs)
        self.samples: list[tuple[int, int]] = []
        for j, traj in enumerate(self.trajectories):
            self.samples.extend((j, t) for t in listed_frames(traj.targets, self.sampling))
        if not self.samples:
            why = "no inflection frames" if self.sampling.only_inflections else "no trajectories"
            raise VidNavError(f"no samples in {', '.join(map(str, self.rollout_dirs))} ({why})")

    def check_num_actions(self, k: int) -> None:
        """Refuse, naming folder, trajectory and frame, target lists a model of ``k`` action words cannot learn from:
        fewer than k words without a stop to fill the rest (longer lists are fine: the first k words are used)."""
        for traj in self.trajectories:
            for t, words in enumerate(traj.targets):
                if len(words) < k and "stop" not in words:
                    raise VidNavError(
                        f"{self.rollout_dirs[traj.rollout] / TRAJECTORIES}: trajectory {traj.key!r} "
                        f"frame {t} has {len(words)} target words ({' '.join(words)}) and no stop, "
                        f"fewer than num_actions={k}: collect rollouts with num_actions >= {k} or "
                        f"train with --set num_actions={len(words)}"
                    )

    @property
    def feature_shape(self) -> tuple[int, int]:
        return tuple(self.stores[0].shape)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict[str, Any]:
        j, t = self.samples[i]
        traj = self.trajectories[j]
        return {"index": int(i), "trajectory": j, "t": t, "instruction": traj.instruction, "targets": traj.targets[t]}

    def features(self, trajectory: int, t: int) -> torch.Tensor:
        """float32 features [≤ max_history, N, C] of frames 0..t of a trajectory (the last row is frame t)."""
        traj = self.trajectories[trajectory]
        rows = self.stores[traj.rollout].get(traj.key, stop=t + 1)
        if self.max_history is not None:
            rows = rows[max(0, t + 1 - self.max_history) :]
        return torch.from_numpy(np.asarray(rows, dtype=np.float32))

    def summary(self) -> dict[str, Any]:
        sources: dict[str, int] = {}
        for traj in self.trajectories:
            sources[traj.source] = sources.get(traj.source, 0) + 1
        return {
            "rollouts": [str(d) for d in self.rollout_dirs],
            "trajectories": len(self.trajectories),
            "samples": len(self.samples),
            "sources": sources,
        }


class QASamples(Dataset):
    """Embodied questions (:mod:`vidnav.data.questions`) at the frames of a NavSamples' trajectories.

    ``benchmark``: the folder the rollouts were collected from (its houses and episodes give the route of each
    trajectory; rollout lines need ``poses``). Each distinct (trajectory, frame) sample of ``nav`` becomes a
    question with probability ``ratio`` (seeded), of a family drawn uniformly among those defined at that frame,
    so ``ratio`` = 0.5 adds about half as many question items as there are navigation frames. Items carry
    ``question`` and ``answer``; features come from ``nav``'s stores.
    """

    def __init__(
        self,
        nav: NavSamples,
        benchmark: str | os.PathLike,
        ratio: float = 0.5,
        families: Sequence[str] | None = None,
        seed: int = 0,
    ):
        from vidnav.data.episodes import load_split
        from vidnav.data.questions import FAMILIES, QUESTIONS, route_rooms, trajectory_facts
        from vidnav.sim.house import House

        families = tuple(families or FAMILIES)
        unknown = [f for f in families if f not in QUESTIONS]
        if unknown:
            raise VidNavError(f"unknown question family {unknown[0]!r}; choose from {', '.join(QUESTIONS)}")
        if not 0 < float(ratio) <= 1:
            raise VidNavError(f"the question ratio must be in (0, 1], got {ratio}")
        root = Path(benchmark)
        episodes = {}
        for split in ("train", "val_seen", "val_unseen"):
            if (root / split).is_dir():
                for ep in load_split(root, split).episodes:
                    episodes[(ep.scene_id, str(ep.episode_id), ep.instruction.instruction_text)] = ep
        self.nav = nav
        self.items: list[tuple[int, int, str, str]] = []
        houses: dict[str, House] = {}
        frames: dict[int, set[int]] = {}
        for j, t in nav.samples:
            frames.setdefault(j, set()).add(t)
        rng = np.random.default_rng(seed)
        for j in sorted(frames):
            traj = nav.trajectories[j]
            ep = episodes.get((traj.scene_id, traj.episode_id, traj.instruction))
            where = f"trajectory {traj.key!r} of {nav.rollout_dirs[traj.rollout]}"
            if ep is None:
                raise VidNavError(
                    f"{where}: episode {traj.episode_id!r} of {traj.scene_id!r} with this instruction is "
                    f"not in the benchmark {root}; pass the --qa-data folder the rollouts came from"
                )
            poses = traj.extra.get("poses")
            if not isinstance(poses, list) or len(poses) != traj.length:
                raise VidNavError(f"{where} has no per-frame poses; re-collect it with `vidnav data rollouts`")
            if traj.scene_id not in houses:
                houses[traj.scene_id] = House.load(root / traj.scene_id)
            house = houses[traj.scene_id]
            facts = trajectory_facts(house, route_rooms(house, ep.reference_path), poses)
            for t in sorted(frames[j]):
                if rng.random() >= ratio:
                    continue
                defined = [f for f in families if facts[t].answer(f) is not None]
                if defined:
                    fam = defined[int(rng.integers(len(defined)))]
                    self.items.append((j, t, QUESTIONS[fam], facts[t].answer(fam)))
        if not self.items:
            raise VidNavError(f"no question could be asked on {', '.join(map(str, nav.rollout_dirs))}")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        j, t, question, answer = self.items[i]
        return {
            "trajectory": j,
            "t": t,
            "instruction": self.nav.trajectories[j].instruction,
            "question": question,
            "targets": answer,
        }

    def features(self, trajectory: int, t: int) -> torch.Tensor:
        return self.nav.features(trajectory, t)


class CoSamples(Dataset):
    """Navigation samples followed by question items: one training set, the same collator (co-training)."""

    def __init__(self, nav: NavSamples, qa: QASamples):
        self.nav, self.qa = nav, qa

    def __len__(self) -> int:
        return len(self.nav) + len(self.qa)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = self.nav[i] if i < len(self.nav) else self.qa[i - len(self.nav)]
        return {**item, "index": int(i)}

    def __getattr__(self, name: str):  # trajectories, features, feature_shape, ... are the navigation set's
        if name in ("nav", "qa"):
            raise AttributeError(name)
        return getattr(self.nav, name)

    def summary(self) -> dict[str, Any]:
        return {**self.nav.summary(), "samples": len(self), "questions": len(self.qa)}


class NavCollator:
    """Turns a list of NavSamples items into ``model.prepare_batch(...)`` output (+ ``sample_index``).

    Holds the model only for its ``prepare_batch`` (tokenizers, label encoding); features are read from the
    dataset's stores here, so DataLoader workers do the disk reads. ``sample_index`` ([B] long) lets a
    trainer record which samples a rank saw; the trainer drops it before calling the model.
    """

    def __init__(self, model_or_prepare: Any, samples: NavSamples, with_index: bool = True):
        self.prepare: Callable = getattr(model_or_prepare, "prepare_batch", model_or_prepare)
        self.samples = samples
        self.with_index = with_index

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        feats = [self.samples.features(it["trajectory"], it["t"]) for it in items]
        questions = [it.get("question") for it in items]
        batch = self.prepare(
            [it["instruction"] for it in items],
            feats,
            [it["targets"] for it in items],
            **({"questions": questions} if any(q is not None for q in questions) else {}),
        )
        if self.with_index:
            batch["sample_index"] = torch.tensor([it["index"] for it in items], dtype=torch.long)
        return batch


# -- writing (the collector's format; used by tests and synthetic data) --------------------------------------
def write_rollout(
    root: str | os.PathLike,
    trajectories: Iterable[dict],
    features: dict[str, np.ndarray],
    shape: tuple[int, int] | None = None,
    encoder: str | None = None,
) -> Path:
    """Write (or append to) a rollout folder: features into ``root/features``, lines into trajectories.jsonl.

    ``trajectories``: dicts with key, instruction, targets (+ source, episode_id, scene_id);
    ``features[key]``: [T, N, C] arrays (stored as fp16). Trajectories may share a key (the instructions of
    one path share its frames); a key's features are stored once. Features are written before the line that
    names them, so a crash never leaves a line without features.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    trajectories = list(trajectories)
    if shape is None:
        shape = tuple(np.asarray(features[trajectories[0]["key"]]).shape[1:]) if trajectories else (64, 320)
    store = FeatureStore(root / FEATURES, shape=shape, encoder=encoder)
    path = root / TRAJECTORIES
    lines = path.read_text() if path.exists() else ""
    for traj in trajectories:
        if traj["key"] not in store:
            store.add(traj["key"], np.asarray(features[traj["key"]]))
        line = {
            "key": traj["key"],
            "instruction": traj["instruction"],
            "targets": traj["targets"],
            "source": traj.get("source", "expert"),
            "episode_id": str(traj.get("episode_id", traj["key"])),
            "scene_id": str(traj.get("scene_id", "synthetic")),
        }
        if "trajectory_id" in traj:
            line["trajectory_id"] = str(traj["trajectory_id"])
        lines += json.dumps(line) + "\n"
    atomic_write_text(path, lines)
    return root


SYNTHETIC_INSTRUCTIONS = (
    "walk past the sofa and stop at the kitchen door",
    "turn left at the table then go to the bedroom",
    "go straight down the hallway and stop by the stairs",
    "turn right and walk into the bathroom",
    "leave the office and wait next to the plant",
    "cross the living room and stop at the window",
)


def synthetic_rollout(
    root: str | os.PathLike,
    n_trajectories: int = 6,
    n_frames: int = 8,
    shape: tuple[int, int] = (64, 320),
    k: int = 4,
    seed: int = 0,
    source: str = "expert",
    key_prefix: str = "traj",
) -> Path:
    """A small random rollout folder: random fp16 features, random expert action sequences ending in stop.

    ``targets[t]`` = the next k words of the trajectory's action sequence from t (padded with stop), as an
    expert follower would give; frame features are random but fixed per (trajectory, t), so a model can
    memorise the mapping. For tests and smoke runs only.
    """
    rng = np.random.default_rng(seed)
    trajs, feats = [], {}
    for i in range(n_trajectories):
        key = f"{key_prefix}-{i:04d}"
        moves = list(rng.choice(["forward", "forward", "left", "right"], size=n_frames - 1)) + ["stop"]
        targets = [(moves[t : t + k] + ["stop"] * k)[:k] for t in range(n_frames)]
        feats[key] = rng.standard_normal((n_frames, *shape)).astype(np.float16)
        trajs.append(
            {
                "key": key,
                "instruction": SYNTHETIC_INSTRUCTIONS[i % len(SYNTHETIC_INSTRUCTIONS)],
                "targets": [[str(w) for w in t] for t in targets],
                "source": source,
                "episode_id": str(i),
                "scene_id": f"scene-{i % 3}",
            }
        )
    return write_rollout(root, trajs, feats, shape=shape, encoder="synthetic")
