"""Procedural multi-room houses (:class:`vidnav.sim.house.House`) from a seed: same seed, same bytes.

Layout: rooms are placed one by one against a side of an existing room, separated by a wall gap
of ``WALL_GAP`` metres; each new room gets one doorway to the room it was placed against, and some
other touching pairs get a second doorway (so the room graph has loops, as real homes do). Landmarks that
would cut a room off the free space are dropped (checked on the navigation map).
"""

from __future__ import annotations

import math

import numpy as np

from vidnav.errors import VidNavError
from vidnav.sim.house import CEILINGS, COLORS, LANDMARKS, ROOM_TYPES, WALL_GAP, Door, House, Landmark, Room
from vidnav.sim.navmap import NavMap

MIN_OVERLAP = 2.0  # shared wall length needed to fit a doorway with margins


def _r(v: float) -> float:
    """Round to millimetres so the JSON (and everything derived from it) is stable."""
    return float(round(float(v), 3))


def _rects_clash(a: tuple, b: tuple) -> bool:
    """True if rectangles come closer than a wall gap (they may touch exactly at the gap)."""
    eps = 1e-6
    return (
        a[0] < b[2] + WALL_GAP - eps
        and b[0] < a[2] + WALL_GAP - eps
        and a[1] < b[3] + WALL_GAP - eps
        and b[1] < a[3] + WALL_GAP - eps
    )


def _adjacency(a: Room, b: Room):
    """If a and b face each other across exactly one wall gap with enough shared wall, return
    (axis, g0, g1, s_lo, s_hi) for a door between them; else None."""
    eps = 1e-6
    for axis in ("x", "z"):
        if axis == "x":
            a0, a1, b0, b1, sa0, sa1, sb0, sb1 = a.x0, a.x1, b.x0, b.x1, a.z0, a.z1, b.z0, b.z1
        else:
            a0, a1, b0, b1, sa0, sa1, sb0, sb1 = a.z0, a.z1, b.z0, b.z1, a.x0, a.x1, b.x0, b.x1
        if abs(b0 - a1 - WALL_GAP) < eps:
            g0, g1 = a1, b0
        elif abs(a0 - b1 - WALL_GAP) < eps:
            g0, g1 = b1, a0
        else:
            continue
        lo, hi = max(sa0, sb0), min(sa1, sb1)
        if hi - lo >= MIN_OVERLAP:
            return axis, g0, g1, lo, hi
    return None


def _room_plan(rng: np.random.Generator, n: int) -> list[str]:
    """Room types for an n-room house: always a living room, kitchen, bedroom and bathroom, often a hallway."""
    types = ["living room", "kitchen", "bedroom", "bathroom"]
    extras = ["bedroom", "hallway", "office", "dining room", "laundry room", "storage room", "bathroom", "hallway"]
    while len(types) < n:
        types.append(extras[int(rng.integers(len(extras)))])
    if n >= 6 and "hallway" not in types:
        types[-1] = "hallway"
    order = [types[0]] + [types[i] for i in rng.permutation(np.arange(1, n))]
    # Hallways are hubs: place them early so other rooms open onto them.
    return sorted(order, key=lambda t: 0 if t == "hallway" else 1)


def _sample_size(rng: np.random.Generator, rtype: str, along_x: bool) -> tuple[float, float]:
    if rtype == "hallway":
        width, length = rng.uniform(2.0, 2.6), rng.uniform(5.0, 8.0)
        return (length, width) if along_x else (width, length)
    lo, hi = ROOM_TYPES[rtype].get("size", (3.0, 8.0))
    return rng.uniform(lo, hi), rng.uniform(lo, hi)


def _assign_looks(rng: np.random.Generator, types: set[str]) -> dict[str, tuple[str, str]]:
    """One (floor, wall) look per room type, all different within the house."""
    used: set[tuple[str, str]] = set()
    looks = {}
    for t in sorted(types):
        spec = ROOM_TYPES[t]
        combos = [(f, w) for f in spec["floors"] for w in spec["walls"] if (f, w) not in used]
        f, w = combos[int(rng.integers(len(combos)))]
        used.add((f, w))
        looks[t] = (f, w)
    return looks


def _layout(rng: np.random.Generator, types: list[str]) -> tuple[list[tuple], list[tuple]] | None:
    rects: list[tuple] = []
    doors: list[tuple] = []
    w, d = _sample_size(rng, types[0], along_x=bool(rng.integers(2)))
    rects.append((0.0, 0.0, _r(w), _r(d)))
    for i, rtype in enumerate(types[1:], start=1):
        placed = False
        for _ in range(80):
            # Prefer attaching to hallways and living rooms (hubs), as in real homes.
            weights = np.array([3.0 if types[j] in ("hallway", "living room") else 1.0 for j in range(len(rects))])
            j = int(rng.choice(len(rects), p=weights / weights.sum()))
            px0, pz0, px1, pz1 = rects[j]
            side = int(rng.integers(4))  # 0:+x 1:-x 2:+z 3:-z
            w, d = _sample_size(rng, rtype, along_x=side < 2)
            if side < 2:
                lo, hi = pz0 - d + MIN_OVERLAP, pz1 - MIN_OVERLAP
                if hi < lo:
                    continue
                z0 = rng.uniform(lo, hi)
                x0 = px1 + WALL_GAP if side == 0 else px0 - WALL_GAP - w
                cand = (x0, z0, x0 + w, z0 + d)
            else:
                lo, hi = px0 - w + MIN_OVERLAP, px1 - MIN_OVERLAP
                if hi < lo:
                    continue
                x0 = rng.uniform(lo, hi)
                z0 = pz1 + WALL_GAP if side == 2 else pz0 - WALL_GAP - d
                cand = (x0, z0, x0 + w, z0 + d)
            cand = tuple(_r(v) for v in cand)
            # re-establish the exact gap after rounding
            if side == 0:
                cand = (_r(px1 + WALL_GAP), cand[1], _r(px1 + WALL_GAP + w), cand[3])
            elif side == 1:
                cand = (_r(px0 - WALL_GAP - w), cand[1], _r(px0 - WALL_GAP), cand[3])
            elif side == 2:
                cand = (cand[0], _r(pz1 + WALL_GAP), cand[2], _r(pz1 + WALL_GAP + d))
            else:
                cand = (cand[0], _r(pz0 - WALL_GAP - d), cand[2], _r(pz0 - WALL_GAP))
            if any(_rects_clash(cand, r) for r in rects):
                continue
            rects.append(cand)
            doors.append((j, i))
            placed = True
            break
        if not placed:
            return None
    return rects, doors


