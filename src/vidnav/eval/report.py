"""Where an agent fails: break an evaluation run down by path length, by rooms on the route, and by how
each failed episode ended. Behind `vidnav report RUN`.

    rep = report_run("runs/default")   # reads RUN/results.jsonl and RUN/run.json; writes RUN/report.json
    print_report(rep)                  # the tables in the terminal; format_report(rep): as plain text

Every episode is counted once. Rooms come from vidnav house files; for scenes that are not vidnav houses
(Matterport ``.glb`` scenes of real VLN-CE files) only the start-distance breakdown is given.

A failed episode ends in exactly one of these ways, checked in this order:

- ``step cap``: the agent never stopped;
- ``never left start room``: every position lies in the start room (or its door gaps);
- ``back in start room``: it left but stopped in the start room again;
- ``in goal room``: stopped in the goal's room, but farther than the success radius;
- ``on route``: stopped in a room the reference route passes through (not start, not goal room);
- ``off route``: stopped in a room the reference route never enters.

Counted beside them: ``passed goal``, failures that came within the success radius and went on (oracle
success without success); ``wrong exit``, failures that left the start room into another room than the route's
second; ``near exit``, failures that never left the start room but came within 1 m of the centre of the door
the route leaves it by.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path

from vidnav.errors import VidNavError
from vidnav.io import read_jsonl_records, write_json

DISTANCE_BINS = (0.0, 6.0, 9.0, 12.0, 16.0)  # metres of geodesic start distance; the last bin is open
ROOM_BINS = (1, 2, 3, 4, 5)  # rooms on the reference route; the last bin is "5 or more"
MODES = ("step cap", "never left start room", "back in start room", "in goal room", "on route", "off route")


def rooms_along(house, points: Sequence[Sequence[float]], step: float = 0.1) -> list[int]:
    """Ids of the rooms a polyline of [x, y, z] points passes through, in order, repeats merged.

    Segments are sampled every ``step`` metres; samples in door gaps (no room) are skipped."""
    out: list[int] = []

    def add(x: float, z: float) -> None:
        room = house.room_at(x, z)
        if room is not None and (not out or out[-1] != room.id):
            out.append(room.id)

    if len(points) == 1:
        add(points[0][0], points[0][2])
    for a, b in zip(points, points[1:]):
        n = max(1, math.ceil(math.hypot(b[0] - a[0], b[2] - a[2]) / step))
        for i in range(n + 1):
            add(a[0] + (b[0] - a[0]) * i / n, a[2] + (b[2] - a[2]) * i / n)
    return out


def failure_mode(result: dict, route: list[int], walked: list[int], goal_room: int | None) -> str:
    """How one failed episode ended (see the module docstring); ``route`` / ``walked``: rooms_along the
    reference path / the agent's positions; ``goal_room``: the id of the room holding the goal."""
    if not result["stopped"]:
        return "step cap"
    start, end = route[0], walked[-1] if walked else None
    if end == start:
        return "never left start room" if set(walked) == {start} else "back in start room"
    if end == goal_room:
        return "in goal room"
    return "on route" if end in route else "off route"


def _exit_door(house, route: list[int]):
    """The door the route leaves its start room by (None for one-room routes)."""
    if len(route) < 2:
        return None
    return next((d for d in house.doors if {d.a, d.b} == {route[0], route[1]}), None)


def _bin_label(edges: Sequence[float], i: int, unit: str) -> str:
    if i + 1 < len(edges):
        return f"{edges[i]:g}-{edges[i + 1]:g}{unit}"
    return f">={edges[i]:g}{unit}"


def _rows(groups: dict[str, list[dict]]) -> list[dict]:
    rows = []
    for label, rs in groups.items():
        n = len(rs)
        rows.append(
            {
                "bin": label,
                "n": n,
                **{k: (sum(float(r[k]) for r in rs) / n if n else None) for k in ("success", "spl", "oracle_success")},
            }
        )
    return rows


def _median(xs: list[float]) -> float | None:
    xs = sorted(xs)
    if not xs:
        return None
    m = len(xs) // 2
    return float(xs[m]) if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2


