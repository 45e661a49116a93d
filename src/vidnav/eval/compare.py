"""Paired comparison of two evaluation runs on the episodes both finished. Behind `vidnav compare A B`.

    cmp = compare_runs("runs/default", "runs/mine")
    print_comparison(cmp)   # the tables in the terminal; format_comparison(cmp): as plain text

Two agents evaluated on the same episodes are compared episode by episode, which is far more sensitive
than comparing their means: success with McNemar's exact test on the discordant episodes (solved by one
agent only), the other metrics with a paired bootstrap 95 % interval of the mean difference B - A.
With ``by_rooms`` the goal counts and McNemar's test are repeated per number of rooms on the reference route
(vidnav houses only), to see whether a change helps short routes or long ones.
"""

from __future__ import annotations

import random
from pathlib import Path

from vidnav.errors import VidNavError
from vidnav.eval.report import ROOM_BINS, load_houses, read_run, rooms_bin, route_of
from vidnav.metrics import SUMMARY_KEYS


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: the binomial(n, 1/2) test on the n = only_a + only_b discordant pairs."""
    if only_a < 0 or only_b < 0:
        raise ValueError(f"discordant counts must be >= 0, got {only_a}, {only_b}")
    if only_a + only_b == 0:
        return 1.0
    from scipy.stats import binomtest

    return float(binomtest(only_a, only_a + only_b, 0.5).pvalue)


def bootstrap_interval(
    diffs: list[float], samples: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of paired differences (deterministic for a given seed)."""
    if not diffs:
        raise ValueError("no differences to bootstrap")
    rng = random.Random(seed)
    n = len(diffs)
    means = sorted(sum(rng.choices(diffs, k=n)) / n for _ in range(samples))
    lo = int(round((1 - level) / 2 * samples))
    return means[lo], means[min(samples - 1, samples - 1 - lo)]


def _load(run: Path) -> tuple[dict[str, dict], dict]:
    recs, meta = read_run(run)
    return {str(r["episode_id"]): r for r in recs}, meta


def _order(ids: set[str]) -> list[str]:
    return sorted(ids, key=lambda i: (0, int(i), "") if i.isdigit() else (1, 0, i))


def _goal_counts(ra: dict[str, dict], rb: dict[str, dict], ids: list[str]) -> dict:
    only_a = sum(1 for i in ids if float(ra[i]["success"]) and not float(rb[i]["success"]))
    only_b = sum(1 for i in ids if float(rb[i]["success"]) and not float(ra[i]["success"]))
    both = sum(1 for i in ids if float(ra[i]["success"]) and float(rb[i]["success"]))
    return {
        "only_a": only_a,
        "only_b": only_b,
        "both": both,
        "neither": len(ids) - only_a - only_b - both,
        "mcnemar_p": mcnemar_exact(only_a, only_b),
    }


def paired_by_rooms(ra: dict[str, dict], rb: dict[str, dict], ids: list[str], rooms: dict[str, int]) -> list[dict]:
    """Goal counts and McNemar's p per route-rooms bin; ``rooms``: episode id -> rooms on its reference route."""
    bins: dict[str, list[str]] = {rooms_bin(k): [] for k in ROOM_BINS}
    for i in ids:
        bins[rooms_bin(rooms[i])].append(i)
    return [{"rooms": label, "episodes": len(group), **_goal_counts(ra, rb, group)} for label, group in bins.items()]


def _route_rooms(data: str | Path, split: str, results: dict[str, dict], ids: list[str]) -> dict[str, int]:
    from vidnav.data.episodes import load_split

    by_id = {str(e.episode_id): e for e in load_split(data, split).episodes}
    foreign = [i for i in ids if i not in by_id or results[i].get("scene_id", by_id[i].scene_id) != by_id[i].scene_id]
    if foreign:
        raise VidNavError(
            f"episode {foreign[0]!r} is not in the {split} split of {data} (no such id, or another "
            "scene); point --data at the benchmark the runs used"
        )
    eps = [by_id[i] for i in ids]
    houses = load_houses(data, eps)
    if houses is None:
        raise VidNavError(f"the scenes of {data} are not vidnav houses: --by-rooms needs the room layout")
    return {i: len(route_of(houses[e.scene_id], e)) for i, e in zip(ids, eps)}


