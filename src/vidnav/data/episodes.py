"""VLN-CE R2R episode files, read and written exactly; VLN-CE RxR (RxR-CE) episode files, read.

A split lives in ``{data_dir}/{split}/``::

    {split}.json.gz      {"episodes": [...], "instruction_vocab": {...}}
    {split}_gt.json.gz   {"<episode_id>": {"locations": [[x,y,z],...], "actions": [...], "forward_steps": n}}

Positions are habitat ``[x, y, z]`` (y up), rotations quaternions ``[x, y, z, w]``. Every object keeps the
keys it does not know in ``extra``, so load -> write gives back the same JSON.

RxR-CE files (``{split}_{role}.json.gz`` + ``{split}_{role}_gt.json.gz``, role ``guide`` or ``follower``) are
told apart by their fields, not their names: an episode whose ``instruction`` has a ``language`` (or whose
``info`` has a ``role``) is RxR-CE, and then every episode of the file must be. RxR-CE has no
``instruction_vocab``; its instructions carry ``language`` (``en-US``, ``en-IN``, ``hi-IN``, ``te-IN``),
``instruction_id``, ``annotator_id``, ``edit_distance`` and ``timed_instruction`` (kept in
``Instruction.extra``); ``info`` holds ``role`` and usually no ``geodesic_distance`` (then
``Episode.geodesic_distance`` is None: unavailable, never guessed); gt entries may omit ``actions`` and use
VLN-CE's RxR action ids 0..5 (4 LOOK_UP, 5 LOOK_DOWN). ``languages=`` / ``roles=`` pick episodes
(:func:`filter_episodes`).
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
    "filter_episodes",
    "language_matches",
    "R2R_CE",
    "RXR_CE",
    "RXR_LANGUAGES",
    "RXR_ROLES",
]

PAD_TOKEN = "<pad>"
UNK_TOKEN = "<unk>"
MAX_INSTRUCTION_TOKENS = 200
_SAFE_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
_FIX = "fix the file or rebuild it (vidnav data build), or re-download the VLN-CE split"
R2R_CE, RXR_CE = "R2R-CE", "RxR-CE"  # the two episode schemas read here (EpisodeSet.schema)
RXR_LANGUAGES = ("en-US", "en-IN", "hi-IN", "te-IN")  # RxR-CE's languages (others are read too)
RXR_ROLES = ("guide", "follower")
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*")  # a BCP-47-like tag: en, en-US, hi-IN


class _Where:
    """Names the place of a problem: file, episode index and id, field."""

    def __init__(self, path: Path | str, index: int | None = None, episode_id: Any = None):
        self.path, self.index, self.episode_id = path, index, episode_id

    def error(self, field_name: str, problem: str) -> VidNavError:
        at = f"{self.path}"
        if self.index is not None:
            at += f": episode #{self.index}"
        if self.episode_id is not None:
            at += (
                f" (episode_id {self.episode_id!r})" if self.index is not None else f": episode_id {self.episode_id!r}"
            )
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

    @property
    def language(self) -> str | None:
        """RxR-CE's language tag (``en-US``, ``hi-IN``, ...); None in R2R-CE."""
        return self.extra.get("language")

    @classmethod
    def from_dict(cls, d: Any, where: _Where, rxr: bool = False) -> Instruction:
        d = _as_dict(where, "instruction", d)
        if rxr:
            _check_rxr_instruction(d, where)
        text = where.need(d, "instruction_text", "instruction.")
        if not isinstance(text, str):
            raise where.error("instruction.instruction_text", f"must be a string, got {type(text).__name__}")
        if not text.strip():  # found here, not when an agent is given the episode
            raise where.error("instruction.instruction_text", "is empty; every episode needs an instruction")
        tokens = d.get("instruction_tokens")
        if tokens is not None and (
            not isinstance(tokens, list) or not all(isinstance(t, int) and not isinstance(t, bool) for t in tokens)
        ):
            raise where.error("instruction.instruction_tokens", "must be a list of integers")
        return cls(text, tokens, _extra(d, ("instruction_text", "instruction_tokens")))


