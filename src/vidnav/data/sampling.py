"""Which frames of a trajectory are training samples, and how often: :class:`FrameSampling` and
:func:`listed_frames`, a pure function of the trajectory's target actions.

``stride``: every ``stride``-th frame is a sample (the last frame, where the expert says ``stop``, always).
``first_frames``: only frames t < first_frames are samples (the start of every episode, where the instruction
says which way to set off); the last frame is then kept only if it lies among them. ``start_frames`` /
``start_repeat``: every frame t < start_frames is listed ``start_repeat`` extra times (whatever the stride), so
training sees the start of each episode more often. ``end_frames`` / ``end_repeat``: the mirror at the goal, each
of the last ``end_frames`` frames is listed ``end_repeat`` extra times (with ``first_frames``, only those among the
first frames). ``inflection_repeat``: every inflection frame (:func:`inflections`: the expert's first action
changes) is listed that many extra times, whatever the stride: VLN-CE's inflection weighting, done by listing
instead of by a loss weight. ``only_inflections``: the samples are the inflection frames alone (no stride, no
repeats), to score a model where copying its last action fails.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Sequence

from vidnav.errors import VidNavError


def inflections(targets: Sequence[Sequence[str]]) -> list[int]:
    """Frames t >= 1 whose first target action differs from frame t-1's: where the expert changes what it does.

    These are VLN-CE's inflection points (Krantz et al. 2020): turns at corners and doorways, the first turn, the
    stop. Between them the label repeats the previous one, so a policy can copy its last action and be right.
    """
    return [t for t in range(1, len(targets)) if targets[t][0] != targets[t - 1][0]]


def _int(name: str, value, minimum: int, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        unset = ", or unset" if optional else ""
        raise VidNavError(f"{name} must be >= {minimum} (an integer{unset}), got {value!r}")
    return value


@dataclass(frozen=True)
class FrameSampling:
    """The frame-sampling knobs (module docstring); checked when built, naming the setting."""

    stride: int = 1
    first_frames: int | None = None
    start_frames: int | None = None
    start_repeat: int = 0
    end_frames: int | None = None
    end_repeat: int = 0
    inflection_repeat: int = 0
    only_inflections: bool = False

    def __post_init__(self) -> None:
        _int("stride", self.stride, 1)
        _int("first_frames", self.first_frames, 1, optional=True)
        for name in ("start_repeat", "end_repeat", "inflection_repeat"):
            _int(name, getattr(self, name), 0)
        for frames, repeat in (("start_frames", "start_repeat"), ("end_frames", "end_repeat")):
            if getattr(self, repeat):  # the frame count matters only when those frames are repeated
                if getattr(self, frames) is None:
                    raise VidNavError(
                        f"{repeat}={getattr(self, repeat)} needs {frames} >= 1 (how many frames to repeat)"
                    )
                _int(frames, getattr(self, frames), 1)
        if self.only_inflections and (
            self.start_repeat or self.end_repeat or self.inflection_repeat or self.stride != 1
        ):
            raise VidNavError(
                "only_inflections takes the inflection frames as they are; drop stride, start_repeat, "
                "end_repeat and inflection_repeat"
            )


def listed_frames(targets: Sequence[Sequence[str]], sampling: FrameSampling = FrameSampling()) -> list[int]:
    """The frames of one trajectory (given by its per-frame target actions) that are samples, each as many times
    as it is listed: first the strided frames in order, then the start, end and inflection repeats."""
    length = len(targets)
    s = sampling
    end = length if s.first_frames is None else min(length, s.first_frames)
    if s.only_inflections:
        return [t for t in inflections(targets) if t < end]
    ts = list(range(0, end, s.stride))
    if ts and ts[-1] != length - 1 and end == length:
        ts.append(length - 1)
    if s.start_repeat:
        ts += [t for _ in range(s.start_repeat) for t in range(min(end, s.start_frames))]
    if s.end_repeat:
        ts += [t for _ in range(s.end_repeat) for t in range(max(0, length - s.end_frames), end)]
    if s.inflection_repeat:
        turns = [t for t in inflections(targets) if t < end]
        ts += [t for _ in range(s.inflection_repeat) for t in turns]
    return ts
