"""VLNEnv: the gymnasium environment for vision-and-language navigation in vidnav houses.

Actions are VLN-CE's: 0 STOP, 1 MOVE_FORWARD (0.25 m), 2 TURN_LEFT (15°), 3 TURN_RIGHT (15°).
An episode ends when the agent calls STOP (terminated) or after ``max_steps`` actions (truncated).
Observations: {"rgb": HxWx3 uint8, "instruction": str} (+ "depth" HxWx1 float32 metres on request).
``info`` carries the live VLN-CE metrics (distance to goal, success, SPL, oracle success, path length, ...;
nDTW and sDTW need the whole path and are computed by the evaluation runner).

    env = gymnasium.make("vidnav/MiniHouseVLN-v0")
    obs, info = env.reset(seed=0)                      # a generated house, path and instruction
    obs, info = env.reset(options={"episode": ep})     # an Episode read from a VLN-CE file
"""

from __future__ import annotations

import math
from pathlib import Path

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from vidnav.actions import FORWARD, LEFT, RIGHT, STOP
from vidnav.errors import VidNavError
from vidnav.metrics import oracle_success, spl
from vidnav.registration import ENV_ID  # noqa: F401  (registered on `import vidnav`; tests and users import it from here too)
from vidnav.sim.house import House
from vidnav.sim.navmap import NavMap
from vidnav.sim.task import NavTask, episode_to_task

INSTRUCTION_CHARSET = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?'\"-()/&%#+°\n\t")


class VLNEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        data_dir: str | Path | None = None,
        width: int = 224,
        height: int = 224,
        hfov_deg: float = 90.0,
        cam_height: float = 1.25,
        agent_radius: float = 0.18,
        forward_step: float = 0.25,
        turn_deg: float = 15.0,
        max_steps: int = 500,
        depth: bool = False,
        render_mode: str | None = None,
        allow_sliding: bool = False,
    ):
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.width, self.height = width, height
        self.sim_kw = dict(
            width=width,
            height=height,
            hfov_deg=hfov_deg,
            cam_height=cam_height,
            agent_radius=agent_radius,
            forward_step=forward_step,
            turn_deg=turn_deg,
            allow_sliding=allow_sliding,
        )
        self.nav_kw = dict(
            agent_radius=agent_radius, forward_step=forward_step, turn_deg=turn_deg, allow_sliding=allow_sliding
        )
        self.max_steps = max_steps
        self.want_depth = depth
        self.render_mode = render_mode
        obs = {
            "rgb": spaces.Box(0, 255, (height, width, 3), np.uint8),
            "instruction": spaces.Text(max_length=2000, min_length=0, charset=INSTRUCTION_CHARSET),
        }
        if depth:
            obs["depth"] = spaces.Box(0.0, np.inf, (height, width, 1), np.float32)
        self.observation_space = spaces.Dict(obs)
        self.action_space = spaces.Discrete(4)
        self._world = None
        self._nav: NavMap | None = None
        self._nav_house: House | None = None
        self.task: NavTask | None = None
        self._houses: dict[str, House] = {}

    # -- episode setup ---------------------------------------------------------------------------
    def navmap_for(self, house: House) -> NavMap:
        """The navigation map of ``house`` with this env's agent settings (kept for the latest house)."""
        if self._nav is None or self._nav_house is not house:
            self._nav = NavMap(house, **self.nav_kw)
            self._nav_house = house
        return self._nav

    def _world_for(self, house: House):
        from vidnav.sim.world import HouseWorld

        if self._world is None:
            self._world = HouseWorld(house, **self.sim_kw)
        return self._world

    def house_path(self, scene_id: str) -> Path:
        """The house file of an episode ``scene_id`` (a path relative to ``data_dir``, or absolute)."""
        if scene_id.endswith(".glb"):
            raise VidNavError(
                f"scene {scene_id!r} is a Matterport scene; vidnav renders only its own houses "
                "(real VLN-CE files can be read, inspected and scored, not simulated)"
            )
        path = Path(scene_id)
        if not path.is_absolute():
            if self.data_dir is None:
                raise VidNavError(
                    f"episode scene {scene_id!r} is relative; create the env with data_dir=<benchmark folder>"
                )
            path = self.data_dir / path
        return path

    def load_house(self, scene_id: str) -> House:
        """A house by its episode ``scene_id`` (a path relative to ``data_dir``, or absolute)."""
        if scene_id in self._houses:
            return self._houses[scene_id]
        path = self.house_path(scene_id)
        if not path.exists():
            raise VidNavError(
                f"house file {path} named by an episode's scene_id is missing; "
                "rebuild the benchmark with `vidnav data build` or fix --data"
            )
        house = House.load(path)
        if len(self._houses) > 64:
            self._houses.clear()
        self._houses[scene_id] = house
        return house

    def task_from_episode(self, episode, gt=None) -> NavTask:
        """The task of an episode in its house, checked against the house (see :meth:`check_task`)."""
        task = episode_to_task(episode, self.load_house(episode.scene_id), gt)
        self.check_task(
            task,
            f"{self.house_path(episode.scene_id)}: episode_id {episode.episode_id!r}",
            (episode.start_position, episode.goals[0].position),
        )
        return task

    def check_task(self, task: NavTask, where: str, shown: tuple | None = None) -> None:
        """Refuse a task the house cannot hold: a start or goal in a wall or outside every room and doorway, or a
        goal that cannot be reached from the start (an episode would run to the step cap, scored as a failure).
        Costs nothing extra: the navigation map and the goal's distance field are the ones the episode uses.
        ``shown``: the (start, goal) positions to quote in the error, as the episode file has them."""
        house = task.house
        fix = "fix the episode file or the house file, or rebuild the benchmark with `vidnav data build`"
        for i, (name, (x, z)) in enumerate((("start_position", task.start[:2]), ("goals[0].position", task.goal))):
            if house.room_at(x, z) is None and house.door_at(x, z) is None:
                at = f"{list(shown[i])}" if shown else f"Miniworld x={x:.3f}, z={z:.3f}"
                raise VidNavError(
                    f"{where}: {name} ({at}) lies in a wall or outside the house (in no room or doorway); {fix}"
                )
        nav = self.navmap_for(house)
        field = nav.field(*task.goal)
        x, z = task.start[:2]
        if not (np.isfinite(field[nav.snap(x, z)]) and field[nav.snap(*task.goal)] < task.goal_radius):
            raise VidNavError(
                f"{where}: the goal cannot be reached from its start (no free path through the "
                f"house's rooms and doorways to within {task.goal_radius:g} m of it); {fix}"
            )

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = options or {}
        if "task" in options:
            task = options["task"]
        elif "episode" in options:
            task = self.task_from_episode(options["episode"], options.get("gt"))
        else:
            task = generated_task(int(self.np_random.integers(2**31)) if seed is None else seed)
        self.task = task
        nav = self.navmap_for(task.house)
        x, z, h = task.start
        world = self._world_for(task.house)
        world.load_house(task.house, x, z, h)
        self.pose = (x, z, h)
        self.steps = 0
        self.collisions = 0
        self.stopped = False
        self.last_collided = False
        self.positions = [(x, z)]
        self.start_distance = nav.distance(x, z, *task.goal)
        self._min_distance = self.start_distance
        self._path_length = 0.0
        return self._obs(), self._info()

    # -- stepping --------------------------------------------------------------------------------
    def step(self, action):
        if self.task is None:
            raise VidNavError("call reset() before step()")
        try:
            a = int(action)
        except (TypeError, ValueError):
            raise VidNavError(
                f"invalid action {action!r}: use 0 STOP, 1 MOVE_FORWARD, 2 TURN_LEFT, 3 TURN_RIGHT"
            ) from None
        if a not in (STOP, FORWARD, LEFT, RIGHT):
            raise VidNavError(f"invalid action {action!r}: use 0 STOP, 1 MOVE_FORWARD, 2 TURN_LEFT, 3 TURN_RIGHT")
        if self.stopped or self.steps >= self.max_steps:
            raise VidNavError("episode is over; call reset()")
        world = self._world
        self.steps += 1
        self.last_collided = False
        if a == STOP:
            self.stopped = True
        elif a == FORWARD:
            moved = world.forward()
            self.last_collided = not moved
            self.collisions += int(not moved)
        else:
            world.turn(left=(a == LEFT))
        x, z, h = world.pose
        px, pz = self.positions[-1]
        self._path_length += math.hypot(x - px, z - pz)
        self.pose = (x, z, h)
        if a != STOP:
            self.positions.append((x, z))
        info = self._info()
        self._min_distance = min(self._min_distance, info["distance_to_goal"])
        info["oracle_success"] = oracle_success([self._min_distance], self.task.goal_radius)
        terminated = self.stopped
        truncated = not terminated and self.steps >= self.max_steps
        reward = float(info["success"]) if terminated else 0.0
        return self._obs(), reward, terminated, truncated, info

    def _obs(self) -> dict:
        rgb, depth = self._world.render(depth=self.want_depth)
        obs = {"rgb": rgb, "instruction": self.task.instruction}
        if self.want_depth:
            obs["depth"] = depth[:, :, None]
        self._last_rgb = rgb
        return obs

    def _info(self) -> dict:
        x, z, h = self.pose
        d = self._nav.distance(x, z, *self.task.goal)
        success = float(self.stopped and d < self.task.goal_radius)
        return {
            "episode_id": self.task.episode_id,
            "position": (float(x), float(z)),
            "heading": float(h),
            "distance_to_goal": d,
            "success": success,
            "spl": spl(success, self.start_distance, self._path_length),
            "oracle_success": oracle_success([self._min_distance, d], self.task.goal_radius),
            "trajectory_length": self._path_length,
            "steps": self.steps,
            "collisions": self.collisions,
            "collided": self.last_collided,
        }

    # -- helpers for agents and tools ------------------------------------------------------------
    def expert_action(self) -> int:
        """The shortest-path follower's action from the current pose (privileged: for the oracle)."""
        return self._nav.expert_action(*self.pose, *self.task.goal)

    @property
    def navmap(self) -> NavMap:
        return self._nav

    def render(self):
        if self.render_mode == "rgb_array":
            return self._last_rgb
        return None

    def close(self):
        if self._world is not None:
            self._world.close()
            self._world = None


def generated_task(seed: int) -> NavTask:
    """A task without any data on disk: a house from the seed, one path, one instruction."""
    from vidnav.data.instructions import write_instructions
    from vidnav.data.paths import sample_paths
    from vidnav.sim.housegen import generate_house

    rng = np.random.default_rng([seed, 7])
    for k in range(20):
        house = generate_house(seed * 31 + k)
        paths = sample_paths(house, 1, rng)
        if paths:
            p = paths[0]
            text = write_instructions(p.semantics, rng, n=1)[0]
            return NavTask(
                house,
                p.start,
                p.goal,
                text,
                p.reference,
                episode_id=f"gen-{seed}",
                gt_locations=[(q[0], q[1]) for q in p.rollout.poses],
            )
    raise VidNavError(f"could not generate a task for seed {seed}")
