"""`vidnav data ...`: look into and (later) build VLN-CE episode files."""

from __future__ import annotations

import typer

from vidnav.errors import VidNavError

app = typer.Typer(
    help="VLN-CE (R2R-CE) episode data: inspect episode files.\n\n"
    "Example: vidnav data inspect data/vidnav/train/train.json.gz",
    no_args_is_help=True,
    add_completion=False,
)


def register(root: typer.Typer) -> None:
    """Attach this sub-app to the root `vidnav` app as `vidnav data`."""
    root.add_typer(app, name="data")


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.2f}"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)


@app.command("inspect")
def inspect(
    file: str = typer.Argument(..., help="a VLN-CE episode file ({split}.json.gz or .json)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Counts and means of an episode file: episodes, scenes, geodesic distance, instruction length, gt.

    Example: vidnav data inspect data/R2R_VLNCE_v1-3_preprocessed/val_unseen/val_unseen.json.gz
    """
    from vidnav.data.episodes import summarize_file

    try:
        info = summarize_file(file)
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
        "episodes": "episodes",
        "scenes": "scenes",
        "trajectories": "trajectories",
        "mean_geodesic_distance": "mean geodesic distance (m)",
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
