"""`vidnav eval --instructions swapped`: each episode is run with the instruction of another path in its house.

    donors = swap_instructions(split_episodes, selected, seed=0)
    donors["17"]   # the Episode whose instruction episode 17 is given

An agent that reads the instruction goes where the other path's words say and so misses its own goal (metrics
stay computed against the episode's own goal and path); an agent that does not read reaches as many goals as
with its own instruction. The donor is another path (another ``trajectory_id``) of the same house whose goal
lies farther than the episode's success radius from its own, drawn with a generator seeded by ``seed`` and the
episode id, so a rerun, a resume, ``--workers N`` and any ``--episodes`` give every episode the same donor.
"""

from __future__ import annotations

import math
import zlib
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from vidnav.errors import VidNavError
from vidnav.eval.metrics import SUCCESS_DISTANCE

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
        pool = [o for o in by_house[ep.scene_id] if str(o.trajectory_id) != str(ep.trajectory_id)
                and math.hypot(_goal_xz(o)[0] - gx, _goal_xz(o)[1] - gz) > radius]
        if not pool:
            raise VidNavError(f"--instructions swapped: episode {ep.episode_id} ({ep.scene_id}) has no other path "
                              f"in its house with a goal more than {radius:g} m from its own, so it cannot be given "
                              "another path's instruction; use a split with several paths per house (val_unseen: "
                              "7 per house) or --instructions own")
        rng = np.random.default_rng([seed, zlib.crc32(str(ep.episode_id).encode())])
        donors[str(ep.episode_id)] = pool[int(rng.integers(len(pool)))]
    return donors
