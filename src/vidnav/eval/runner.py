"""The evaluation runner behind `vidnav eval`: episodes in parallel processes, resumable, one JSON line each.

    summary = evaluate("data/vidnav", "val_unseen", "oracle", "runs/oracle", episodes=100, workers=2)

``OUT/results.jsonl`` gets one line per finished episode (appended and flushed as it finishes), so killing
a run loses at most the episodes in flight; rerunning with the same OUT skips the finished ones. ``OUT/run.json``
records what makes the run (agent, a fingerprint of its weights, data, split, whether blocked steps slide along
walls, the plan options it ran with: its checkpoint's run options with the command line's changes, the expert
start, own or swapped instructions, the device and dtype a model agent ran in); a rerun that differs in any of them raises instead of mixing two runs'
episodes.
``OUT/summary.json`` holds the episode means over all selected episodes; ``OUT/videos/`` the MP4s.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, fields
from pathlib import Path

from vidnav import metrics
from vidnav.errors import VidNavError
from vidnav.eval.agents import (
    BUILTIN,
    PlanOptions,
    agent_run_options,
    agent_weights,
    check_expert_start,
    check_placement,
    loads_model,
    make_agent,
    model_placement,
)
from vidnav.eval.swap import INSTRUCTIONS, instructions_from_file, swap_instructions
from vidnav.io import JsonlAppender, files_sha256, read_jsonl_records, write_json, writer_lock
from vidnav.run_options import resolve


def run_episode(env, agent, episode, gt=None, video_path: Path | None = None, given=None) -> dict:
    """Run one episode to STOP or the step limit; return its result record (positions, actions, metrics, the
    instruction given). ``given``: the episode whose instruction the agent gets instead of its own
    (``--instructions swapped``); the metrics stay those of ``episode``'s goal and path."""
    from vidnav.eval.video import EpisodeVideo

    task = env.task_from_episode(episode, gt)
    if given is not None:
        task.instruction = given.instruction.instruction_text
    obs, info = env.reset(options={"task": task})
    agent.reset(env, obs)
    y = float(episode.start_position[1])
    x, z, h = env.pose
    positions, actions, path_xz = [[x, y, z]], [], [(x, z)]
    video = EpisodeVideo(task) if video_path else None
    if video:
        video.add(obs["rgb"], path_xz, env.pose)
    done = False
    while not done:
        a = int(agent.act(obs, info))
        obs, _, terminated, truncated, info = env.step(a)
        done = terminated or truncated
        x, z, h = env.pose
        positions.append([x, y, z])
        path_xz.append((x, z))
        actions.append(a)
        if video:
            video.add(obs["rgb"], path_xz, env.pose)
    success = float(info["success"])
    # nDTW compares with the follower's dense path ({split}_gt.json.gz); the sparse reference_path would give
    # a wrong number (the oracle scored 0.24), so without it nDTW and sDTW are unavailable (None)
    nd = metrics.ndtw(path_xz, task.gt_locations, success_distance=task.goal_radius) if task.gt_locations else None
    result = {
        "episode_id": str(episode.episode_id),
        "scene_id": episode.scene_id,
        "positions": [[round(c, 4) for c in p] for p in positions],
        "actions": actions,
        "stopped": bool(env.stopped),
        "success": success,
        "spl": float(info["spl"]),
        "ndtw": nd,
        "sdtw": None if nd is None else success * nd,
        "oracle_success": float(info["oracle_success"]),
        "navigation_error": float(info["distance_to_goal"]),
        "trajectory_length": float(info["trajectory_length"]),
        "steps": int(info["steps"]),
        "collisions": int(info["collisions"]),
        "start_distance": float(env.start_distance),
        "instruction": task.instruction,
    }
    if given is not None:
        result["instruction_from"] = str(given.episode_id)
    if video:
        video.write(video_path)
    return result


RUN_KEYS = (
    "agent",
    "weights",
    "data",
    "split",
    "allow_sliding",
    "seed",
    "env",
    "instructions",
    "instructions_seed",
    *(f.name for f in fields(PlanOptions)),
    "expert_start",
    "episodes_sha256",
    "device",
    "dtype",
)


def _placement(agent: str, device: str | None, dtype: str | None) -> dict:
    """What OUT/run.json records of where a model agent runs: the defaults spelled out (cpu, float32: a model
    loads in float32 on the CPU), so a rerun that names them resumes a run that did not; None for the
    baselines and served agents (they have no model here)."""
    if not loads_model(agent):
        return {"device": None, "dtype": None}
    return {"device": device or "cpu", "dtype": dtype or "float32"}


