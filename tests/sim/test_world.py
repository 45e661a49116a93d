"""Rendering tests (headless EGL)."""

import math

import numpy as np
import pytest

from vidnav.sim.housegen import generate_house
from vidnav.sim.navmap import NavMap
from vidnav.sim.world import HouseWorld


@pytest.fixture(scope="module")
def world():
    h = generate_house(5)
    w = HouseWorld(h)
    w.load_house(h, *h.rooms[0].center, 0.0)
    yield w
    w.close()


def test_frames_are_rgb_224_and_change_when_turning(world):
    a = world.rgb()
    world.turn(left=True)
    b = world.rgb()
    assert a.shape == (224, 224, 3) and a.dtype == np.uint8
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 2
    assert a.std() > 10  # textured, not a blank frame


def test_depth_matches_distance_to_wall(world):
    h = world.house
    # stand in a room, facing +x, on a line with no doorway and no object ahead
    for r in h.rooms:
        z = r.z0 + 0.6
        if any(d.axis == "x" and d.s0 - 0.3 < z < d.s1 + 0.3 and r.id in (d.a, d.b) for d in h.doors):
            continue
        if any(o.room == r.id and abs(o.z - z) < o.radius + 0.3 for o in h.landmarks):
            continue
        x = r.x0 + 0.5
        world.set_agent(x, z, 0.0)
        _, depth = world.render(depth=True)
        assert depth.shape == (224, 224)
        assert depth[112, 112] == pytest.approx(r.x1 - x, abs=0.05)
        return
    pytest.skip("no clear wall line in this house")


def test_world_collisions_agree_with_navmap():
    """Miniworld's own intersect() and NavMap.collides() give the same answer."""
    h = generate_house(21)
    w = HouseWorld(h)
    w.load_house(h, *h.rooms[0].center, 0.0)
    nav = NavMap(h)
    ours = {tuple(np.round(sorted([tuple(s[0]), tuple(s[1])]), 3).ravel()) for s in nav.segs}
    theirs = {tuple(np.round(sorted([(s[0][0], s[0][2]), (s[1][0], s[1][2])]), 3).ravel()) for s in w.env.wall_segs}
    assert ours == theirs
    rng = np.random.default_rng(0)
    x0, z0, x1, z1 = h.bounds()
    agree = 0
    for _ in range(400):
        x, z = rng.uniform(x0, x1), rng.uniform(z0, z1)
        mw = bool(w.env.intersect(w.env.agent, np.array([x, 0.0, z]), w.env.agent.radius))
        agree += mw == nav.collides(x, z)
    assert agree == 400
    # stepping in the world follows the navmap's motion model
    r = h.rooms[0]
    w.set_agent(*r.center, 0.3)
    x, z, hd = w.pose
    for a in [1, 1, 2, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]:
        if a == 1:
            w.forward()
        else:
            w.turn(left=(a == 2))
        x, z, hd, _ = nav.step(x, z, hd, a)
        wx, wz, wh = w.pose
        assert (wx, wz) == pytest.approx((x, z), abs=1e-6) and math.isclose(wh, hd, abs_tol=1e-9)
    w.close()


def test_world_sliding_follows_the_navmap():
    """With allow_sliding, steps into walls at a slant move the rendered agent as NavMap.step says."""
    h = generate_house(21)
    w = HouseWorld(h, allow_sliding=True)
    nav = NavMap(h, allow_sliding=True)
    r = h.rooms[0]
    w.load_house(h, *r.center, 0.5)
    x, z, hd = w.pose
    slid = 0
    for _ in range(40):  # walk at a slant until the walls have been met several times
        px, pz = x, z
        moved = w.forward()
        x, z, hd, hit = nav.step(x, z, hd, 1)
        assert moved is not hit
        wx, wz, _ = w.pose
        assert (wx, wz) == pytest.approx((x, z), abs=1e-6)
        slid += hit and (x, z) != (px, pz)
    assert slid >= 3
    w.close()


@pytest.mark.parametrize("fmt", ["RGB", "RGBA", "L", "LA"])
@pytest.mark.parametrize("sign", [1, -1])
def test_texture_bytes_equal_pyglets_own_rgba_conversion(fmt, sign):
    """Textures go to OpenGL as the bytes pyglet's (slow) conversion gives, whatever the row order and padding."""
    from vidnav.sim.world import _headless_pyglet, texture_rgba

    image = _headless_pyglet().image
    w, h = 5, 3
    pad = 0 if fmt == "RGBA" else 3  # pyglet re-pitches an unconverted padded image wrongly; converted ones right
    pitch = sign * (w * len(fmt) + pad)
    data = np.random.default_rng(len(fmt)).integers(0, 256, abs(pitch) * h, dtype=np.uint8).tobytes()
    img = image.ImageData(w, h, fmt, data, pitch)
    expected = np.frombuffer(img.get_data("RGBA", w * 4), np.uint8).reshape(h, w, 4)
    img = image.ImageData(w, h, fmt, data, pitch)  # a fresh one: get_data may cache the conversion
    np.testing.assert_array_equal(texture_rgba(img), expected)


def test_a_real_miniworld_texture_converts_like_pyglet(world):
    import miniworld

    from vidnav.sim.world import _headless_pyglet, texture_rgba

    path = f"{miniworld.__path__[0]}/textures/cardboard_4.png"
    load = _headless_pyglet().image.load
    img = load(path).get_image_data()
    assert img.format == "RGB" and img.pitch < 0  # the conversion the regex path is slow at
    expected = np.frombuffer(img.get_data("RGBA", img.width * 4), np.uint8)
    np.testing.assert_array_equal(texture_rgba(load(path).get_image_data()).ravel(), expected)