def _is_id(v: Any) -> bool:
    return isinstance(v, (int, str)) and not isinstance(v, bool)


def _is_time(v: Any) -> bool:  # RxR word times: seconds; null or NaN where the word was not timed
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isinf(v))


def _check_rxr_instruction(d: dict, where: _Where) -> None:
    """The fields RxR-CE adds to an instruction (all kept in ``Instruction.extra``)."""
    lang = where.need(d, "language", "instruction.")
    if not isinstance(lang, str) or not _LANGUAGE.fullmatch(lang):
        raise where.error(
            "instruction.language", f"must be a language tag such as 'en-US' or 'hi-IN', got {lang!r:.80}"
        )
    for key in ("instruction_id", "annotator_id"):
        if key in d and d[key] is not None and not _is_id(d[key]):
            raise where.error(f"instruction.{key}", f"must be an integer or a string, got {d[key]!r:.80}")
    ed = d.get("edit_distance")
    if ed is not None and not (_is_number(ed) and ed >= 0):
        raise where.error("instruction.edit_distance", f"must be a number >= 0 or null, got {ed!r:.80}")
    timed = d.get("timed_instruction")
    if timed is None:
        return
    if not isinstance(timed, list):
        raise where.error("instruction.timed_instruction", "must be a list of {word, start_time, end_time}")
    for i, w in enumerate(timed):
        name = f"instruction.timed_instruction[{i}]"
        w = _as_dict(where, name, w)
        if not isinstance(w.get("word"), str):
            raise where.error(
                f"{name}.word", "is missing" if "word" not in w else f"must be a string, got {w['word']!r:.80}"
            )
        for key in ("start_time", "end_time"):
            if not _is_time(w.get(key)):
                raise where.error(f"{name}.{key}", f"must be a number of seconds (or null), got {w[key]!r:.80}")


def _looks_rxr(d: Any) -> bool:
    """An RxR-CE episode object: its instruction names a language, or its info a role."""
    if not isinstance(d, dict):
        return False
    instr, info = d.get("instruction"), d.get("info")
    return (isinstance(instr, dict) and "language" in instr) or (isinstance(info, dict) and "role" in info)


