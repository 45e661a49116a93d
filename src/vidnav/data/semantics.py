"""What a path means, read off the expert's actual trajectory: rooms left and entered, turns,
landmarks passed (and on which side), and where it stops. Instructions are written from this, so
what they say is true of the path by construction.

Angles are Miniworld headings (radians, counter-clockwise seen from above, forward (cos h, -sin h)).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from vidnav.actions import FORWARD, LEFT, RIGHT
from vidnav.sim.house import FLOOR_WORDS, WALL_WORDS, House
from vidnav.sim.navmap import Rollout, heading_of, wrap_angle

PASS_DISTANCE = 1.2  # a landmark counts as passed when the path comes this close to its surface


@dataclass
class PassedLandmark:
    name: str  # e.g. "red box"
    kind: str
    side: str  # "left" | "right" (relative to the direction of travel when passing)
    id: int


@dataclass
class RoomVisit:
    room_id: int
    room_type: str
    floor: str  # words, e.g. "dark wooden floor"
    walls: str  # words, e.g. "red brick walls"
    enter_door: int | None  # None for the start room
    exit_door: int | None  # None for the goal room
    exit_bearing: str | None  # where the exit door is on entering: "ahead" | "left" | "right" | "behind"
    turn: str | None  # net turn inside the room, entering to leaving: "straight" | "left" | "right" | "around"
    passed: list[PassedLandmark] = field(default_factory=list)
    length: float = 0.0  # metres walked in this room


@dataclass
class GoalDesc:
    kind: str  # "landmark" | "center" | "doorway"
    room_type: str
    landmark: str | None = None  # name, for kind == "landmark"
    landmark_id: int | None = None
    doorway_to: str | None = None  # room type on the other side, for kind == "doorway"
    side: str | None = None  # where the landmark is when the agent stops: "ahead" | "left" | "right" | "behind"


@dataclass
class PathSemantics:
    start_turn: str | None  # "around" | "left" | "right" | "slightly left" | "slightly right" | None
    visits: list[RoomVisit]
    goal: GoalDesc
    distance: float  # geodesic start-goal distance, metres

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> PathSemantics:
        visits = [RoomVisit(**{**v, "passed": [PassedLandmark(**p) for p in v["passed"]]}) for v in d["visits"]]
        return cls(start_turn=d["start_turn"], visits=visits, goal=GoalDesc(**d["goal"]), distance=d["distance"])

    @property
    def rooms(self) -> list[str]:
        return [v.room_type for v in self.visits]


def classify_turn(delta: float) -> str:
    """Net heading change → words (left is a positive, counter-clockwise change)."""
    a = math.degrees(wrap_angle(delta))
    if abs(a) < 30:
        return "straight"
    if abs(a) > 150:
        return "around"
    return "left" if a > 0 else "right"


def classify_bearing(angle: float) -> str:
    """Direction of something relative to the agent's heading."""
    a = math.degrees(wrap_angle(angle))
    if abs(a) <= 35:
        return "ahead"
    if abs(a) >= 145:
        return "behind"
    return "left" if a > 0 else "right"


def _start_turn(actions: list[int], turn_deg: float) -> str | None:
    net = 0
    for a in actions:
        if a == FORWARD:
            break
        net += {LEFT: 1, RIGHT: -1}.get(a, 0)
    deg = net * turn_deg
    if abs(deg) >= 135:
        return "around"
    if abs(deg) >= 60:
        return "left" if deg > 0 else "right"
    if abs(deg) >= 30:
        return "slightly left" if deg > 0 else "slightly right"
    return None


def _side(px: float, pz: float, heading: float, ox: float, oz: float) -> str:
    left = (-math.sin(heading), -math.cos(heading))  # forward rotated +90 degrees
    return "left" if (ox - px) * left[0] + (oz - pz) * left[1] > 0 else "right"


def _travel_heading(pos: list[tuple[float, float]], i: int, span: int = 3) -> float:
    a, b = pos[max(0, i - span)], pos[min(len(pos) - 1, i + span)]
    if math.hypot(b[0] - a[0], b[1] - a[1]) < 1e-6:
        a, b = pos[max(0, i - 1)], pos[min(len(pos) - 1, i + 1)]
    return heading_of(b[0] - a[0], b[1] - a[1])


