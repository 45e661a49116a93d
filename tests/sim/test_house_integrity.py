"""House files are checked on load (issue #33 defects 7 and 8): a field of the wrong type raised a TypeError in
house.py, and overlapping rooms were accepted (episodes then ran into walls to the step cap, no message)."""

import json

import pytest

from vidnav.errors import VidNavError
from vidnav.sim.house import House, generate_house


def _load(tmp_path, d):
    p = tmp_path / "h.json"
    p.write_text(json.dumps(d))
    return House.load(p)


@pytest.mark.parametrize("where, field, value", [
    ("rooms", "x0", "3"), ("rooms", "z1", None), ("rooms", "id", 1.5), ("rooms", "floor", 7),
    ("doors", "g0", "a"), ("doors", "a", True), ("landmarks", "x", [1]), ("rooms", "x1", float("nan"))])
def test_a_field_of_the_wrong_type_is_named(tmp_path, where, field, value):
    d = generate_house(1).to_dict()
    d[where][0][field] = value
    with pytest.raises(VidNavError, match=rf"h\.json: {where[:-1]} .*{field}"):
        _load(tmp_path, d)


def test_overlapping_rooms_are_refused(tmp_path):
    d = generate_house(1).to_dict()
    a, b = d["rooms"][0], d["rooms"][1]
    b.update(x0=a["x0"] + 0.5, z0=a["z0"] + 0.5, x1=a["x0"] + 2.0, z1=a["z0"] + 2.0)
    with pytest.raises(VidNavError, match=rf"rooms {a['id']} and {b['id']} overlap"):
        _load(tmp_path, d)


def test_generated_houses_still_load(tmp_path):
    for seed in range(5):
        h = generate_house(seed)
        assert _load(tmp_path, h.to_dict()).to_dict() == h.to_dict()


@pytest.mark.parametrize("change", ["deeper than the wall", "away from the wall", "past the wall's end",
                                    "between rooms that do not touch"])
def test_a_door_off_its_wall_is_refused(tmp_path, change):
    """Issue #33 defect 8: such a door was an AssertionError in sim/world.py when the house was rendered (or, moved
    off the wall, a blocked passage that cut rooms off); now the house file is refused on load, naming the door."""
    d = generate_house(1).to_dict()
    door = d["doors"][0]
    if change == "deeper than the wall":
        door["g1"] += 0.5
    elif change == "away from the wall":
        door["g0"] += 3
        door["g1"] += 3
    elif change == "past the wall's end":
        door["s1"] += 20
    else:
        door["b"] = next(r["id"] for r in d["rooms"] if r["id"] not in (door["a"], door["b"])
                         and all({x["a"], x["b"]} != {door["a"], r["id"]} for x in d["doors"]))
    with pytest.raises(VidNavError, match=rf"h\.json: door {door['id']} .*wall between rooms {door['a']} and "
                                          rf"{door['b']}.*rebuild"):
        _load(tmp_path, d)