def _door_between(rng: np.random.Generator, a: Room, b: Room) -> tuple | None:
    adj = _adjacency(a, b)
    if adj is None:
        return None
    axis, g0, g1, lo, hi = adj
    width = rng.uniform(1.0, min(1.4, hi - lo - 0.7))
    c = rng.uniform(lo + 0.35 + width / 2, hi - 0.35 - width / 2)
    return axis, _r(g0), _r(g1), _r(c - width / 2), _r(c + width / 2)


def _place_landmarks(rng: np.random.Generator, rooms: list[Room], doors: list[Door]) -> list[Landmark]:
    out: list[Landmark] = []
    for room in rooms:
        spec = ROOM_TYPES[room.type]
        n = int(rng.integers(0, spec.get("max_objects", 4) + 1))
        taken: set[tuple] = set()
        for _ in range(n):
            kind = spec["objects"][int(rng.integers(len(spec["objects"])))]
            lm = LANDMARKS[kind]
            color = COLORS[int(rng.integers(len(COLORS)))] if lm.get("colored") else None
            if (kind, color) in taken:
                continue
            h = _r(rng.uniform(*lm["height"]))
            rad = _r(h * lm["radius_per_h"])
            for _ in range(40):
                x = rng.uniform(room.x0 + rad + 0.1, room.x1 - rad - 0.1)
                z = rng.uniform(room.z0 + rad + 0.1, room.z1 - rad - 0.1)
                # keep doorways and their approaches clear, and objects apart
                if any(math.dist((x, z), dr.center) < rad + 1.5 for dr in doors if room.id in (dr.a, dr.b)):
                    continue
                if any(math.dist((x, z), (o.x, o.z)) < rad + o.radius + 0.9 for o in out if o.room == room.id):
                    continue
                out.append(
                    Landmark(len(out), kind, color, _r(x), _r(z), _r(rng.uniform(-math.pi, math.pi)), room.id, h, rad)
                )
                taken.add((kind, color))
                break
    return out


def generate_house(seed: int, n_rooms: int | None = None) -> House:
    """A house from a seed: 4–9 rectangular rooms (sides 3–8 m; hallways 2–2.6 m wide), doorways,
    per-type looks (consistent within the house, varied across houses) and 0–4 landmarks per room."""
    if n_rooms is not None and not 4 <= n_rooms <= 9:
        raise VidNavError(f"n_rooms must be between 4 and 9, got {n_rooms}")
    rng = np.random.default_rng([seed, 0x40_05E])
    n = int(n_rooms if n_rooms is not None else rng.integers(4, 10))
    for _attempt in range(100):
        types = _room_plan(rng, n)
        plan = _layout(rng, types)
        if plan is None:
            continue
        rects, tree = plan
        looks = _assign_looks(rng, set(types))
        ceiling = CEILINGS[int(rng.integers(len(CEILINGS)))]
        rooms = [Room(i, t, *rects[i], looks[t][0], looks[t][1], ceiling) for i, t in enumerate(types)]
        pairs = list(tree)
        for i in range(n):
            for j in range(i + 1, n):
                if (i, j) in pairs or (j, i) in pairs:
                    continue
                if _adjacency(rooms[i], rooms[j]) is not None and rng.random() < 0.35:
                    pairs.append((i, j))
        doors = []
        for a, b in pairs:
            spec = _door_between(rng, rooms[a], rooms[b])
            if spec is None:
                raise AssertionError(f"rooms {a} and {b} were placed adjacent but share no door wall")
            doors.append(Door(len(doors), a, b, *spec))
        landmarks = _place_landmarks(rng, rooms, doors)
        house = _keep_navigable(House(seed=int(seed), rooms=rooms, doors=doors, landmarks=landmarks))
        house.validate(f"generated house {seed}")
        return house
    raise VidNavError(f"could not lay out a house for seed {seed}; try another seed")


def _keep_navigable(house: House) -> House:
    """Drop landmarks (last placed first) until one connected free space reaches every room and doorway."""
    while True:
        nav = NavMap(house)
        blocked = nav.unreachable_rooms()
        if not blocked:
            return house
        culprits = [o for o in house.landmarks if o.room in blocked]
        if not culprits:  # a room without objects cannot be cut off by objects
            raise AssertionError(f"house {house.seed}: rooms {blocked} unreachable without any landmark")
        drop = culprits[-1]
        kept = [o for o in house.landmarks if o is not drop]
        house = House(
            house.seed,
            house.rooms,
            house.doors,
            [
                Landmark(i, *[getattr(o, f) for f in ("kind", "color", "x", "z", "dir", "room", "height", "radius")])
                for i, o in enumerate(kept)
            ],
        )
