"""Output folders keep a fingerprint of their input episodes (issue #33 defect 4): run.json and the rollout
folder named only the data *path*, so rebuilding the data there mixed two benchmarks' episodes in one summary
(and in one rollout folder), while a byte-identical copy at another path could not be compared."""

import gzip
import json
import shutil

import pytest

from vidnav.data.rollouts import collect_rollouts
from vidnav.errors import VidNavError
from vidnav.eval.compare import compare_runs
from vidnav.eval.runner import evaluate


def _edit_instruction(data, split):
    path = data / split / f"{split}.json.gz"
    doc = json.loads(gzip.decompress(path.read_bytes()))
    doc["episodes"][-1]["instruction"]["instruction_text"] += " Then wait."
    path.write_bytes(gzip.compress(json.dumps(doc).encode()))


def test_eval_refuses_to_resume_on_other_episodes_and_compares_identical_copies(tiny_benchmark, tmp_path):
    data, copy = tmp_path / "data", tmp_path / "copy"
    shutil.copytree(tiny_benchmark, data)
    shutil.copytree(tiny_benchmark, copy)
    evaluate(data, "val_unseen", "oracle", tmp_path / "a", episodes=2, progress=False)
    evaluate(copy, "val_unseen", "oracle", tmp_path / "b", episodes=2, progress=False)
    assert compare_runs(tmp_path / "a", tmp_path / "b", samples=100)["episodes"] == 2  # same bytes, other path
    _edit_instruction(data, "val_unseen")  # the data rebuilt at the same path
    with pytest.raises(VidNavError, match=r"another run \(episodes_sha256="):
        evaluate(data, "val_unseen", "oracle", tmp_path / "a", episodes=3, progress=False)
    evaluate(data, "val_unseen", "oracle", tmp_path / "c", episodes=2, progress=False)
    with pytest.raises(VidNavError, match="different episode files"):
        compare_runs(tmp_path / "b", tmp_path / "c", samples=100)


def test_rollouts_refuse_to_resume_on_other_episodes(tiny_benchmark, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_benchmark, data)
    out = tmp_path / "roll"
    collect_rollouts(data, "train", out, episodes=1, progress=False)
    before = (out / "trajectories.jsonl").read_bytes()
    _edit_instruction(data, "train")
    with pytest.raises(VidNavError, match=r"manifest\.json.*other episodes"):
        collect_rollouts(data, "train", out, episodes=2, progress=False)
    assert (out / "trajectories.jsonl").read_bytes() == before