def describe_path(
    house: House, rollout: Rollout, goal: GoalDesc, distance: float, turn_deg: float = 15.0
) -> PathSemantics:
    """Read a path's semantics off the expert rollout (its poses and actions)."""
    poses = rollout.poses
    # Positions where the agent moved (turns in place add nothing to the route).
    pos: list[tuple[float, float]] = [(poses[0][0], poses[0][1])]
    heads: list[float] = [poses[0][2]]
    for x, z, h in poses[1:]:
        if math.hypot(x - pos[-1][0], z - pos[-1][1]) > 1e-9:
            pos.append((x, z))
            heads.append(h)
    where: list[tuple[str, int]] = []
    for x, z in pos:
        door = house.door_at(x, z)
        room = house.room_at(x, z)
        where.append(("room", room.id) if room else ("door", door.id if door else -1))
    # Runs of consecutive positions in the same room; doors in between.
    runs: list[dict] = []
    pending_door: int | None = None
    for i, (kind, ident) in enumerate(where):
        if kind == "door":
            if ident >= 0:
                pending_door = ident
            continue
        if runs and runs[-1]["room"] == ident and pending_door is None:
            runs[-1]["idx"].append(i)
            continue
        if runs and runs[-1]["room"] == ident:  # stepped into a door frame and back out
            runs[-1]["idx"].append(i)
            pending_door = None
            continue
        if runs:
            runs[-1]["exit"] = pending_door
        runs.append({"room": ident, "idx": [i], "enter": pending_door if runs else None, "exit": None})
        pending_door = None
    visits: list[RoomVisit] = []
    goal_lm = goal.landmark_id
    for k, run in enumerate(runs):
        room = house.rooms[run["room"]]
        idx = run["idx"]
        first, last = idx[0], idx[-1]
        h_in = heads[first] if k == 0 else _travel_heading(pos, first)
        if k == 0:  # after the initial turn in place, the first step sets the course
            h_in = heads[min(1, len(heads) - 1)]
        exit_door = run["exit"]
        bearing = turn = None
        if exit_door is not None:
            d = house.doors[exit_door]
            ex, ez = pos[idx[min(1, len(idx) - 1)]] if k > 0 else pos[first]
            bearing = classify_bearing(heading_of(d.center[0] - ex, d.center[1] - ez) - h_in)
            turn = classify_turn(_travel_heading(pos, min(last + 1, len(pos) - 1), span=2) - h_in)
        length = sum(
            math.hypot(pos[i + 1][0] - pos[i][0], pos[i + 1][1] - pos[i][1]) for i in idx[:-1] if i + 1 <= last
        )
        passed: list[tuple[int, PassedLandmark]] = []
        for o in house.landmarks:
            if o.room != room.id or o.id == goal_lm:
                continue
            dists = [math.hypot(pos[i][0] - o.x, pos[i][1] - o.z) - o.radius for i in idx]
            j = min(range(len(idx)), key=dists.__getitem__)
            i = idx[j]
            if dists[j] <= PASS_DISTANCE and i not in (0, len(pos) - 1):
                passed.append(
                    (i, PassedLandmark(o.name, o.kind, _side(*pos[i], _travel_heading(pos, i), o.x, o.z), o.id))
                )
        visits.append(
            RoomVisit(
                room.id,
                room.type,
                FLOOR_WORDS[room.floor],
                WALL_WORDS[room.wall],
                run["enter"],
                exit_door,
                bearing,
                turn,
                [p for _, p in sorted(passed, key=lambda t: t[0])],
                round(length, 2),
            )
        )
    if goal.kind == "landmark" and goal.landmark_id is not None:
        o = house.landmarks[goal.landmark_id]
        x, z, h = poses[-1]
        goal.side = classify_bearing(heading_of(o.x - x, o.z - z) - h)
    return PathSemantics(_start_turn(rollout.actions, turn_deg), visits, goal, round(float(distance), 3))
