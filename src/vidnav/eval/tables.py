"""The results tables `vidnav eval`, `report`, `compare` and `demo` print to the terminal, as rich tables.

    table = build_table([Column("agent", justify="left"), Column("SR", fmt=lambda v: f"{v:.3f}")],
                        [("oracle", 1.0), ("forward", 0.11)])
    show("metrics:", table)   # plain lines and tables, in order, to stdout

Column specs say how each value is written (the same number formats as the plain-text tables) and where it
sits (numbers right-aligned). Cells are plain text, never rich markup, so an agent named ``runs/[x]`` prints
as it is. Nothing is ever cut: text cells fold instead of ending in "…", and when stdout is not a terminal
(a pipe, a file, a test's captured output) the console has no colour codes and is as wide as the widest table
needs (at least 200 columns), so no row wraps. The plain-text ``format_*`` functions stay for code that wants
a string.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

WIDE = 200  # the least width of a console that does not write to a terminal
NAME_MIN = 16  # a name column keeps this width (or its longest name's) in a narrow terminal


@dataclass(frozen=True)
class Column:
    """One table column: its header, how a value is written (``fmt``; default ``str``) and its alignment."""

    header: str
    fmt: Callable[[Any], str] = str
    justify: Literal["left", "center", "right"] = "right"


def text_column(header: str) -> Column:
    """A left-aligned column of names (agents, bins, metrics)."""
    return Column(header, justify="left")


def build_table(columns: Sequence[Column], rows: Iterable[Sequence[Any]]) -> Table:
    """A rich Table with one column per spec and one row per item of ``rows`` (one value per column)."""
    cells = []
    for i, row in enumerate(rows):
        row = list(row)
        if len(row) != len(columns):
            raise ValueError(f"row {i} has {len(row)} values for {len(columns)} columns: {row!r}")
        cells.append([c.fmt(v) for c, v in zip(columns, row)])
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", show_edge=False, pad_edge=False, collapse_padding=True)
    for j, c in enumerate(columns):
        if c.justify == "left":  # names: in a narrow terminal they fold onto more lines, never end in "…"
            table.add_column(
                c.header,
                justify="left",
                overflow="fold",
                min_width=min(NAME_MIN, max((cell_len(r[j]) for r in cells), default=0)),
            )
        else:  # numbers are never split; a narrow terminal takes the width from the names
            table.add_column(
                c.header, justify=c.justify, no_wrap=True, min_width=max((cell_len(r[j]) for r in cells), default=0)
            )
    for r in cells:
        table.add_row(*map(Text, r))
    return table


def make_console(file=None) -> Console:
    """A console writing to ``file`` (default: the current sys.stdout): rich's own on a terminal; elsewhere one
    without colour or other control codes, WIDE columns or the terminal's width, whichever is more."""
    file = sys.stdout if file is None else file
    isatty = getattr(file, "isatty", None)
    if isatty is not None and isatty():
        return Console(file=file)
    return Console(
        file=file,
        force_terminal=False,
        color_system=None,
        no_color=True,
        highlight=False,
        markup=False,
        emoji=False,
        legacy_windows=False,
        width=max(shutil.get_terminal_size((WIDE, 24)).columns, WIDE),
    )


def show(*blocks: str | Table, file=None) -> None:
    """Print plain lines (str) and tables in order; off a terminal, the console is widened to the widest table
    so no row wraps."""
    console = make_console(file)
    unbounded = console.options.update_width(10**6)  # measured against the console's width, it is capped
    sizes = [Measurement.get(console, unbounded, b) for b in blocks if isinstance(b, Table)]
    # off a terminal: as wide as the widest table; on a narrow terminal at least every table's minimum, so rich
    # never shrinks a column away (the terminal wraps the longer lines instead)
    need = max((m.maximum if not console.is_terminal else m.minimum for m in sizes), default=0)
    console.width = max(console.width, need)
    for b in blocks:
        if isinstance(b, Table):  # uncropped: wider than a narrow terminal, its lines wrap there, all numbers kept
            console.print(b, crop=False)
        else:
            console.print(Text(b), soft_wrap=True)  # a long line is the terminal's to wrap, not cut


def na(fmt: str, missing: str = "n/a") -> Callable[[Any], str]:
    """A formatter writing a number with format spec ``fmt`` (e.g. ".2f") and None as ``missing``."""
    return lambda v: missing if v is None else format(v, fmt)


# the metric table of `vidnav eval` and `vidnav demo`: the columns and formats of vidnav.eval.runner.format_table
METRIC_COLUMNS = (
    ("episodes", "eps", str),
    ("success", "SR", na(".2f")),
    ("spl", "SPL", na(".2f")),
    ("ndtw", "nDTW", na(".2f")),
    ("sdtw", "sDTW", na(".2f")),
    ("oracle_success", "OSR", na(".2f")),
    ("navigation_error", "NE (m)", na(".2f")),
    ("trajectory_length", "TL (m)", na(".2f")),
    ("steps", "steps", na(".1f")),
    ("collisions", "coll", na(".1f")),
)


def metric_table(rows: dict[str, dict]) -> Table:
    """One row per agent (name -> the summary `evaluate` returned) with the means of the metrics."""
    columns = [text_column("agent")] + [Column(head, fmt) for _, head, fmt in METRIC_COLUMNS]
    return build_table(columns, ([name] + [s[key] for key, _, _ in METRIC_COLUMNS] for name, s in rows.items()))
