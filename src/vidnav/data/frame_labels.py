"""What the simulator knows about one frame: the room the camera stands in, its look, where its doors are.

These are the answers a probe of the frozen visual features (``vidnav probe``) tries to read off a frame:

* ``room_type``, ``floor``, ``wall``: the type and the textures of the room the camera stands in;
* ``door_left`` / ``door_ahead`` / ``door_right`` / ``door_behind``: whether a doorway of that room has its
  centre in that 90-degree sector around the heading (ahead = within 45 degrees of it);
* ``door_in_view``: whether at least ``MIN_VISIBLE`` metres of a doorway's opening lie inside the camera's
  horizontal field of view (the rooms are convex, so nothing but a landmark can hide a doorway of the room
  one stands in; landmarks are ignored);
* ``room_through_door``: the type of the room behind the nearest doorway in view (None without one).

A pose is (x, z, heading) in Miniworld's ground plane, heading in radians with the forward vector
(cos h, -sin h); a positive angle relative to the heading is to the left. Frames taken inside a doorway's
passage (in no room) get no labels.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from vidnav.sim.house import Door, House, Room
from vidnav.sim.navmap import heading_of, wrap_angle

CAMERA_HFOV_DEG = 90.0  # VLNEnv's (and so every rollout's) horizontal field of view; a test checks they agree
MIN_VISIBLE = 0.25  # metres of a doorway's opening that must lie in the field of view to count it as in view


@dataclass(frozen=True)
class FrameLabels:
    room_type: str
    floor: str
    wall: str
    door_left: bool
    door_ahead: bool
    door_right: bool
    door_behind: bool
    door_in_view: bool
    room_through_door: str | None

    def as_dict(self) -> dict:
        return asdict(self)


def relative_angle(pose: tuple[float, float, float], x: float, z: float) -> float:
    """Angle of the point (x, z) seen from ``pose``, relative to its heading, in (-pi, pi]; positive = left."""
    px, pz, heading = pose
    return wrap_angle(heading_of(x - px, z - pz) - heading)


def sector(angle: float) -> str:
    """The 90-degree sector of a relative angle: ahead within 45 degrees of the heading, behind beyond 135."""
    a = math.degrees(angle)
    if abs(a) <= 45.0:
        return "ahead"
    if abs(a) > 135.0:
        return "behind"
    return "left" if a > 0 else "right"


def door_opening(door: Door, room: Room) -> tuple[tuple[float, float], tuple[float, float]]:
    """The two ends of ``door``'s opening in the wall of ``room`` (the passage's mouth on that room's side)."""
    if door.axis == "x":  # the passage crosses x; its mouth lies on the room's x0 or x1 side
        x = door.g0 if abs(room.x1 - door.g0) < abs(room.x0 - door.g1) else door.g1
        return (x, door.s0), (x, door.s1)
    z = door.g0 if abs(room.z1 - door.g0) < abs(room.z0 - door.g1) else door.g1
    return (door.s0, z), (door.s1, z)


def visible_width(
    pose: tuple[float, float, float], door: Door, room: Room, hfov_deg: float = CAMERA_HFOV_DEG, samples: int = 41
) -> float:
    """Metres of ``door``'s opening in ``room``'s wall that lie inside the horizontal field of view."""
    (x0, z0), (x1, z1) = door_opening(door, room)
    half = math.radians(hfov_deg) / 2
    inside = 0
    for i in range(samples):
        t = (i + 0.5) / samples
        if abs(relative_angle(pose, x0 + t * (x1 - x0), z0 + t * (z1 - z0))) <= half:
            inside += 1
    return inside / samples * math.hypot(x1 - x0, z1 - z0)


def frame_labels(
    house: House, pose: tuple[float, float, float], hfov_deg: float = CAMERA_HFOV_DEG
) -> FrameLabels | None:
    """The labels of the frame seen from ``pose`` in ``house``; None when the camera stands in no room."""
    x, z, _ = pose
    room = house.room_at(x, z)
    if room is None:
        return None
    doors = [d for d in house.doors if room.id in (d.a, d.b)]
    sectors = {sector(relative_angle(pose, *d.center)) for d in doors}
    in_view = [d for d in doors if visible_width(pose, d, room, hfov_deg) >= MIN_VISIBLE]
    through = None
    if in_view:
        nearest = min(in_view, key=lambda d: math.dist((x, z), d.center))
        through = next(r.type for r in house.rooms if r.id == nearest.other(room.id))
    return FrameLabels(
        room_type=room.type,
        floor=room.floor,
        wall=room.wall,
        door_left="left" in sectors,
        door_ahead="ahead" in sectors,
        door_right="right" in sectors,
        door_behind="behind" in sectors,
        door_in_view=bool(in_view),
        room_through_door=through,
    )
