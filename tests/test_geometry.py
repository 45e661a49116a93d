import gzip
import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vidnav.errors import VidNavError
from vidnav.geometry import (
    habitat_forward,
    heading_from_quaternion,
    heading_from_yaw,
    miniworld_forward,
    quaternion_from_heading,
    quaternion_from_yaw,
    to_habitat,
    to_miniworld,
    wrap_angle,
    yaw_from_quaternion,
)

angles = st.floats(min_value=-20.0, max_value=20.0, allow_nan=False)
coords = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False)


def same_angle(a, b, tol=1e-9):
    return abs(wrap_angle(a - b)) < tol


@given(angles)
def test_yaw_round_trip(theta):
    assert same_angle(yaw_from_quaternion(quaternion_from_yaw(theta)), theta)


@given(angles)
def test_heading_round_trip(h):
    assert same_angle(heading_from_quaternion(quaternion_from_heading(h)), h)


@given(angles)
def test_quaternion_is_unit_about_y(h):
    q = quaternion_from_heading(h)
    assert q[0] == 0.0 and q[2] == 0.0
    assert math.isclose(sum(c * c for c in q), 1.0, rel_tol=1e-12)


@given(angles, st.floats(min_value=0.01, max_value=100.0))
def test_yaw_ignores_scale_and_sign(theta, scale):
    q = quaternion_from_yaw(theta)
    assert same_angle(yaw_from_quaternion([scale * c for c in q]), theta)
    assert same_angle(yaw_from_quaternion([-c for c in q]), theta)  # q and -q are the same rotation


@given(angles)
def test_forward_vectors_agree(theta):
    fh = habitat_forward(yaw_from_quaternion(quaternion_from_yaw(theta)))
    fm = miniworld_forward(heading_from_yaw(theta))
    assert fh == pytest.approx(fm, abs=1e-9)


def test_forward_by_hand():
    assert habitat_forward(0.0) == pytest.approx((0.0, -1.0))
    assert miniworld_forward(math.pi / 2) == pytest.approx((0.0, -1.0))
    assert heading_from_quaternion([0, 0, 0, 1]) == pytest.approx(math.pi / 2)
    # yaw +90 deg about +y turns -z into -x; miniworld heading pi means forward (-1, 0)
    assert abs(heading_from_quaternion(quaternion_from_yaw(math.pi / 2))) == pytest.approx(math.pi)


def test_general_quaternion_projects_to_floor():
    # yaw 30 deg then a pitch about the agent's x axis: yaw is still 30 deg
    yaw, pitch = math.radians(30), math.radians(20)
    qy = [0.0, math.sin(yaw / 2), 0.0, math.cos(yaw / 2)]
    qx = [math.sin(pitch / 2), 0.0, 0.0, math.cos(pitch / 2)]

    def mul(a, b):  # Hamilton product, [x, y, z, w]
        ax, ay, az, aw = a
        bx, by, bz, bw = b
        return [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ]

    assert yaw_from_quaternion(mul(qy, qx)) == pytest.approx(yaw)
    # looking straight down: falls back to the x axis
    qdown = mul(qy, [math.sin(-math.pi / 4), 0.0, 0.0, math.cos(-math.pi / 4)])
    assert yaw_from_quaternion(qdown) == pytest.approx(yaw)


@given(coords, coords, coords)
def test_position_round_trip(x, y, z):
    assert to_miniworld(to_habitat(x, z, y)) == (x, z)
    assert to_habitat(*to_miniworld([x, y, z]), y) == [x, y, z]


def test_bad_inputs():
    with pytest.raises(VidNavError):
        yaw_from_quaternion([0, 0, 0, 0])
    with pytest.raises(VidNavError):
        yaw_from_quaternion([0, 1, 0])
    with pytest.raises(VidNavError):
        to_miniworld([1.0, 2.0])


def test_real_start_rotations_are_unit_about_y(r2r_sample_dir):
    path = r2r_sample_dir / "R2R_VLNCE_v1-3_preprocessed_val_unseen_first50.json.gz"
    episodes = json.loads(gzip.decompress(path.read_bytes()))["episodes"]
    assert episodes
    for ep in episodes:
        q = ep["start_rotation"]
        assert abs(q[0]) < 1e-9 and abs(q[2]) < 1e-9, ep["episode_id"]
        assert math.isclose(sum(c * c for c in q), 1.0, rel_tol=1e-9)
        theta = yaw_from_quaternion(q)
        assert quaternion_from_yaw(theta) == pytest.approx([0.0, q[1], 0.0, q[3]], abs=1e-9) or quaternion_from_yaw(
            theta
        ) == pytest.approx([0.0, -q[1], 0.0, -q[3]], abs=1e-9)
        # the miniworld heading points the same way as the habitat agent
        assert habitat_forward(theta) == pytest.approx(miniworld_forward(heading_from_quaternion(q)), abs=1e-9)
