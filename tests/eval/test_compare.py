"""`vidnav compare`: McNemar's exact test, the paired bootstrap, and the comparison of two run folders."""

import json

import pytest

from vidnav.cli import main
from vidnav.errors import VidNavError
from vidnav.eval.compare import bootstrap_interval, compare_runs, mcnemar_exact


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
    lines = [json.dumps({"episode_id": str(i + 1), "scene_id": scene, "success": float(s), "spl": 0.8 * s,
                         "ndtw": 0.5, "steps": 10 + i})
             for i, s in enumerate(successes)]
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
    assert "only A 0, only B 2" in out and "success | 0.333 | 1.000 | +0.667" in out
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