def breakdown(results: list[dict], episodes: dict[str, object], houses: dict[str, object] | None) -> dict:
    """The report of a run's result records (see the module docstring).

    ``episodes``: episode id -> Episode; ``houses``: scene_id -> House, or None when the scenes are not
    vidnav houses (then only the distance breakdown)."""

    def foreign(r: dict) -> bool:
        ep = episodes.get(str(r["episode_id"]))
        return ep is None or r.get("scene_id", ep.scene_id) != ep.scene_id

    missing = [r["episode_id"] for r in results if foreign(r)]
    if missing:
        raise VidNavError(
            f"{len(missing)} result episodes (e.g. {missing[0]!r}) are not in the episode file "
            "(no such id, or another scene); point --data/--split at the data the run was "
            "evaluated on"
        )
    by_dist: dict[str, list[dict]] = {_bin_label(DISTANCE_BINS, i, " m"): [] for i in range(len(DISTANCE_BINS))}
    for r in results:
        i = max(0, bisect.bisect_right(DISTANCE_BINS, float(r["start_distance"])) - 1)
        by_dist[_bin_label(DISTANCE_BINS, i, " m")].append(r)
    rep = {
        "episodes": len(results),
        "success": sum(float(r["success"]) for r in results) / max(1, len(results)),
        "by_start_distance": _rows(by_dist),
    }
    if houses is None:
        return rep
    by_rooms: dict[str, list[dict]] = {rooms_bin(k): [] for k in ROOM_BINS}
    modes: dict[str, list[dict]] = {m: [] for m in MODES}
    passed = wrong_exit = near_exit = 0
    endings: dict[str, str] = {}
    for r in results:
        ep = episodes[str(r["episode_id"])]
        house = houses[ep.scene_id]
        route = route_of(house, ep)
        by_rooms[rooms_bin(len(route))].append(r)
        if float(r["success"]):
            continue
        goal = ep.goals[0].position
        goal_room = house.room_at(goal[0], goal[2])
        walked = rooms_along(house, r["positions"])
        mode = failure_mode(r, route, walked, goal_room.id if goal_room is not None else route[-1])
        modes[mode].append(r)
        endings[str(r["episode_id"])] = mode
        passed += bool(float(r["oracle_success"]))
        door = _exit_door(house, route)
        if door is not None and len(walked) > 1 and walked[0] == route[0]:
            wrong_exit += walked[1] != route[1]
        if door is not None and mode == "never left start room":
            cx, cz = door.center
            near_exit += min(math.hypot(p[0] - cx, p[2] - cz) for p in r["positions"]) <= 1.0
    failures = sum(len(v) for v in modes.values())
    rep["by_route_rooms"] = _rows(by_rooms)
    rows = [
        {
            "mode": m,
            "n": len(rs),
            "share": len(rs) / failures if failures else None,
            "median_steps": _median([float(r["steps"]) for r in rs]),
            "median_length": _median([float(r["trajectory_length"]) for r in rs]),
        }
        for m, rs in modes.items()
    ]
    rep["failures"] = {
        "n": failures,
        "passed_goal": passed,
        "wrong_exit": wrong_exit,
        "near_exit": near_exit,
        "modes": rows,
        "by_episode": endings,
    }
    return rep


def load_houses(data: str | Path, episodes: Sequence) -> dict[str, object] | None:
    """scene_id -> House for the episodes' scenes, or None when they are not vidnav house files (e.g. the
    Matterport scenes of real VLN-CE data), for which only distances can be broken down."""
    from vidnav.sim.house import House

    houses: dict[str, object] = {}
    for ep in episodes:
        if ep.scene_id in houses:
            continue
        path = Path(ep.scene_id) if Path(ep.scene_id).is_absolute() else Path(data) / ep.scene_id
        if not ep.scene_id.endswith(".json") or not path.is_file():
            return None
        houses[ep.scene_id] = House.load(path)
    return houses


