"""`vidnav compare`: McNemar's exact test, the paired bootstrap, and the comparison of two run folders."""

import json
import re

import pytest

from vidnav.cli import main
from vidnav.errors import VidNavError
from vidnav.eval.compare import _route_rooms, bootstrap_interval, compare_runs, mcnemar_exact, paired_by_rooms


def test_mcnemar_exact():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(0, 5) == pytest.approx(2 / 32)
    assert mcnemar_exact(1, 3) == pytest.approx(2 * 5 / 16)
    assert mcnemar_exact(3, 1) == mcnemar_exact(1, 3)
    assert mcnemar_exact(5, 5) == 1.0
    assert mcnemar_exact(24, 53) == pytest.approx(0.00128, abs=1e-4)  # the README's (e) vs (f)
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2)


def test_bootstrap_interval():
    assert bootstrap_interval([0.5] * 10) == (0.5, 0.5)
    diffs = [0.0] * 50 + [1.0] * 50
    lo, hi = bootstrap_interval(diffs, seed=1)
    assert lo < 0.5 < hi and 0.3 < lo and hi < 0.7
    assert bootstrap_interval(diffs, seed=1) == (lo, hi)  # deterministic


def write_run(folder, successes, split="val_unseen", scene="houses/a.json", agent="x"):
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps({"agent": agent, "data": "/d", "split": split}))
    lines = [
        json.dumps(
            {
                "episode_id": str(i + 1),
                "scene_id": scene,
                "success": float(s),
                "spl": 0.8 * s,
                "ndtw": 0.5,
                "steps": 10 + i,
            }
        )
        for i, s in enumerate(successes)
    ]
    (folder / "results.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_compare_runs_pairs_episodes(tmp_path):
    a = write_run(tmp_path / "a", [1, 1, 0, 0, 0, 1])
    b = write_run(tmp_path / "b", [1, 0, 1, 1, 1], agent="y")  # one episode fewer: 5 in common
    c = compare_runs(a, b)
    assert c["episodes"] == 5 and (c["only_a"], c["only_b"], c["both"], c["neither"]) == (1, 3, 1, 0)
    assert c["mcnemar_p"] == pytest.approx(0.625)
    rows = {r["metric"]: r for r in c["metrics"]}
    assert set(rows) == {"success", "spl", "ndtw", "steps"}  # only the metrics both runs record
    assert rows["success"]["a"] == pytest.approx(0.4) and rows["success"]["diff"] == pytest.approx(0.4)
    assert rows["ndtw"]["diff"] == 0 and rows["ndtw"]["lo"] == rows["ndtw"]["hi"] == 0
    assert compare_runs(a, b, episodes=2)["episodes"] == 2


def test_compare_cli_and_errors(tmp_path, capsys):
    a = write_run(tmp_path / "a", [1, 0, 0])
    b = write_run(tmp_path / "b", [1, 1, 1])
    main(["compare", str(a), str(b)])
    out = capsys.readouterr().out
    success = next(re.split(r"\s{2,}", line.strip()) for line in out.splitlines() if line.startswith("success "))
    assert "only A 0, only B 2" in out and success[:4] == ["success", "0.333", "1.000", "+0.667"]
    with pytest.raises(VidNavError, match="different splits"):
        compare_runs(a, write_run(tmp_path / "s", [1], split="val_seen"))
    with pytest.raises(VidNavError, match="different episode files"):
        compare_runs(a, write_run(tmp_path / "o", [1], scene="houses/b.json"))
    with pytest.raises(VidNavError, match="results.jsonl not found"):
        compare_runs(a, tmp_path / "missing")
    empty = write_run(tmp_path / "e", [])
    (empty / "results.jsonl").write_text("")
    with pytest.raises(VidNavError, match="no finished episode in common"):
        compare_runs(a, empty)
    with pytest.raises(VidNavError, match="--episodes"):
        compare_runs(a, b, episodes=0)


def test_paired_by_rooms_counts_per_bin():
    ra = {str(i): {"success": s} for i, s in enumerate([1, 1, 0, 0, 1, 0, 1])}
    rb = {str(i): {"success": s} for i, s in enumerate([1, 0, 1, 1, 0, 0, 1])}
    rooms = {"0": 2, "1": 2, "2": 3, "3": 3, "4": 4, "5": 6, "6": 7}
    rows = {r["rooms"]: r for r in paired_by_rooms(ra, rb, list(ra), rooms)}
    assert list(rows) == ["1", "2", "3", "4", ">=5"]
    assert rows["1"]["episodes"] == 0 and rows["1"]["mcnemar_p"] == 1.0
    assert (rows["2"]["only_a"], rows["2"]["only_b"], rows["2"]["both"]) == (1, 0, 1)
    assert (rows["3"]["only_a"], rows["3"]["only_b"], rows["3"]["neither"]) == (0, 2, 0)
    assert (rows["4"]["only_a"], rows["4"]["only_b"]) == (1, 0)
    assert rows[">=5"]["episodes"] == 2 and rows[">=5"]["both"] == 1 and rows[">=5"]["neither"] == 1
    assert sum(r["episodes"] for r in rows.values()) == 7


def test_compare_by_rooms_on_real_runs(tiny_benchmark, tmp_path, capsys):
    from vidnav.eval.report import report_run
    from vidnav.eval.runner import evaluate

    a, b = tmp_path / "fwd", tmp_path / "oracle"
    evaluate(tiny_benchmark, "val_unseen", "forward", a, episodes=3, progress=False)
    evaluate(tiny_benchmark, "val_unseen", "oracle", b, episodes=3, progress=False)
    c = compare_runs(a, b, by_rooms=True)
    rows = c["by_route_rooms"]
    assert sum(r["episodes"] for r in rows) == 3
    assert sum(r["only_b"] + r["both"] for r in rows) == 3  # the oracle reaches every goal
    expected = {r["bin"]: r["n"] for r in report_run(b, write=False)["by_route_rooms"]}
    assert {r["rooms"]: r["episodes"] for r in rows} == expected  # the same bins as `vidnav report`
    assert "by_route_rooms" not in compare_runs(a, b)
    main(["compare", str(a), str(b), "--by-rooms"])
    assert "by rooms on the reference route:" in capsys.readouterr().out
    with pytest.raises(VidNavError, match="split 'val_unseen' not found"):
        compare_runs(a, b, by_rooms=True, data=tmp_path)
    first = str(json.loads((a / "results.jsonl").read_text().splitlines()[0])["episode_id"])
    with pytest.raises(VidNavError, match="no such id, or another scene"):  # an unknown id, then a moved one
        _route_rooms(tiny_benchmark, "val_unseen", {"nope": {}}, ["nope"])
    with pytest.raises(VidNavError, match="no such id, or another scene"):
        _route_rooms(tiny_benchmark, "val_unseen", {first: {"scene_id": "houses/elsewhere.json"}}, [first])
    assert _route_rooms(tiny_benchmark, "val_unseen", {first: {}}, [first])[first] >= 1
