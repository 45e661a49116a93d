"""Texture conversion when a world is built: pyglet's RGBA conversion (what Miniworld's ``Texture.load`` calls)
beside vidnav's numpy one (``vidnav.sim.world.texture_rgba``), on the Miniworld textures our houses use.

    python bench/texture_load.py [--textures 8]

Every process that renders pays this once per texture it meets (eval and DAgger workers, tests, the demo).
Prints ms per texture for both, checks they give the same bytes, and the ratio.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--textures", type=int, default=8, help="how many of the house textures to convert")
    args = ap.parse_args()

    from vidnav.sim.house import CEILINGS, FLOOR_WORDS, WALL_WORDS
    from vidnav.sim.world import _headless_pyglet, texture_rgba

    _headless_pyglet()
    import pyglet
    from miniworld.opengl import get_file_path

    names = sorted({*FLOOR_WORDS, *WALL_WORDS, *CEILINGS})[: args.textures]
    paths = [get_file_path("textures", f"{n}_1", "png") for n in names]
    slow = fast = 0.0
    for p in paths:
        img = pyglet.image.load(p).get_image_data()
        t = time.perf_counter()
        want = np.frombuffer(img.get_data("RGBA", img.width * 4), np.uint8)
        slow += time.perf_counter() - t
        img = pyglet.image.load(p).get_image_data()
        t = time.perf_counter()
        got = texture_rgba(img)
        fast += time.perf_counter() - t
        assert np.array_equal(got.ravel(), want), p
    n = len(paths)
    print(f"{n} textures ({', '.join(names)})")
    print(f"pyglet get_data('RGBA'): {1000 * slow / n:8.1f} ms per texture")
    print(f"vidnav texture_rgba:     {1000 * fast / n:8.1f} ms per texture   (same bytes)")
    print(f"speed-up: {slow / fast:.0f}x")


if __name__ == "__main__":
    main()
