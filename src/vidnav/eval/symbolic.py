"""The `symbolic` agent: a privileged instruction follower, the ceiling row beside `oracle`.

It knows the house (rooms, their types and looks, doors, landmarks), the navigation map and its own pose,
and reads the episode's instruction. It never reads the goal, the reference path or anything derived from
the path: where it goes comes only from what the words say.

    plan = plan_route(house, nav, start, "Leave the bedroom and stop next to the red box.")
    plan.rooms      # the room walk the words fit best, from the start room
    plan.goal       # (x, z) where the stop clause puts the goal on that walk

How it reads (see :mod:`vidnav.eval.symbolic_parse`): the rooms, looks and landmarks named along the route,
in order, and the stop clause. Every simple walk in the house's room graph from the start room is scored by
how many of those mentions it cannot fit in order (a room of the named type and look; a landmark of the named
kind and colour in the room the route is in then; "the next bathroom" is another bathroom after one on the
walk; a room gone "into" is another room than the one before; a room left "out of" or crossed "through", or
followed by "go through the doorway", is not the last), plus whether its last room fits the stop clause (the
named room, a landmark of that name, a doorway to a room of the named type). Among the routes (walk and goal
point) that fit best, the 8 shortest are checked against the turn said first ("turn around", "bear left"):
those whose first leg turns the other way are dropped where that leaves any, and the route with the shortest
geodesic length through the walk's doorways to the goal point wins. It then drives with the
navigation map's shortest-path follower to each doorway of the walk in turn and to the goal point, and stops.

Goal points: a landmark's is the free point beside it (0.3-0.9 m from its surface, the benchmark's definition
of "next to") from which the most of that ring lies within the success radius; the middle of a room is its
centre; a doorway is its centre.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vidnav.actions import STOP
from vidnav.eval.navagent import NavAgent
from vidnav.eval.symbolic_parse import GoalSpec, LandmarkRef, Mention, ParsedInstruction, parse_instruction
from vidnav.metrics import SUCCESS_DISTANCE
from vidnav.sim.house import House, Landmark, Room
from vidnav.sim.navmap import NavMap, heading_of, wrap_angle

MAX_WALK = 9  # rooms in a walk (houses have at most 9)
RING = (0.3, 0.9)  # "next to" a landmark: metres from its surface (as the benchmark's goals)
NEAR_DOOR = 0.35  # a doorway waypoint counts as reached this close to its centre


@dataclass
class Plan:
    rooms: list[int]  # room ids of the walk, the start room first
    doors: list[int]  # door ids between consecutive rooms
    goal: tuple[float, float]
    violations: int  # mentions and stop-clause parts the walk could not fit
    length: float  # geodesic metres through the doorways to the goal
    parsed: ParsedInstruction


def fits_room(m: Mention, room: Room) -> bool:
    """Whether a room mention can name ``room`` (type and look words; looks no texture has are ignored)."""
    if m.room_type is not None and m.room_type != room.type:
        return False
    if m.floors and room.floor not in m.floors:
        return False
    if m.walls and room.wall not in m.walls:
        return False
    if m.either is not None and (m.either[0] or m.either[1]):
        floors, walls = m.either
        if not ((floors and room.floor in floors) or (walls and room.wall in walls)):
            return False
    return True


def fits_landmark(ref: LandmarkRef, o: Landmark) -> bool:
    return o.kind == ref.kind and (ref.color is None or o.color == ref.color)


def simple_walks(house: House, start: int, max_rooms: int = MAX_WALK) -> list[tuple[list[int], list[int]]]:
    """Every walk through the room graph from ``start`` that visits no room twice: (rooms, doors)."""
    out: list[tuple[list[int], list[int]]] = []
    doors_of: dict[int, list[tuple[int, int]]] = {r.id: [] for r in house.rooms}
    for d in house.doors:
        doors_of[d.a].append((d.id, d.b))
        doors_of[d.b].append((d.id, d.a))

    def grow(rooms: list[int], doors: list[int]) -> None:
        out.append((list(rooms), list(doors)))
        if len(rooms) >= max_rooms:
            return
        for did, nxt in sorted(doors_of[rooms[-1]]):
            if nxt not in rooms:
                rooms.append(nxt)
                doors.append(did)
                grow(rooms, doors)
                rooms.pop()
                doors.pop()

    grow([start], [])
    return out


def misfits(mentions: list[Mention], rooms: list[Room], landmarks: list[Landmark], ends_in_door: bool = False) -> int:
    """The fewest mentions that cannot be placed on the walk ``rooms`` in order (see the module docstring).
    ``ends_in_door``: the route stops in a doorway of its last room, so that room too is left "through"."""
    n = len(rooms)
    has = [[o for o in landmarks if o.room == r.id] for r in rooms]
    INF = 10**6
    # best[j]: fewest misfits for mentions[i:] when the previous mention sits at walk index j
    best = [0] * n
    for m in reversed(mentions):
        new = [INF] * n
        for j in range(n):
            b = 1 + best[j]  # not placed
            lo = j + 1 if (m.door or (m.is_room and (m.next_room or m.entered))) else j
            hi = n - 1 if (m.is_room and m.passed and not ends_in_door) else n
            for k in range(lo, hi):
                if b == 0:
                    break
                if m.door:
                    ok = True
                elif not m.is_room:
                    ok = any(fits_landmark(m.landmark, o) for o in has[k])
                else:  # "the next bathroom": another one, after a bathroom on the way
                    ok = fits_room(m, rooms[k]) and (
                        not m.next_room or m.room_type is None or any(r.type == m.room_type for r in rooms[:k])
                    )
                if ok and best[k] < b:
                    b = best[k]
            new[j] = b
        best = new
    return best[0]


class RoutePlanner:
    """Plans routes in one house: caches what episodes in that house share (ring points, door distances)."""

    def __init__(self, house: House, nav: NavMap):
        self.house, self.nav = house, nav
        self._main: np.ndarray | None = None
        self._ring: dict[int, tuple[float, float] | None] = {}

    @property
    def main(self) -> np.ndarray:
        if self._main is None:
            self._main = self.nav.main_component()
        return self._main

    def start_room(self, x: float, z: float) -> Room:
        room = self.house.room_at(x, z)
        if room is not None:
            return room
        return min(self.house.rooms, key=lambda r: math.hypot(min(max(x, r.x0), r.x1) - x, min(max(z, r.z0), r.z1) - z))

    def room_centre(self, room: Room) -> tuple[float, float]:
        return self.nav.to_xz(*self.nav.snap(*room.center))

    def door_centre(self, door_id: int) -> tuple[float, float]:
        return self.nav.to_xz(*self.nav.snap(*self.house.doors[door_id].center))

    def ring_point(self, o: Landmark) -> tuple[float, float] | None:
        """The stop point beside landmark ``o`` that covers the most of its 'next to' ring within the success
        radius (less a step, so the follower's stop tolerance still counts)."""
        if o.id in self._ring:
            return self._ring[o.id]
        from scipy.sparse.csgraph import dijkstra

        nav, room = self.nav, self.house.rooms[o.room]
        X, Z = nav.cell_centers()
        surface = np.hypot(X - o.x, Z - o.z) - o.radius
        ok = self.main & (surface >= RING[0]) & (surface <= RING[1])
        ok &= (X > room.x0) & (X < room.x1) & (Z > room.z0) & (Z < room.z1)
        cells = np.argwhere(ok)
        if len(cells) == 0:
            self._ring[o.id] = None
            return None
        nodes = nav.node[cells[:, 0], cells[:, 1]]
        ang = np.arctan2(Z[ok] - o.z, X[ok] - o.x)
        # candidates: the ring cells nearest its middle radius, in 16 sectors around the landmark
        mid = np.abs(surface[ok] - sum(RING) / 2)
        cands = []
        for s in range(16):
            a0 = -math.pi + s * math.pi / 8
            sel = np.nonzero((ang >= a0) & (ang < a0 + math.pi / 8))[0]
            if len(sel):
                cands.append(int(sel[np.argmin(mid[sel])]))
        reach = SUCCESS_DISTANCE - 0.3
        best, best_key = None, None
        for c in cands:
            d = dijkstra(nav.graph, directed=False, indices=int(nodes[c]), limit=reach + 1.0)[nodes]
            key = (int(np.sum(d < reach)), -float(np.mean(np.minimum(d, reach + 1.0))))
            if best_key is None or key > best_key:
                best, best_key = c, key
        point = nav.to_xz(int(cells[best, 0]), int(cells[best, 1]))
        self._ring[o.id] = point
        return point

    def goal_points(self, goal: GoalSpec, end: Room) -> tuple[int, list[tuple[float, float]]]:
        """(misfits of the stop clause in room ``end``, candidate goal points there)."""
        bad = 0
        if goal.room is not None and not fits_room(goal.room, end):
            bad += 1
        if goal.kind == "landmark":
            named = [o for o in self.house.landmarks if fits_landmark(goal.landmark, o)]
            here = [o for o in named if o.room == end.id]
            points = [p for p in (self.ring_point(o) for o in here) if p is not None]
            if points:
                return bad, points
            return bad + (1 if named else 0), [self.room_centre(end)]
        if goal.kind == "doorway":
            doors = [d for d in self.house.doors if end.id in (d.a, d.b)]
            if goal.door_to is not None:
                fit = [d for d in doors if fits_room(goal.door_to, self.house.rooms[d.other(end.id)])]
                if not fit:
                    return bad + 1, [self.room_centre(end)]
                doors = fit
            return bad, [self.door_centre(d.id) for d in doors]
        return bad, [self.room_centre(end)]

    def plan(self, start: tuple[float, float, float], text: str) -> Plan:
        parsed = parse_instruction(text)
        sx, sz, _ = start
        house = self.house
        first = self.start_room(sx, sz)
        scored = []
        for rooms, doors in simple_walks(house, first.id):
            walk = [house.rooms[r] for r in rooms]
            bad = misfits(parsed.mentions, walk, house.landmarks, parsed.goal.kind == "doorway")
            gbad, points = self.goal_points(parsed.goal, walk[-1])
            if (
                parsed.goal.kind == "none"
                and parsed.mentions
                and len(rooms) > 1
                and not any(m.is_room and fits_room(m, walk[-1]) for m in parsed.mentions)
            ):
                gbad += 1  # nothing says where to stop: the route ends in a room it names
            scored.append((bad + gbad, rooms, doors, points))
        least = min(s[0] for s in scored)
        cands = []
        for bad, rooms, doors, points in scored:
            if bad != least:
                continue
            for p in points:
                cands.append((self.route_length(start, doors, p), rooms, doors, p))
        cands.sort(key=lambda c: c[0])
        if len(cands) > 1 and parsed.start_turn is not None:
            agree = [self.start_turn_fits(start, c[2], c[3], parsed.start_turn) for c in cands[:8]]
            if any(agree) and not all(agree):
                cands = [c for c, a in zip(cands[:8], agree) if a]
        length, rooms, doors, goal = cands[0]
        return Plan(rooms, doors, goal, least, length, parsed)

    def route_length(self, start, doors: list[int], goal: tuple[float, float]) -> float:
        pts = [(start[0], start[1])] + [self.door_centre(d) for d in doors] + [goal]
        total = 0.0
        for (ax, az), (bx, bz) in zip(pts, pts[1:]):
            total += self.nav.distance(ax, az, bx, bz)
        return total

    def start_turn_fits(self, start, doors: list[int], goal: tuple[float, float], word: str) -> bool:
        """Whether the turn said first fits the heading change from the start pose to the route's first leg
        (the shortest path's direction 1.5 m ahead, towards the first doorway or the goal)."""
        sx, sz, sh = start
        tx, tz = self.door_centre(doors[0]) if doors else goal
        path = self.nav.shortest_path(sx, sz, tx, tz, max_len=1.5)
        if len(path) > 1:
            tx, tz = path[-1]
        turn = math.degrees(wrap_angle(heading_of(tx - sx, tz - sz) - sh))
        return {"left": turn > 25, "right": turn < -25, "around": abs(turn) > 120, "straight": abs(turn) < 40}[word]


class SymbolicAgent(NavAgent):
    """Privileged instruction follower (see the module docstring). Reads ``env.task.house``, ``env.navmap``,
    ``env.task.start``, its own pose ``env.pose`` and ``obs["instruction"]``; nothing else of the task."""

    name = "symbolic"

    def __init__(self):
        self._planner: RoutePlanner | None = None
        self.plan: Plan | None = None

    def reset(self, env, obs) -> None:
        house, nav = env.task.house, env.navmap
        if self._planner is None or self._planner.house is not house or self._planner.nav is not nav:
            self._planner = RoutePlanner(house, nav)
        self.env = env
        self.plan = self._planner.plan(env.task.start, obs["instruction"])
        self.targets = [("door", d, i) for i, d in enumerate(self.plan.doors)] + [("goal", None, None)]

    def act(self, obs, info) -> int:
        planner, plan = self._planner, self.plan
        x, z, h = self.env.pose
        while self.targets[0][0] == "door":
            _, door, k = self.targets[0]
            cx, cz = planner.door_centre(door)
            here = planner.house.room_at(x, z)
            if (here is not None and here.id in plan.rooms[k + 1 :]) or math.hypot(x - cx, z - cz) < NEAR_DOOR:
                self.targets.pop(0)
                continue
            action = planner.nav.expert_action(x, z, h, cx, cz)
            if action == STOP:
                self.targets.pop(0)
                continue
            return action
        return planner.nav.expert_action(x, z, h, *plan.goal)