def rooms_bin(k: int) -> str:
    """The label of the route-rooms bin of a route through ``k`` rooms (the last bin is open)."""
    return f"{k}" if k < ROOM_BINS[-1] else f">={ROOM_BINS[-1]}"


def route_of(house, episode) -> list[int]:
    """Ids of the rooms the episode's reference path passes through, in order (a room entered twice counts
    twice); an error when it lies outside every room, i.e. the house is not the episode's."""
    route = rooms_along(house, episode.reference_path)
    if not route:
        raise VidNavError(
            f"episode {episode.episode_id}: its reference path lies outside every room of "
            f"{episode.scene_id}; is --data the benchmark this run used?"
        )
    return route


def read_run(run: Path) -> tuple[list[dict], dict]:
    """The result records of an eval output folder and its run.json ({} when absent)."""
    path = run / "results.jsonl"
    if not path.is_file():
        raise VidNavError(f"{path} not found: RUN must be an output folder of `vidnav eval --out RUN`")
    recs = read_jsonl_records(path, "episode_id", "evaluation results")
    meta = json.loads((run / "run.json").read_text()) if (run / "run.json").is_file() else {}
    return recs, meta


def load_run(
    run: str | Path, data: str | Path | None = None, split: str | None = None, episodes: int | None = None
) -> dict:
    """What a report of the run in folder ``run`` reads: ``results`` (of the split's first ``episodes`` only,
    when given), ``meta`` (RUN/run.json), ``data``, ``split``, ``episodes`` (episode id -> Episode of the
    selected ones) and ``houses`` (as :func:`load_houses`); ``data`` / ``split`` default to RUN/run.json's."""
    from vidnav.data.episodes import load_split

    run = Path(run)
    results_path = run / "results.jsonl"
    results, meta = read_run(run)
    data = data if data is not None else meta.get("data")
    split = split if split is not None else meta.get("split")
    if data is None or split is None:
        raise VidNavError(f"{run / 'run.json'} is missing or does not name the data and split; pass --data and --split")
    if not results:
        raise VidNavError(f"{results_path} holds no finished episodes yet")
    if episodes is not None and episodes < 1:
        raise VidNavError(f"--episodes must be >= 1, got {episodes}")
    if split == meta.get("split") and meta.get("episodes_sha256"):  # the run's episodes, by content not path
        from vidnav.data.episodes import split_paths
        from vidnav.io import files_sha256

        paths = split_paths(data, split)
        if all(Path(p).is_file() for p in paths) and files_sha256(*paths) != meta["episodes_sha256"]:
            raise VidNavError(
                f"{run} was evaluated on other {split} episodes than those in {data} (episodes_sha256 "
                f"of {run / 'run.json'} differs): point --data at the benchmark the run used, or "
                "rerun the evaluation on this one"
            )
    selected = load_split(data, split).episodes[:episodes]
    by_id = {str(e.episode_id): e for e in selected}
    if episodes is not None:
        results = [r for r in results if str(r["episode_id"]) in by_id]
        if not results:
            raise VidNavError(f"{results_path} holds none of the first {episodes} episodes of {split}")
    houses = load_houses(data, [by_id[str(r["episode_id"])] for r in results if str(r["episode_id"]) in by_id])
    return {"results": results, "meta": meta, "data": data, "split": split, "episodes": by_id, "houses": houses}


