"""`vidnav eval` and `vidnav demo`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from vidnav.errors import VidNavError


def eval_command(
    agent: str = typer.Option(
        ...,
        help="oracle | random | forward | symbolic (reads the words, privileged) | default "
        "(the shipped agent) | a checkpoint folder | http://HOST:PORT (a `vidnav "
        "serve` server; token from $VIDNAV_TOKEN)",
    ),
    data: Path = typer.Option(..., help="benchmark folder written by `vidnav data build`"),
    out: Path = typer.Option(..., help="output folder: results.jsonl, summary.json, videos/ (rerun to resume)"),
    split: str = typer.Option("val_unseen", help="train | val_seen | val_unseen"),
    episodes: Optional[int] = typer.Option(None, help="evaluate the first N episodes of the split (default: all)"),
    workers: int = typer.Option(
        1, help="parallel worker processes (with --device cuda: one per GPU, worker i on cuda:i; at most the GPU count)"
    ),
    device: Optional[str] = typer.Option(
        None,
        "--device",
        help="model agents: where the model runs, cpu | cuda | cuda:N | mps (default: cpu); "
        "the baselines and http:// agents refuse it (recorded in OUT/run.json)",
    ),
    dtype: Optional[str] = typer.Option(
        None,
        "--dtype",
        help="model agents: float32 | bfloat16 | float16, the model's weights and compute (default: float32); "
        "the baselines and http:// agents refuse it (recorded in OUT/run.json)",
    ),
    video: bool = typer.Option(False, "--video", help="write an MP4 per episode (ego view + top-down map)"),
    video_episodes: Optional[int] = typer.Option(
        None, help="with --video (required): only the first N episodes (0: none)"
    ),
    seed: int = typer.Option(0, help="seed of the random agent and of the draw of --instructions swapped"),
    instructions: str = typer.Option(
        "own",
        help="own | swapped: each episode gets the instruction of another path "
        "in its house (seeded; metrics stay those of its own goal), to see "
        "whether an agent reads | a JSON file of instructions written anew "
        "(only its episodes run; e.g. configs/instructions/"
        "val_unseen_human.json)",
    ),
    replan_when_blocked: Optional[bool] = typer.Option(
        None,
        "--replan-when-blocked/--no-replan-when-blocked",
        help="model agents: after a forward that left the camera "
        "image unchanged (a wall), re-plan with forward "
        "excluded (default: the agent's run options)",
    ),
    break_loops: Optional[bool] = typer.Option(
        None,
        "--break-loops/--no-break-loops",
        help="model agents: from a view they have planned from --loop-plans "
        "times already, start with an action not yet tried there; stop "
        "when all were tried (default: the agent's run options)",
    ),
    act_steps: Optional[int] = typer.Option(
        None,
        "--act-steps",
        help="model agents: execute the first N actions of each plan, then "
        "plan again (default: the agent's run options, else the whole "
        "plan)",
    ),
    loop_plans: Optional[int] = typer.Option(
        None,
        "--loop-plans",
        help="with the loop breaker: plans from one view after which its tried "
        "first actions are banned there (default: the agent's run "
        "options, else 2)",
    ),
    sliding: bool = typer.Option(
        False,
        "--sliding",
        help="a forward step blocked by a wall moves along it instead of not at all "
        "(habitat's allow_sliding, on in R2R-CE; off by default here, as in RxR-CE)",
    ),
    expert_start: Optional[str] = typer.Option(
        None,
        "--expert-start",
        help="diagnostic (privileged), model agents: at the start of each "
        "episode the expert acts for the agent, which sees the frames, "
        "then the model drives; 'turns': until the expert would first "
        "step forward, 'room': until the agent is out of the start room",
    ),
) -> None:
    """Evaluate an agent on a split; writes OUT/results.jsonl and OUT/summary.json and prints the means.

    A model agent runs with the run options saved with its checkpoint (run_options.json: the shipped agent
    re-plans when blocked and breaks loops); the plan-option flags change them for this run.

    Example: vidnav eval --agent oracle --data data/vidnav --split val_unseen --episodes 200 --workers 2 --out runs/oracle
    On 4 GPUs: vidnav eval --agent runs/7b/final --device cuda --dtype bfloat16 --workers 4 --data data/vidnav --out runs/7b-eval
    """
    from vidnav.errors import VidNavError
    from vidnav.eval.runner import evaluate
    from vidnav.eval.tables import metric_table, show

    if video_episodes is not None and not video:  # it was ignored: no video, whatever N
        raise VidNavError(
            f"--video-episodes {video_episodes} applies with --video (MP4s of the first N episodes); "
            "add --video, or drop --video-episodes"
        )
    v: bool | int = (video_episodes if video_episodes is not None else True) if video else False
    given = dict(
        replan_when_blocked=replan_when_blocked, break_loops=break_loops, act_steps=act_steps, loop_plans=loop_plans
    )
    summary = evaluate(
        data,
        split,
        agent,
        out,
        episodes=episodes,
        workers=workers,
        video=v,
        seed=seed,
        options={k: v for k, v in given.items() if v is not None},  # over the agent's own
        env_kw={"allow_sliding": True} if sliding else None,
        instructions=instructions,
        expert_start=expert_start,
        device=device,
        dtype=dtype,
    )
    show(metric_table({agent: summary}))
    typer.echo(f"results: {out / 'results.jsonl'}  summary: {out / 'summary.json'}")


def demo_command(
    out: Path = typer.Option(Path("runs/demo"), help="where results and videos go"),
    data: Path = typer.Option(Path("data/demo"), help="the small val_unseen benchmark (built on first use)"),
    episodes: int = typer.Option(50, help="episodes per agent"),
    videos: int = typer.Option(3, help="MP4s of the first N episodes per agent"),
    workers: int = typer.Option(2, help="parallel worker processes"),
) -> None:
    """The main job: build (or reuse) a small val_unseen set of unseen houses, evaluate the shipped agent, the
    symbolic instruction follower (the ceiling: it reads the house and the words) and the oracle / random / forward
    baselines on the same episodes, print the metric table, write MP4s and an HTML report.

    The shipped agent runs with the run options saved with it: it re-plans when blocked and breaks loops (row
    `default+replan+loops`); without them, its failed episodes often push into a wall or circle until the
    500-step cap, which costs minutes and shows nothing more.

    Example: vidnav demo --episodes 50 --out runs/demo
    """
    from vidnav.agent import DEFAULT_AGENT_DIR
    from vidnav.data.build import BuildConfig, build_benchmark
    from vidnav.eval.agents import agent_run_options
    from vidnav.eval.html_report import html_report
    from vidnav.eval.report import print_report
    from vidnav.eval.runner import evaluate
    from vidnav.eval.tables import metric_table, show

    if not (data / "val_unseen" / "val_unseen.json.gz").exists():
        houses = max(1, -(-episodes // 6))
        typer.echo(f"building {houses} unseen houses into {data} ...")
        build_benchmark(
            data, BuildConfig(train_houses=0, unseen_houses=houses, unseen_per_house=6, seed=1), workers=workers
        )
    from vidnav.data.episodes import load_split

    have = len(load_split(data, "val_unseen").episodes)
    if have < episodes:  # built earlier for a smaller demo
        raise VidNavError(
            f"{data} holds {have} val_unseen episodes, fewer than --episodes {episodes}; give another "
            f"--data folder (it is built on first use) or delete {data}"
        )
    agents = (["default"] if (DEFAULT_AGENT_DIR / "config.json").exists() else []) + [
        "symbolic",
        "oracle",
        "forward",
        "random",
    ]  # symbolic: the instruction follower's ceiling
    if "default" not in agents:
        typer.echo(f"no shipped agent at {DEFAULT_AGENT_DIR}: running the baselines only")
    rows = {}
    for name in agents:  # each with its own run options (the shipped agent's: re-plan when blocked, break loops)
        rows[name + options_label(agent_run_options(name))] = evaluate(
            data,
            "val_unseen",
            name,
            out / name,
            episodes=episodes,
            workers=workers,
            video=videos,
            restart_if_changed=True,
        )
    typer.echo("")
    show(metric_table(rows))
    page, reports = html_report([out / name for name in agents], out=out / "report.html", episodes=episodes)
    if "default" in agents:
        typer.echo(f"\nwhere the shipped agent fails (vidnav report {out / 'default'} --episodes {episodes}):")
        print_report(reports[0], header=False)
    typer.echo(f"\nper-episode results and MP4s under {out}/<agent>/ (results.jsonl, summary.json, videos/)")
    typer.echo(f"the agents side by side, with plots and videos: open {page} in a browser")


def options_label(options) -> str:
    """The row suffix that says how a model agent ran: ``+replan``, ``+loops``, ``+act<N>``."""
    return (
        ("+replan" if options.replan_when_blocked else "")
        + ("+loops" if options.break_loops else "")
        + (f"+act{options.act_steps}" if options.act_steps else "")
    )


def report_command(
    runs: list[Path] = typer.Argument(
        ..., metavar="RUN", help="output folders of `vidnav eval --out RUN` (same data and split)"
    ),
    data: Optional[Path] = typer.Option(None, help="benchmark folder (default: the one in RUN/run.json)"),
    split: Optional[str] = typer.Option(None, help="split (default: the one in RUN/run.json)"),
    episodes: Optional[int] = typer.Option(None, help="only the split's first N episodes"),
    html: Optional[Path] = typer.Option(
        None,
        "--html",
        help="where to write the HTML report (default: "
        "RUN/report.html; for several runs, report.html in their common folder)",
    ),
) -> None:
    """Where an agent fails: SR by start distance and by rooms on the route, and how each failure ended
    (never left the start room, stopped on or off the route, ...); writes RUN/report.json and an HTML report
    of all RUNs (plots, paired comparison, a table of episodes with their videos and paths).

    Example: vidnav report runs/default runs/oracle --html runs/report.html
    """
    from vidnav.eval.html_report import html_report
    from vidnav.eval.report import print_report

    page, reports = html_report(runs, out=html, data=data, split=split, episodes=episodes)
    for run, rep in zip(runs, reports):
        print_report(rep)
        typer.echo(f"\nreport: {run / 'report.json'}\n")
    typer.echo(f"HTML report (open it in a browser; it links the runs' MP4s): {page}")


def compare_command(
    a: Path = typer.Argument(..., help="run A (an output folder of `vidnav eval --out`), the baseline"),
    b: Path = typer.Argument(..., help="run B, compared against A"),
    episodes: Optional[int] = typer.Option(None, help="only the first N common episodes (by id)"),
    samples: int = typer.Option(2000, help="bootstrap resamples"),
    seed: int = typer.Option(0, help="bootstrap seed"),
    by_rooms: bool = typer.Option(
        False,
        "--by-rooms",
        help="also the goal counts and McNemar's p per number of rooms on the reference route (vidnav houses)",
    ),
    data: Optional[Path] = typer.Option(None, help="benchmark folder for --by-rooms (default: the one in run.json)"),
) -> None:
    """Paired comparison of two runs on their common episodes: goals only A / only B reached with McNemar's exact
    p, and B - A for every metric with a bootstrap 95 % interval.

    Example: vidnav compare runs/default runs/mine --by-rooms
    """
    from vidnav.eval.compare import compare_runs, print_comparison

    if samples < 100:
        raise typer.BadParameter(f"must be >= 100, got {samples}", param_hint="--samples")
    comparison = compare_runs(a, b, episodes=episodes, samples=samples, seed=seed, by_rooms=by_rooms, data=data)
    print_comparison(comparison)


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
    app.command("demo")(demo_command)
    app.command("report")(report_command)
    app.command("compare")(compare_command)
