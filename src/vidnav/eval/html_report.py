"""The HTML report of evaluation runs, behind `vidnav report RUN [RUN ...]` and `vidnav demo`.

    path, reports = html_report(["runs/demo/default", "runs/demo/oracle"])   # -> runs/demo/report.html

One page that needs no network: the metric table of every run (and of baseline runs found beside them), SR by
start distance and by rooms on the route, the failure breakdown, the paired comparison of each run with the first,
and a sortable, filterable table with a row per episode and run; a click on a row shows the episode's videos
and its top-down map with every run's path. The numbers are those of :mod:`vidnav.eval.report`,
:mod:`vidnav.eval.compare` and :func:`vidnav.metrics.summarize`; this module only lays them out.

Libraries, inlined into the page: plotly.js (the `plotly` package's offline bundle) draws the plots and maps,
DataTables (the offline bundle the `itables` package ships) the episode table, Jinja2 fills the template.
The MP4s (`vidnav eval --video`) are linked, not copied, relative to the page: keep the page beside its runs.
"""

from __future__ import annotations

import base64
import json
import math
import os
from pathlib import Path
from urllib.parse import quote

from vidnav.errors import VidNavError
from vidnav.io import atomic_write_text

BASELINES = ("oracle", "forward", "random")
METRICS = (
    ("success", "SR"),
    ("spl", "SPL"),
    ("ndtw", "nDTW"),
    ("sdtw", "sDTW"),
    ("oracle_success", "OSR"),
    ("navigation_error", "NE (m)"),
    ("trajectory_length", "TL (m)"),
    ("steps", "steps"),
    ("collisions", "coll"),
)


def default_html_path(runs: list[Path]) -> Path:
    """RUN/report.html for one run; for several, report.html in the folder that holds them all."""
    if len(runs) == 1:
        return Path(runs[0]) / "report.html"
    return Path(os.path.commonpath([Path(r).resolve() for r in runs])) / "report.html"


def html_report(
    runs: list[str | Path],
    out: str | Path | None = None,
    data: str | Path | None = None,
    split: str | None = None,
    episodes: int | None = None,
) -> tuple[Path, list[dict]]:
    """Write the HTML report of ``runs`` (eval output folders) to ``out`` (default: :func:`default_html_path`);
    also writes each RUN/report.json. ``data`` / ``split`` / ``episodes`` as in
    :func:`vidnav.eval.report.report_run`. Returns the page's path and the runs' reports."""
    from vidnav.eval.report import load_run, report_run

    runs = [Path(r) for r in runs]
    if not runs:
        raise VidNavError("give at least one RUN folder")
    if len({r.resolve() for r in runs}) < len(runs):
        raise VidNavError(f"a RUN folder is given twice: {' '.join(map(str, runs))}")
    if out is not None and Path(out).suffix.lower() not in (".html", ".htm"):
        raise VidNavError(f"--html {out}: give a file name ending in .html")
    loaded = [load_run(r, data, split, episodes) for r in runs]
    for r, d in zip(runs[1:], loaded[1:]):
        for key, same in (
            ("split", d["split"] == loaded[0]["split"]),
            ("data", Path(d["data"]).resolve() == Path(loaded[0]["data"]).resolve()),
        ):
            if not same:
                raise VidNavError(
                    f"{r} was evaluated on {key} {d[key]!s}, {runs[0]} on {loaded[0][key]!s}: one "
                    "report compares runs on the same episodes; report them separately"
                )
    reports = [report_run(r, loaded=d) for r, d in zip(runs, loaded)]
    out = Path(out) if out is not None else default_html_path(runs)
    atomic_write_text(out, render(runs, loaded, reports, out.resolve().parent, episodes))
    return out, reports


# -- what the page shows ----------------------------------------------------------------------------------------


def _names(runs: list[Path]) -> list[str]:
    if len(runs) == 1:
        return [runs[0].resolve().name]
    base = os.path.commonpath([r.resolve() for r in runs])
    return [os.path.relpath(r.resolve(), base) for r in runs]


