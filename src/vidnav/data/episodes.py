"""VLN-CE R2R episode files, read and written exactly.

A split lives in ``{data_dir}/{split}/``::

    {split}.json.gz      {"episodes": [...], "instruction_vocab": {...}}
    {split}_gt.json.gz   {"<episode_id>": {"locations": [[x,y,z],...], "actions": [...], "forward_steps": n}}

Positions are habitat ``[x, y, z]`` (y up), rotations quaternions ``[x, y, z, w]``. Every object keeps the
keys it does not know in ``extra``, so load -> write gives back the same JSON.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidnav.errors import VidNavError
from vidnav.io import read_json, write_json
from vidnav.metrics import SUCCESS_DISTANCE
from vidnav.sim.task import episode_task_fields, episode_to_task  # noqa: F401  (an episode's task; kept here too)

__all__ = [
    "Goal",
    "Instruction",
    "Episode",
    "GtPath",
    "InstructionVocab",
    "EpisodeSet",
    "split_words",
    "load_episodes",
    "load_gt",
    "load_split",
    "write_split",
    "split_paths",
    "available_splits",
    "episode_task_fields",
    "episode_to_task",
    "summarize_file",
]

PAD_TOKEN = "<pad>"
UNK_TOKEN = "<unk>"
MAX_INSTRUCTION_TOKENS = 200
_SAFE_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
_FIX = "fix the file or rebuild it (vidnav data build), or re-download the VLN-CE split"


class _Where:
    """Names the place of a problem: file, episode index and id, field."""

    def __init__(self, path: Path | str, index: int | None = None, episode_id: Any = None):
        self.path, self.index, self.episode_id = path, index, episode_id

    def error(self, field_name: str, problem: str) -> VidNavError:
        at = f"{self.path}"
        if self.index is not None:
            at += f": episode #{self.index}"
        if self.episode_id is not None:
            at += f" (episode_id {self.episode_id!r})" if self.index is not None else f": episode_id {self.episode_id!r}"
        return VidNavError(f"{at}: field '{field_name}' {problem}; {_FIX}")

    def need(self, d: Mapping, key: str, prefix: str = "") -> Any:
        if key not in d:
            raise self.error(prefix + key, "is missing")
        return d[key]


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _vector(where: _Where, name: str, v: Any, n: int) -> list[float]:
    if not isinstance(v, list) or len(v) != n or not all(_is_number(c) for c in v):
        raise where.error(name, f"must be a list of {n} finite numbers, got {v!r:.80}")
    return v


def _as_dict(where: _Where, name: str, v: Any) -> dict:
    if not isinstance(v, dict):
        raise where.error(name, f"must be a JSON object, got {type(v).__name__}")
    return v


def _extra(d: Mapping, known: Iterable[str]) -> dict:
    known = set(known)
    return {k: v for k, v in d.items() if k not in known}


# --------------------------------------------------------------------------------------------------
# records


@dataclass
class Goal:
    position: list[float]
    radius: float | None = SUCCESS_DISTANCE
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"position": list(self.position), "radius": self.radius, **self.extra}

    @classmethod
    def from_dict(cls, d: Any, where: _Where, name: str = "goals[0]") -> Goal:
        d = _as_dict(where, name, d)
        pos = _vector(where, f"{name}.position", where.need(d, "position", f"{name}."), 3)
        radius = d.get("radius", SUCCESS_DISTANCE)
        if radius is not None and not (_is_number(radius) and radius > 0):
            raise where.error(f"{name}.radius", f"must be a positive number or null, got {radius!r}")
        return cls(pos, radius, _extra(d, ("position", "radius")))


@dataclass
class Instruction:
    instruction_text: str
    instruction_tokens: list[int] | None = None  # padded to 200 with PAD_INDEX in R2R-CE; None = absent
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        out: dict = {"instruction_text": self.instruction_text}
        if self.instruction_tokens is not None:
            out["instruction_tokens"] = list(self.instruction_tokens)
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, d: Any, where: _Where) -> Instruction:
        d = _as_dict(where, "instruction", d)
        text = where.need(d, "instruction_text", "instruction.")
        if not isinstance(text, str):
            raise where.error("instruction.instruction_text", f"must be a string, got {type(text).__name__}")
        if not text.strip():  # found here, not when an agent is given the episode
            raise where.error("instruction.instruction_text", "is empty; every episode needs an instruction")
        tokens = d.get("instruction_tokens")
        if tokens is not None and (not isinstance(tokens, list) or
                                   not all(isinstance(t, int) and not isinstance(t, bool) for t in tokens)):
            raise where.error("instruction.instruction_tokens", "must be a list of integers")
        return cls(text, tokens, _extra(d, ("instruction_text", "instruction_tokens")))


_EPISODE_KEYS = ("episode_id", "trajectory_id", "scene_id", "start_position", "start_rotation", "info", "goals",
                 "instruction", "reference_path")


@dataclass
class Episode:
    episode_id: int | str
    trajectory_id: int | str
    scene_id: str
    start_position: list[float]
    start_rotation: list[float]
    info: dict
    goals: list[Goal]
    reference_path: list[list[float]]
    instruction: Instruction
    extra: dict = field(default_factory=dict)

    @property
    def geodesic_distance(self) -> float | None:
        return self.info.get("geodesic_distance")

    def to_dict(self) -> dict:
        """The habitat VLN-CE-v1 episode object, keys in the order the released files use."""
        return {
            "episode_id": self.episode_id,
            "trajectory_id": self.trajectory_id,
            "scene_id": self.scene_id,
            "start_position": list(self.start_position),
            "start_rotation": list(self.start_rotation),
            "info": dict(self.info),
            "goals": [g.to_dict() for g in self.goals],
            "instruction": self.instruction.to_dict(),
            "reference_path": [list(p) for p in self.reference_path],
            **self.extra,
        }

    @classmethod
    def from_dict(cls, d: Any, path: Path | str = "<episodes>", index: int | None = None) -> Episode:
        where = _Where(path, index)
        if not isinstance(d, dict):
            raise where.error("<episode>", f"must be a JSON object, got {type(d).__name__}")
        where.episode_id = d.get("episode_id")
        ep_id = where.need(d, "episode_id")
        if not isinstance(ep_id, (int, str)) or isinstance(ep_id, bool):
            raise where.error("episode_id", f"must be an integer or a string, got {ep_id!r}")
        if isinstance(ep_id, str) and not _SAFE_ID.fullmatch(ep_id):  # ids name files: videos, feature keys
            raise where.error("episode_id", f"{ep_id[:80]!r} is not a plain file name (letters, digits, '.', '_', "
                                            "'-'; not starting with '.'; at most 128 characters)")
        traj = where.need(d, "trajectory_id")
        scene = where.need(d, "scene_id")
        if not isinstance(scene, str) or not scene:
            raise where.error("scene_id", f"must be a non-empty string, got {scene!r}")
        start = _vector(where, "start_position", where.need(d, "start_position"), 3)
        rot = _vector(where, "start_rotation", where.need(d, "start_rotation"), 4)
        if sum(c * c for c in rot) < 1e-12:
            raise where.error("start_rotation", "is a zero quaternion; use [0, sin(t/2), 0, cos(t/2)]")
        info = _as_dict(where, "info", where.need(d, "info"))
        gd = where.need(info, "geodesic_distance", "info.")
        if not _is_number(gd) or gd < 0:
            raise where.error("info.geodesic_distance", f"must be a number >= 0, got {gd!r}")
        goals_raw = where.need(d, "goals")
        if not isinstance(goals_raw, list) or not goals_raw:
            raise where.error("goals", "must be a non-empty list of {position, radius}")
        goals = [Goal.from_dict(g, where, f"goals[{i}]") for i, g in enumerate(goals_raw)]
        ref = where.need(d, "reference_path")
        if not isinstance(ref, list):
            raise where.error("reference_path", "must be a list of [x, y, z] points")
        ref = [_vector(where, f"reference_path[{i}]", p, 3) for i, p in enumerate(ref)]
        instruction = Instruction.from_dict(where.need(d, "instruction"), where)
        return cls(ep_id, traj, scene, start, rot, info, goals, ref, instruction, _extra(d, _EPISODE_KEYS))


@dataclass
class GtPath:
    """The shortest-path follower's record for one episode (VLN-CE ``{split}_gt.json.gz``)."""

    locations: list[list[float]]
    actions: list[int]  # 0 STOP, 1 MOVE_FORWARD (0.25 m), 2 TURN_LEFT (15 deg), 3 TURN_RIGHT (15 deg)
    forward_steps: int
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"locations": [list(p) for p in self.locations], "actions": list(self.actions),
                "forward_steps": self.forward_steps, **self.extra}

    @classmethod
    def from_dict(cls, d: Any, path: Path | str = "<gt>", episode_id: Any = None) -> GtPath:
        where = _Where(path, None, episode_id)
        d = _as_dict(where, "<gt entry>", d)
        locs = where.need(d, "locations")
        if not isinstance(locs, list):
            raise where.error("locations", "must be a list of [x, y, z] points")
        locs = [_vector(where, f"locations[{i}]", p, 3) for i, p in enumerate(locs)]
        actions = where.need(d, "actions")
        if not isinstance(actions, list) or not all(isinstance(a, int) and 0 <= a <= 3 for a in actions):
            raise where.error("actions", "must be a list of action ids 0..3 (STOP, FORWARD, LEFT, RIGHT)")
        steps = where.need(d, "forward_steps")
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
            raise where.error("forward_steps", f"must be an integer >= 0, got {steps!r}")
        return cls(locs, actions, steps, _extra(d, ("locations", "actions", "forward_steps")))


