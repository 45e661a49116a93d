"""`vidnav model ...`: inspect model presets (heavy imports stay inside the commands)."""

from __future__ import annotations

from typing import Optional

import typer

from vidnav.errors import VidNavError

model_app = typer.Typer(
    help="Inspect vidnav models: visual-token budgets and parameter counts.\n\n"
    "Example: vidnav model info --preset tiny --memory uninavid --frames 200",
    no_args_is_help=True,
    add_completion=False,
)


def model_info(preset: str = "tiny", memory: str | None = None, frames: int = 20, context: bool | None = None) -> dict:
    """Token budget after ``frames`` frames and parameter counts, computed on the meta device (no weights)."""
    from vidnav.model import build_model

    if frames < 1:
        raise VidNavError(f"--frames must be >= 1, got {frames}")
    overrides = {}
    if memory is not None:
        overrides["memory"] = memory
    if context is not None:
        overrides["use_context_token"] = context
    model = build_model(preset, device="meta", **overrides)
    budget = model.memory.budget(frames).as_dict()
    total, trainable = model.num_parameters_split()
    return {
        "preset": preset,
        "memory": model.config.memory,
        "frames": frames,
        "use_context_token": model.memory.use_context,
        "current": budget["current"],
        "short_term": budget["short_term"],
        "long_term": budget["long_term"],
        "context": budget["context"],
        "total": budget["total"],
        "long_term_is_upper_bound": budget["long_term_is_upper_bound"],
        "params_total": total,
        "params_trainable": trainable,
    }


@model_app.command("info")
def info(
    preset: str = typer.Option("tiny", help="tiny, small, navid-7b, uninavid-7b or navila-8b"),
    memory: Optional[str] = typer.Option(
        None, help="navid, uninavid, navila, llamavid or streaming (default: the preset's)"
    ),
    frames: int = typer.Option(20, help="number of frames seen so far (T), the current one included"),
    context: Optional[bool] = typer.Option(
        None, "--context/--no-context", help="add the LLaMA-VID context token per frame (default: the strategy's)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Visual-token budget after T frames and parameter counts (no weights needed).

    Example: vidnav model info --preset navid-7b --memory navid --frames 64 --json
    """
    info = model_info(preset, memory, frames, context)
    if as_json:
        from vidnav.io import dumps_json

        typer.echo(dumps_json(info))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{info['preset']} · memory {info['memory']} · T = {info['frames']} frames")
    table.add_column("visual tokens")
    table.add_column("count", justify="right")
    for key in ("current", "short_term", "long_term", "context", "total"):
        note = " (upper bound: merging lowers it)" if key == "long_term" and info["long_term_is_upper_bound"] else ""
        table.add_row(key.replace("_", "-") + note, str(info[key]))
    table.add_row("parameters (all)", f"{info['params_total']:,}")
    table.add_row("parameters (trainable)", f"{info['params_trainable']:,}")
    Console().print(table)