def _baselines(runs: list[Path], loaded: list[dict]) -> list[dict]:
    """Metric rows of baseline runs (oracle / forward / random) in folders beside the given runs, evaluated on
    the same data and split, over the episodes the given runs report."""
    from vidnav.eval.report import read_run
    from vidnav.metrics import summarize

    given = {r.resolve() for r in runs}
    ids = {str(x["episode_id"]) for d in loaded for x in d["results"]}
    data, split = Path(loaded[0]["data"]).resolve(), loaded[0]["split"]
    rows = []
    for parent in sorted({r.resolve().parent for r in runs}):
        for folder in sorted(p for p in parent.iterdir() if p.is_dir() and p.resolve() not in given):
            try:
                meta = json.loads((folder / "run.json").read_text())
            except (OSError, ValueError):
                continue
            if (
                meta.get("agent") not in BASELINES
                or meta.get("split") != split
                or not meta.get("data")
                or Path(meta["data"]).resolve() != data
                or not (folder / "results.jsonl").is_file()
            ):
                continue
            results = [x for x in read_run(folder)[0] if str(x["episode_id"]) in ids]
            if len({str(x["episode_id"]) for x in results}) == len(ids):  # a row over fewer episodes misleads
                rows.append(
                    {"name": f"{folder.name} (baseline beside the runs)", "agent": meta["agent"], **summarize(results)}
                )
    return rows


def _bar(reports: list[dict], names: list[str], colors: list[str], key: str, title: str, xtitle: str):
    import plotly.graph_objects as go

    fig = go.Figure()
    for rep, name, color in zip(reports, names, colors):
        rows = rep[key]
        fig.add_bar(
            name=name,
            x=[r["bin"] for r in rows],
            y=[r["success"] for r in rows],
            marker_color=color,
            customdata=[[r["n"], r["spl"], r["oracle_success"]] for r in rows],
            text=[f"n={r['n']}" if r["n"] else "" for r in rows],
            textposition="outside",
            hovertemplate="%{x}: SR %{y:.2f}, SPL %{customdata[1]:.2f}, OSR %{customdata[2]:.2f}"
            " (%{customdata[0]} episodes)<extra>" + name + "</extra>",
        )
    fig.update_layout(
        title=title,
        barmode="group",
        yaxis=dict(title="success rate", range=[0, 1.15]),
        xaxis=dict(title=xtitle, type="category"),
        height=340,
        margin=dict(l=50, r=10, t=40, b=40),
        legend=dict(orientation="h", y=-0.25),
    )
    return fig


def _failures_fig(reports: list[dict], names: list[str]):
    import plotly.graph_objects as go

    from vidnav.eval.report import MODES

    fig = go.Figure()
    most = max(rep["failures"]["n"] for rep in reports)
    for mode, color in zip(MODES, ("#7f7f7f", "#d62728", "#ff7f0e", "#bcbd22", "#17becf", "#9467bd")):
        counts = [next(m["n"] for m in rep["failures"]["modes"] if m["mode"] == mode) for rep in reports]
        fig.add_bar(
            name=mode,
            y=names,
            x=counts,
            orientation="h",
            marker_color=color,
            hovertemplate="%{y}: %{x} failures ended '" + mode + "'<extra></extra>",
        )
    fig.update_layout(
        title="how the failed episodes ended (episodes)",
        barmode="stack",
        height=150 + 40 * len(names),
        xaxis=dict(tick0=0, dtick=max(1, math.ceil(most / 10))),
        yaxis=dict(autorange="reversed"),
        margin=dict(l=10, r=10, t=40, b=30),
        legend=dict(orientation="h", y=-0.15, yanchor="top", traceorder="normal"),
    )
    return fig


def _rgb(c) -> str:
    return f"rgb({c[0]},{c[1]},{c[2]})"


# The per-episode maps are plain plotly figure dicts: plotly.graph_objects would validate every one of them, which
# took 35 s for 300 episodes; tests/eval/test_html_report.py validates them with graph_objects instead.