_EPISODE_KEYS = (
    "episode_id",
    "trajectory_id",
    "scene_id",
    "start_position",
    "start_rotation",
    "info",
    "goals",
    "instruction",
    "reference_path",
)


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
        """Metres from start to goal; None where the file does not give it (RxR-CE)."""
        return self.info.get("geodesic_distance")

    @property
    def language(self) -> str | None:
        """RxR-CE's ``instruction.language``; None in R2R-CE."""
        return self.instruction.language

    @property
    def role(self) -> str | None:
        """RxR-CE's ``info.role`` (``guide`` or ``follower``); None where absent."""
        return self.info.get("role")

    def to_dict(self) -> dict:
        """The habitat VLN-CE-v1 episode object, keys in the order the released files use."""
        if self.trajectory_id is None and self.language is not None:  # an RxR-CE episode without one
            d = self._to_dict()
            del d["trajectory_id"]
            return d
        return self._to_dict()

    def _to_dict(self) -> dict:
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
    def from_dict(
        cls, d: Any, path: Path | str = "<episodes>", index: int | None = None, schema: str | None = None
    ) -> Episode:
        """One episode; ``schema`` R2R_CE or RXR_CE (None: told by the episode's own fields)."""
        if schema is None:
            schema = RXR_CE if _looks_rxr(d) else R2R_CE
        if schema not in (R2R_CE, RXR_CE):
            raise ValueError(f"schema must be {R2R_CE!r} or {RXR_CE!r}, got {schema!r}")
        rxr = schema == RXR_CE
        where = _Where(path, index)
        if not isinstance(d, dict):
            raise where.error("<episode>", f"must be a JSON object, got {type(d).__name__}")
        where.episode_id = d.get("episode_id")
        ep_id = where.need(d, "episode_id")
        if not isinstance(ep_id, (int, str)) or isinstance(ep_id, bool):
            raise where.error("episode_id", f"must be an integer or a string, got {ep_id!r}")
        if isinstance(ep_id, str) and not _SAFE_ID.fullmatch(ep_id):  # ids name files: videos, feature keys
            raise where.error(
                "episode_id",
                f"{ep_id[:80]!r} is not a plain file name (letters, digits, '.', '_', "
                "'-'; not starting with '.'; at most 128 characters)",
            )
        traj = d.get("trajectory_id") if rxr else where.need(d, "trajectory_id")
        scene = where.need(d, "scene_id")
        if not isinstance(scene, str) or not scene:
            raise where.error("scene_id", f"must be a non-empty string, got {scene!r}")
        start = _vector(where, "start_position", where.need(d, "start_position"), 3)
        rot = _vector(where, "start_rotation", where.need(d, "start_rotation"), 4)
        if sum(c * c for c in rot) < 1e-12:
            raise where.error("start_rotation", "is a zero quaternion; use [0, sin(t/2), 0, cos(t/2)]")
        info = _as_dict(where, "info", where.need(d, "info"))
        if rxr:  # RxR-CE: no geodesic distance is unavailable (None), never made up; a given one is checked
            role = info.get("role")
            if role is not None and role not in RXR_ROLES:
                raise where.error("info.role", f"must be one of {', '.join(RXR_ROLES)}, got {role!r:.80}")
        if not rxr or info.get("geodesic_distance") is not None:
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
        instruction = Instruction.from_dict(where.need(d, "instruction"), where, rxr=rxr)
        return cls(ep_id, traj, scene, start, rot, info, goals, ref, instruction, _extra(d, _EPISODE_KEYS))


@dataclass
class GtPath:
    """The shortest-path follower's record for one episode (VLN-CE ``{split}_gt.json.gz``)."""

    locations: list[list[float]]
    actions: list[int] | None  # 0 STOP, 1 MOVE_FORWARD (0.25 m), 2 TURN_LEFT (15 deg), 3 TURN_RIGHT (15 deg);
    #                            RxR-CE adds 4 LOOK_UP, 5 LOOK_DOWN and may leave them out (None)
    forward_steps: int
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        if self.actions is None:
            return {"locations": [list(p) for p in self.locations], "forward_steps": self.forward_steps, **self.extra}
        return {
            "locations": [list(p) for p in self.locations],
            "actions": list(self.actions),
            "forward_steps": self.forward_steps,
            **self.extra,
        }

    @classmethod
    def from_dict(cls, d: Any, path: Path | str = "<gt>", episode_id: Any = None, schema: str = R2R_CE) -> GtPath:
        """One gt entry; RxR-CE (``schema=RXR_CE``) entries may omit ``actions`` and use ids 0..5."""
        if schema == RXR_CE:
            return cls._from_rxr(d, path, episode_id)
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

    @classmethod
    def _from_rxr(cls, d: Any, path: Path | str, episode_id: Any) -> GtPath:
        where = _Where(path, None, episode_id)
        d = _as_dict(where, "<gt entry>", d)
        locs = where.need(d, "locations")
        if not isinstance(locs, list):
            raise where.error("locations", "must be a list of [x, y, z] points")
        locs = [_vector(where, f"locations[{i}]", p, 3) for i, p in enumerate(locs)]
        actions = d.get("actions")
        if actions is not None and (
            not isinstance(actions, list)
            or not all(isinstance(a, int) and not isinstance(a, bool) and 0 <= a <= 5 for a in actions)
        ):
            raise where.error(
                "actions",
                "must be a list of RxR-CE action ids 0..5 (STOP, FORWARD, LEFT, RIGHT, LOOK_UP, LOOK_DOWN), or absent",
            )
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
        return {
            "word_list": list(self.word_list),
            "word2idx_dict": stoi,
            "stoi": dict(stoi),
            "itos": list(self.word_list),
            "num_vocab": len(self.word_list),
            "UNK_INDEX": self.UNK_INDEX,
            "PAD_INDEX": self.PAD_INDEX,
        }

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
    schema: str = R2R_CE  # R2R_CE or RXR_CE, told by the episodes' fields

    def __len__(self) -> int:
        return len(self.episodes)

    def __iter__(self) -> Iterator[Episode]:
        return iter(self.episodes)

    def gt_for(self, episode: Episode) -> GtPath | None:
        return None if self.gt is None else self.gt.get(str(episode.episode_id))