# --------------------------------------------------------------------------------------------------
# instruction vocabulary

# Reproduces the tokenisation of the released R2R-CE files: lower case; "'s" split off; commas and
# question marks dropped; the text cut at every run of characters that are neither word characters nor
# '-', each run (trimmed of spaces) becoming a token of its own unless it is empty.
_SPLIT = re.compile(r"([^\w-]+)")


def split_words(text: str) -> list[str]:
    """The R2R-CE word tokens of ``text`` (before mapping to ids)."""
    s = text.lower().replace("'s", " 's").replace(",", "").replace("?", "")
    return [t for t in (piece.strip() for piece in _SPLIT.split(s)) if t]


@dataclass
class InstructionVocab:
    """The ``instruction_vocab`` object of R2R-CE files: ``<pad>`` = 0, ``<unk>`` = 1, then sorted words."""

    word_list: list[str]
    UNK_INDEX: int = 1
    PAD_INDEX: int = 0
    _stoi: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.word_list = list(self.word_list)
        self._stoi = {w: i for i, w in enumerate(self.word_list)}
        if len(self._stoi) != len(self.word_list):
            raise VidNavError("instruction vocabulary lists a word twice; rebuild it with InstructionVocab.build")
        for name, idx in (("UNK_INDEX", self.UNK_INDEX), ("PAD_INDEX", self.PAD_INDEX)):
            if not 0 <= idx < len(self.word_list):
                raise VidNavError(f"instruction vocabulary {name}={idx} is outside its {len(self.word_list)} words")

    # the released files store the same mapping under several names
    @property
    def stoi(self) -> dict[str, int]:
        return self._stoi

    word2idx_dict = stoi

    @property
    def itos(self) -> list[str]:
        return self.word_list

    @property
    def num_vocab(self) -> int:
        return len(self.word_list)

    def __len__(self) -> int:
        return len(self.word_list)

    @classmethod
    def build(cls, texts: Iterable[str]) -> InstructionVocab:
        words = {w for t in texts for w in split_words(t)} - {PAD_TOKEN, UNK_TOKEN}
        return cls([PAD_TOKEN, UNK_TOKEN, *sorted(words)], UNK_INDEX=1, PAD_INDEX=0)

    def encode(self, text: str) -> list[int]:
        """Word ids of ``text`` (unknown words -> UNK_INDEX), not padded."""
        return [self._stoi.get(w, self.UNK_INDEX) for w in split_words(text)]

    def tokenize(self, text: str, max_len: int = MAX_INSTRUCTION_TOKENS) -> list[int]:
        """Ids of ``text`` cut to ``max_len`` and padded with PAD_INDEX to exactly ``max_len``."""
        ids = self.encode(text)[:max_len]
        return ids + [self.PAD_INDEX] * (max_len - len(ids))

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.word_list[i] for i in ids if i != self.PAD_INDEX]

    def to_dict(self) -> dict:
        stoi = dict(self._stoi)
        return {"word_list": list(self.word_list), "word2idx_dict": stoi, "stoi": dict(stoi),
                "itos": list(self.word_list), "num_vocab": len(self.word_list),
                "UNK_INDEX": self.UNK_INDEX, "PAD_INDEX": self.PAD_INDEX}

    @classmethod
    def from_dict(cls, d: Any, path: Path | str = "<vocab>") -> InstructionVocab:
        def bad(problem: str) -> VidNavError:
            return VidNavError(f"{path}: instruction_vocab {problem}; {_FIX}")

        if not isinstance(d, dict):
            raise bad("must be a JSON object")
        words = d.get("word_list", d.get("itos"))
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise bad("needs 'word_list' (a list of strings)")
        vocab = cls(words, UNK_INDEX=d.get("UNK_INDEX", 1), PAD_INDEX=d.get("PAD_INDEX", 0))
        for key in ("word2idx_dict", "stoi"):
            if key in d and d[key] != vocab.stoi:
                raise bad(f"'{key}' disagrees with 'word_list'")
        if "itos" in d and d["itos"] != vocab.word_list:
            raise bad("'itos' disagrees with 'word_list'")
        if "num_vocab" in d and d["num_vocab"] != vocab.num_vocab:
            raise bad(f"'num_vocab' is {d['num_vocab']} but 'word_list' has {vocab.num_vocab} words")
        return vocab


