"""nDTW needs the follower's ground-truth path: without it the number is unavailable, never a wrong one
(issue #33 defect 7: without val_unseen_gt.json.gz the oracle's nDTW read 0.24 instead of 1.00)."""

import gzip
import json
import shutil

import pytest

from vidnav.eval.runner import evaluate, format_table


def lines(out):
    return [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("gt", ["missing", "partial"])
def test_ndtw_without_ground_truth_is_unavailable(tiny_benchmark, tmp_path, gt):
    data = tmp_path / "data"
    shutil.copytree(tiny_benchmark, data)
    gt_path = data / "val_unseen" / "val_unseen_gt.json.gz"
    if gt == "missing":
        gt_path.unlink()
    else:
        doc = json.loads(gzip.decompress(gt_path.read_bytes()))
        del doc["2"]
        gt_path.write_bytes(gzip.compress(json.dumps(doc).encode()))
    summary = evaluate(data, "val_unseen", "oracle", tmp_path / "out", episodes=3, progress=False)
    recs = {r["episode_id"]: r for r in lines(tmp_path / "out")}
    without = {"1", "2", "3"} if gt == "missing" else {"2"}
    for eid, r in recs.items():
        if eid in without:
            assert r["ndtw"] is None and r["sdtw"] is None
        else:
            assert r["ndtw"] == pytest.approx(1.0, abs=0.02)
    assert summary["ndtw"] is None and summary["sdtw"] is None  # not a mean over the episodes that have it
    assert summary["success"] == 1.0
    row = format_table({"oracle": summary}).splitlines()[1].split(" | ")
    assert row[4:6] == ["n/a", "n/a"]
    from vidnav.eval.html_report import html_report

    page, _ = html_report([tmp_path / "out"])  # the report shows such episodes too (no nDTW for them)
    assert page.is_file() and '"ndtw": null' in page.read_text()
