"""`vidnav train`: train on rollout folders from a YAML experiment file and/or options.

Its options are TrainConfig's fields (vidnav.train.config: type, default and help are defined there once);
KEY=VALUE arguments and options override the YAML file's values.
Heavy imports (torch, transformers) stay inside the command.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import List, Optional

import typer

from vidnav.errors import VidNavError

HELP = """Train the model on rollout folders (cached vision features + expert actions) with HF Trainer.

Rerun the same command after an interruption: it continues from the last checkpoint in OUT/checkpoints.
Multi-GPU / multi-node: accelerate launch --config_file configs/accelerate/<cfg>.yaml -m vidnav.cli train ...

Example: vidnav train --preset tiny --memory uninavid --data rollouts/expert --data rollouts/dagger-1 --out runs/tiny --max-steps 2000 --lr 2e-4 --batch-size 8

Example: vidnav train --config configs/train/tiny.yaml --out runs/exp1
"""


def _parse_pairs(items: list[str], flag: str, what: str) -> dict:
    """NAME=VALUE items (values read as YAML: true, 3, 2e-4, [a, b], null) as a dict."""
    import yaml

    out = {}
    for item in items:
        if "=" not in item:
            raise VidNavError(f"{flag} expects NAME=VALUE ({what}), got {item!r}")
        name, value = item.split("=", 1)
        try:
            out[name.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            out[name.strip()] = value
    return out


def _option(f, tp):
    """The typer parameter for TrainConfig field ``f`` (type ``tp``): --field-name, its help (with the default),
    its type. Every option defaults to None, meaning "not given": the file's or the dataclass's value stays."""
    from vidnav.train.config import _kind

    base, optional = _kind(tp)
    meta = f.metadata
    flag = meta.get("flag", "--" + f.name.replace("_", "-"))
    names = [flag] + [n for n in (meta.get("alias"), meta.get("short")) if n]
    default = f.default_factory() if f.default is dataclasses.MISSING else f.default
    help = meta["help"]
    if default not in (None, [], {}):
        help += f" (default {str(default).lower() if isinstance(default, bool) else default})"
    if optional and default is not None:
        help += f"; the argument {f.name}=null unsets it"
    if base is bool:
        return typer.Option(None, f"{flag}/--no-{flag[2:]}", help=help), Optional[bool]
    if base in (list, dict):
        if "repeatable" not in help:
            help += " (repeatable)"
        return typer.Option(None, *names, help=help), Optional[List[str]]
    return typer.Option(None, *names, help=help), Optional[base]


def _settings(items: list[str]) -> dict:
    """KEY=VALUE arguments as {field: value}: values read as YAML (true, 3, 2e-4, [a, b], null), but a text
    field takes the text as written (out=2024 is the folder "2024")."""
    from vidnav.train.config import _kind, field_types

    types = field_types()
    out = {}
    for item in items:
        if "=" not in item:
            raise VidNavError(f"{item!r} is not KEY=VALUE: give settings as e.g. lr=1e-4 (or as options: --lr 1e-4)")
        name, text = (part.strip() for part in item.split("=", 1))
        base, optional = _kind(types[name]) if name in types else (None, False)
        if base is str and not (optional and text in ("null", "~", "")):
            out[name] = text
        elif base is list and not text.startswith("["):
            out[name] = [text]
        else:
            out[name] = _parse_pairs([item], "KEY=VALUE", "a training setting")[name]
    return out


def _train_options() -> list[inspect.Parameter]:

    from vidnav.train.config import TrainConfig, field_types

    types = field_types()
    params = [
        inspect.Parameter(
            "config",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=Optional[str],
            default=typer.Option(None, "--config", "-c", help="YAML experiment file (TrainConfig fields)"),
        ),
        inspect.Parameter(
            "settings",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=Optional[List[str]],
            default=typer.Argument(
                None,
                metavar="KEY=VALUE",
                help="any setting of the experiment file, e.g. lr=1e-4 eval_samples=null (values read as YAML)",
            ),
        ),
    ]
    for f in dataclasses.fields(TrainConfig):
        default, annotation = _option(f, types[f.name])
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation))
    return params


def config_from_cli(config: str | None, settings: list[str] | None, options: dict):
    """The experiment: defaults, then the YAML file, then KEY=VALUE settings, then --options (the last wins)."""

    from vidnav.train.config import TrainConfig

    cfg = TrainConfig.from_yaml(config) if config else TrainConfig()
    if settings:
        cfg = cfg.with_changes(_settings(settings), "KEY=VALUE arguments")
    changes = {}
    for f in dataclasses.fields(TrainConfig):
        value = options.get(f.name)
        if value is None or value == []:
            continue
        if f.name in ("overrides", "run_options"):  # NAME=VALUE items merged over the file's
            what = "a model setting" if f.name == "overrides" else "a run option"
            value = {**getattr(cfg, f.name), **_parse_pairs(value, f.metadata["flag"], what)}
        changes[f.name] = value
    return cfg.with_changes(changes, "command-line options")


def train_command(**kwargs) -> None:
    cfg = config_from_cli(kwargs.pop("config"), kwargs.pop("settings"), kwargs)

    from vidnav.train.trainer import train

    summary = train(cfg)
    typer.echo(f"done: {summary['steps']} steps, final loss {summary['final_loss']:.4f} → {cfg.out}/final")
    if "eval" in summary:
        from vidnav.train.validate import format_report

        typer.echo("held-out " + format_report(summary["eval"]))


train_command.__signature__ = inspect.Signature(_train_options())
train_command.__annotations__ = {p.name: p.annotation for p in train_command.__signature__.parameters.values()}


VALIDATE_HELP = """Offline action accuracy of a checkpoint on held-out rollout folders (no simulator).

