"""The agents `vidnav eval` can run, behind one small interface.

    agent = make_agent("oracle")          # oracle | random | forward | symbolic | default | a checkpoint folder
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

from vidnav.actions import ACTIONS, FORWARD, LEFT, RIGHT, STOP, WORD_ACTIONS
from vidnav.errors import VidNavError
from vidnav.eval.navagent import NavAgent
from vidnav.run_options import PlanOptions, read_run_options, resolve

BUILTIN = ("oracle", "random", "forward", "default", "symbolic")


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
    """A trained vidnav model: plans k actions from the video so far, executes them (or the first
    ``options.act_steps``), re-plans; ``options`` (:class:`PlanOptions`) says how.

    ``options``: None runs the agent with its checkpoint's run options (``run_options.json``, see
    :mod:`vidnav.run_options`; all off without one), a mapping changes some of them (``{"break_loops": False}``),
    a :class:`PlanOptions` replaces them.

    Frames seen while executing a plan go into the agent's memory (``observe``), as in NaVid's and
    Uni-NaVid's evaluation.
    """

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        name: str | None = None,
        options: PlanOptions | dict | None = None,
        agent=None,
        **overrides,
    ):
        # agent: a ready streaming agent instead of a checkpoint (a vidnav.serve.RemoteAgent: the plan options
        # then run here, on its camera frames, exactly as for the in-process agent)
        if agent is None:
            from vidnav.agent import load_agent

            agent = load_agent(checkpoint, **overrides)
        self.agent = agent
        self.name = name or (Path(checkpoint).name if checkpoint else "default")
        self.options = resolve(getattr(self.agent, "run_options", None) or PlanOptions(), options)
        self.views: PlannedViews | None = None  # per episode, made in reset when options.break_loops
        self.queue: deque[int] = deque()
        self._last: tuple[int, np.ndarray] | None = None

    def reset(self, env, obs):
        """A new episode (``env`` is not used: the agent sees only ``obs``)."""
        self.agent.reset(obs["instruction"])
        self.queue.clear()
        self._last = None
        self.views = PlannedViews() if self.options.break_loops else None

    def observe(self, obs) -> None:
        """A frame the agent sees without acting on it (another hand drives, as :class:`ExpertStart`'s expert)."""
        self.agent.observe(np.asarray(obs["rgb"]))

    def act(self, obs, info):
        rgb = np.asarray(obs["rgb"])
        blocked = (
            self.options.replan_when_blocked
            and self._last is not None
            and self._last[0] == FORWARD
            and blocked_step(self._last[1], rgb)
        )
        if blocked:  # drop the rest of the plan and re-plan now, starting with anything but forward
            self.queue.clear()
        if self.queue:
            self.agent.observe(rgb)
        else:
            words = self._plan(rgb, {"forward"} if blocked else set())
            self.queue.extend(WORD_ACTIONS[w] for w in words[: self.options.act_steps])
        action = self.queue.popleft()
        self._last = (action, rgb) if self.options.replan_when_blocked else None
        return action

    def _plan(self, rgb: np.ndarray, ban: set[str]) -> list[str]:
        if self.views is None:
            return self.agent.act(rgb, ban_first=ban or None)
        view = self.views.find(rgb)
        if view.plans >= self.options.loop_plans:  # going round in circles: start with an action untried here
            ban = ban | view.tried
        if MOVES <= ban:  # every move was tried from this view: stop here
            self.agent.observe(rgb)
            words = ["stop"] * self.agent.num_actions
        else:
            words = self.agent.act(rgb, ban_first=ban or None)
        view.plans += 1
        view.tried.add(words[0])
        return words


MOVES = frozenset(ACTIONS) - {"stop"}
SAME_VIEW_TOL = 0.5  # mean absolute difference (0..255) under which two camera images count as one view


class PlannedViews:
    """The views an agent planned from in one episode (coarse thumbnails) and what it did at each."""

    class View:
        def __init__(self):
            self.plans = 0
            self.tried: set[str] = set()

    def __init__(self, cell: int = 8, tol: float = SAME_VIEW_TOL):
        self.cell, self.tol = cell, tol
        self.thumbs: np.ndarray | None = None  # rows [:len(views)] are used; grown by doubling
        self.views: list[PlannedViews.View] = []

    def thumbnail(self, rgb: np.ndarray) -> np.ndarray:
        c = self.cell
        h, w = rgb.shape[0] // c * c, rgb.shape[1] // c * c
        return rgb[:h, :w].reshape(h // c, c, w // c, c, -1).mean(axis=(1, 3), dtype=np.float32)

    def find(self, rgb: np.ndarray) -> View:
        """The view ``rgb`` matches (mean absolute thumbnail difference <= tol, in 0..255 units), else a new one."""
        t, n = self.thumbnail(rgb), len(self.views)
        if n:
            d = np.abs(self.thumbs[:n] - t).mean(axis=(1, 2, 3))
            i = int(d.argmin())
            if d[i] <= self.tol:
                return self.views[i]
        if self.thumbs is None or n == len(self.thumbs):
            grown = np.empty((max(16, 2 * n), *t.shape), np.float32)
            if n:
                grown[:n] = self.thumbs
            self.thumbs = grown
        self.thumbs[n] = t
        self.views.append(PlannedViews.View())
        return self.views[-1]


EXPERT_STARTS = ("turns", "room")


class ExpertStart(NavAgent):
    """`vidnav eval --expert-start MODE`, a privileged diagnostic, not a way to run an agent: at the start of
    each episode the simulator's expert acts for the model agent ``agent``, whose memory sees the frames
    (:meth:`ModelAgent.observe`), and then the model drives, with its own plan options. ``"turns"``: the
    expert's turns until it would first step forward (what a wrong first heading costs); ``"room"``: the
    expert's actions until the agent stands in another room than the start room (what getting out of the first
    room by the route's door costs). The expert never stops for the agent."""

    def __init__(self, agent: ModelAgent, mode: str):
        check_expert_start(mode, optional=False)
        if not isinstance(agent, ModelAgent):
            raise VidNavError(
                f"--expert-start applies to model agents (default, a checkpoint folder or a server), "
                f"not to {getattr(agent, 'name', agent)!r}"
            )
        self.agent, self.mode, self.name = agent, mode, agent.name
        self._env = None  # the environment, while the expert acts for the agent

    def reset(self, env, obs):
        self.agent.reset(env, obs)
        self._env = env

    def act(self, obs, info):
        if self._env is not None:
            action = self._expert_action(self._env)
            if action is not None:
                self.agent.observe(obs)
                return action
            self._env = None
        return self.agent.act(obs, info)

    def _expert_action(self, env) -> int | None:
        """The expert's action while it still acts for the agent; None once the model drives."""
        action = env.expert_action()
        if self.mode == "turns":
            return action if action in (LEFT, RIGHT) else None
        house = env.task.house
        here = house.room_at(env.pose[0], env.pose[1])
        start = house.room_at(env.task.start[0], env.task.start[1])
        return action if action != STOP and (here is None or here is start) else None


def check_expert_start(mode: str | None, optional: bool = True) -> None:
    """A clear error for an unknown ``--expert-start`` mode (None: off, where ``optional``)."""
    if mode not in EXPERT_STARTS and not (optional and mode is None):
        raise VidNavError(f"--expert-start must be one of {', '.join(EXPERT_STARTS)}, got {mode!r}")


def blocked_step(before: np.ndarray, after: np.ndarray, tol: float = SAME_VIEW_TOL) -> bool:
    """True when two consecutive camera images are the same up to ``tol`` (mean absolute difference in
    0..255 units): a forward step that did not move the camera."""
    return before.shape == after.shape and float(np.abs(before.astype(np.int16) - after).mean()) <= tol


def checkpoint_fingerprint(folder: str | Path) -> str:
    """A short hash that changes when a checkpoint folder's weights change: config.json and, per
    ``*.safetensors`` file, its name, size and first and last MiB (new training rewrites every tensor, and
    reading 2 MiB per file keeps this instant for 7B checkpoints)."""
    import hashlib

    folder = Path(folder)
    h = hashlib.sha256((folder / "config.json").read_bytes())
    for f in sorted(folder.glob("*.safetensors")):
        size = f.stat().st_size
        h.update(f"{f.name}:{size}".encode())
        with open(f, "rb") as fh:
            h.update(fh.read(1 << 20))
            fh.seek(max(0, size - (1 << 20)))
            h.update(fh.read(1 << 20))
    return h.hexdigest()[:16]


def agent_weights(name: str) -> str | None:
    """The checkpoint fingerprint of a model agent (``default`` or a checkpoint folder); None for the
    built-in baselines, which have no weights."""
    if name == "default":
        from vidnav.agent import DEFAULT_AGENT_DIR

        return checkpoint_fingerprint(DEFAULT_AGENT_DIR)
    if name in BUILTIN:
        return None
    from vidnav.serve.client import RemoteAgent, is_url

    if is_url(name):  # a `vidnav serve` server: the fingerprint of the weights it serves
        with RemoteAgent(name) as remote:
            return remote.health()["fingerprint"]
    path = Path(name)
    return checkpoint_fingerprint(path) if (path / "config.json").is_file() else None


def agent_run_options(name: str) -> PlanOptions:
    """The run options an agent carries: its checkpoint's ``run_options.json`` for ``default`` and a checkpoint
    folder, what a `vidnav serve` server reports for its agent, all off for the built-in baselines."""
    if name == "default":
        from vidnav.agent import DEFAULT_AGENT_DIR

        return read_run_options(DEFAULT_AGENT_DIR)
    if name in BUILTIN:
        return PlanOptions()
    from vidnav.serve.client import RemoteAgent, is_url

    if is_url(name):
        with RemoteAgent(name) as remote:
            return remote_run_options(remote)
    return read_run_options(name) if Path(name).is_dir() else PlanOptions()


def remote_run_options(remote) -> PlanOptions:
    """The run options a `vidnav serve` server reports in /v1/health (all off from a server that reports none)."""
    return PlanOptions.from_dict(remote.health().get("run_options") or {}, f"{remote.url}/v1/health run_options")


def loads_model(name: str) -> bool:
    """Whether agent ``name`` loads a model in this process (``default`` or a checkpoint folder), which
    ``--device`` / ``--dtype`` place; not the baselines, nor a `vidnav serve` server."""
    from vidnav.serve.client import is_url

    return not (name in BUILTIN and name != "default" or is_url(name))


def check_placement(name: str, device: str | None, dtype: str | None) -> None:
    """``--device`` / ``--dtype`` place a model loaded in this process: the built-in baselines have no model
    and a `vidnav serve` server runs its own where it was started, so both refuse them (one-line error)."""
    if device is None and dtype is None:
        return
    given = " / ".join(f"--{k} {v}" for k, v in (("device", device), ("dtype", dtype)) if v is not None)
    if name in BUILTIN and name != "default":
        raise VidNavError(f"{given} applies to model agents (default or a checkpoint folder), not to {name!r}")
    from vidnav.serve.client import is_url

    if is_url(name):
        raise VidNavError(f"{given} applies to a model loaded here, not to a served agent ({name} runs its own)")


def make_agent(
    name: str,
    seed: int = 0,
    options: PlanOptions | dict | None = None,
    expert_start: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
    **overrides,
) -> NavAgent:
    """An agent by name: a built-in (`oracle`, `random`, `forward`, `symbolic` = the privileged instruction
    follower of :mod:`vidnav.eval.symbolic`, `default` = the shipped checkpoint),
    the path of a checkpoint folder (config.json + model.safetensors) or the URL of a `vidnav serve` server.
    ``options`` apply to model agents only, over their own run options (see :class:`ModelAgent`);
    ``expert_start`` wraps a model agent in :class:`ExpertStart`. ``device`` (cpu, cuda, cuda:N, mps) and
    ``dtype`` (float32, bfloat16, float16) place the model of a model agent (others refuse them)."""
    from vidnav.pool import check_device

    check_expert_start(expert_start)
    check_placement(name, device, dtype)
    check_device(device, dtype if isinstance(dtype, str) else None)  # a torch.dtype given here is used as is
    if device is not None:
        overrides["device"] = device
    if dtype is not None:
        import torch

        overrides["dtype"] = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    agent = _make_agent(name, seed, options, **overrides)
    return ExpertStart(agent, expert_start) if expert_start else agent


def model_placement(agent: NavAgent) -> dict:
    """Where the model of a model agent loaded here runs: ``{"device": "cuda:1", "dtype": "bfloat16"}``, read
    from its parameters; ``{}`` for the baselines and served agents."""
    inner = agent.agent if isinstance(agent, ExpertStart) else agent
    model = getattr(getattr(inner, "agent", None), "model", None)
    if model is None:
        return {}
    p = next(model.parameters())
    return {"device": str(p.device), "dtype": str(p.dtype).removeprefix("torch.")}


def _make_agent(name: str, seed: int, options, **overrides) -> NavAgent:
    if name == "oracle":
        return OracleAgent()
    if name == "random":
        return RandomAgent(seed)
    if name == "forward":
        return ForwardAgent()
    if name == "symbolic":
        from vidnav.eval.symbolic import SymbolicAgent

        return SymbolicAgent()
    if name == "default":
        return ModelAgent(None, name="default", options=options, **overrides)
    from vidnav.serve.client import RemoteAgent, is_url

    if is_url(name):  # a `vidnav serve` server (its token from $VIDNAV_TOKEN), with the run options it reports
        remote = RemoteAgent(name)
        if not isinstance(options, PlanOptions):
            options = resolve(remote_run_options(remote), options)
        return ModelAgent(name=name, options=options, agent=remote)
    path = Path(name)
    if path.is_dir():
        if not (path / "config.json").exists():
            raise VidNavError(
                f"--agent {name}: folder has no config.json; name a checkpoint folder "
                f"(written by `vidnav train`) or one of {', '.join(BUILTIN)}"
            )
        return ModelAgent(path, options=options, **overrides)
    raise VidNavError(
        f"unknown agent {name!r}: use one of {', '.join(BUILTIN)}, a checkpoint folder or the "
        "http://HOST:PORT of a `vidnav serve` server"
    )


def load_navigator(
    checkpoint: str | Path | None = None, *, options: PlanOptions | dict | None = None, **overrides
) -> ModelAgent:
    """A model agent that runs as `vidnav eval` runs it: one action per step, its plans executed with its
    checkpoint's run options (re-planning when blocked, loop breaking, ...; ``options`` changes them, see
    :class:`ModelAgent`). ``checkpoint``: a checkpoint folder, the URL of a `vidnav serve` server, or None for
    the shipped agent. ``overrides`` set config fields, as for :func:`vidnav.load_agent`.

        nav = vidnav.load_navigator()
        obs, info = env.reset(seed=0)
        nav.reset(env, obs)
        while not done:
            obs, reward, terminated, truncated, info = env.step(nav.act(obs, info))
            done = terminated or truncated

    ``nav.agent`` is the streaming :class:`vidnav.Agent` inside (``nav.agent.ask(question)``).
    """
    from vidnav.serve.client import is_url

    if checkpoint is not None and is_url(str(checkpoint)):
        if overrides:
            raise VidNavError("config overrides apply to a checkpoint loaded here, not to a served agent")
        return _make_agent(str(checkpoint), 0, options)
    return ModelAgent(checkpoint, options=options, **overrides)