def _scene_layout(house) -> dict:
    """The plotly layout of a house seen from above: floors, door gaps, walls, landmarks, room names."""
    from vidnav.eval.topdown import FLOOR_RGB, KIND_RGB, LANDMARK_RGB, WALL_RGB
    from vidnav.sim.navmap import wall_segments

    def rect(x0, z0, x1, z1, color, kind="rect"):
        return {
            "type": kind,
            "x0": x0,
            "y0": z0,
            "x1": x1,
            "y1": z1,
            "layer": "below",
            "line": {"width": 0},
            "fillcolor": _rgb(color),
        }

    shapes = [rect(r.x0, r.z0, r.x1, r.z1, FLOOR_RGB.get(r.floor, (220, 220, 220))) for r in house.rooms]
    shapes += [rect(*d.rect, FLOOR_RGB.get(house.rooms[d.a].floor, (220, 220, 220))) for d in house.doors]
    shapes += [
        {
            "type": "line",
            "x0": ax,
            "y0": az,
            "x1": bx,
            "y1": bz,
            "layer": "below",
            "line": {"color": _rgb(WALL_RGB), "width": 2},
        }
        for (ax, az), (bx, bz) in wall_segments(house)
    ]
    shapes += [
        rect(
            o.x - o.radius,
            o.z - o.radius,
            o.x + o.radius,
            o.z + o.radius,
            LANDMARK_RGB.get(o.color) if o.color else KIND_RGB.get(o.kind, (0, 0, 0)),
            "circle",
        )
        for o in house.landmarks
    ]
    notes = [
        {"x": r.center[0], "y": r.center[1], "text": r.type, "showarrow": False, "font": {"size": 10, "color": "#555"}}
        for r in house.rooms
    ]
    x0, z0, x1, z1 = house.bounds()
    axis = {"showgrid": False, "zeroline": False, "visible": False}
    return {
        "shapes": shapes,
        "annotations": notes,
        "height": 430,
        "margin": {"l": 10, "r": 10, "t": 10, "b": 10},
        "plot_bgcolor": "white",
        "showlegend": True,
        "legend": {"orientation": "h", "y": -0.02},
        "xaxis": {"range": [x0 - 0.5, x1 + 0.5], **axis},
        "yaxis": {"range": [z1 + 0.5, z0 - 0.5], "scaleanchor": "x", **axis},
    }  # z grows downwards, as in the MP4s


def _episode_traces(ep, paths: list[tuple[str, str, list]]) -> list[dict]:
    """Plotly traces of one episode: the reference path, the goal's success circle, every run's path and end."""
    from vidnav.eval.topdown import GOAL_RGB, REF_RGB
    from vidnav.metrics import SUCCESS_DISTANCE

    goal = ep.goals[0].position
    radius = ep.goals[0].radius or SUCCESS_DISTANCE
    ring = [2 * math.pi * i / 48 for i in range(49)]
    ref = ep.reference_path
    traces = [
        {
            "type": "scatter",
            "x": [p[0] for p in ref],
            "y": [p[2] for p in ref],
            "mode": "lines+markers",
            "name": "reference",
            "line": {"color": _rgb(REF_RGB), "width": 3},
            "marker": {"size": 5},
        },
        {
            "type": "scatter",
            "x": [round(goal[0] + radius * math.cos(t), 3) for t in ring],
            "y": [round(goal[2] + radius * math.sin(t), 3) for t in ring],
            "mode": "lines",
            "name": "success radius",
            "line": {"color": _rgb(GOAL_RGB), "dash": "dot", "width": 1.5},
            "hoverinfo": "skip",
        },
        {
            "type": "scatter",
            "x": [goal[0]],
            "y": [goal[2]],
            "mode": "markers",
            "name": "goal",
            "marker": {"color": _rgb(GOAL_RGB), "size": 11, "symbol": "star"},
        },
    ]
    for name, color, pos in paths:
        traces.append(
            {
                "type": "scatter",
                "x": [round(p[0], 3) for p in pos],
                "y": [round(p[2], 3) for p in pos],
                "mode": "lines",
                "name": name,
                "line": {"color": color, "width": 2.5},
            }
        )
        traces.append(
            {
                "type": "scatter",
                "x": [pos[-1][0]],
                "y": [pos[-1][2]],
                "mode": "markers",
                "showlegend": False,
                "name": f"{name}: end",
                "marker": {"color": color, "size": 9, "symbol": "x"},
            }
        )
    return traces


def _ended(result: dict, rep: dict) -> str:
    if float(result["success"]):
        return "success"
    by_episode = rep.get("failures", {}).get("by_episode")
    if by_episode is not None:
        return by_episode[str(result["episode_id"])]
    return "failed, stopped" if result["stopped"] else "step cap"  # scenes that are not vidnav houses


def _comparisons(runs: list[Path], loaded: list[dict], names: list[str]) -> list[dict]:
    """The paired comparison of every run after the first with the first, on the episodes both report."""
    from vidnav.eval.compare import _order, compare_runs

    out = []
    a_res = {str(x["episode_id"]): x for x in loaded[0]["results"]}
    for run, d, name in zip(runs[1:], loaded[1:], names[1:]):
        b_res = {str(x["episode_id"]): x for x in d["results"]}
        common = set(a_res) & set(b_res)
        if not common:
            continue
        c = compare_runs(runs[0], run, by_rooms=loaded[0]["houses"] is not None, data=loaded[0]["data"], only=common)
        ids = _order(common)
        c["only_a_ids"] = [i for i in ids if float(a_res[i]["success"]) and not float(b_res[i]["success"])]
        c["only_b_ids"] = [i for i in ids if float(b_res[i]["success"]) and not float(a_res[i]["success"])]
        out.append({**c, "a": names[0], "b": name})
    return out