Reports teacher-forced loss, the first planned action's accuracy, whole-plan accuracy, per-word recall and the
confusion of first actions, on a fixed seeded subset of the samples (the same subset for every checkpoint).

With --pairs (folders from `vidnav data pairs`) it scores the branch frames of minimal pairs, each read with the
pair's instruction and with its path's own: a model that ignores the words is right with at most one of the two.

With --swap-instructions it scores the same samples a second time with every path given another path's
instructions: a model that reads the instruction gets worse; one that ignores it does not.

Example: vidnav validate --agent default --data data/rollouts/val-unseen-expert --samples 1000 --out runs/val.json
"""


def validate_command(
    agent: str = typer.Option("default", help="checkpoint folder, or 'default' (the shipped agent)"),
    data: List[str] = typer.Option(..., "--data", "-d", help="rollout folder (repeatable), e.g. val_unseen expert"),
    samples: int = typer.Option(
        1000, help="samples to score (a seeded subset; 0 = all; the same subset for every checkpoint)"
    ),
    seed: int = typer.Option(0, help="seed of the subset"),
    batch_size: int = typer.Option(16, help="samples per forward pass"),
    max_history: Optional[int] = typer.Option(None, help="frames per sample, the current one included"),
    first_frames: Optional[int] = typer.Option(None, help="score only the first N frames of each trajectory"),
    only_inflections: bool = typer.Option(
        False,
        "--inflections",
        help="score only the frames where the expert's first action changes (first turn, doorways, corners, the stop)",
    ),
    swapped: bool = typer.Option(
        False,
        "--swap-instructions",
        help="also score with each path's instructions swapped for another path's "
        "(does the model read the instruction at all?)",
    ),
    questions: Optional[str] = typer.Option(
        None,
        "--questions",
        help="also score embodied questions (which room, next room, door side, "
        "rooms left) per family; the benchmark folder the rollouts came "
        "from",
    ),
    pairs: bool = typer.Option(
        False,
        "--pairs",
        help="--data are minimal-pair folders (`vidnav data pairs`): score the branch frames "
        "with each pair's instruction and with its path's own (both right = it reads)",
    ),
    out: Optional[str] = typer.Option(None, help="write the metrics as JSON here"),
) -> None:
    from vidnav.agent import load_agent
    from vidnav.data.dataset import NavSamples
    from vidnav.io import write_json
    from vidnav.train.validate import action_accuracy, format_report, swap_instructions

    if samples < 0:  # before anything is loaded; 0 is all, as --eval-samples 0 in `vidnav train`
        raise VidNavError(f"--samples must be >= 0 (0 = all samples), got {samples}")
    if pairs and (only_inflections or swapped or questions or first_frames):
        raise typer.BadParameter(
            "--pairs scores the branch frames of minimal pairs; drop --inflections, "
            "--swap-instructions, --questions and --first-frames",
            param_hint="--pairs",
        )
    held_out = NavSamples(
        list(data), max_history=max_history, first_frames=first_frames, only_inflections=only_inflections
    )
    model = load_agent(None if agent == "default" else agent).model
    held_out.check_num_actions(model.config.num_actions)  # labels of fewer words would be scored padded with stop
    if pairs:
        from vidnav.train.validate import pair_accuracy

        metrics = {"agent": agent, "data": list(data), **pair_accuracy(model, held_out, batch_size=batch_size)}
        typer.echo(
            f"{metrics['pairs']} branch frames: first action {metrics['own_acc']:.3f} with the path's own "
            f"instruction, {metrics['pair_acc']:.3f} with the pair's; right with both {metrics['both']:.3f}; "
            f"the same first action under both {metrics['same_plan']:.3f}"
        )
        if out:
            write_json(out, metrics)
        return
    metrics = action_accuracy(model, held_out, max_samples=samples or None, seed=seed, batch_size=batch_size)
    metrics = {"agent": agent, "data": list(data), "seed": seed, **metrics}
    typer.echo(format_report(metrics))
    if swapped:
        other = action_accuracy(
            model, swap_instructions(held_out, seed), max_samples=samples or None, seed=seed, batch_size=batch_size
        )
        metrics["swapped_instructions"] = other
        typer.echo("with instructions of other paths:\n" + format_report(other))
        typer.echo(
            f"instruction reliance: loss +{other['loss'] - metrics['loss']:.4f}, first action "
            f"{metrics['first_action_acc'] - other['first_action_acc']:+.3f} better with the right instruction"
        )
    if questions:
        from vidnav.data.dataset import QASamples
        from vidnav.train.validate import format_questions, question_accuracy, swap_question_instructions

        qa = QASamples(held_out, questions, ratio=1.0, seed=seed)
        metrics["questions"] = question_accuracy(
            model, qa, max_samples=samples or None, seed=seed, batch_size=batch_size
        )
        typer.echo("embodied questions, exact answers:\n" + format_questions(metrics["questions"]))
        if swapped:
            other_qa = swap_question_instructions(qa, swap_instructions(held_out, seed))
            metrics["questions_swapped_instructions"] = question_accuracy(
                model, other_qa, max_samples=samples or None, seed=seed, batch_size=batch_size
            )
            typer.echo(
                "embodied questions with other paths' instructions:\n"
                + format_questions(metrics["questions_swapped_instructions"])
            )
    if out:
        write_json(out, metrics)
        typer.echo(f"wrote {out}")


def register(app: typer.Typer) -> None:
    """Attach `vidnav train` to the top-level app."""
    app.command("train", help=HELP, no_args_is_help=True)(train_command)
    app.command("validate", help=VALIDATE_HELP, no_args_is_help=True)(validate_command)
    from vidnav.train.probe_cli import PROBE_HELP, probe_command

    app.command("probe", help=PROBE_HELP, no_args_is_help=True)(probe_command)
