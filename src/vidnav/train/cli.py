"""`vidnav train`: train on rollout folders from a YAML experiment file and/or options.

Options given on the command line override the YAML file's values; both default to TrainConfig's.
Heavy imports (torch, transformers) stay inside the command.
"""

from __future__ import annotations

from typing import List, Optional

import typer

from vidnav.errors import VidNavError

HELP = """Train the model on rollout folders (cached vision features + expert actions) with HF Trainer.

Rerun the same command after an interruption: it continues from the last checkpoint in OUT/checkpoints.
Multi-GPU / multi-node: accelerate launch --config_file configs/accelerate/<cfg>.yaml -m vidnav.cli train ...

Example: vidnav train --preset tiny --memory uninavid --data rollouts/expert --data rollouts/dagger-1 --out runs/tiny --max-steps 2000 --lr 2e-4 --batch-size 8

Example: vidnav train --config configs/train/tiny.yaml --out runs/exp1
"""


def _parse_overrides(items: list[str], flag: str = "--set", what: str = "a model setting") -> dict:
    import yaml

    out = {}
    for item in items:
        if "=" not in item:
            raise VidNavError(f"{flag} expects NAME=VALUE ({what}), got {item!r}")
        name, value = item.split("=", 1)
        out[name.strip()] = yaml.safe_load(value)
    return out