def _counts(values: Iterable[Any]) -> dict:
    out: dict = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return {k: out[k] for k in sorted(out, key=str)}


def language_matches(language: str | None, wanted: Iterable[str]) -> bool:
    """Whether ``language`` is one of ``wanted``, ignoring case; a bare ``en`` also picks ``en-US`` and ``en-IN``."""
    if language is None:
        return False
    lang = language.lower()
    return any(lang == w.lower() or lang.startswith(w.lower() + "-") for w in wanted)


def filter_episodes(
    episodes: Sequence[Episode],
    languages: Iterable[str] | None = None,
    roles: Iterable[str] | None = None,
    path: Path | str = "<episodes>",
) -> list[Episode]:
    """The episodes whose ``instruction.language`` matches one of ``languages`` (see :func:`language_matches`)
    and whose ``info.role`` is one of ``roles``; None or empty = no filter. A filter the file cannot answer (an
    R2R-CE file has no languages) or that keeps no episode raises VidNavError naming the file and the field."""
    languages = [languages] if isinstance(languages, str) else [str(w) for w in languages or ()]  # "en" is one tag
    roles = [roles] if isinstance(roles, str) else [str(r) for r in roles or ()]
    for w in languages:
        if not _LANGUAGE.fullmatch(w):
            raise VidNavError(f"language filter {w!r} is not a language tag: use e.g. en, en-US, en-IN, hi-IN, te-IN")
    for r in roles:
        if r not in RXR_ROLES:
            raise VidNavError(f"role filter {r!r} is not a role: use {' or '.join(RXR_ROLES)}")
    out = list(episodes)
    for wanted, field_name, value, keep, what in (
        (
            languages,
            "instruction.language",
            lambda e: e.language,
            lambda e: language_matches(e.language, languages),
            "language",
        ),
        (roles, "info.role", lambda e: e.role, lambda e: e.role in roles, "role"),
    ):
        if not wanted:
            continue
        present = _counts(value(e) for e in out if value(e) is not None)
        if not present and out:
            raise VidNavError(
                f"{path}: no episode has the field '{field_name}', so a {what} filter "
                f"({', '.join(wanted)}) cannot pick episodes: R2R-CE files have none (RxR-CE files do); "
                f"drop the filter"
            )
        kept = [e for e in out if keep(e)]
        if not kept:
            listing = ", ".join(f"{k} ({n})" for k, n in present.items()) or "none"
            raise VidNavError(
                f"{path}: no episode's '{field_name}' matches {', '.join(wanted)}; this file has: {listing}"
            )
        out = kept
    return out


def _read_episode_file(path: Path) -> tuple[list[Episode], InstructionVocab | None, dict]:
    episodes, vocab, extra, _ = _read_episodes(path)
    return episodes, vocab, extra


