"""`vidnav data ...`: build the benchmark, inspect VLN-CE episode files, collect training rollouts."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from vidnav.errors import VidNavError

app = typer.Typer(
    help="VLN-CE (R2R-CE) episode data: build the benchmark, inspect episode files, collect rollouts.\n\n"
    "Example: vidnav data inspect data/vidnav/train/train.json.gz",
    no_args_is_help=True,
    add_completion=False,
)


def register(root: typer.Typer) -> None:
    """Attach this sub-app to the root `vidnav` app as `vidnav data`."""
    root.add_typer(app, name="data")


TOLERANCE_HELP = (
    "heading error (in 15-degree turns) within which the expert steps forward: 0.5 is the benchmark's "
    "reference follower (tight, zig-zags), 1.0 holds a course (fewer, clearer turn labels)"
)


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.2f}"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, dict):  # counts: {"en-US": 2, "hi-IN": 1}
        return ", ".join(f"{k} {n}" for k, n in v.items())
    if isinstance(v, list):
        return ", ".join(map(str, v))
    return str(v)


LANGUAGE_HELP = (
    "RxR-CE: only episodes whose instruction.language is this (repeatable; 'en' = en-US and en-IN; "
    "RxR-CE has en-US, en-IN, hi-IN, te-IN). R2R-CE files have no languages"
)
ROLE_HELP = "RxR-CE: only episodes whose info.role is this (guide or follower; repeatable)"


@app.command("inspect")
def inspect(
    file: str = typer.Argument(
        ..., help="a VLN-CE episode file, R2R-CE ({split}.json.gz) or RxR-CE ({split}_guide.json.gz), or .json"
    ),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    language: Optional[list[str]] = typer.Option(None, "--language", help=LANGUAGE_HELP),
    role: Optional[list[str]] = typer.Option(None, "--role", help=ROLE_HELP),
) -> None:
    """Counts and means of an episode file: episodes, scenes, geodesic distance, instruction length, gt.

    Example: vidnav data inspect data/R2R_VLNCE_v1-3_preprocessed/val_unseen/val_unseen.json.gz
    RxR-CE, English only: vidnav data inspect data/RxR_VLNCE_v0/val_unseen/val_unseen_guide.json.gz --language en
    """
    from vidnav.data.episodes import summarize_file

    try:
        info = summarize_file(file, languages=language, roles=role)
    except VidNavError as e:
        typer.secho(f"error: {e}", fg="red", err=True)
        raise typer.Exit(2) from None
    if as_json:
        from vidnav.io import dumps_json

        typer.echo(dumps_json(info))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=info["file"])
    table.add_column("what")
    table.add_column("value", justify="right")
    labels = {
        "format": "format",
        "episodes": "episodes",
        "episodes_in_file": "episodes in the file",
        "language_filter": "language filter",
        "role_filter": "role filter",
        "languages": "languages",
        "roles": "roles",
        "scenes": "scenes",
        "trajectories": "trajectories",
        "mean_geodesic_distance": "mean geodesic distance (m)",
        "episodes_with_geodesic_distance": "episodes with a geodesic distance",
        "mean_instruction_words": "mean instruction length (words)",
        "vocab_size": "instruction vocabulary",
        "has_gt": "ground-truth paths",
        "gt_covers": "episodes with a gt path",
        "mean_gt_forward_steps": "mean gt forward steps",
    }
    for key, label in labels.items():
        if key in info:
            table.add_row(label, _fmt(info[key]))
    Console().print(table)


@app.command("build")
def build(
    out: Path = typer.Option(..., help="benchmark folder to write (houses/, train/, val_seen/, val_unseen/)"),
    train_houses: int = typer.Option(300, help="houses for train and val_seen"),
    unseen_houses: int = typer.Option(50, help="houses for val_unseen (never in train)"),
    episodes_per_house: int = typer.Option(36, help="train episodes per train house (3 instructions per path)"),
    val_seen_per_house: int = typer.Option(3, help="val_seen episodes per train house"),
    unseen_per_house: int = typer.Option(21, help="val_unseen episodes per unseen house"),
    seed: int = typer.Option(0, help="benchmark seed (house seeds derive from it)"),
    workers: int = typer.Option(2, help="parallel processes"),
    force: bool = typer.Option(
        False,
        "--force",
        help="OUT holds a build of another config (or other files): delete the files a build writes there, then build",
    ),
) -> None:
    """Build the embedded benchmark in VLN-CE's R2R format (defaults: 10,800 train, 900 val_seen and 1,050
    val_unseen episodes).

    Example: vidnav data build --out data/vidnav --train-houses 300 --unseen-houses 50
    """
    from vidnav.data.build import BuildConfig, build_benchmark

    cfg = BuildConfig(
        train_houses=train_houses,
        unseen_houses=unseen_houses,
        episodes_per_house=episodes_per_house,
        val_seen_per_house=val_seen_per_house,
        unseen_per_house=unseen_per_house,
        seed=seed,
    )
    meta = build_benchmark(out, cfg, workers=workers, force=force)
    for split, c in meta["splits"].items():
        typer.echo(f"{split:10s} {c['episodes']:6d} episodes  {c['paths']:5d} paths  {c['houses']:4d} houses")
    typer.echo(f"{meta['version']}: built in {meta['seconds']:.0f} s -> {out}")


@app.command("rollouts")
def rollouts(
    data: Path = typer.Option(..., help="benchmark folder"),
    out: Path = typer.Option(..., help="rollout folder (features/ + trajectories.jsonl); rerun to resume"),
    split: str = typer.Option("train", help="split to roll out"),
    episodes: Optional[int] = typer.Option(None, help="first N episodes of the split (default: all)"),
    paths_per_house: Optional[int] = typer.Option(None, help="only the first K paths (3K episodes) of every house"),
    skip_paths: int = typer.Option(
        0,
        help="with --paths-per-house K: skip the first S paths of every house and take "
        "the next K (e.g. --skip-paths 1 --paths-per-house 1: each house's second path)",
    ),
    instructions_per_path: Optional[int] = typer.Option(
        None, help="only the first J instructions of every path (DAgger: more paths for the same time)"
    ),
    policy: Optional[str] = typer.Option(None, help="checkpoint folder: DAgger with this policy (default: expert)"),
    beta: float = typer.Option(1.0, help="DAgger: probability of executing the expert's action at each step"),
    preset: str = typer.Option("tiny", help="preset whose frozen vision tower encodes expert frames"),
    source: Optional[str] = typer.Option(None, help="name recorded per trajectory (default expert / dagger-b<beta>)"),
    seed: int = typer.Option(0, help="seed of the beta mixing"),
    shard: Optional[str] = typer.Option(
        None,
        help="I/N: every N-th selected path (all its episodes) from the I-th; run "
        "N processes into N --out folders and train on all of them",
    ),
    forward_tolerance: float = typer.Option(0.5, help=TOLERANCE_HELP),
    device: Optional[str] = typer.Option(
        None,
        "--device",
        help="where the policy and the vision tower run: cpu | "
        "cuda | cuda:N | mps (default: cpu); recorded in every trajectory line",
    ),
    dtype: Optional[str] = typer.Option(
        None,
        "--dtype",
        help="their weights and compute: float32 | bfloat16 | "
        "float16 (default: float32); recorded in every trajectory line",
    ),
) -> None:
    """Render expert (or DAgger) trajectories and cache their frozen vision features for training.

    Example: vidnav data rollouts --data data/vidnav --out data/rollouts/expert --episodes 3000
    DAgger in two processes: vidnav data rollouts --data data/vidnav --policy runs/tiny/final --beta 0.5
    --paths-per-house 1 --instructions-per-path 1 --shard 0/2 --out data/rollouts/dagger-1a  (and --shard 1/2
    --out .../dagger-1b)
    """
    from vidnav.data.rollouts import collect_rollouts
    from vidnav.sim.navmap import FollowerConfig

    try:
        stats = collect_rollouts(
            data,
            split,
            out,
            policy=policy,
            beta=beta,
            episodes=episodes,
            paths_per_house=paths_per_house,
            skip_paths=skip_paths,
            instructions_per_path=instructions_per_path,
            preset=preset,
            source=source,
            seed=seed,
            shard=shard,
            follower=FollowerConfig(forward_tolerance=forward_tolerance),
            device=device,
            dtype=dtype,
        )
    except VidNavError as e:
        typer.secho(f"error: {e}", fg="red", err=True)
        raise typer.Exit(2) from None
    typer.echo(" ".join(f"{k}={v}" for k, v in stats.items()))


@app.command("relabel")
def relabel(
    data: Path = typer.Option(..., help="the benchmark folder the rollouts were collected on"),
    rollouts: Path = typer.Option(..., help="rollout folder whose states get new labels (left unchanged)"),
    out: Path = typer.Option(..., help="new rollout folder: trajectories.jsonl + features/ (a link to the source's)"),
    forward_tolerance: float = typer.Option(1.0, help=TOLERANCE_HELP),
    stop_distance: float = typer.Option(
        0.25,
        help="metres (geodesic) from the goal within which the follower says "
        "stop: 0.25 is the reference follower; up to 3 (the success radius) labels "
        "every state that near the goal `stop`",
    ),
) -> None:
    """Label the states of a rollout folder again with another expert follower, without rendering.

    Example: vidnav data relabel --data data/vidnav --rollouts data/rollouts/expert-s0
    --out data/rollouts/expert-tol1-s0 --forward-tolerance 1.0
    """
    from vidnav.data.rollouts import relabel_rollouts
    from vidnav.sim.navmap import FollowerConfig

    try:
        follower = FollowerConfig(forward_tolerance=forward_tolerance, stop_distance=stop_distance)
        stats = relabel_rollouts(data, rollouts, out, follower)
    except VidNavError as e:
        typer.secho(f"error: {e}", fg="red", err=True)
        raise typer.Exit(2) from None
    typer.echo(" ".join(f"{k}={v}" for k, v in stats.items()))


@app.command("pairs")
def pairs(
    data: Path = typer.Option(..., help="the benchmark folder the rollouts were collected on"),
    rollouts: Path = typer.Option(..., help="expert rollout folder whose paths are paired (left unchanged)"),
    out: Path = typer.Option(..., help="new rollout folder: trajectories.jsonl + features/ (a link to the source's)"),
    goals_per_path: int = typer.Option(
        4, help="other goals sampled from each path's start (pairs with no branch before the path's end are dropped)"
    ),
    seed: int = typer.Option(0, help="seed of the goal sampling and the instructions' wording"),
) -> None:
    """Minimal pairs, without rendering: each expert path's frames up to where a walk to another goal from the
    same start would first act differently, with that walk's instruction and labels. Train on them beside the
    source folder (--data both): at the branch only the words tell the two actions apart.

    Example: vidnav data pairs --data data/vidnav --rollouts data/rollouts/expert --out data/rollouts/pairs
    """
    from vidnav.data.pairs import make_pairs

    try:
        stats = make_pairs(data, rollouts, out, goals_per_path=goals_per_path, seed=seed)
    except VidNavError as e:
        typer.secho(f"error: {e}", fg="red", err=True)
        raise typer.Exit(2) from None
    typer.echo(" ".join(f"{k}={v}" for k, v in stats.items()))
