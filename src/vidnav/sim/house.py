"""Houses: the data model (rooms, doorways, landmarks), its vocabulary, and the JSON file (save, load, validate).

A house is pure geometry and semantics (no OpenGL): rectangular rooms with a type and a look,
doorways through the thin gaps between them, and landmark objects. Coordinates are Miniworld's
ground plane (x, z) in metres; `vidnav.geometry` converts to habitat's [x, y, z].
The procedural generator (``generate_house(seed)``) is :mod:`vidnav.sim.housegen`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from vidnav.errors import VidNavError
from vidnav.io import read_json, write_json

HOUSE_FORMAT = "vidnav-house-v1"
WALL_GAP = 0.2  # wall thickness between rooms (the depth of a door frame)
WALL_HEIGHT = 2.74
DOOR_HEIGHT = 2.2

# Textures are Miniworld's (base names resolving to `<name>_1.png`) with the words we use for them.
FLOOR_WORDS = {
    "wood": "light wooden floor",
    "wood_planks": "dark wooden floor",
    "floor_tiles_bw": "black and white checkered floor",
    "marble": "marble floor",
    "concrete": "concrete floor",
    "concrete_tiles": "grey tiled floor",
    "cardboard": "beige carpet",
    "white": "white floor",
    "rock": "stone floor",
}
WALL_WORDS = {
    "brick_wall": "red brick walls",
    "drywall": "pale grey walls",
    "stucco": "stucco walls",
    "white": "white walls",
    "wood": "wood panelled walls",
    "wood_planks": "dark wooden walls",
    "cinder_blocks": "cinder block walls",
    "concrete": "concrete walls",
    "concrete_tiles": "tiled walls",
    "marble": "marble walls",
}
CEILINGS = ["ceiling_tiles", "ceiling_tile_noborder", "concrete_tiles"]

# Room types: candidate floors, walls, landmark kinds, and size ranges (metres).
ROOM_TYPES: dict[str, dict] = {
    "bedroom": dict(
        floors=["wood", "wood_planks", "cardboard"],
        walls=["drywall", "stucco", "wood", "white"],
        objects=["box", "ball", "duckie", "office_chair", "potion"],
    ),
    "bathroom": dict(
        floors=["floor_tiles_bw", "marble", "concrete_tiles"],
        walls=["white", "concrete_tiles", "marble"],
        objects=["duckie", "medkit", "potion"],
        size=(3.0, 4.5),
    ),
    "kitchen": dict(
        floors=["floor_tiles_bw", "concrete_tiles", "marble"],
        walls=["white", "brick_wall", "concrete_tiles", "stucco"],
        objects=["barrel", "box", "potion", "cone"],
    ),
    "living room": dict(
        floors=["wood", "wood_planks", "cardboard", "marble"],
        walls=["brick_wall", "stucco", "drywall", "wood_planks"],
        objects=["office_chair", "ball", "box", "duckie", "barrel"],
        size=(4.5, 8.0),
    ),
    "dining room": dict(
        floors=["wood", "wood_planks", "marble"],
        walls=["stucco", "brick_wall", "wood", "white"],
        objects=["office_chair", "office_desk", "box", "barrel"],
    ),
    "office": dict(
        floors=["cardboard", "concrete", "wood_planks"],
        walls=["cinder_blocks", "drywall", "concrete"],
        objects=["office_chair", "office_desk", "box", "cone"],
    ),
    "hallway": dict(
        floors=["concrete", "wood", "marble", "concrete_tiles"],
        walls=["drywall", "white", "cinder_blocks", "stucco"],
        objects=["cone", "box", "barrel", "medkit"],
        max_objects=2,
    ),
    "laundry room": dict(
        floors=["concrete", "concrete_tiles", "floor_tiles_bw"],
        walls=["cinder_blocks", "concrete", "white"],
        objects=["barrel", "box", "medkit"],
        size=(3.0, 5.0),
    ),
    "storage room": dict(
        floors=["concrete", "rock"],
        walls=["cinder_blocks", "concrete", "brick_wall"],
        objects=["barrel", "box", "cone"],
        size=(3.0, 5.0),
    ),
}

COLORS = ["red", "green", "blue", "purple", "yellow", "grey"]
# Landmark kinds: Miniworld mesh, height range, radius per metre of height (measured from the meshes),
# whether it comes in colours, and the words for it.
LANDMARKS: dict[str, dict] = {
    "barrel": dict(mesh="barrel", height=(0.9, 1.1), radius_per_h=0.4895, words=["blue barrel", "barrel"]),
    "office_chair": dict(mesh="office_chair", height=(0.95, 1.1), radius_per_h=0.4227, words=["office chair", "chair"]),
    "office_desk": dict(
        mesh="office_desk", height=(0.85, 0.95), radius_per_h=0.5859, words=["desk", "desk with shelves"]
    ),
    "potion": dict(mesh="potion", height=(0.6, 0.7), radius_per_h=0.3601, words=["red bottle", "red potion bottle"]),
    "duckie": dict(mesh="duckie", height=(0.55, 0.65), radius_per_h=0.6701, words=["rubber duck", "yellow duck"]),
    "cone": dict(mesh="cone", height=(0.7, 0.8), radius_per_h=0.4486, words=["traffic cone", "orange cone"]),
    "medkit": dict(mesh="medkit", height=(0.45, 0.55), radius_per_h=0.6302, words=["first aid kit", "red medical kit"]),
    "box": dict(
        mesh=None,
        height=(0.6, 0.8),
        radius_per_h=math.sqrt(2) / 2,
        colored=True,
        words=["{color} box", "{color} crate"],
    ),
    "ball": dict(mesh="ball_{color}", height=(0.55, 0.7), radius_per_h=0.7085, colored=True, words=["{color} ball"]),
}


def _check_field_types(item, where: str) -> None:
    """A house file's numbers are finite numbers, its ids integers, its names strings (a wrong type raised a
    TypeError deep in the simulator)."""
    from dataclasses import fields

    for f in fields(item):
        v = getattr(item, f.name)
        if f.type == "int":
            ok = isinstance(v, int) and not isinstance(v, bool)
        elif f.type == "float":
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        elif f.type in ("str", "str | None"):
            ok = isinstance(v, str) or (v is None and f.type != "str")
        else:
            continue
        if not ok:
            want = {"int": "an integer", "float": "a finite number"}.get(f.type, "a string")
            raise VidNavError(
                f"{where} field {f.name!r} must be {want}, got {v!r}; rebuild it with `vidnav data build`"
            )


def _door_on_wall(d: "Door", a: "Room", b: "Room", eps: float = 1e-3) -> bool:
    """Does door ``d`` cross the wall gap between the facing sides of rooms ``a`` and ``b``, within the wall they
    share? (What the simulator needs to cut the doorway into both walls.)"""
    if abs((d.g1 - d.g0) - WALL_GAP) > eps:
        return False
    if d.axis == "x":
        lo_end, hi_start, spans = (
            (a.x1, b.x0, (a.z0, a.z1, b.z0, b.z1)) if a.x1 <= b.x0 else (b.x1, a.x0, (b.z0, b.z1, a.z0, a.z1))
        )
    else:
        lo_end, hi_start, spans = (
            (a.z1, b.z0, (a.x0, a.x1, b.x0, b.x1)) if a.z1 <= b.z0 else (b.z1, a.z0, (b.x0, b.x1, a.x0, a.x1))
        )
    return (
        abs(lo_end - d.g0) <= eps
        and abs(hi_start - d.g1) <= eps
        and d.s0 >= max(spans[0], spans[2]) - eps
        and d.s1 <= min(spans[1], spans[3]) + eps
    )


@dataclass
class Room:
    id: int
    type: str
    x0: float
    z0: float
    x1: float
    z1: float
    floor: str
    wall: str
    ceiling: str

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x0 + self.x1) / 2, (self.z0 + self.z1) / 2)

    @property
    def size(self) -> tuple[float, float]:
        return (self.x1 - self.x0, self.z1 - self.z0)

    def contains(self, x: float, z: float, margin: float = 0.0) -> bool:
        return self.x0 + margin <= x <= self.x1 - margin and self.z0 + margin <= z <= self.z1 - margin


@dataclass
class Door:
    """A doorway through the wall gap between rooms ``a`` and ``b``.

    ``axis`` is the direction one walks to cross it: 'x' (rooms side by side along x) or 'z'.
    The opening spans [g0, g1] along the crossing axis (the gap) and [s0, s1] along the wall.
    """

    id: int
    a: int
    b: int
    axis: str
    g0: float
    g1: float
    s0: float
    s1: float

    @property
    def center(self) -> tuple[float, float]:
        g, s = (self.g0 + self.g1) / 2, (self.s0 + self.s1) / 2
        return (g, s) if self.axis == "x" else (s, g)

    @property
    def width(self) -> float:
        return self.s1 - self.s0

    @property
    def rect(self) -> tuple[float, float, float, float]:
        """(x0, z0, x1, z1) of the passage through the wall."""
        if self.axis == "x":
            return (self.g0, self.s0, self.g1, self.s1)
        return (self.s0, self.g0, self.s1, self.g1)

    def other(self, room_id: int) -> int:
        return self.b if room_id == self.a else self.a


@dataclass
class Landmark:
    id: int
    kind: str
    color: str | None
    x: float
    z: float
    dir: float
    room: int
    height: float
    radius: float

    @property
    def name(self) -> str:
        """The short name used in instructions, e.g. 'red box' or 'office chair'."""
        word = LANDMARKS[self.kind]["words"][0]
        return word.format(color=self.color) if self.color else word


@dataclass
class House:
    seed: int
    rooms: list[Room]
    doors: list[Door]
    landmarks: list[Landmark] = field(default_factory=list)
    wall_height: float = WALL_HEIGHT
    door_height: float = DOOR_HEIGHT
    format: str = HOUSE_FORMAT

    # -- queries -------------------------------------------------------------------------------
    def bounds(self) -> tuple[float, float, float, float]:
        return (
            min(r.x0 for r in self.rooms),
            min(r.z0 for r in self.rooms),
            max(r.x1 for r in self.rooms),
            max(r.z1 for r in self.rooms),
        )

    def room_at(self, x: float, z: float) -> Room | None:
        for r in self.rooms:
            if r.contains(x, z):
                return r
        return None

    def door_at(self, x: float, z: float) -> Door | None:
        for d in self.doors:
            x0, z0, x1, z1 = d.rect
            if x0 <= x <= x1 and z0 <= z <= z1:
                return d
        return None

    def neighbors(self, room_id: int) -> list[int]:
        return [d.other(room_id) for d in self.doors if room_id in (d.a, d.b)]

    # -- JSON ----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format": self.format,
            "seed": self.seed,
            "wall_height": self.wall_height,
            "door_height": self.door_height,
            "rooms": [asdict(r) for r in self.rooms],
            "doors": [asdict(d) for d in self.doors],
            "landmarks": [asdict(o) for o in self.landmarks],
        }

    @classmethod
    def from_dict(cls, d: dict, source: str = "house") -> House:
        if not isinstance(d, dict) or d.get("format") != HOUSE_FORMAT:
            raise VidNavError(
                f'{source}: not a vidnav house (expected "format": "{HOUSE_FORMAT}"); '
                "rebuild it with `vidnav data build`"
            )
        try:
            house = cls(
                seed=int(d["seed"]),
                rooms=[Room(**r) for r in d["rooms"]],
                doors=[Door(**x) for x in d["doors"]],
                landmarks=[Landmark(**o) for o in d.get("landmarks", [])],
                wall_height=float(d.get("wall_height", WALL_HEIGHT)),
                door_height=float(d.get("door_height", DOOR_HEIGHT)),
            )
        except KeyError as e:
            raise VidNavError(f"{source}: missing field {e}; rebuild it with `vidnav data build`") from e
        except TypeError as e:
            raise VidNavError(f"{source}: malformed room/door/landmark entry ({e}); rebuild it") from e
        house.validate(source)
        return house

    def validate(self, source: str = "house") -> None:
        if not self.rooms:
            raise VidNavError(f"{source}: a house needs at least one room")
        for kind, items in (("room", self.rooms), ("door", self.doors), ("landmark", self.landmarks)):
            for i, item in enumerate(items):
                _check_field_types(item, f"{source}: {kind} #{i}")
        for i, r in enumerate(self.rooms):  # rooms are separated by wall gaps: overlapping ones are no house
            for q in self.rooms[i + 1 :]:
                if min(r.x1, q.x1) > max(r.x0, q.x0) and min(r.z1, q.z1) > max(r.z0, q.z0):
                    raise VidNavError(f"{source}: rooms {r.id} and {q.id} overlap; rebuild it with `vidnav data build`")
        ids = {r.id for r in self.rooms}
        for r in self.rooms:
            if r.type not in ROOM_TYPES:
                raise VidNavError(f"{source}: room {r.id} has unknown type {r.type!r}; known: {sorted(ROOM_TYPES)}")
            if not (r.x1 > r.x0 and r.z1 > r.z0):
                raise VidNavError(f"{source}: room {r.id} has an empty rectangle ({r.x0},{r.z0})-({r.x1},{r.z1})")
            if r.floor not in FLOOR_WORDS or r.wall not in WALL_WORDS:
                raise VidNavError(f"{source}: room {r.id} has unknown textures {r.floor!r}/{r.wall!r}")
        for i, r in enumerate(self.rooms):  # doors and the simulator find a room by its id as its position
            if r.id != i:
                raise VidNavError(f"{source}: room #{i} has id {r.id}; rooms are numbered 0, 1, 2, ... in file order")
        for d in self.doors:
            if d.a not in ids or d.b not in ids or d.axis not in ("x", "z") or d.s1 <= d.s0:
                raise VidNavError(f"{source}: door {d.id} is malformed (rooms {d.a},{d.b}, axis {d.axis!r})")
            if not _door_on_wall(d, self.rooms[d.a], self.rooms[d.b]):
                raise VidNavError(
                    f"{source}: door {d.id} (axis {d.axis}, gap {d.g0}..{d.g1}, span {d.s0}..{d.s1}) "
                    f"is not an opening in the wall between rooms {d.a} and {d.b}: it must cross the "
                    f"{WALL_GAP} m gap between their facing sides, within the wall they share; "
                    "rebuild it with `vidnav data build`"
                )
        for o in self.landmarks:
            if o.kind not in LANDMARKS or o.room not in ids:
                raise VidNavError(f"{source}: landmark {o.id} has unknown kind {o.kind!r} or room {o.room}")

    def save(self, path: str | Path) -> None:
        write_json(path, self.to_dict(), indent=1)

    @classmethod
    def load(cls, path: str | Path) -> House:
        return cls.from_dict(read_json(path, what="house file"), source=str(path))