def _check_run(out: Path, meta: dict, restart_if_changed: bool = False) -> None:
    """OUT's results must come from the same run (agent, its weights, data, split, plan options), else resuming
    would mix two runs. ``restart_if_changed``: drop the other run's results instead of raising."""
    run = out / "run.json"
    if run.exists():
        old = json.loads(run.read_text())
        missing = {
            **asdict(PlanOptions()),
            "expert_start": None,  # run.json files from before these keys
            "allow_sliding": False,
            "seed": None if meta["seed"] is None else 0,
            "env": {},
            "instructions": "own",
            "instructions_seed": None,
            **_placement(meta["agent"], None, None),  # from before --device / --dtype: the defaults
        }
        missing["episodes_sha256"] = meta["episodes_sha256"]  # a run.json from before fingerprints: unknown
        diff = [k for k in RUN_KEYS if old.get(k, missing.get(k)) != meta[k]]
        if diff and restart_if_changed:
            print(f"{out} holds results of another run ({', '.join(diff)} changed): starting it over")
            for name in ("results.jsonl", "summary.json", "run.json"):
                (out / name).unlink(missing_ok=True)
            for mp4 in (out / "videos").glob("*.mp4"):
                mp4.unlink()
        elif diff:
            was = ", ".join(f"{k}={old.get(k, missing.get(k))!r}" for k in diff)
            now = ", ".join(f"{k}={meta[k]!r}" for k in diff)
            raise VidNavError(f"{out} holds results of another run ({was}; now {now}); use a new --out to keep both")
        else:
            return
    write_json(run, meta)


# -- workers --------------------------------------------------------------------------------------
_W: dict = {}


def _worker_init(
    data_dir: str,
    agent_name: str,
    seed: int,
    threads: int,
    env_kw: dict,
    options: PlanOptions | None = None,
    expert_start: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
) -> None:
    import torch

    from vidnav.sim.env import VLNEnv

    torch.set_num_threads(max(1, threads))
    _W["env"] = VLNEnv(data_dir=data_dir, **env_kw)
    _W["agent"] = make_agent(
        agent_name, seed=seed, options=options, expert_start=expert_start, device=device, dtype=dtype
    )
    _W["placement"] = model_placement(_W["agent"])  # read from the model: where this worker really runs it


def _worker_run(job):
    episode, gt, video_path, given = job
    return {**run_episode(_W["env"], _W["agent"], episode, gt, video_path, given), **_W["placement"]}