def report_run(
    run: str | Path,
    data: str | Path | None = None,
    split: str | None = None,
    episodes: int | None = None,
    write: bool = True,
    loaded: dict | None = None,
) -> dict:
    """Break down the run in folder ``run`` (written by `vidnav eval`); ``data`` / ``split`` default to the
    ones in RUN/run.json; ``episodes``: only results of the split's first N episodes; ``loaded``: what
    :func:`load_run` returned for these arguments, if already read. Writes RUN/report.json (atomically)
    unless ``write`` is False."""
    run = Path(run)
    d = loaded if loaded is not None else load_run(run, data, split, episodes)
    rep = {
        "run": str(run),
        "agent": d["meta"].get("agent"),
        "data": str(d["data"]),
        "split": d["split"],
        **breakdown(d["results"], d["episodes"], d["houses"]),
    }
    if write:
        write_json(run / "report.json", rep)
    return rep


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def format_report(rep: dict) -> str:
    """The report as plain-text tables."""
    lines = [
        f"{rep['run']}: agent {rep.get('agent')}, {rep['split']}, {rep['episodes']} episodes, SR {rep['success']:.3f}",
        "",
        "by geodesic start distance:",
        "distance | eps | SR | SPL | OSR",
    ]
    lines += [
        f"{r['bin']} | {r['n']} | {_num(r['success'])} | {_num(r['spl'])} | {_num(r['oracle_success'])}"
        for r in rep["by_start_distance"]
    ]
    if "by_route_rooms" not in rep:
        lines += ["", "(scenes are not vidnav houses: no room breakdown)"]
        return "\n".join(lines)
    lines += ["", "by rooms on the reference route:", "rooms | eps | SR | SPL | OSR"]
    lines += [
        f"{r['bin']} | {r['n']} | {_num(r['success'])} | {_num(r['spl'])} | {_num(r['oracle_success'])}"
        for r in rep["by_route_rooms"]
    ]
    f = rep["failures"]
    lines += [
        "",
        f"how the {f['n']} failures ended ({f['passed_goal']} of them passed within the success radius and went on):",
        "ended | n | share | median steps | median length (m)",
    ]
    for m in f["modes"]:
        med_s = "-" if m["median_steps"] is None else f"{m['median_steps']:.0f}"
        med_l = "-" if m["median_length"] is None else f"{m['median_length']:.1f}"
        lines.append(f"{m['mode']} | {m['n']} | {_num(m['share'])} | {med_s} | {med_l}")
    lines += [
        f"{f['wrong_exit']} failures left the start room into another room than the route's; "
        f"{f['near_exit']} of those that never left came within 1 m of the route's exit door"
    ]
    return "\n".join(lines)


def _median_fmt(spec: str) -> Callable[[float | None], str]:
    return lambda v: "-" if v is None else format(v, spec)


def report_blocks(rep: dict, header: bool = True) -> list:
    """The report as lines (str) and rich tables, in the order `vidnav report` prints them (the numbers as in
    :func:`format_report`); ``header``: start with the line naming the run, its agent and SR."""
    from vidnav.eval.tables import Column, build_table, text_column

    def bins(head: str, rows: list[dict]):
        return build_table(
            [text_column(head), Column("eps"), Column("SR", _num), Column("SPL", _num), Column("OSR", _num)],
            ([r["bin"], r["n"], r["success"], r["spl"], r["oracle_success"]] for r in rows),
        )

    blocks: list = []
    if header:
        blocks += [
            f"{rep['run']}: agent {rep.get('agent')}, {rep['split']}, {rep['episodes']} episodes, "
            f"SR {rep['success']:.3f}",
            "",
        ]
    blocks += ["by geodesic start distance:", bins("distance", rep["by_start_distance"])]
    if "by_route_rooms" not in rep:
        return blocks + ["(scenes are not vidnav houses: no room breakdown)"]
    blocks += ["", "by rooms on the reference route:", bins("rooms", rep["by_route_rooms"])]
    f = rep["failures"]
    blocks += [
        "",
        f"how the {f['n']} failures ended ({f['passed_goal']} of them passed within the success radius and went on):",
        build_table(
            [
                text_column("ended"),
                Column("n"),
                Column("share", _num),
                Column("median steps", _median_fmt(".0f")),
                Column("median length (m)", _median_fmt(".1f")),
            ],
            ([m["mode"], m["n"], m["share"], m["median_steps"], m["median_length"]] for m in f["modes"]),
        ),
        f"{f['wrong_exit']} failures left the start room into another room than the route's; "
        f"{f['near_exit']} of those that never left came within 1 m of the route's exit door",
    ]
    return blocks


def print_report(rep: dict, header: bool = True, file=None) -> None:
    """Print :func:`report_blocks` as terminal tables (no colour codes nor cut rows when not a terminal)."""
    from vidnav.eval.tables import show

    show(*report_blocks(rep, header=header), file=file)
