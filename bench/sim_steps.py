"""Simulator speed: steps per second at 224x224 in one process, beside raw Miniworld in the same run.

    python bench/sim_steps.py [--steps 2000]

Prints steps/s for (a) vidnav's VLNEnv (render every step, live metrics), (b) HouseWorld render+move
only, (c) raw Miniworld's FourRooms at 224x224 with its stock framebuffer, and the ratios.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def rate(fn, n: int) -> float:
    fn()  # warm up (texture upload, display lists)
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)

    from vidnav.sim.env import VLNEnv

    env = VLNEnv()
    env.reset(seed=args.seed)
    task = env.task  # episodes restart from the same task: house generation is not what is measured

    def env_step():
        a = int(rng.choice([1, 2, 3], p=[0.6, 0.2, 0.2]))
        _, _, term, trunc, _ = env.step(a)
        if term or trunc:
            env.reset(options={"task": task})

    world = env._world

    def world_step():
        if rng.random() < 0.6:
            world.forward()
        else:
            world.turn(left=bool(rng.random() < 0.5))
        world.rgb()

    from vidnav.sim.world import _miniworld

    _miniworld()  # headless pyglet before Miniworld is imported
    from miniworld.envs.fourrooms import FourRooms

    raw = FourRooms(obs_width=224, obs_height=224)
    raw.reset(seed=args.seed)

    def raw_step():
        raw.step(int(rng.integers(0, 3)))

    r_env, r_world, r_raw = rate(env_step, args.steps), rate(world_step, args.steps), rate(raw_step, args.steps)
    print(f"VLNEnv.step (render + metrics) : {r_env:8.0f} steps/s")
    print(f"HouseWorld move + render       : {r_world:8.0f} steps/s")
    print(f"raw Miniworld FourRooms 224^2  : {r_raw:8.0f} steps/s")
    print(f"ratio VLNEnv / raw Miniworld   : {r_env / r_raw:8.2f}")


if __name__ == "__main__":
    main()