def _read_episodes(path: Path) -> tuple[list[Episode], InstructionVocab | None, dict, str]:
    data = read_json(path, "VLN-CE episode file")
    if not isinstance(data, dict) or not isinstance(data.get("episodes"), list):
        raise VidNavError(f"{path}: expected a JSON object with an 'episodes' list (VLN-CE format); {_FIX}")
    # one schema per file, told by the fields: one RxR-CE episode makes every episode answer to RxR-CE's
    schema = RXR_CE if any(_looks_rxr(e) for e in data["episodes"]) else R2R_CE
    episodes = [Episode.from_dict(e, path, i, schema) for i, e in enumerate(data["episodes"])]
    seen: dict = {}
    for i, ep in enumerate(episodes):
        if ep.episode_id in seen:
            raise VidNavError(
                f"{path}: episode #{i} repeats episode_id {ep.episode_id!r} "
                f"(first at #{seen[ep.episode_id]}); episode ids must be unique; {_FIX}"
            )
        seen[ep.episode_id] = i
    vocab = InstructionVocab.from_dict(data["instruction_vocab"], path) if "instruction_vocab" in data else None
    return episodes, vocab, _extra(data, ("episodes", "instruction_vocab")), schema


def load_episodes(
    path: str | Path, languages: Iterable[str] | None = None, roles: Iterable[str] | None = None
) -> tuple[list[Episode], InstructionVocab | None]:
    """Episodes and instruction vocabulary (None when the file has none) of one VLN-CE episode file, R2R-CE or
    RxR-CE; ``languages`` (e.g. ``["en"]`` = en-US and en-IN) and ``roles`` pick RxR-CE episodes."""
    path = Path(path)
    episodes, vocab, _ = _read_episode_file(path)
    if languages or roles:
        episodes = filter_episodes(episodes, languages, roles, path)
    return episodes, vocab


def load_gt(path: str | Path, schema: str = R2R_CE) -> dict[str, GtPath]:
    """Ground-truth follower paths keyed by episode id (as a string, like the files); ``schema=RXR_CE`` for the
    gt file of an RxR-CE episode file (``actions`` optional, ids 0..5)."""
    path = Path(path)
    data = read_json(path, "VLN-CE ground-truth file")
    if not isinstance(data, dict):
        raise VidNavError(f"{path}: expected a JSON object mapping episode ids to paths; {_FIX}")
    return {str(k): GtPath.from_dict(v, path, k, schema) for k, v in data.items()}


def split_paths(data_dir: str | Path, split: str) -> tuple[Path, Path]:
    """(episode file, ground-truth file) of ``split`` under ``data_dir``."""
    folder = Path(data_dir) / split
    return folder / f"{split}.json.gz", folder / f"{split}_gt.json.gz"


def available_splits(data_dir: str | Path) -> list[str]:
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        return []
    return sorted(p.name for p in data_dir.iterdir() if (p / f"{p.name}.json.gz").is_file())


def load_split(
    data_dir: str | Path, split: str, languages: Iterable[str] | None = None, roles: Iterable[str] | None = None
) -> EpisodeSet:
    """Read ``{data_dir}/{split}/{split}.json.gz`` and, when present, ``{split}_gt.json.gz``; ``languages`` and
    ``roles`` pick RxR-CE episodes (:func:`filter_episodes`). RxR-CE's own layout, one file per role
    (``{split}/{split}_guide.json.gz`` + ``{split}_guide_gt.json.gz``), is read too: the role's file when
    ``roles`` names one, the only one present otherwise."""
    ep_path, gt_path = split_paths(data_dir, split)
    if not ep_path.is_file():
        role_file = _rxr_role_file(Path(data_dir) / split, split, roles)
        if role_file is not None:
            ep_path, gt_path = role_file, role_file.with_name(role_file.name.replace(".json", "_gt.json", 1))
    if not ep_path.is_file():
        found = available_splits(data_dir)
        listing = ", ".join(found) if found else "none"
        raise VidNavError(
            f"split '{split}' not found: no {ep_path}. Splits in {data_dir}: {listing}. "
            "Pick one of those or build the data (vidnav data build)."
        )
    episodes, vocab, extra, schema = _read_episodes(ep_path)
    if languages or roles:
        episodes = filter_episodes(episodes, languages, roles, ep_path)
    gt = load_gt(gt_path, schema) if gt_path.is_file() else None
    return EpisodeSet(split, episodes, vocab, gt, extra, ep_path, schema)


