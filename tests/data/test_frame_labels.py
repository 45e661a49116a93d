"""Per-frame labels (room, look, doors around and in view) on a hand-made house with known geometry.

The house: a kitchen (0,0)-(4,4); east of it, across a doorway at x 4..4.2, z 1.5..2.5, a bedroom
(4.2,0)-(8.2,4); south of it (+z), across a doorway at z 4..4.2, x 0.5..1.5, a bathroom (0,4.2)-(4,7.2).
Heading 0 faces +x; pi/2 faces -z (a left turn adds to the heading), so facing +x, +z is on the right.
"""

import inspect
import math

import numpy as np
import pytest

from vidnav.data.frame_labels import CAMERA_HFOV_DEG, frame_labels, relative_angle, sector, visible_width
from vidnav.sim.house import Door, House, Room


@pytest.fixture(scope="module")
def house():
    rooms = [
        Room(0, "kitchen", 0.0, 0.0, 4.0, 4.0, "marble", "brick_wall", "ceiling_tiles"),
        Room(1, "bedroom", 4.2, 0.0, 8.2, 4.0, "wood", "drywall", "ceiling_tiles"),
        Room(2, "bathroom", 0.0, 4.2, 4.0, 7.2, "floor_tiles_bw", "white", "ceiling_tiles"),
    ]
    doors = [Door(0, 0, 1, "x", 4.0, 4.2, 1.5, 2.5), Door(1, 0, 2, "z", 4.0, 4.2, 0.5, 1.5)]
    h = House(seed=0, rooms=rooms, doors=doors)
    h.validate("hand-made house")
    return h


def doors_around(lab):
    return {s for s in ("left", "ahead", "right", "behind") if getattr(lab, f"door_{s}")}


def test_in_the_kitchen_facing_the_bedroom_door(house):
    lab = frame_labels(house, (2.0, 2.0, 0.0))
    assert (lab.room_type, lab.floor, lab.wall) == ("kitchen", "marble", "brick_wall")
    # the east door straight ahead, the bathroom door (at x 1, z 4.1) behind-right: -115 degrees
    assert doors_around(lab) == {"ahead", "right"}
    assert lab.door_in_view and lab.room_through_door == "bedroom"


def test_in_the_kitchen_facing_west_no_door_in_view(house):
    lab = frame_labels(house, (2.0, 2.0, math.pi))
    assert doors_around(lab) == {"behind", "left"}  # the bathroom door now at +65 degrees
    # its opening spans +53..+76 degrees, all outside the 45-degree half field of view
    assert not lab.door_in_view and lab.room_through_door is None


def test_in_the_bathroom_facing_its_only_door(house):
    lab = frame_labels(house, (1.0, 6.0, math.pi / 2))
    assert (lab.room_type, lab.floor, lab.wall) == ("bathroom", "floor_tiles_bw", "white")
    assert doors_around(lab) == {"ahead"}
    assert lab.room_through_door == "kitchen"


def test_facing_north_in_the_kitchen_the_bathroom_door_is_behind(house):
    lab = frame_labels(house, (1.0, 3.0, math.pi / 2))  # facing -z; the bathroom door at (1, 4.1) straight behind
    assert doors_around(lab) == {"behind", "right"}  # the bedroom door at (4.1, 2): -18 degrees from east
    assert not lab.door_in_view


def test_a_door_partly_in_view_counts_although_its_centre_is_outside(house):
    # from (3, 1.5) the bedroom door's opening spans 0..-45 degrees; turned 22.5 degrees left, its centre is at
    # -46.9 degrees (right sector) but 0.41 m of the opening is still inside the field of view
    pose = (3.0, 1.5, math.pi / 8)
    assert visible_width(pose, house.doors[0], house.rooms[0]) == pytest.approx(math.tan(math.pi / 8), abs=0.03)
    lab = frame_labels(house, pose)
    # (the bathroom door, centre at -127.6 degrees from +x, is behind: -150 degrees)
    assert doors_around(lab) == {"right", "behind"} and lab.door_in_view and lab.room_through_door == "bedroom"
    # turned 45 degrees left, the opening lies just outside the field of view
    lab = frame_labels(house, (3.0, 1.5, math.pi / 4))
    assert doors_around(lab) == {"right", "behind"} and not lab.door_in_view


def test_the_nearest_door_in_view_names_the_room_through_it(house):
    # both openings wholly in view (within 43 degrees either side); the nearer one's room is the answer
    lab = frame_labels(house, (0.5, 0.5, math.radians(-52.5)))  # bathroom door 3.63 m away, bedroom door 3.90 m
    assert lab.door_in_view and lab.room_through_door == "bathroom"
    lab = frame_labels(house, (2.0, 0.5, math.radians(-70.5)))  # bathroom door 3.74 m away, bedroom door 2.58 m
    assert lab.door_in_view and lab.room_through_door == "bedroom"
    for pose in ((0.5, 0.5, math.radians(-52.5)), (2.0, 0.5, math.radians(-70.5))):
        assert all(visible_width(pose, d, house.rooms[0]) == pytest.approx(d.width, abs=0.05) for d in house.doors)


def test_a_frame_inside_a_doorway_passage_has_no_labels(house):
    assert frame_labels(house, (4.1, 2.0, 0.0)) is None


def test_sectors_and_angles():
    assert relative_angle((0.0, 0.0, 0.0), 1.0, -1.0) == pytest.approx(math.pi / 4)  # -z is on the left
    assert [sector(math.radians(a)) for a in (0, 44, 46, 134, 136, -46, -134, -136, 180)] == [
        "ahead",
        "ahead",
        "left",
        "left",
        "behind",
        "right",
        "right",
        "behind",
        "behind",
    ]


def test_the_field_of_view_is_the_environments():
    from vidnav.sim.env import VLNEnv
    from vidnav.sim.world import HouseWorld

    assert inspect.signature(VLNEnv.__init__).parameters["hfov_deg"].default == CAMERA_HFOV_DEG
    assert inspect.signature(HouseWorld.__init__).parameters["hfov_deg"].default == CAMERA_HFOV_DEG


def test_labels_agree_with_the_rendered_depth(house):
    """The renderer sees the doorway where the labels put it: through the opening the depth reaches the
    bedroom's far wall (beyond 4 m), elsewhere it stops at the kitchen's wall (under 2.5 m)."""
    from vidnav.sim.world import HouseWorld

    world = HouseWorld(house)
    try:
        world.load_house(house, 3.0, 1.5, math.pi / 8)
        _, depth = world.render(depth=True)
        row = depth[112]  # the horizon row, at camera height: doorway (2.2 m) above, floor below
        far = np.flatnonzero(row > 4.0)
        # the opening spans -22.5..-45 degrees relative to the heading: from column 112 + 112 * tan(22.5 deg)
        # = 158 to the right edge (the passage's side wall hides its last columns); nothing far elsewhere
        assert far.size > 0 and abs(far.min() - 158) <= 3 and far.max() >= 212
        assert far.size == far.max() - far.min() + 1
        assert frame_labels(house, world.pose).door_in_view
        world.set_agent(3.0, 1.5, math.pi / 4)  # the labels say: out of view
        _, depth = world.render(depth=True)
        assert (depth[112] < 4.0).all()
        assert not frame_labels(house, world.pose).door_in_view
    finally:
        world.close()
