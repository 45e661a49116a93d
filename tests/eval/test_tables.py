"""The terminal tables of `vidnav eval`, `report`, `compare` (and the demo): every row and column printed,
nothing cut or wrapped and no colour codes when the output is not a terminal, the numbers as the plain text."""

import io
import json
import re

import pytest
from typer.testing import CliRunner

from vidnav.cli import app
from vidnav.eval.runner import format_table
from vidnav.eval.tables import Column, build_table, metric_table, show, text_column

LONG = "runs/[bold]ablation[/bold]/" + "a-checkpoint-with-a-very-long-name-" * 8 + "end"  # 306 chars, rich markup
SUMMARY = dict(
    episodes=50,
    success=0.11,
    spl=0.1034,
    ndtw=None,
    sdtw=None,
    oracle_success=0.3,
    navigation_error=14.123,
    trajectory_length=8.0,
    steps=123.45,
    collisions=2.0,
)


def cells(line: str) -> list[str]:
    """The cells of one rendered table line (columns are at least two spaces apart; names hold single ones)."""
    return re.split(r"\s{2,}", line.strip())


def row(text: str, first: str) -> list[str]:
    """The cells of the one line of ``text`` whose first cell is ``first``."""
    found = [cells(line) for line in text.splitlines() if cells(line)[0] == first]
    assert len(found) == 1, f"{len(found)} rows start with {first!r} in:\n{text}"
    return found[0]


def rendered(*blocks) -> str:
    buf = io.StringIO()  # not a terminal, like a pipe or a file
    show(*blocks, file=buf)
    return buf.getvalue()


def test_every_row_and_column_is_printed_and_numbers_are_right_aligned():
    columns = [text_column("name"), Column("n"), Column("SR", lambda v: f"{v:.3f}"), Column("p", lambda v: f"{v:.4f}")]
    rows = [("never left start room", 12, 0.11, 0.00128), ("b", 3, 1.0, 1.0), ("c", 1000, 0.0, 0.5)]
    text = rendered(build_table(columns, rows))
    assert "\x1b[" not in text and "…" not in text
    lines = [line for line in text.splitlines() if line.strip()]
    assert cells(lines[0]) == ["name", "n", "SR", "p"]
    body = [cells(line) for line in lines if not set(line.strip()) <= {"─", " "}][1:]
    assert body == [
        ["never left start room", "12", "0.110", "0.0013"],
        ["b", "3", "1.000", "1.0000"],
        ["c", "1000", "0.000", "0.5000"],
    ]
    b, c = (next(line for line in lines if cells(line)[0] == k) for k in ("b", "c"))
    assert b.index(" 3 ") + 2 == c.index(" 1000 ") + 5  # right-aligned: the last digits line up
    with pytest.raises(ValueError, match="row 1 has 2 values for 4 columns"):
        build_table(columns, [rows[0], ("x", 1)])


def test_a_long_name_is_printed_in_full_on_one_line_as_plain_text():
    text = rendered("a caption longer than the table: " + "x" * 250, metric_table({LONG: SUMMARY, "b": SUMMARY}))
    assert "\x1b[" not in text and "…" not in text
    assert "x" * 250 in text  # plain lines do not wrap either
    assert row(text, LONG) == [LONG, "50", "0.11", "0.10", "n/a", "n/a", "0.30", "14.12", "8.00", "123.5", "2.0"]


def test_the_metric_table_has_the_columns_and_numbers_of_format_table():
    rows = {"oracle": {**SUMMARY, "ndtw": 0.98765, "sdtw": 0.5}, "default+replan+loops": SUMMARY}
    plain = [line.split(" | ") for line in format_table(rows).splitlines()]
    text = rendered(metric_table(rows))
    assert cells(text.splitlines()[0]) == plain[0]
    for r in plain[1:]:
        assert row(text, r[0]) == r


def test_eval_cli_output_is_plain_and_complete_even_with_force_color(monkeypatch, tmp_path):
    """Through typer's CliRunner (not a terminal): no ANSI codes even with FORCE_COLOR, no 80-column cut."""
    import vidnav.eval.runner as runner

    monkeypatch.setattr(runner, "evaluate", lambda *a, **kw: SUMMARY)
    r = CliRunner().invoke(
        app,
        ["eval", "--agent", LONG, "--data", str(tmp_path), "--out", str(tmp_path / "o")],
        env={"FORCE_COLOR": "1", "COLUMNS": "80"},
    )
    assert r.exit_code == 0, r.output
    assert "\x1b[" not in r.output and "…" not in r.output
    assert row(r.output, LONG)[1:] == ["50", "0.11", "0.10", "n/a", "n/a", "0.30", "14.12", "8.00", "123.5", "2.0"]
    assert f"results: {tmp_path / 'o' / 'results.jsonl'}" in r.output


