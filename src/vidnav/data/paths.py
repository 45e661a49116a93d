"""Sampling navigation paths in a house: a start pose, a goal with a describable place, the expert's
route between them, R2R-style reference waypoints and the path's semantics.

Goals are places an instruction can name: next to a landmark, the middle of a room, or a doorway.
Paths must be 5–20 m (geodesic) and pass through at least two rooms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vidnav.data.semantics import GoalDesc, PathSemantics, describe_path
from vidnav.sim.house import House
from vidnav.sim.navmap import NavMap, Rollout

MIN_DISTANCE, MAX_DISTANCE = 5.0, 20.0
GOAL_KINDS = ("landmark", "center", "doorway")
GOAL_KIND_P = (0.6, 0.3, 0.1)


@dataclass
class PathSample:
    start: tuple[float, float, float]  # x, z, heading (Miniworld)
    goal: tuple[float, float]
    goal_desc: GoalDesc
    distance: float  # geodesic, metres
    rollout: Rollout
    reference: list[tuple[float, float]]  # waypoints: start, turns and doorways, goal
    semantics: PathSemantics


def _goal_candidates(house: House, nav: NavMap, main: np.ndarray, kind: str, rng: np.random.Generator):
    """(x, z, GoalDesc) for one goal of ``kind``, or None if this house has no such place."""
    X, Z = nav.cell_centers()
    if kind == "landmark":
        if not house.landmarks:
            return None
        o = house.landmarks[int(rng.integers(len(house.landmarks)))]
        surface = np.hypot(X - o.x, Z - o.z) - o.radius
        ok = main & (surface >= 0.3) & (surface <= 0.9)
        room = house.rooms[o.room]
        ok &= (X > room.x0) & (X < room.x1) & (Z > room.z0) & (Z < room.z1)
        cells = np.argwhere(ok)
        if len(cells) == 0:
            return None
        r, c = cells[int(rng.integers(len(cells)))]
        return (*nav.to_xz(r, c), GoalDesc("landmark", room.type, landmark=o.name, landmark_id=o.id))
    if kind == "center":
        room = house.rooms[int(rng.integers(len(house.rooms)))]
        cx, cz = room.center
        r, c = nav.snap(cx, cz)
        x, z = nav.to_xz(r, c)
        if not main[r, c] or math.hypot(x - cx, z - cz) > 0.6:
            return None
        return (x, z, GoalDesc("center", room.type))
    door = house.doors[int(rng.integers(len(house.doors)))]
    r, c = nav.snap(*door.center)
    if not main[r, c]:
        return None
    # Which room the doorway "leads to" depends on the side the path arrives from: set later.
    return (*nav.to_xz(r, c), GoalDesc("doorway", room_type="")), door


def _simplify(points: list[tuple[float, float]], eps: float) -> list[int]:
    """Ramer–Douglas–Peucker on a polyline; returns kept indices."""
    if len(points) < 3:
        return list(range(len(points)))
    keep = [0, len(points) - 1]
    stack = [(0, len(points) - 1)]
    while stack:
        i, j = stack.pop()
        (ax, az), (bx, bz) = points[i], points[j]
        L = math.hypot(bx - ax, bz - az)
        best, k = -1.0, -1
        for m in range(i + 1, j):
            px, pz = points[m]
            d = (abs((bx - ax) * (az - pz) - (ax - px) * (bz - az)) / L) if L > 1e-9 else math.hypot(px - ax, pz - az)
            if d > best:
                best, k = d, m
        if best > eps:
            keep.append(k)
            stack += [(i, k), (k, j)]
    return sorted(keep)


def reference_waypoints(house: House, rollout: Rollout, eps: float = 0.3) -> list[tuple[float, float]]:
    """R2R-like waypoints along the expert path: the start, the corners of the simplified route,
    the centre of each doorway crossed, and the end."""
    pts = [(p[0], p[1]) for p in rollout.poses]
    dedup = [pts[0]]
    for p in pts[1:]:
        if p != dedup[-1]:
            dedup.append(p)
    keep = set(_simplify(dedup, eps))
    out: list[tuple[float, float]] = []
    last_door = None
    for i, p in enumerate(dedup):
        door = house.door_at(*p)
        if door is not None and door.id != last_door:
            out.append(door.center)
            last_door = door.id
        elif i in keep:
            out.append(p)
        if door is None:
            last_door = None
    if out[-1] != dedup[-1]:
        out.append(dedup[-1])
    return [(round(float(x), 3), round(float(z), 3)) for x, z in out]


def sample_paths(
    house: House,
    n: int,
    rng: np.random.Generator,
    nav: NavMap | None = None,
    max_tries: int | None = None,
    start: tuple[float, float, float] | None = None,
) -> list[PathSample]:
    """Up to ``n`` distinct valid paths in ``house`` (fewer only if the house is too small). ``start``: every
    path begins at this pose (x, z, heading) instead of a sampled one (minimal pairs: one start, other goals)."""
    nav = nav or NavMap(house)
    main = nav.main_component()
    starts = np.argwhere(main) if start is None else np.array([nav.snap(start[0], start[1])])
    out: list[PathSample] = []
    tries = 0
    max_tries = max_tries or 30 * n
    while len(out) < n and tries < max_tries:
        tries += 1
        kind = GOAL_KINDS[int(rng.choice(3, p=GOAL_KIND_P))]
        cand = _goal_candidates(house, nav, main, kind, rng)
        if cand is None:
            continue
        door = None
        if kind == "doorway":
            cand, door = cand
        gx, gz, desc = cand
        field = nav.field(gx, gz)
        d = field[starts[:, 0], starts[:, 1]]
        ok = np.nonzero((d >= MIN_DISTANCE) & (d <= MAX_DISTANCE))[0]
        if len(ok) == 0:
            continue
        if start is None:
            r, c = starts[ok[int(rng.integers(len(ok)))]]
            sx, sz = nav.to_xz(r, c)
            heading = float(rng.uniform(-math.pi, math.pi))
        else:
            sx, sz, heading = (float(v) for v in start)
        start_room, goal_room = house.room_at(sx, sz), house.room_at(gx, gz)
        if start_room is None or (goal_room is not None and goal_room.id == start_room.id):
            continue
        dist = nav.distance(sx, sz, gx, gz)
        rollout = nav.expert_rollout(sx, sz, heading, gx, gz)
        if not rollout.stopped or rollout.collisions:
            continue
        if door is not None:  # name the doorway by the room beyond it, as seen from the path
            x, z, _ = rollout.poses[max(0, len(rollout.poses) - 4)]
            near = house.room_at(x, z)
            if near is None:
                continue
            desc = GoalDesc("doorway", near.type, doorway_to=house.rooms[door.other(near.id)].type)
        sem = describe_path(house, rollout, desc, dist)
        if len(sem.visits) < 2:
            continue
        if any(abs(p.start[0] - sx) + abs(p.start[1] - sz) < 1e-6 and p.goal == (gx, gz) for p in out):
            continue
        out.append(
            PathSample((sx, sz, heading), (gx, gz), desc, dist, rollout, reference_waypoints(house, rollout), sem)
        )
    return out