def render(runs: list[Path], loaded: list[dict], reports: list[dict], where: Path, episodes: int | None = None) -> str:
    """The page's HTML; ``where``: the folder it will be written to (videos are linked relative to it)."""
    from importlib.resources import files

    import plotly.colors
    import plotly.offline
    from jinja2 import Environment, PackageLoader, select_autoescape

    from vidnav.eval.report import MODES
    from vidnav.eval.topdown import PATH_RGB
    from vidnav.metrics import summarize

    names = _names(runs)
    d3 = plotly.colors.qualitative.D3  # without its green and red: the reference path and the goal have them
    palette = [f"rgb{PATH_RGB}", d3[1], d3[4], d3[5], d3[6], d3[9], d3[8], d3[7]]
    colors = [palette[i % len(palette)] for i in range(len(runs))]
    metric_rows = [
        {"name": n, "agent": d["meta"].get("agent"), **summarize(d["results"])} for n, d in zip(names, loaded)
    ] + _baselines(runs, loaded)
    figures = {
        "fig-distance": _bar(
            reports, names, colors, "by_start_distance", "SR by geodesic start distance", "start distance"
        )
    }
    has_rooms = all("by_route_rooms" in rep for rep in reports)
    if has_rooms:
        figures["fig-rooms"] = _bar(
            reports, names, colors, "by_route_rooms", "SR by rooms on the reference route", "rooms on the route"
        )
        figures["fig-failures"] = _failures_fig(reports, names)
    figures = {k: json.loads(f.to_json()) for k, f in figures.items()}

    scenes: dict[str, dict] = {}
    eps: dict[str, dict] = {}
    rows = []
    by_run = [{str(x["episode_id"]): x for x in d["results"]} for d in loaded]
    all_ids = {i: ep for d in loaded for i, ep in d["episodes"].items() if any(i in b for b in by_run)}
    for i, ep in all_ids.items():
        houses = next((d["houses"] for d, b in zip(loaded, by_run) if i in b), None)
        if houses is not None and ep.scene_id not in scenes:
            scenes[ep.scene_id] = _scene_layout(houses[ep.scene_id])
        videos, paths = [], []
        for k, (run, res, rep) in enumerate(zip(runs, by_run, reports)):
            if i not in res:
                continue
            r = res[i]
            mp4 = run / "videos" / f"{i}.mp4"
            videos.append(
                {
                    "run": names[k],
                    "src": quote(os.path.relpath(mp4.resolve(), where)) if mp4.is_file() else None,
                    "success": bool(float(r["success"])),
                    "ended": _ended(r, rep),
                }
            )
            paths.append((names[k], colors[k], r["positions"]))
            rows.append(
                {
                    "run": names[k],
                    "id": i,  # the words this run gave (--instructions swapped | FILE)
                    "instruction": r.get("instruction") or ep.instruction.instruction_text,
                    "success": "yes" if float(r["success"]) else "no",
                    "ne": float(r["navigation_error"]),
                    "ndtw": None if r.get("ndtw") is None else float(r["ndtw"]),  # None: no ground truth
                    "steps": int(r["steps"]),
                    "ended": _ended(r, rep),
                }
            )
        eps[i] = {
            "instruction": ep.instruction.instruction_text,
            "scene": ep.scene_id,
            "videos": videos,
            "traces": _episode_traces(ep, paths) if houses is not None else None,
        }
    data = {
        "figures": figures,
        "scenes": scenes,
        "episodes": eps,
        "rows": rows,
        "runs": names,
        "endings": ["success", *MODES] if has_rooms else ["success", "failed, stopped", "step cap"],
    }

    bundle = files("itables") / "html"
    env = Environment(loader=PackageLoader("vidnav.eval", "templates"), autoescape=select_autoescape(["html"]))
    return env.get_template("report.html").render(
        title=f"vidnav report: {', '.join(names)}",
        split=loaded[0]["split"],
        data_dir=str(loaded[0]["data"]),
        episodes_limit=episodes,
        names=names,
        reports=reports,
        metric_rows=metric_rows,
        metrics=METRICS,
        has_rooms=has_rooms,
        comparisons=_comparisons(runs, loaded, names),
        modes=MODES,
        data=data,
        plotly_js=plotly.offline.get_plotlyjs().replace("</script", "<\\/script"),
        dt_css=(bundle / "dt_bundle.css").read_text(encoding="utf-8"),
        dt_js_b64=base64.b64encode((bundle / "dt_bundle.js").read_bytes()).decode("ascii"),
    )