def evaluate(
    data_dir: str | Path,
    split: str,
    agent: str,
    out: str | Path,
    episodes: int | None = None,
    workers: int = 1,
    video: bool | int = False,
    seed: int = 0,
    progress: bool = True,
    env_kw: dict | None = None,
    options: PlanOptions | dict | None = None,
    restart_if_changed: bool = False,
    instructions: str = "own",
    expert_start: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
) -> dict:
    """Evaluate ``agent`` on the first ``episodes`` of ``split``; resumable (see the module docstring).

    ``video``: True for an MP4 per episode, an int n for the first n episodes only.
    ``options``: how model agents execute their plans (:class:`~vidnav.run_options.PlanOptions`: re-plan
    when blocked, break loops, execute only the first actions of each plan): None runs the agent with its
    checkpoint's run options (run_options.json; all off for the baselines), a mapping changes some of them
    (the command-line flags, e.g. ``{"break_loops": False}``), a PlanOptions replaces them. The options it ran
    with are recorded in OUT/run.json.
    ``expert_start``: ``"turns"`` or ``"room"``, the privileged diagnostic of
    :class:`~vidnav.eval.agents.ExpertStart` (model agents only); recorded in OUT/run.json.
    ``restart_if_changed``: if OUT holds another run (e.g. the checkpoint's weights changed since), start over
    instead of raising.
    ``instructions``: ``"own"``, or ``"swapped"``: every episode gets the instruction of another path in its
    house, drawn with ``seed`` (:mod:`vidnav.eval.swap`); recorded in OUT/run.json and in each result line.
    ``device`` (cpu, cuda, cuda:N, mps) and ``dtype`` (float32, bfloat16, float16): where a model agent's model
    runs; ``device="cuda"`` with several workers puts worker i on ``cuda:i`` (:func:`vidnav.pool.worker_device`).
    Recorded in OUT/run.json; each result line of a model agent names the device and dtype its worker's model
    had. The baselines and served agents refuse them.
    """
    from vidnav.data.episodes import load_split, split_paths

    data_dir, out = Path(data_dir), Path(out)
    if workers < 1:
        raise VidNavError(f"--workers must be >= 1, got {workers}")
    if not isinstance(video, bool) and video < 0:
        raise VidNavError(f"--video-episodes must be >= 0, got {video}")
    eps = load_split(data_dir, split)
    selected = eps.episodes if episodes is None else eps.episodes[:episodes]
    if episodes is not None and episodes < 1:
        raise VidNavError(f"--episodes must be >= 1, got {episodes}")
    if not selected:
        raise VidNavError(
            f"{data_dir}: split {split!r} has no episodes; evaluate another --split, or rebuild "
            "the data with houses in this split"
        )
    if instructions not in INSTRUCTIONS:  # a file of instructions written anew for some episodes
        selected, donors, instructions = instructions_from_file(instructions, selected, split)
    else:
        donors = swap_instructions(eps.episodes, selected, seed) if instructions == "swapped" else {}
    check_expert_start(expert_start)
    from vidnav.pool import check_device, worker_device

    check_placement(agent, device, dtype)  # before any model loads
    check_device(device, dtype, workers)
    if expert_start and agent in BUILTIN and agent != "default":
        raise VidNavError(
            f"--expert-start applies to model agents (default, a checkpoint folder or a server), not to {agent!r}"
        )
    options = resolve(agent_run_options(agent), options)  # the checkpoint's, changed by the command line
    env_kw = env_kw or {}
    with writer_lock(out, "evaluation"):  # before reading what is done: one run per folder
        meta = {
            "agent": agent,
            "weights": agent_weights(agent),
            "data": str(data_dir.resolve()),
            "split": split,
            "allow_sliding": bool(env_kw.get("allow_sliding", False)),
            # the random agent's draws, and any other environment setting (e.g. max_steps), change results
            "seed": seed if agent == "random" else None,
            "env": {k: v for k, v in sorted(env_kw.items()) if k != "allow_sliding"},
            "instructions": instructions,
            "instructions_seed": seed if instructions == "swapped" else None,
            # the episodes' content: data rebuilt at the same path is other data
            "episodes_sha256": files_sha256(*split_paths(data_dir, split)),
            **asdict(options),
            "expert_start": expert_start,
            **_placement(agent, device, dtype),
        }
        _check_run(out, meta, restart_if_changed)
        results_path = out / "results.jsonl"
        done = {r["episode_id"]: r for r in read_jsonl_records(results_path, "episode_id", "results", repair=True)}
        n_video = len(selected) if video is True else int(video or 0)
        for stale in (out / "videos").glob(".*.tmp*.mp4"):  # a video a killed run was writing (we hold the lock):
            if re.fullmatch(r"\..+\.tmp\d+\.mp4", stale.name):  # .{episode_id}.tmp{pid}.mp4 (video.py), only
                stale.unlink()
        jobs = []
        for i, ep in enumerate(selected):
            if str(ep.episode_id) in done:
                continue
            vpath = out / "videos" / f"{ep.episode_id}.mp4" if i < n_video else None
            jobs.append((ep, eps.gt.get(str(ep.episode_id)) if eps.gt else None, vpath, donors.get(str(ep.episode_id))))

        threads = max(1, (os.cpu_count() or 1) // workers)
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        columns = [
            TextColumn(f"eval {agent} on {split}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("SR {task.fields[sr]:.2f}"),
        ]
        finished = [done[str(e.episode_id)] for e in selected if str(e.episode_id) in done]
        with JsonlAppender(results_path) as f, Progress(*columns, disable=not progress, transient=False) as bar:
            task_id = bar.add_task(
                "eval",
                total=len(selected),
                completed=len(finished),
                sr=metrics.summarize(finished)["success"] if finished else 0.0,
            )

            def record(rec: dict) -> None:
                f.write(rec)
                finished.append(rec)
                bar.update(task_id, advance=1, sr=metrics.summarize(finished)["success"])

            if jobs and workers == 1:
                init = (str(data_dir), agent, seed, threads, env_kw, options, expert_start)
                _worker_init(*init, worker_device(device, 0, 1), dtype)
                try:
                    for job in jobs:
                        record(_worker_run(job))
                finally:
                    _W.pop("env").close()
            elif jobs:
                from vidnav.pool import run_pool  # a worker that fails or dies ends the run, results kept

                for rec in run_pool(
                    _worker_run,
                    jobs,
                    workers,
                    initializer=_worker_init,
                    what="eval worker",
                    worker_initargs=[
                        (str(data_dir), agent, seed, threads, env_kw, options, expert_start)
                        + (worker_device(device, i, workers), dtype)
                        for i in range(workers)
                    ],
                ):
                    record(rec)
        order = {str(e.episode_id): i for i, e in enumerate(selected)}
        finished = sorted((r for r in finished if r["episode_id"] in order), key=lambda r: order[r["episode_id"]])
        summary = metrics.summarize(finished)
        write_json(out / "summary.json", {**summary, "agent": agent, "split": split, "data": str(data_dir)})
        return summary


def format_table(rows: dict[str, dict]) -> str:
    """A plain-text metric table, one row per agent (used by the CLI, the demo and the README)."""
    cols = (
        "episodes",
        "success",
        "spl",
        "ndtw",
        "sdtw",
        "oracle_success",
        "navigation_error",
        "trajectory_length",
        "steps",
        "collisions",
    )
    heads = ("agent", "eps", "SR", "SPL", "nDTW", "sDTW", "OSR", "NE (m)", "TL (m)", "steps", "coll")
    lines = [" | ".join(heads)]
    for name, s in rows.items():
        two = ("success", "spl", "ndtw", "sdtw", "oracle_success", "navigation_error", "trajectory_length")
        vals = (
            [name, str(s["episodes"])]
            + [
                "n/a"
                if s[c] is None
                else f"{s[c]:.2f}"
                if c in two  # n/a: no gt
                else f"{s[c]:.1f}"
                for c in cols[1:]
            ]
        )
        lines.append(" | ".join(vals))
    return "\n".join(lines)
