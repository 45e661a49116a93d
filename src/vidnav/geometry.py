"""VLN-CE / habitat frames <-> Miniworld frames, in one place.

Habitat (VLN-CE): y is up; positions are ``[x, y, z]``; rotations are quaternions ``[x, y, z, w]``. An
agent only turns about +y, and its forward vector is -z turned by the yaw ``theta`` about +y::

    forward = (-sin(theta), -cos(theta))          # in the (x, z) floor plane

Miniworld: the agent stands at ``(x, z)`` on the floor, y up, with heading ``h`` and::

    forward = (cos(h), -sin(h))                   # in the (x, z) floor plane

Both use the same world axes, so a position maps unchanged (habitat ``[x, y, z]`` <-> miniworld
``(x, z)``; y is the floor height, 0 in our generated houses, kept as given in real files). The two
forward vectors agree when ``h = theta + pi/2``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from vidnav.errors import VidNavError

__all__ = [
    "wrap_angle",
    "yaw_from_quaternion",
    "quaternion_from_yaw",
    "heading_from_yaw",
    "yaw_from_heading",
    "heading_from_quaternion",
    "quaternion_from_heading",
    "to_habitat",
    "to_miniworld",
    "habitat_forward",
    "miniworld_forward",
]


def wrap_angle(a: float) -> float:
    """Wrap an angle to (-pi, pi]."""
    a = math.remainder(float(a), 2.0 * math.pi)  # in [-pi, pi]
    return math.pi if a == -math.pi else a


def _as_quaternion(q: Sequence[float]) -> tuple[float, float, float, float]:
    try:
        x, y, z, w = (float(c) for c in q)
    except (TypeError, ValueError) as e:
        raise VidNavError(f"a rotation must be a quaternion [x, y, z, w] of 4 numbers, got {q!r}") from e
    n = math.sqrt(x * x + y * y + z * z + w * w)
    if not math.isfinite(n) or n < 1e-12:
        raise VidNavError(f"rotation quaternion {q!r} has zero or non-finite norm; use [0, sin(t/2), 0, cos(t/2)]")
    return x / n, y / n, z / n, w / n


def _rotate(q: tuple[float, float, float, float], v: tuple[float, float, float]) -> tuple[float, float, float]:
    """Rotate vector ``v`` by unit quaternion ``q`` (v' = v + 2w(u x v) + 2u x (u x v))."""
    x, y, z, w = q
    vx, vy, vz = v
    # t = 2 (u x v)
    tx = 2.0 * (y * vz - z * vy)
    ty = 2.0 * (z * vx - x * vz)
    tz = 2.0 * (x * vy - y * vx)
    return (
        vx + w * tx + (y * tz - z * ty),
        vy + w * ty + (z * tx - x * tz),
        vz + w * tz + (x * ty - y * tx),
    )


def yaw_from_quaternion(q: Sequence[float]) -> float:
    """Habitat yaw (radians about +y, in (-pi, pi]) of any quaternion ``[x, y, z, w]``.

    The quaternion is normalised; for a general rotation the yaw is that of its forward vector (-z
    rotated) projected on the floor, falling back to the rotated +x axis when forward points straight up
    or down.
    """
    uq = _as_quaternion(q)
    fx, _, fz = _rotate(uq, (0.0, 0.0, -1.0))
    if math.hypot(fx, fz) > 1e-9:
        return wrap_angle(math.atan2(-fx, -fz))
    rx, _, rz = _rotate(uq, (1.0, 0.0, 0.0))  # +x turned by theta is (cos t, 0, -sin t)
    return wrap_angle(math.atan2(-rz, rx))


def quaternion_from_yaw(theta: float) -> list[float]:
    """Quaternion ``[x, y, z, w]`` for a rotation of ``theta`` radians about +y."""
    half = 0.5 * float(theta)
    return [0.0, math.sin(half), 0.0, math.cos(half)]


def heading_from_yaw(theta: float) -> float:
    """Miniworld heading for habitat yaw ``theta``: h = theta + pi/2, wrapped to (-pi, pi]."""
    return wrap_angle(float(theta) + 0.5 * math.pi)


def yaw_from_heading(h: float) -> float:
    """Habitat yaw for Miniworld heading ``h``: theta = h - pi/2, wrapped to (-pi, pi]."""
    return wrap_angle(float(h) - 0.5 * math.pi)


def heading_from_quaternion(q: Sequence[float]) -> float:
    """Miniworld heading (radians, (-pi, pi]) of a habitat rotation quaternion ``[x, y, z, w]``."""
    return heading_from_yaw(yaw_from_quaternion(q))


def quaternion_from_heading(h: float) -> list[float]:
    """Habitat quaternion ``[x, y, z, w]`` (about +y) for a Miniworld heading ``h``."""
    return quaternion_from_yaw(yaw_from_heading(h))


def to_habitat(x: float, z: float, y: float = 0.0) -> list[float]:
    """Miniworld floor point ``(x, z)`` (and height ``y``) -> habitat position ``[x, y, z]``."""
    return [float(x), float(y), float(z)]


def to_miniworld(pos: Sequence[float]) -> tuple[float, float]:
    """Habitat position ``[x, y, z]`` -> Miniworld floor point ``(x, z)`` (the height is dropped)."""
    try:
        if len(pos) != 3:
            raise TypeError
        return float(pos[0]), float(pos[2])
    except (TypeError, ValueError) as e:
        raise VidNavError(f"a habitat position must be [x, y, z] (3 numbers), got {pos!r}") from e


def habitat_forward(theta: float) -> tuple[float, float]:
    """Floor-plane (x, z) forward vector of a habitat agent with yaw ``theta``."""
    return -math.sin(theta), -math.cos(theta)


def miniworld_forward(h: float) -> tuple[float, float]:
    """Floor-plane (x, z) forward vector of a Miniworld agent with heading ``h``."""
    return math.cos(h), -math.sin(h)
