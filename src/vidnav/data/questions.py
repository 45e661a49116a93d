"""Embodied questions about a trajectory's frames, with the answers the simulator knows.

Navigation labels alone say what to do, rarely why: most of a trajectory's actions follow from the frames, and
only a few door choices need the words. Questions whose answers need both the frames and the instruction (as
Uni-NaVid co-trains on embodied QA) give the model a reason to meet the words with the view at every frame:

    room   "which room are you in?"                      -> the room type, e.g. "living room"   (frames only)
    next   "which room comes next on your route?"        -> the next room of the route, or "none"
    door   "which way is the door you should take?"      -> left | ahead | right | behind, or "none"
    left   "how many rooms are left on your route?"      -> zero | one | two | ...

The route is the episode's reference path as rooms (in order); progress along it is tracked over the frames:
it advances when the agent enters the next room of the route. ``next``, ``door`` and ``left`` are asked only
while the agent stands in the route's current room (a DAgger trajectory off the route gets ``room`` only).
"""

from __future__ import annotations

from dataclasses import dataclass

from vidnav.data.semantics import classify_bearing
from vidnav.geometry import to_miniworld
from vidnav.sim.house import House
from vidnav.sim.navmap import heading_of

QUESTIONS = {
    "room": "which room are you in?",
    "next": "which room comes next on your route?",
    "door": "which way is the door you should take?",
    "left": "how many rooms are left on your route?",
}
FAMILIES = tuple(QUESTIONS)
NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def route_rooms(house: House, reference_path: list[list[float]]) -> list[int]:
    """Room ids the reference path passes through, in order (doorway points and repeats dropped)."""
    out: list[int] = []
    for p in reference_path:
        room = house.room_at(*to_miniworld(p))
        if room is not None and (not out or out[-1] != room.id):
            out.append(room.id)
    return out


def _door_between(house: House, a: int, b: int):
    for d in house.doors:
        if {d.a, d.b} == {a, b}:
            return d
    return None


@dataclass(frozen=True)
class FrameFacts:
    """What the simulator knows at one frame of a trajectory (None: not defined there)."""

    room: str | None  # the room type the agent stands in
    next: str | None  # the next room type of the route, "none" in the route's last room
    door: str | None  # side of the door to the next route room, "none" in the last room
    left: str | None  # route rooms still ahead, as a word

    def answer(self, family: str) -> str | None:
        return getattr(self, family)


def trajectory_facts(house: House, route: list[int], poses: list) -> list[FrameFacts]:
    """FrameFacts for each pose (x, z, heading) of a trajectory following (or straying from) ``route``."""
    rooms = {r.id: r for r in house.rooms}
    out = []
    k = 0  # index of the route room the agent is in (or last was in)
    for x, z, h in poses:
        here = house.room_at(x, z)
        if here is not None and k + 1 < len(route) and here.id == route[k + 1]:
            k += 1
        on_route = here is not None and bool(route) and here.id == route[k]
        nxt = door = left = None
        if on_route:
            remaining = len(route) - 1 - k
            left = NUMBERS[min(remaining, len(NUMBERS) - 1)]
            if remaining == 0:
                nxt = door = "none"
            else:
                nxt = rooms[route[k + 1]].type
                d = _door_between(house, route[k], route[k + 1])
                if d is not None:
                    door = classify_bearing(heading_of(d.center[0] - x, d.center[1] - z) - h)
        out.append(FrameFacts(room=here.type if here is not None else None, next=nxt, door=door, left=left))
    return out