# --------------------------------------------------------------------------------------------------
# files


@dataclass
class EpisodeSet:
    """One split: its episodes, instruction vocabulary and (when present) ground-truth follower paths."""

    split: str
    episodes: list[Episode]
    vocab: InstructionVocab | None = None
    gt: dict[str, GtPath] | None = None
    extra: dict = field(default_factory=dict)  # other top-level keys of the episode file
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.episodes)

    def __iter__(self) -> Iterator[Episode]:
        return iter(self.episodes)

    def gt_for(self, episode: Episode) -> GtPath | None:
        return None if self.gt is None else self.gt.get(str(episode.episode_id))


def _read_episode_file(path: Path) -> tuple[list[Episode], InstructionVocab | None, dict]:
    data = read_json(path, "VLN-CE episode file")
    if not isinstance(data, dict) or not isinstance(data.get("episodes"), list):
        raise VidNavError(f"{path}: expected a JSON object with an 'episodes' list (VLN-CE format); {_FIX}")
    episodes = [Episode.from_dict(e, path, i) for i, e in enumerate(data["episodes"])]
    seen: dict = {}
    for i, ep in enumerate(episodes):
        if ep.episode_id in seen:
            raise VidNavError(f"{path}: episode #{i} repeats episode_id {ep.episode_id!r} "
                              f"(first at #{seen[ep.episode_id]}); episode ids must be unique; {_FIX}")
        seen[ep.episode_id] = i
    vocab = InstructionVocab.from_dict(data["instruction_vocab"], path) if "instruction_vocab" in data else None
    return episodes, vocab, _extra(data, ("episodes", "instruction_vocab"))


