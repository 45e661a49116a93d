"""`vidnav probe`: linear probes of the cached frozen features (what can the visual tokens carry?).

Heavy imports (torch) stay inside the command.
"""

from __future__ import annotations

from typing import List, Optional

import typer

from vidnav.errors import VidNavError

PROBE_HELP = """Linear probes of the cached frozen vision features: can a frame's tokens tell the room type, its look, where its doorways are, the room seen through a doorway?

Labels come from each frame's stored pose and its house. The features are pooled to g x g (the shipped current frame: g = 4), a logistic regression is fitted on frames of the --rollouts houses (weight decay picked on a split of those houses) and scored on frames of the --heldout houses, beside the majority-class baseline. Writes OUT/probes.json and OUT/probes.md (the table); see docs/probes.md.

Example: vidnav probe --data data/vidnav --rollouts data/rollouts/expert --heldout data/rollouts/val-unseen-expert --grid 1 --grid 4 --grid 8 --out runs/probes/expert
"""


def probe_command(
    data: str = typer.Option(..., "--data", help="benchmark folder the rollouts were collected on (its houses/)"),
    rollouts: List[str] = typer.Option(..., "--rollouts", help="rollout folder of the training houses (repeatable)"),
    heldout: List[str] = typer.Option(
        ..., "--heldout", help="rollout folder of held-out houses (repeatable), e.g. val_unseen expert rollouts"
    ),
    grid: Optional[List[int]] = typer.Option(
        None, "--grid", help="pooling size g (g x g tokens; repeatable; default 1, 4 and 8)"
    ),
    probe: Optional[List[str]] = typer.Option(None, "--probe", help="only these probes (repeatable; default all)"),
    frames: int = typer.Option(3000, help="training frames per probe at most (stratified by class)"),
    heldout_frames: int = typer.Option(3000, help="held-out frames per probe at most (stratified by class)"),
    seed: int = typer.Option(0, help="seed of the frame subsample and of the house split"),
    max_iter: int = typer.Option(150, help="L-BFGS iterations per fit"),
    out: str = typer.Option(..., help="folder for probes.json and probes.md"),
) -> None:
    from pathlib import Path

    from vidnav.io import atomic_write_text, write_json
    from vidnav.train.probes import format_table, label_rollouts, run_probes

    grids = list(grid or [1, 4, 8])
    if any(g < 1 for g in grids):
        raise VidNavError(f"--grid must be >= 1, got {grids}")
    if frames < 20 or heldout_frames < 20:
        raise VidNavError("--frames and --heldout-frames must be at least 20")
    import time

    say = lambda msg: typer.echo(f"[{time.strftime('%H:%M:%S')}] {msg}", err=True)  # noqa: E731
    say("labelling training frames")
    train = label_rollouts(data, rollouts)
    say("labelling held-out frames")
    held = label_rollouts(data, heldout)
    overlap = set(train.houses) & set(held.houses)
    if overlap:
        raise VidNavError(
            f"--rollouts and --heldout share {len(overlap)} houses (e.g. {sorted(overlap)[0]}); "
            "held-out frames must come from other houses"
        )
    results = run_probes(
        train,
        held,
        grids,
        list(probe) if probe else None,
        max_frames=frames,
        max_heldout=heldout_frames,
        seed=seed,
        max_iter=max_iter,
        progress=say,
    )
    table = format_table(results, grids)
    meta = {
        "data": data,
        "rollouts": list(rollouts),
        "heldout": list(heldout),
        "grids": grids,
        "frames": frames,
        "heldout_frames": heldout_frames,
        "seed": seed,
        "max_iter": max_iter,
        "train_houses": len(set(train.houses)),
        "heldout_houses": len(set(held.houses)),
    }
    write_json(Path(out) / "probes.json", {**meta, "probes": results})
    atomic_write_text(Path(out) / "probes.md", table + "\n")
    typer.echo(table)
    typer.echo(f"wrote {Path(out) / 'probes.json'}")
