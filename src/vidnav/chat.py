"""`vidnav chat`: ask a model about a video it watched (an episode replayed in the simulator, or a video file).

    vidnav chat --data data/vidnav --episode 3 --steps 40 -q "which room are you in?" -q "which room comes next on your route?"
    vidnav chat --video walk.mp4 --instruction "go to the kitchen" -q "which room are you in?"

Episodes are replayed by the shortest-path expert (the agent's memory sees every frame, as if it had walked the
path itself); questions are answered greedily and deterministically by :meth:`vidnav.agent.Agent.ask`. Without
``-q`` questions are read from standard input, one per line, until an empty line or end of input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator, List, Optional

import numpy as np
import typer

from vidnav.errors import VidNavError


def episode_frames(data: Path, split: str, episode_id: str, steps: int | None) -> tuple[str, Iterator[np.ndarray]]:
    """The instruction and the RGB frames of an episode walked by the expert (the first ``steps`` actions)."""
    from vidnav.actions import STOP
    from vidnav.data.episodes import load_split
    from vidnav.sim.env import VLNEnv

    eps = load_split(data, split)
    match = [e for e in eps.episodes if str(e.episode_id) == str(episode_id)]
    if not match:
        some = ", ".join(str(e.episode_id) for e in eps.episodes[:5])
        raise VidNavError(f"episode {episode_id!r} is not in {data}/{split} (its first ids: {some}); pass --episode ID")
    if steps is not None and steps < 0:
        raise VidNavError(f"--steps must be >= 0, got {steps}")
    episode = match[0]

    def frames() -> Iterator[np.ndarray]:
        env = VLNEnv(data_dir=data)
        try:
            obs, _ = env.reset(options={"episode": episode})
            yield obs["rgb"]
            n = 0
            while steps is None or n < steps:
                a = env.expert_action()
                if a == STOP:
                    break
                obs, _, terminated, truncated, _ = env.step(a)
                yield obs["rgb"]
                n += 1
                if terminated or truncated:
                    break
        finally:
            env.close()

    return episode.instruction.instruction_text, frames()


def video_frames(path: Path, every: int = 1) -> Iterator[np.ndarray]:
    """RGB frames of a video file (every ``every``-th one); the file and ``every`` are checked at once."""
    if not path.is_file():
        raise VidNavError(f"video file not found: {path}")
    if every < 1:
        raise VidNavError(f"--every must be >= 1, got {every}")
    return _read_video(path, every)


def _read_video(path: Path, every: int) -> Iterator[np.ndarray]:
    import imageio.v3 as iio

    try:
        for i, frame in enumerate(iio.imiter(path)):
            if i % every == 0:
                frame = np.asarray(frame)
                yield frame[..., :3] if frame.ndim == 3 else np.repeat(frame[..., None], 3, axis=-1)
    except (OSError, ValueError, RuntimeError) as e:
        raise VidNavError(f"{path}: cannot read it as a video ({e})") from None


def watch_and_answer(
    agent, instruction: str, frames: Iterable[np.ndarray], questions: Iterable[str]
) -> Iterator[tuple[str, str]]:
    """Show the agent every frame, then answer each question (pairs of question and answer)."""
    agent.reset(instruction)
    seen = 0
    for frame in frames:
        agent.observe(frame)
        seen += 1
    if not seen:
        raise VidNavError("no frames to watch: the video is empty")
    for q in questions:
        yield q, agent.ask(q)


def _stdin_questions() -> Iterator[str]:
    import sys

    for line in sys.stdin:
        if not line.strip():
            return
        yield line.strip()


def chat_command(
    agent: str = typer.Option("default", help="checkpoint folder, or 'default' (the shipped agent)"),
    question: Optional[List[str]] = typer.Option(
        None, "--question", "-q", help="a question (repeatable); default: read lines from stdin"
    ),
    data: Optional[Path] = typer.Option(None, help="benchmark folder: replay one of its episodes"),
    split: str = typer.Option("val_unseen", help="with --data: the split"),
    episode: Optional[str] = typer.Option(None, help="with --data: the episode id"),
    steps: Optional[int] = typer.Option(None, help="with --data: the expert's first N actions (default: to the goal)"),
    video: Optional[Path] = typer.Option(None, help="an RGB video file to watch instead of an episode"),
    instruction: Optional[str] = typer.Option(None, help="with --video: the instruction the agent was given"),
    every: int = typer.Option(1, help="with --video: watch every N-th frame"),
) -> None:
    """Ask the agent about what it saw: replay an episode (--data, --episode) or watch a video file (--video).

    Example: vidnav chat --data data/vidnav --episode 3 --steps 40 -q "which room are you in?"
    """
    from vidnav.agent import load_agent

    if (video is None) == (data is None):
        raise VidNavError("give either --data with --episode (replay an episode) or --video FILE")
    if data is not None:
        if episode is None:
            raise VidNavError("--data needs --episode ID (see `vidnav data inspect` for ids)")
        text, frames = episode_frames(data, split, episode, steps)
    else:
        if not instruction:
            raise VidNavError("--video needs --instruction TEXT (what the agent was asked to do)")
        text, frames = instruction, video_frames(video, every)
    model_agent = load_agent(None if agent == "default" else agent)
    typer.echo(f"instruction: {text}")
    for q, a in watch_and_answer(model_agent, text, frames, question or _stdin_questions()):
        typer.echo(f"Q: {q}\nA: {a}")