def load_episodes(path: str | Path) -> tuple[list[Episode], InstructionVocab | None]:
    """Episodes and instruction vocabulary (None when the file has none) of one VLN-CE episode file."""
    episodes, vocab, _ = _read_episode_file(Path(path))
    return episodes, vocab


def load_gt(path: str | Path) -> dict[str, GtPath]:
    """Ground-truth follower paths keyed by episode id (as a string, like the files)."""
    path = Path(path)
    data = read_json(path, "VLN-CE ground-truth file")
    if not isinstance(data, dict):
        raise VidNavError(f"{path}: expected a JSON object mapping episode ids to paths; {_FIX}")
    return {str(k): GtPath.from_dict(v, path, k) for k, v in data.items()}


def split_paths(data_dir: str | Path, split: str) -> tuple[Path, Path]:
    """(episode file, ground-truth file) of ``split`` under ``data_dir``."""
    folder = Path(data_dir) / split
    return folder / f"{split}.json.gz", folder / f"{split}_gt.json.gz"


def available_splits(data_dir: str | Path) -> list[str]:
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        return []
    return sorted(p.name for p in data_dir.iterdir() if (p / f"{p.name}.json.gz").is_file())


def load_split(data_dir: str | Path, split: str) -> EpisodeSet:
    """Read ``{data_dir}/{split}/{split}.json.gz`` and, when present, ``{split}_gt.json.gz``."""
    ep_path, gt_path = split_paths(data_dir, split)
    if not ep_path.is_file():
        found = available_splits(data_dir)
        listing = ", ".join(found) if found else "none"
        raise VidNavError(f"split '{split}' not found: no {ep_path}. Splits in {data_dir}: {listing}. "
                          "Pick one of those or build the data (vidnav data build).")
    episodes, vocab, extra = _read_episode_file(ep_path)
    gt = load_gt(gt_path) if gt_path.is_file() else None
    return EpisodeSet(split, episodes, vocab, gt, extra, ep_path)