def fake_report(run: str) -> dict:
    modes = ["step cap", "never left start room", "back in start room", "in goal room", "on route", "off route"]
    return {
        "run": run,
        "agent": "forward",
        "split": "val_unseen",
        "episodes": 9,
        "success": 1 / 9,
        "by_start_distance": [
            {"bin": "0-6 m", "n": 4, "success": 0.25, "spl": 0.2, "oracle_success": 0.5},
            {"bin": ">=16 m", "n": 5, "success": None, "spl": None, "oracle_success": None},
        ],
        "by_route_rooms": [{"bin": ">=5", "n": 9, "success": 1 / 9, "spl": 0.1, "oracle_success": 0.333}],
        "failures": {
            "n": 8,
            "passed_goal": 1,
            "wrong_exit": 2,
            "near_exit": 3,
            "modes": [
                {
                    "mode": m,
                    "n": i,
                    "share": i / 8,
                    "median_steps": 10.0 * i if i else None,
                    "median_length": 1.25 * i if i else None,
                }
                for i, m in enumerate(modes)
            ],
        },
    }


def test_report_cli_prints_every_table_row(monkeypatch, tmp_path):
    import vidnav.eval.html_report as html_report

    run = tmp_path / ("a-run-folder-with-a-long-name-" * 8)
    monkeypatch.setattr(html_report, "html_report", lambda runs, **kw: (tmp_path / "r.html", [fake_report(str(run))]))
    r = CliRunner().invoke(app, ["report", str(run)], env={"FORCE_COLOR": "1", "COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    out = r.output
    assert "\x1b[" not in out and "…" not in out
    assert f"{run}: agent forward, val_unseen, 9 episodes, SR 0.111" in out
    assert row(out, "0-6 m") == ["0-6 m", "4", "0.25", "0.20", "0.50"]
    assert row(out, ">=16 m") == [">=16 m", "5", "-", "-", "-"]
    assert row(out, ">=5") == [">=5", "9", "0.11", "0.10", "0.33"]
    assert "how the 8 failures ended (1 of them passed within the success radius and went on):" in out
    assert row(out, "step cap") == ["step cap", "0", "0.00", "-", "-"]
    assert row(out, "never left start room") == ["never left start room", "1", "0.12", "10", "1.2"]
    assert row(out, "off route") == ["off route", "5", "0.62", "50", "6.2"]
    assert "2 failures left the start room into another room than the route's; 3 of those" in out


def write_run(folder, successes, agent):
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"agent": agent, "data": "/d", "split": "val_unseen"}))
    (folder / "results.jsonl").write_text(
        "".join(
            json.dumps(
                {
                    "episode_id": str(i + 1),
                    "scene_id": "h.json",
                    "success": float(s),
                    "spl": 0.5 * s,
                    "ndtw": 0.5,
                    "steps": 10 + i,
                }
            )
            + "\n"
            for i, s in enumerate(successes)
        )
    )
    return folder


def test_compare_cli_prints_every_metric_row(tmp_path):
    a = write_run(tmp_path / "a", [1, 0, 0, 0], agent=LONG)
    b = write_run(tmp_path / "b", [1, 1, 1, 0], agent="forward")
    r = CliRunner().invoke(app, ["compare", str(a), str(b)], env={"FORCE_COLOR": "1", "COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    out = r.output
    assert "\x1b[" not in out and "…" not in out
    assert f"A = {a} ({LONG}), B = {b} (forward): 4 common val_unseen episodes" in out
    assert "goals: only A 0, only B 2, both 1, neither 1; McNemar exact p = 0.5000" in out
    assert cells(next(line for line in out.splitlines() if line.startswith("metric"))) == [
        "metric",
        "A",
        "B",
        "B - A",
        "bootstrap 95 % (2000 resamples)",
    ]
    assert row(out, "success")[:4] == ["success", "0.250", "0.750", "+0.500"]
    assert row(out, "spl")[:4] == ["spl", "0.125", "0.375", "+0.250"]
    assert row(out, "ndtw") == ["ndtw", "0.500", "0.500", "+0.000", "[+0.000, +0.000]"]
    assert row(out, "steps") == ["steps", "11.500", "11.500", "+0.000", "[+0.000, +0.000]"]


@pytest.mark.parametrize("columns", [40, 66, 120])
def test_a_narrow_terminal_keeps_every_column_and_name(monkeypatch, columns):
    """On a terminal narrower than the table, rich would shrink the name column away; names fold instead."""

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setenv("COLUMNS", str(columns))
    out = Terminal()
    show(metric_table({"default": SUMMARY, "runs/some/long/agent-name": SUMMARY}), file=out)
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue())
    names = "".join(line.split("  ")[0].strip() for line in text.splitlines()[2:])
    assert "default" in names and "runs/some/long/agent-name" in names
    assert text.count("14.12") == 2 and text.splitlines()[0].split()[:2] == ["agent", "eps"]
