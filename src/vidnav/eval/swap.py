"""`vidnav eval --instructions swapped|FILE`: each episode is run with another instruction than its own.

``swapped``: the instruction of another path in its house. ``FILE``: a JSON file of instructions written for the
split's episodes (e.g. worded by people: ``configs/instructions/val_unseen_human.json``), ``{"split": ...,
"instructions": {"<episode id>": "<text>", ...}}``; only the episodes it lists are evaluated.

    donors = swap_instructions(split_episodes, selected, seed=0)
    donors["17"]   # the Episode whose instruction episode 17 is given

An agent that reads the instruction goes where the other path's words say and so misses its own goal (metrics
stay computed against the episode's own goal and path); an agent that does not read reaches as many goals as
with its own instruction. The donor is another path (another ``trajectory_id``) of the same house whose goal
lies farther than the episode's success radius from its own, drawn with a generator seeded by ``seed`` and the
episode id, so a rerun, a resume, ``--workers N`` and any ``--episodes`` give every episode the same donor.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import zlib
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from vidnav.errors import VidNavError
from vidnav.io import read_json
from vidnav.metrics import SUCCESS_DISTANCE

INSTRUCTIONS = ("own", "swapped")


def _goal_xz(ep) -> tuple[float, float]:
    p = ep.goals[0].position
    return float(p[0]), float(p[2])


def swap_instructions(episodes: Sequence, selected: Sequence, seed: int = 0) -> dict[str, object]:
    """For each episode of ``selected``: the episode of ``episodes`` (the whole split) whose instruction it is
    given instead of its own (see the module docstring). Raises when an episode has no such other path."""
    if seed < 0:
        raise VidNavError(f"--seed must be >= 0 (it seeds the choice of the swapped instructions), got {seed}")
    by_house: dict[str, list] = defaultdict(list)
    for ep in episodes:
        by_house[ep.scene_id].append(ep)
    donors = {}
    for ep in selected:
        gx, gz = _goal_xz(ep)
        radius = ep.goals[0].radius or SUCCESS_DISTANCE
        pool = [
            o
            for o in by_house[ep.scene_id]
            if str(o.trajectory_id) != str(ep.trajectory_id)
            and math.hypot(_goal_xz(o)[0] - gx, _goal_xz(o)[1] - gz) > radius
        ]
        if not pool:
            raise VidNavError(
                f"--instructions swapped: episode {ep.episode_id} ({ep.scene_id}) has no other path "
                f"in its house with a goal more than {radius:g} m from its own, so it cannot be given "
                "another path's instruction; use a split with several paths per house (val_unseen: "
                "7 per house) or --instructions own"
            )
        rng = np.random.default_rng([seed, zlib.crc32(str(ep.episode_id).encode())])
        donors[str(ep.episode_id)] = pool[int(rng.integers(len(pool)))]
    return donors


def instructions_from_file(path, selected: Sequence, split: str) -> tuple[list, dict[str, object], str]:
    """The episodes of ``selected`` that ``path`` words anew, each as an Episode carrying its new instruction, and
    a name of the file's content for run.json (``file sha256:...``). Every listed id must be in ``selected``."""
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise VidNavError(f"--instructions {path}: no such file; give own, swapped or a JSON file of instructions")
    raw = path.read_bytes()
    d = read_json(path, "instruction file")
    texts = d.get("instructions") if isinstance(d, dict) else None
    if not isinstance(texts, dict) or not texts:
        raise VidNavError(f"{path}: needs a non-empty object 'instructions' mapping episode ids to instruction texts")
    if d.get("split", split) != split:
        raise VidNavError(
            f"{path} holds instructions for split {d['split']!r}, not {split!r}; pass --split {d['split']}"
        )
    by_id = {str(ep.episode_id): ep for ep in selected}
    unknown = [k for k in texts if str(k) not in by_id]
    if unknown:
        raise VidNavError(
            f"{path}: episode {unknown[0]!r} is not among the {len(selected)} episodes evaluated "
            f"(split {split!r}); raise --episodes or fix the id"
        )
    given = {}
    for k, text in texts.items():
        if not isinstance(text, str) or not text.strip():
            raise VidNavError(f"{path}: instructions[{k!r}] must be a non-empty string")
        ep = by_id[str(k)]
        given[str(k)] = dataclasses.replace(
            ep, instruction=dataclasses.replace(ep.instruction, instruction_text=text.strip())
        )
    chosen = [ep for ep in selected if str(ep.episode_id) in given]
    return chosen, given, "file sha256:" + hashlib.sha256(raw).hexdigest()[:16]
