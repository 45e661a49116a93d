"""The agents `vidnav eval` can run, behind one small interface.

    agent = make_agent("oracle")          # "oracle" | "random" | "forward" | "default" | a checkpoint folder
    agent.reset(env, obs)                 # a new episode: env gives privileged access to the oracle only
    action = agent.act(obs, info)         # 0 STOP, 1 MOVE_FORWARD, 2 TURN_LEFT, 3 TURN_RIGHT

Baselines follow the usual VLN-CE ones: `random` samples uniformly among the four actions (STOP included,
so it usually stops early, as in the literature), `forward` walks forward until blocked and then stops.
"""

from __future__ import annotations

import zlib
from collections import deque
from pathlib import Path

import numpy as np

from vidnav.errors import VidNavError
from vidnav.sim.navmap import FORWARD, STOP, WORD_ACTIONS
BUILTIN = ("oracle", "random", "forward", "default")


class NavAgent:
    name = "agent"

    def reset(self, env, obs: dict) -> None:
        pass

    def act(self, obs: dict, info: dict) -> int:
        raise NotImplementedError


class OracleAgent(NavAgent):
    """The shortest-path follower (privileged: reads the goal from the environment)."""

    name = "oracle"

    def reset(self, env, obs):
        self.env = env

    def act(self, obs, info):
        return self.env.expert_action()


class RandomAgent(NavAgent):
    """Uniform over the four actions, seeded per episode so reruns give the same numbers."""

    name = "random"

    def __init__(self, seed: int = 0):
        self.seed = seed

    def reset(self, env, obs):
        key = zlib.crc32(str(env.task.episode_id).encode())
        self.rng = np.random.default_rng([self.seed, key])

    def act(self, obs, info):
        return int(self.rng.integers(4))


class ForwardAgent(NavAgent):
    """Forward until a step is blocked by a wall, then STOP."""

    name = "forward"

    def act(self, obs, info):
        return STOP if info.get("collided") else FORWARD


class ModelAgent(NavAgent):
    """A trained vidnav model: plans k actions from the video so far, executes them, re-plans.

    Frames seen while executing a plan go into the agent's memory (``observe``), as in NaVid's and
    Uni-NaVid's evaluation.
    """

    def __init__(self, checkpoint: str | Path | None = None, name: str | None = None, **overrides):
        from vidnav.agent import load_agent

        self.agent = load_agent(checkpoint, **overrides)
        self.name = name or (Path(checkpoint).name if checkpoint else "default")
        self.queue: deque[int] = deque()

    def reset(self, env, obs):
        self.agent.reset(obs["instruction"])
        self.queue.clear()

    def act(self, obs, info):
        if self.queue:
            self.agent.observe(obs["rgb"])
        else:
            self.queue.extend(WORD_ACTIONS[w] for w in self.agent.act(obs["rgb"]))
        return self.queue.popleft()


def make_agent(name: str, seed: int = 0, **overrides) -> NavAgent:
    """An agent by name: a built-in (`oracle`, `random`, `forward`, `default` = the shipped checkpoint)
    or the path of a checkpoint folder (config.json + model.safetensors)."""
    if name == "oracle":
        return OracleAgent()
    if name == "random":
        return RandomAgent(seed)
    if name == "forward":
        return ForwardAgent()
    if name == "default":
        return ModelAgent(None, name="default", **overrides)
    path = Path(name)
    if path.is_dir():
        if not (path / "config.json").exists():
            raise VidNavError(f"--agent {name}: folder has no config.json; name a checkpoint folder "
                              f"(written by `vidnav train`) or one of {', '.join(BUILTIN)}")
        return ModelAgent(path, **overrides)
    raise VidNavError(f"unknown agent {name!r}: use one of {', '.join(BUILTIN)} or a checkpoint folder")