def compare_runs(
    a: str | Path,
    b: str | Path,
    episodes: int | None = None,
    samples: int = 2000,
    seed: int = 0,
    by_rooms: bool = False,
    data: str | Path | None = None,
    only: set[str] | None = None,
) -> dict:
    """Compare run B against run A on the episodes both finished (the first ``episodes`` of them, by id).

    ``by_rooms``: also the goal counts per number of rooms on the reference route, read from ``data`` (default:
    the benchmark named in the runs' run.json); ``only``: episode ids to keep (e.g. a report's selection)."""
    a, b = Path(a), Path(b)
    ra, ma = _load(a)
    rb, mb = _load(b)
    fingerprinted = ma.get("episodes_sha256") and mb.get("episodes_sha256")  # the episodes' content, not path
    if fingerprinted and ma["episodes_sha256"] != mb["episodes_sha256"]:
        raise VidNavError(
            f"{a} and {b} were evaluated on different episode files (the episodes_sha256 of their "
            "run.json differ; was the data rebuilt?); a paired comparison needs the same episodes"
        )
    for key in ("split",) if fingerprinted else ("data", "split"):
        if ma.get(key) and mb.get(key) and ma[key] != mb[key]:
            raise VidNavError(
                f"{a} and {b} were evaluated on different {key}s ({ma[key]!r} vs {mb[key]!r}); "
                "a paired comparison needs the same episodes"
            )
    ids = _order(set(ra) & set(rb) & (set(ra) if only is None else set(only)))
    if episodes is not None:
        if episodes < 1:
            raise VidNavError(f"--episodes must be >= 1, got {episodes}")
        ids = ids[:episodes]
    if not ids:
        raise VidNavError(f"{a} and {b} have no finished episode in common")
    for i in ids:
        if ra[i].get("scene_id") != rb[i].get("scene_id"):
            raise VidNavError(
                f"episode {i} is in scene {ra[i].get('scene_id')!r} in {a} but "
                f"{rb[i].get('scene_id')!r} in {b}: the runs used different episode files"
            )
    n = len(ids)
    metrics = [m for m in SUMMARY_KEYS if all(ra[i].get(m) is not None and rb[i].get(m) is not None for i in ids)]
    rows = []
    for m in metrics:
        diffs = [float(rb[i][m]) - float(ra[i][m]) for i in ids]
        lo, hi = bootstrap_interval(diffs, samples=samples, seed=seed)
        rows.append(
            {
                "metric": m,
                "a": sum(float(ra[i][m]) for i in ids) / n,
                "b": sum(float(rb[i][m]) for i in ids) / n,
                "diff": sum(diffs) / n,
                "lo": lo,
                "hi": hi,
            }
        )
    split = ma.get("split") or mb.get("split")
    out = {
        "a": str(a),
        "b": str(b),
        "agent_a": ma.get("agent"),
        "agent_b": mb.get("agent"),
        "split": split,
        "episodes": n,
        **_goal_counts(ra, rb, ids),
        "bootstrap_samples": samples,
        "metrics": rows,
    }
    if by_rooms:
        data = data if data is not None else ma.get("data") or mb.get("data")
        if data is None or split is None:
            raise VidNavError(
                f"{a / 'run.json'} does not name the data and split; pass --data (and evaluate "
                "with `vidnav eval`, which records the split)"
            )
        out["by_route_rooms"] = paired_by_rooms(ra, rb, ids, _route_rooms(data, split, ra, ids))
    return out


def format_comparison(c: dict) -> str:
    """The comparison as plain text: the goal counts with McNemar's p, then one row per metric."""
    lines = [
        f"A = {c['a']} ({c['agent_a']}), B = {c['b']} ({c['agent_b']}): {c['episodes']} common "
        f"{c['split'] or ''} episodes",
        f"goals: only A {c['only_a']}, only B {c['only_b']}, both {c['both']}, neither {c['neither']}; "
        f"McNemar exact p = {c['mcnemar_p']:.4f}",
        "",
        f"metric | A | B | B - A | bootstrap 95 % ({c['bootstrap_samples']} resamples)",
    ]
    for r in c["metrics"]:
        lines.append(
            f"{r['metric']} | {r['a']:.3f} | {r['b']:.3f} | {r['diff']:+.3f} | [{r['lo']:+.3f}, {r['hi']:+.3f}]"
        )
    if c.get("by_route_rooms"):
        lines += ["", "by rooms on the reference route:", "rooms | eps | A goals | B goals | only A | only B | p"]
        for r in c["by_route_rooms"]:
            lines.append(
                f"{r['rooms']} | {r['episodes']} | {r['only_a'] + r['both']} | {r['only_b'] + r['both']} | "
                f"{r['only_a']} | {r['only_b']} | {r['mcnemar_p']:.3f}"
            )
    return "\n".join(lines)


def comparison_blocks(c: dict) -> list:
    """The comparison as lines (str) and rich tables, in the order `vidnav compare` prints them (the numbers as
    in :func:`format_comparison`)."""
    from vidnav.eval.tables import Column, build_table, text_column

    def signed(v: float) -> str:
        return f"{v:+.3f}"

    blocks: list = [
        f"A = {c['a']} ({c['agent_a']}), B = {c['b']} ({c['agent_b']}): {c['episodes']} common "
        f"{c['split'] or ''} episodes",
        f"goals: only A {c['only_a']}, only B {c['only_b']}, both {c['both']}, neither {c['neither']}; "
        f"McNemar exact p = {c['mcnemar_p']:.4f}",
        "",
        build_table(
            [
                text_column("metric"),
                Column("A", lambda v: f"{v:.3f}"),
                Column("B", lambda v: f"{v:.3f}"),
                Column("B - A", signed),
                Column(
                    f"bootstrap 95 % ({c['bootstrap_samples']} resamples)", lambda lh: f"[{lh[0]:+.3f}, {lh[1]:+.3f}]"
                ),
            ],
            ([r["metric"], r["a"], r["b"], r["diff"], (r["lo"], r["hi"])] for r in c["metrics"]),
        ),
    ]
    if c.get("by_route_rooms"):
        blocks += [
            "",
            "by rooms on the reference route:",
            build_table(
                [
                    text_column("rooms"),
                    Column("eps"),
                    Column("A goals"),
                    Column("B goals"),
                    Column("only A"),
                    Column("only B"),
                    Column("p", lambda v: f"{v:.3f}"),
                ],
                (
                    [
                        r["rooms"],
                        r["episodes"],
                        r["only_a"] + r["both"],
                        r["only_b"] + r["both"],
                        r["only_a"],
                        r["only_b"],
                        r["mcnemar_p"],
                    ]
                    for r in c["by_route_rooms"]
                ),
            ),
        ]
    return blocks


def print_comparison(c: dict, file=None) -> None:
    """Print :func:`comparison_blocks` as terminal tables (no colour codes nor cut rows when not a terminal)."""
    from vidnav.eval.tables import show

    show(*comparison_blocks(c), file=file)
