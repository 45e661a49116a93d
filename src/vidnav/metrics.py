"""VLN-CE's episode measures as plain functions (habitat_extensions/measures.py is the reference).

Paths are sequences of points, either habitat ``[x, y, z]`` or Miniworld ``(x, z)``; every given
coordinate is used, so both paths of one call must have the same dimension. DTW here is exact (VLN-CE
uses fastdtw, an approximation that can only over-estimate the exact value).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from vidnav.errors import VidNavError

__all__ = [
    "path_length",
    "dtw",
    "ndtw",
    "sdtw",
    "spl",
    "oracle_success",
    "drop_repeats",
    "summarize",
    "SUMMARY_KEYS",
    "SUCCESS_DISTANCE",
]

SUCCESS_DISTANCE = 3.0  # metres: an episode succeeds when the agent stops closer than this to the goal (VLN-CE)

SUMMARY_KEYS = (
    "success",
    "spl",
    "ndtw",
    "sdtw",
    "oracle_success",
    "navigation_error",
    "trajectory_length",
    "steps",
    "collisions",
)
# names VLN-CE's measures use for the same quantities
_ALIASES = {"navigation_error": ("distance_to_goal",), "trajectory_length": ("path_length",)}


def _points(path, name: str) -> np.ndarray:
    try:
        a = np.asarray(path, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise VidNavError(f"{name} must be a list of [x, y, z] or (x, z) points, got {path!r:.80}") from e
    if a.size == 0:
        return a.reshape(0, 2)
    if a.ndim != 2 or a.shape[1] not in (2, 3):
        raise VidNavError(f"{name} must be a list of [x, y, z] or (x, z) points; got an array of shape {a.shape}")
    if not np.isfinite(a).all():
        raise VidNavError(f"{name} holds NaN or infinite coordinates")
    return a


def _pair(path, reference) -> tuple[np.ndarray, np.ndarray]:
    p, r = _points(path, "path"), _points(reference, "reference")
    if len(p) == 0 or len(r) == 0:
        raise VidNavError(f"DTW needs non-empty paths (path has {len(p)} points, reference {len(r)})")
    if p.shape[1] != r.shape[1]:
        raise VidNavError(
            f"path points have {p.shape[1]} coordinates but reference points have {r.shape[1]}; "
            "convert both to habitat [x, y, z] or both to miniworld (x, z)"
        )
    return p, r


def path_length(path) -> float:
    """Sum of the euclidean lengths of consecutive steps (0 for fewer than two points)."""
    p = _points(path, "path")
    if len(p) < 2:
        return 0.0
    return float(np.linalg.norm(np.diff(p, axis=0), axis=1).sum())


def drop_repeats(path) -> np.ndarray:
    """The path without consecutive duplicate points (VLN-CE records a location only when it changes)."""
    p = _points(path, "path")
    if len(p) < 2:
        return p
    keep = np.ones(len(p), dtype=bool)
    keep[1:] = np.any(p[1:] != p[:-1], axis=1)
    return p[keep]


def dtw(path, reference) -> float:
    """Exact dynamic-time-warping distance with euclidean point cost, O(n*m) time, one row at a time."""
    p, r = _pair(path, reference)
    cost = np.linalg.norm(p[:, None, :] - r[None, :, :], axis=2) if len(p) * len(r) <= 4_000_000 else None
    m = len(r)
    prev = np.full(m, np.inf)
    for i in range(len(p)):
        c = cost[i] if cost is not None else np.linalg.norm(r - p[i], axis=1)
        # D[i, j] = c[j] + min(D[i-1, j], D[i-1, j-1], D[i, j-1]); the first two terms are a shift of
        # the previous row, the left neighbour unrolls into a prefix minimum.
        best_up = prev.copy()
        if i == 0:
            best_up[0] = 0.0
        else:
            best_up[1:] = np.minimum(prev[1:], prev[:-1])
        # row[j] = C[j] + min_{k<=j}(best_up[k] - C[k-1]) with C the running sum of c (C[-1] = 0)
        csum = np.cumsum(c)
        shifted = np.concatenate(([0.0], csum[:-1]))
        row = csum + np.minimum.accumulate(best_up - shifted)
        prev = row
    return float(prev[-1])


def ndtw(path, reference, success_distance: float = SUCCESS_DISTANCE) -> float:
    """Normalised DTW: exp(-DTW / (len(reference) * success_distance)), repeats dropped from ``path``."""
    if success_distance <= 0:
        raise VidNavError(f"success_distance must be > 0, got {success_distance}")
    r = _points(reference, "reference")
    d = dtw(drop_repeats(path), r)
    return float(math.exp(-d / (len(r) * success_distance)))


def sdtw(path, reference, success: float | bool, success_distance: float = SUCCESS_DISTANCE) -> float:
    """Success-weighted nDTW: success * ndtw."""
    return float(success) * ndtw(path, reference, success_distance)


def spl(success: float | bool, shortest_distance: float, path_length: float) -> float:
    """Success weighted by path length: success * d / max(d, length) (0 when both are 0 and not successful)."""
    d, length = float(shortest_distance), float(path_length)
    if d < 0 or length < 0:
        raise VidNavError(f"distances must be >= 0 (shortest {d}, path length {length})")
    denom = max(d, length)
    if denom == 0.0:
        return float(success)  # started on the goal and stayed there
    return float(success) * d / denom


def oracle_success(distances: Sequence[float], radius: float = SUCCESS_DISTANCE) -> float:
    """1.0 if the agent was ever closer than ``radius`` to the goal (distances along its path), else 0.0.

    Strictly closer, as VLN-CE's OracleSuccess and Success measures and the environment count it.
    """
    ds = np.asarray(list(distances), dtype=np.float64)
    return float(ds.size > 0 and bool((ds < radius).any()))


def summarize(results: list[dict]) -> dict:
    """Means over episodes of the VLN-CE measures; ``episodes`` is the count.

    A key that not every result carries (or carries as None, e.g. nDTW without ground truth) summarises to
    None: a mean over some episodes would pass for one over all. VLN-CE's names ``distance_to_goal`` and
    ``path_length`` are read as ``navigation_error`` and ``trajectory_length``.
    """
    out: dict = {"episodes": len(results)}
    for key in SUMMARY_KEYS:
        vals = []
        for r in results:
            for name in (key, *_ALIASES.get(key, ())):
                if r.get(name) is not None:
                    vals.append(float(r[name]))
                    break
        out[key] = float(np.mean(vals)) if vals and len(vals) == len(results) else None
    return out
