"""NavTask: one navigation task in a house, in Miniworld terms, and the task of a VLN-CE episode.

An episode (:class:`vidnav.data.episodes.Episode`, or anything with its fields) is read for its start, goal,
instruction and reference path; positions are converted from habitat ``[x, y, z]`` to Miniworld ``(x, z)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vidnav.geometry import heading_from_quaternion, to_miniworld
from vidnav.metrics import SUCCESS_DISTANCE
from vidnav.sim.house import House

__all__ = ["NavTask", "episode_task_fields", "episode_to_task"]


@dataclass
class NavTask:
    """One navigation task in Miniworld coordinates (x, z, heading in radians)."""

    house: House
    start: tuple[float, float, float]
    goal: tuple[float, float]
    instruction: str
    reference: list[tuple[float, float]] = field(default_factory=list)
    goal_radius: float = SUCCESS_DISTANCE
    episode_id: str = ""
    gt_locations: list[tuple[float, float]] | None = None  # the expert path, for nDTW


def episode_task_fields(episode, gt=None) -> dict:
    """The NavTask fields (all but ``house``) of an episode, in Miniworld (x, z, heading) terms; ``gt`` is its
    ground-truth path (:class:`vidnav.data.episodes.GtPath`), if any."""
    x, z = to_miniworld(episode.start_position)
    goal = episode.goals[0]
    return {
        "start": (x, z, heading_from_quaternion(episode.start_rotation)),
        "goal": to_miniworld(goal.position),
        "instruction": episode.instruction.instruction_text,
        "reference": [to_miniworld(p) for p in episode.reference_path],
        "goal_radius": float(goal.radius) if goal.radius is not None else SUCCESS_DISTANCE,
        "episode_id": str(episode.episode_id),
        "gt_locations": None if gt is None else [to_miniworld(p) for p in gt.locations],
    }


def episode_to_task(episode, house: House, gt=None) -> NavTask:
    """The :class:`NavTask` of ``episode`` in ``house``."""
    return NavTask(house=house, **episode_task_fields(episode, gt))