def train_command(
    config: Optional[str] = typer.Option(None, "--config", "-c", help="YAML experiment file (TrainConfig fields)"),
    preset: Optional[str] = typer.Option(None, help="tiny, small, navid-7b, uninavid-7b or navila-8b"),
    memory: Optional[str] = typer.Option(None, help="navid, uninavid, navila or llamavid (default: the preset's)"),
    data: Optional[List[str]] = typer.Option(None, "--data", "-d",
                                             help="rollout folder (repeat to aggregate DAgger rounds; "
                                                  "a folder given K times weighs K times)"),
    eval_data: Optional[List[str]] = typer.Option(None, "--eval-data",
                                                  help="held-out rollout folder (repeatable): action accuracy "
                                                       "every --eval-steps and at the end"),
    eval_steps: Optional[int] = typer.Option(None, help="validate every N steps (default: every --save-steps)"),
    eval_samples: Optional[int] = typer.Option(None, help="held-out samples per validation (a fixed seeded subset; "
                                                          "0 = all)"),
    out: Optional[str] = typer.Option(None, help="run folder: checkpoints/, tb/, final/, train_summary.json"),
    stage: Optional[str] = typer.Option(None, help="align, full or auto (align then full for a pretrained LM)"),
    init_from: Optional[str] = typer.Option(None, help="checkpoint folder to start from (e.g. runs/round1/final)"),
    epochs: Optional[float] = typer.Option(None, help="passes over the data (ignored when --max-steps > 0)"),
    max_steps: Optional[int] = typer.Option(None, help="optimizer steps (overrides --epochs)"),
    lr: Optional[float] = typer.Option(None, help="peak learning rate"),
    align_max_steps: Optional[int] = typer.Option(None, help="stage-1 (align) steps when --stage auto runs two stages"),
    align_epochs: Optional[float] = typer.Option(None, help="stage-1 (align) epochs when --align-max-steps is unset"),
    align_lr: Optional[float] = typer.Option(None, help="stage-1 (align) learning rate"),
    batch_size: Optional[int] = typer.Option(None, help="samples per device per step"),
    grad_accum: Optional[int] = typer.Option(None, help="gradient accumulation steps"),
    warmup_steps: Optional[int] = typer.Option(None, help="linear warm-up steps"),
    weight_decay: Optional[float] = typer.Option(None, help="AdamW weight decay"),
    seed: Optional[int] = typer.Option(None, help="seed of the weights and of the data order"),
    save_steps: Optional[int] = typer.Option(None, help="checkpoint every N steps"),
    logging_steps: Optional[int] = typer.Option(None, help="log loss / lr every N steps (TensorBoard: OUT/tb)"),
    max_history: Optional[int] = typer.Option(None, help="frames per sample, the current one included"),
    stride: Optional[int] = typer.Option(None, help="use every N-th frame of a trajectory as a sample"),
    first_frames: Optional[int] = typer.Option(None, help="only the first N frames of each trajectory are samples "
                                                          "(training and --eval-data)"),
    start_frames: Optional[int] = typer.Option(None, help="with --start-repeat: the first N frames of each trajectory"),
    start_repeat: Optional[int] = typer.Option(None, help="list the first --start-frames frames of each trajectory K "
                                                          "extra times in the training data (the episode start)"),
    end_frames: Optional[int] = typer.Option(None, help="with --end-repeat: the last N frames of each trajectory"),
    end_repeat: Optional[int] = typer.Option(None, help="list the last --end-frames frames of each trajectory K "
                                                        "extra times in the training data (where to stop)"),
    inflection_repeat: Optional[int] = typer.Option(None, help="list every frame where the expert's first action "
                                                               "changes K extra times (VLN-CE inflection weighting)"),
    pack_frames: Optional[int] = typer.Option(None, help="pack up to N frames of one trajectory per sequence: the "
                                                         "instruction and history run once for all N (same loss, ~3x "
                                                         "faster; --batch-size then counts sequences)"),
    qa_data: Optional[str] = typer.Option(None, help="co-train embodied questions (which room, which room next, "
                                                     "which door, rooms left) on the frames; the benchmark folder the "
                                                     "rollouts came from"),
    qa_ratio: Optional[float] = typer.Option(None, help="with --qa-data: question items per navigation frame "
                                                        "(default 0.5)"),
    bf16: Optional[bool] = typer.Option(None, "--bf16/--no-bf16", help="bfloat16 mixed precision (GPUs)"),
    gradient_checkpointing: Optional[bool] = typer.Option(None, "--gradient-checkpointing/--no-gradient-checkpointing",
                                                          help="recompute LM activations in backward"),
    workers: Optional[int] = typer.Option(None, help="DataLoader worker processes"),
    deepspeed: Optional[str] = typer.Option(None, help="DeepSpeed JSON config (e.g. configs/accelerate/ds_zero2.json)"),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="model setting NAME=VALUE, e.g. use_context_token=true"),
    run_option: Optional[List[str]] = typer.Option(None, "--run-option",
                                                   help="how the trained agent runs, NAME=VALUE (repeatable), saved "
                                                        "as run_options.json with every checkpoint over --init-from's "
                                                        "(else the defaults): replan_when_blocked, break_loops, "
                                                        "act_steps, loop_plans; e.g. break_loops=true"),
    progress: Optional[bool] = typer.Option(None, "--progress/--no-progress", help="show progress bars"),
    record_samples: Optional[bool] = typer.Option(None, "--record-samples/--no-record-samples",
                                                  help="write OUT/seen_samples-rank<r>.json (debugging data sharding)"),
) -> None:
    from vidnav.train.config import TrainConfig

    cfg = TrainConfig.from_yaml(config) if config else TrainConfig()
    given = dict(preset=preset, memory=memory, out=out, stage=stage, init_from=init_from, epochs=epochs,
                 max_steps=max_steps, lr=lr, align_max_steps=align_max_steps, align_epochs=align_epochs,
                 align_lr=align_lr, batch_size=batch_size, grad_accum=grad_accum, warmup_steps=warmup_steps,
                 weight_decay=weight_decay, seed=seed, save_steps=save_steps, logging_steps=logging_steps,
                 max_history=max_history, stride=stride, first_frames=first_frames, start_frames=start_frames,
                 start_repeat=start_repeat, end_frames=end_frames, end_repeat=end_repeat,
                 inflection_repeat=inflection_repeat, pack_frames=pack_frames, bf16=bf16,
                 gradient_checkpointing=gradient_checkpointing,
                 dataloader_workers=workers, deepspeed=deepspeed, progress=progress, record_samples=record_samples,
                 eval_steps=eval_steps, eval_samples=eval_samples, qa_data=qa_data, qa_ratio=qa_ratio)
    changes = {k: v for k, v in given.items() if v is not None}
    if data:
        changes["data"] = list(data)
    if eval_data:
        changes["eval_data"] = list(eval_data)
    if set_:
        changes["overrides"] = {**cfg.overrides, **_parse_overrides(set_)}
    if run_option:
        changes["run_options"] = {**cfg.run_options, **_parse_overrides(run_option, "--run-option", "a run option")}
    cfg = cfg.replace(**changes)

    from vidnav.train.trainer import train

    summary = train(cfg)
    typer.echo(f"done: {summary['steps']} steps, final loss {summary['final_loss']:.4f} → {cfg.out}/final")
    if "eval" in summary:
        from vidnav.train.validate import format_report

        typer.echo("held-out " + format_report(summary["eval"]))


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
    samples: int = typer.Option(1000, help="samples to score (a seeded subset; 0 = all; the same subset for "
                                          "every checkpoint)"),
    seed: int = typer.Option(0, help="seed of the subset"),
    batch_size: int = typer.Option(16, help="samples per forward pass"),
    max_history: Optional[int] = typer.Option(None, help="frames per sample, the current one included"),
    first_frames: Optional[int] = typer.Option(None, help="score only the first N frames of each trajectory"),
    only_inflections: bool = typer.Option(False, "--inflections",
                                          help="score only the frames where the expert's first action changes "
                                               "(first turn, doorways, corners, the stop)"),
    swapped: bool = typer.Option(False, "--swap-instructions",
                                 help="also score with each path's instructions swapped for another path's "
                                      "(does the model read the instruction at all?)"),
    questions: Optional[str] = typer.Option(None, "--questions",
                                            help="also score embodied questions (which room, next room, door side, "
                                                 "rooms left) per family; the benchmark folder the rollouts came "
                                                 "from"),
    pairs: bool = typer.Option(False, "--pairs",
                               help="--data are minimal-pair folders (`vidnav data pairs`): score the branch frames "
                                    "with each pair's instruction and with its path's own (both right = it reads)"),
    out: Optional[str] = typer.Option(None, help="write the metrics as JSON here"),
) -> None:
    from vidnav.agent import load_agent
    from vidnav.data.dataset import NavSamples
    from vidnav.io import write_json
    from vidnav.train.validate import action_accuracy, format_report, swap_instructions

    if samples < 0:  # before anything is loaded; 0 is all, as --eval-samples 0 in `vidnav train`
        raise VidNavError(f"--samples must be >= 0 (0 = all samples), got {samples}")
    if pairs and (only_inflections or swapped or questions or first_frames):
        raise typer.BadParameter("--pairs scores the branch frames of minimal pairs; drop --inflections, "
                                 "--swap-instructions, --questions and --first-frames", param_hint="--pairs")
    held_out = NavSamples(list(data), max_history=max_history, first_frames=first_frames,
                          only_inflections=only_inflections)
    model = load_agent(None if agent == "default" else agent).model
    if pairs:
        from vidnav.train.validate import pair_accuracy

        metrics = {"agent": agent, "data": list(data), **pair_accuracy(model, held_out, batch_size=batch_size)}
        typer.echo(f"{metrics['pairs']} branch frames: first action {metrics['own_acc']:.3f} with the path's own "
                   f"instruction, {metrics['pair_acc']:.3f} with the pair's; right with both {metrics['both']:.3f}; "
                   f"the same first action under both {metrics['same_plan']:.3f}")
        if out:
            write_json(out, metrics)
        return
    metrics = action_accuracy(model, held_out, max_samples=samples or None, seed=seed, batch_size=batch_size)
    metrics = {"agent": agent, "data": list(data), "seed": seed, **metrics}
    typer.echo(format_report(metrics))
    if swapped:
        other = action_accuracy(model, swap_instructions(held_out, seed), max_samples=samples or None, seed=seed,
                                batch_size=batch_size)
        metrics["swapped_instructions"] = other
        typer.echo("with instructions of other paths:\n" + format_report(other))
        typer.echo(f"instruction reliance: loss +{other['loss'] - metrics['loss']:.4f}, first action "
                   f"{metrics['first_action_acc'] - other['first_action_acc']:+.3f} better with the right instruction")
    if questions:
        from vidnav.data.dataset import QASamples
        from vidnav.train.validate import format_questions, question_accuracy, swap_question_instructions

        qa = QASamples(held_out, questions, ratio=1.0, seed=seed)
        metrics["questions"] = question_accuracy(model, qa, max_samples=samples or None, seed=seed,
                                                 batch_size=batch_size)
        typer.echo("embodied questions, exact answers:\n" + format_questions(metrics["questions"]))
        if swapped:
            other_qa = swap_question_instructions(qa, swap_instructions(held_out, seed))
            metrics["questions_swapped_instructions"] = question_accuracy(
                model, other_qa, max_samples=samples or None, seed=seed, batch_size=batch_size)
            typer.echo("embodied questions with other paths' instructions:\n"
                       + format_questions(metrics["questions_swapped_instructions"]))
    if out:
        write_json(out, metrics)
        typer.echo(f"wrote {out}")


def register(app: typer.Typer) -> None:
    """Attach `vidnav train` to the top-level app."""
    app.command("train", help=HELP, no_args_is_help=True)(train_command)
    app.command("validate", help=VALIDATE_HELP, no_args_is_help=True)(validate_command)
    from vidnav.train.probe_cli import PROBE_HELP, probe_command

    app.command("probe", help=PROBE_HELP, no_args_is_help=True)(probe_command)
