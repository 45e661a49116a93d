"""House files are checked on load (issue #33 defects 7 and 8): a field of the wrong type raised a TypeError in
house.py, and overlapping rooms were accepted (episodes then ran into walls to the step cap, no message)."""

import json
import re

import pytest

from vidnav.errors import VidNavError
from vidnav.sim.house import House
from vidnav.sim.housegen import generate_house


def _load(tmp_path, d):
    p = tmp_path / "h.json"
    p.write_text(json.dumps(d))
    return House.load(p)


@pytest.mark.parametrize(
    "where, field, value",
    [
        ("rooms", "x0", "3"),
        ("rooms", "z1", None),
        ("rooms", "id", 1.5),
        ("rooms", "floor", 7),
        ("doors", "g0", "a"),
        ("doors", "a", True),
        ("landmarks", "x", [1]),
        ("rooms", "x1", float("nan")),
    ],
)
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


@pytest.mark.parametrize(
    "change", ["deeper than the wall", "away from the wall", "past the wall's end", "between rooms that do not touch"]
)
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
        door["b"] = next(
            r["id"]
            for r in d["rooms"]
            if r["id"] not in (door["a"], door["b"])
            and all({x["a"], x["b"]} != {door["a"], r["id"]} for x in d["doors"])
        )
    with pytest.raises(
        VidNavError,
        match=rf"h\.json: door {door['id']} .*wall between rooms {door['a']} and "
        rf"{door['b']}.*rebuild",
    ):
        _load(tmp_path, d)


def _bad_episode(tiny_benchmark, tmp_path, where):
    """A copy of the tiny benchmark whose first val_unseen episode starts or ends ``where``."""
    import shutil

    from vidnav.data.episodes import load_split
    from vidnav.geometry import to_miniworld

    data = tmp_path / "data"
    shutil.copytree(tiny_benchmark, data)
    ep = load_split(data, "val_unseen").episodes[0]
    house_path = data / ep.scene_id
    house = House.load(house_path)
    x0, z0, x1, z1 = house.bounds()
    r0 = house.rooms[0]
    gap = [r0.x1 + 0.1, 0.0, r0.z0 + 0.3]  # in the wall gap past room 0's +x side (or outside the house)
    if where == "start outside the house":
        ep.start_position = [x1 + 5, 0.0, z1 + 5]
    elif where == "start in a wall":
        ep.start_position = gap
    elif where == "goal outside the house":
        ep.goals[0].position = [x1 + 5, 0.0, z1 + 5]
    elif where == "goal in a wall":
        ep.goals[0].position = gap
    else:  # the goal's room walled off: its doors removed from the house file
        room = house.room_at(*to_miniworld(ep.goals[0].position))
        d = house.to_dict()
        d["doors"] = [x for x in d["doors"] if room.id not in (x["a"], x["b"])]
        house_path.write_text(json.dumps(d))
    return data, ep, house_path


@pytest.mark.parametrize(
    "where, match",
    [
        ("start outside the house", "start_position .* in a wall or outside the house"),
        ("start in a wall", "start_position .* in a wall or outside the house"),
        ("goal outside the house", r"goals\[0\]\.position .* in a wall or outside the house"),
        ("goal in a wall", r"goals\[0\]\.position .* in a wall or outside the house"),
        ("goal unreachable", "cannot be reached from its start"),
    ],
)
def test_an_episode_the_house_cannot_hold_is_refused_naming_house_and_episode(tiny_benchmark, tmp_path, where, match):
    """Issue #33 defect 7: starts or goals in walls or outside the house, and unreachable goals, were accepted;
    the oracle walked to the step cap and the run reported a failure. Now loading the episode into the
    environment (eval, rollouts, relabel, pairs all do) names the house file, the episode and the fix."""
    from vidnav.sim.env import VLNEnv

    data, ep, house_path = _bad_episode(tiny_benchmark, tmp_path, where)
    env = VLNEnv(data_dir=data)
    with pytest.raises(VidNavError, match=rf"{re.escape(str(house_path))}: episode_id {ep.episode_id!r}.*{match}"):
        env.task_from_episode(ep)
    from vidnav.data.episodes import load_split

    env = VLNEnv(data_dir=tiny_benchmark)
    for good in load_split(tiny_benchmark, "val_unseen").episodes:  # the built episodes all pass
        env.task_from_episode(good)


def test_rooms_out_of_id_order_are_refused(tmp_path):
    """The simulator finds a door's rooms by id as list position (world.py: house.rooms[d.a]); rooms listed in
    another order loaded, then cut the doorways into the wrong walls (an AssertionError when rendered)."""
    d = generate_house(1).to_dict()
    d["rooms"].reverse()
    with pytest.raises(VidNavError, match=rf"h\.json: room #0 has id {len(d['rooms']) - 1}; rooms are numbered"):
        _load(tmp_path, d)
