import json

import numpy as np
import pytest

from vidnav.errors import VidNavError
from vidnav.sim.house import LANDMARKS, ROOM_TYPES, WALL_GAP, House
from vidnav.sim.housegen import generate_house
from vidnav.sim.navmap import NavMap


def test_same_seed_same_bytes_different_seed_different_house(tmp_path):
    generate_house(7).save(tmp_path / "a.json")
    generate_house(7).save(tmp_path / "b.json")
    generate_house(8).save(tmp_path / "c.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert (tmp_path / "a.json").read_bytes() != (tmp_path / "c.json").read_bytes()
    assert House.load(tmp_path / "a.json").to_dict() == generate_house(7).to_dict()


@pytest.mark.parametrize("seed", range(0, 60, 3))
def test_floor_plan_rules(seed):
    h = generate_house(seed)
    assert 4 <= len(h.rooms) <= 9
    for r in h.rooms:
        w, d = r.size
        if r.type == "hallway":
            assert 2.0 <= min(w, d) <= 2.6 and max(w, d) <= 8.0 + 1e-9
        else:
            assert 3.0 - 1e-9 <= w <= 8.0 + 1e-9 and 3.0 - 1e-9 <= d <= 8.0 + 1e-9
    # rooms never overlap and keep at least a wall's thickness apart
    for i, a in enumerate(h.rooms):
        for b in h.rooms[i + 1 :]:
            sep_x = max(b.x0 - a.x1, a.x0 - b.x1)
            sep_z = max(b.z0 - a.z1, a.z0 - b.z1)
            assert max(sep_x, sep_z) >= WALL_GAP - 1e-6
    # each door joins two rooms facing each other across exactly one wall gap
    for d in h.doors:
        assert abs((d.g1 - d.g0) - WALL_GAP) < 1e-6 and 1.0 - 1e-9 <= d.width <= 1.4 + 1e-9
    # the room graph is connected
    seen, todo = {0}, [0]
    while todo:
        for n in h.neighbors(todo.pop()):
            if n not in seen:
                seen.add(n)
                todo.append(n)
    assert seen == {r.id for r in h.rooms}


def test_looks_consistent_per_type_and_distinct_between_types():
    looks_across = {}
    for seed in range(20):
        h = generate_house(seed)
        by_type = {}
        for r in h.rooms:
            by_type.setdefault(r.type, set()).add((r.floor, r.wall))
            assert r.floor in ROOM_TYPES[r.type]["floors"] and r.wall in ROOM_TYPES[r.type]["walls"]
        assert all(len(v) == 1 for v in by_type.values()), "one look per type within a house"
        pairs = [next(iter(v)) for v in by_type.values()]
        assert len(set(pairs)) == len(pairs), "different types look different"
        for t, v in by_type.items():
            looks_across.setdefault(t, set()).update(v)
    assert all(len(v) >= 2 for t, v in looks_across.items() if t in ("bedroom", "kitchen", "living room"))


def test_landmarks_keep_doorways_clear_and_house_navigable():
    counts = []
    for seed in range(12):
        h = generate_house(seed)
        per_room = {}
        for o in h.landmarks:
            assert o.kind in LANDMARKS
            room = h.rooms[o.room]
            assert room.contains(o.x, o.z)
            for d in h.doors:
                if o.room in (d.a, d.b):
                    assert np.hypot(o.x - d.center[0], o.z - d.center[1]) >= o.radius + 1.5 - 1e-6
            per_room[o.room] = per_room.get(o.room, 0) + 1
        assert all(0 <= c <= 4 for c in per_room.values())
        counts.append(len(h.landmarks))
        assert not NavMap(h).unreachable_rooms()
    assert np.mean(counts) > 4


def test_bad_house_files_name_the_problem(tmp_path):
    p = tmp_path / "h.json"
    p.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(VidNavError, match="not a vidnav house"):
        House.load(p)
    d = generate_house(1).to_dict()
    del d["rooms"][0]["x1"]
    p.write_text(json.dumps(d))
    with pytest.raises(VidNavError, match="malformed"):
        House.load(p)
    d = generate_house(1).to_dict()
    d["rooms"][0]["type"] = "ballroom"
    p.write_text(json.dumps(d))
    with pytest.raises(VidNavError, match="ballroom"):
        House.load(p)
    with pytest.raises(VidNavError, match="not found"):
        House.load(tmp_path / "missing.json")