def write_split(data_dir: str | Path, split: str, episodes: Sequence[Episode], vocab: InstructionVocab | None,
                gt: Mapping[Any, GtPath | dict] | None, extra: Mapping[str, Any] | None = None) -> tuple[Path, Path | None]:
    """Write a split atomically (gzip with a fixed mtime, so equal inputs give equal bytes).

    Returns (episode file, ground-truth file or None when ``gt`` is None).
    """
    if not split or "/" in split or split.startswith("."):
        raise VidNavError(f"bad split name {split!r}: use a plain folder name such as 'train' or 'val_unseen'")
    ep_path, gt_path = split_paths(data_dir, split)
    doc: dict = {"episodes": [e.to_dict() for e in episodes]}
    if vocab is not None:
        doc["instruction_vocab"] = vocab.to_dict()
    for k, v in (extra or {}).items():
        if k in doc:
            raise VidNavError(f"extra top-level key {k!r} would overwrite the episode file's own {k!r}")
        doc[k] = v
    gt_doc = None
    if gt is not None:
        gt_doc = {str(k): (v if isinstance(v, GtPath) else GtPath.from_dict(v, gt_path, k)).to_dict()
                  for k, v in gt.items()}
    write_json(ep_path, doc, indent=None)
    if gt_doc is not None:
        write_json(gt_path, gt_doc, indent=None)
        return ep_path, gt_path
    return ep_path, None


# --------------------------------------------------------------------------------------------------
# summaries


def _find_gt_file(path: Path) -> Path | None:
    """The ground-truth file beside an episode file: ``x.json.gz`` -> ``x_gt.json.gz``, or any sibling whose
    name without its first ``_gt`` is this name (``..._val_unseen_gt_first50`` for ``..._val_unseen_first50``)."""
    name = path.name
    for suffix in (".json.gz", ".json"):
        if name.endswith(suffix):
            cand = path.with_name(name[: -len(suffix)] + "_gt" + suffix)
            if cand.is_file():
                return cand
    try:
        for sib in sorted(path.parent.iterdir()):
            if sib != path and "_gt" in sib.name and sib.name.replace("_gt", "", 1) == name and sib.is_file():
                return sib
    except OSError:
        pass
    return None


def summarize_file(path: str | Path) -> dict:
    """Counts and means of one episode file (and its ground-truth file beside it, if any)."""
    path = Path(path)
    episodes, vocab, _ = _read_episode_file(path)
    gt_path = _find_gt_file(path)
    gt = load_gt(gt_path) if gt_path is not None else None
    n = len(episodes)
    geo = [e.geodesic_distance for e in episodes if e.geodesic_distance is not None]
    words = [len(e.instruction.instruction_text.split()) for e in episodes]
    out = {
        "file": str(path),
        "episodes": n,
        "scenes": len({e.scene_id for e in episodes}),
        "trajectories": len({e.trajectory_id for e in episodes}),
        "mean_geodesic_distance": (sum(geo) / len(geo)) if geo else None,
        "mean_instruction_words": (sum(words) / n) if n else None,
        "vocab_size": vocab.num_vocab if vocab is not None else None,
        "has_gt": gt is not None,
        "gt_file": str(gt_path) if gt_path is not None else None,
    }
    if gt is not None:
        out["gt_covers"] = sum(1 for e in episodes if str(e.episode_id) in gt)
        out["mean_gt_forward_steps"] = (sum(g.forward_steps for g in gt.values()) / len(gt)) if gt else None
    return out