def _rxr_role_file(folder: Path, split: str, roles: Iterable[str] | None) -> Path | None:
    """RxR-CE's per-role episode file of ``split`` in ``folder`` (see :func:`load_split`), or None."""
    roles = [roles] if isinstance(roles, str) else list(roles or ())
    present = {
        r: folder / f"{split}_{r}{ext}"
        for r in RXR_ROLES
        for ext in (".json.gz", ".json")
        if (folder / f"{split}_{r}{ext}").is_file()
    }
    wanted = [r for r in present if r in roles] if roles else list(present)
    if len(wanted) > 1:
        raise VidNavError(
            f"{folder} holds one RxR-CE episode file per role ({', '.join(p.name for p in present.values())}); "
            "pick one with roles=[...] (vidnav: --role guide)"
        )
    return present[wanted[0]] if wanted else None


def write_split(
    data_dir: str | Path,
    split: str,
    episodes: Sequence[Episode],
    vocab: InstructionVocab | None,
    gt: Mapping[Any, GtPath | dict] | None,
    extra: Mapping[str, Any] | None = None,
) -> tuple[Path, Path | None]:
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
        gt_doc = {
            str(k): (v if isinstance(v, GtPath) else GtPath.from_dict(v, gt_path, k)).to_dict() for k, v in gt.items()
        }
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


def summarize_file(
    path: str | Path, languages: Iterable[str] | None = None, roles: Iterable[str] | None = None
) -> dict:
    """Counts and means of one episode file (and its ground-truth file beside it, if any); an RxR-CE file also
    gets its schema, languages and roles, and ``languages`` / ``roles`` pick which of its episodes count."""
    path = Path(path)
    episodes, vocab, _, schema = _read_episodes(path)
    if schema == RXR_CE:
        return _summarize_rxr(path, episodes, vocab, languages, roles)
    if languages or roles:
        filter_episodes(episodes, languages, roles, path)  # raises: an R2R-CE file has no languages or roles
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


def _summarize_rxr(
    path: Path,
    episodes: list[Episode],
    vocab: InstructionVocab | None,
    languages: Iterable[str] | None,
    roles: Iterable[str] | None,
) -> dict:
    languages, roles = list(languages or ()), list(roles or ())
    picked = filter_episodes(episodes, languages, roles, path)
    gt_path = _find_gt_file(path)
    gt = load_gt(gt_path, RXR_CE) if gt_path is not None else None
    n = len(picked)
    geo = [e.geodesic_distance for e in picked if e.geodesic_distance is not None]
    words = [len(e.instruction.instruction_text.split()) for e in picked]
    trajectories = {e.trajectory_id for e in picked if e.trajectory_id is not None}
    out = {
        "file": str(path),
        "format": RXR_CE,
        "episodes": n,
        "episodes_in_file": len(episodes),
        "language_filter": languages or None,
        "role_filter": roles or None,
        "languages": _counts(e.language for e in picked),
        "roles": _counts(e.role for e in picked if e.role is not None) or None,
        "scenes": len({e.scene_id for e in picked}),
        "trajectories": len(trajectories) if trajectories else None,
        "mean_geodesic_distance": (sum(geo) / len(geo)) if geo else None,  # None: the file gives none
        "episodes_with_geodesic_distance": len(geo),
        "mean_instruction_words": (sum(words) / n) if n else None,  # whitespace words (Telugu, Hindi too)
        "vocab_size": vocab.num_vocab if vocab is not None else None,
        "has_gt": gt is not None,
        "gt_file": str(gt_path) if gt_path is not None else None,
    }
    if gt is not None:
        covered = [gt[str(e.episode_id)] for e in picked if str(e.episode_id) in gt]
        out["gt_covers"] = len(covered)
        out["mean_gt_forward_steps"] = (sum(g.forward_steps for g in covered) / len(covered)) if covered else None
    return out
