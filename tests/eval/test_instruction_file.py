"""`vidnav eval --instructions FILE`: episodes worded anew (e.g. by people) run with those words, only them."""

from __future__ import annotations

import json

import pytest

from vidnav.data.episodes import load_split
from vidnav.errors import VidNavError
from vidnav.eval.runner import evaluate, read_jsonl_records


def _file(tmp_path, texts, split="val_unseen"):
    path = tmp_path / "words.json"
    path.write_text(json.dumps({"split": split, "instructions": texts}))
    return path


def test_only_the_listed_episodes_run_with_the_words_of_the_file(tiny_benchmark, tmp_path):
    eps = load_split(tiny_benchmark, "val_unseen").episodes
    texts = {
        str(eps[1].episode_id): "walk out of the room and stop by the box",
        str(eps[3].episode_id): "go into the kitchen, then stop in the middle of it",
    }
    path = _file(tmp_path, texts)
    out = tmp_path / "run"
    summary = evaluate(tiny_benchmark, "val_unseen", "oracle", out, instructions=str(path), progress=False)
    lines = read_jsonl_records(out / "results.jsonl", "episode_id", "results")
    assert summary["episodes"] == 2 and {r["episode_id"]: r["instruction"] for r in lines} == texts
    assert summary["success"] == 1.0  # the oracle walks to the episode's own goal: metrics are the episode's own
    from vidnav.eval.html_report import html_report

    page = html_report([out])[0].read_text()  # the report shows the words the agent was given
    assert all(json.dumps(t)[1:-1] in page for t in texts.values())
    path.write_text(json.dumps({"split": "val_unseen", "instructions": {**texts, str(eps[1].episode_id): "stop"}}))
    with pytest.raises(VidNavError, match="instructions"):  # other words into the same run: refused
        evaluate(tiny_benchmark, "val_unseen", "oracle", out, instructions=str(path), progress=False)


@pytest.mark.parametrize(
    "content, match",
    [
        ({"split": "val_unseen", "instructions": {"no-such-id": "go"}}, "no-such-id"),
        ({"split": "val_seen", "instructions": {"1": "go"}}, "val_seen"),
        ({"split": "val_unseen", "instructions": {}}, "non-empty"),
        ({"split": "val_unseen", "instructions": {"EP": "  "}}, "non-empty string"),
    ],
)
def test_bad_instruction_files_are_refused_naming_what_to_fix(tiny_benchmark, tmp_path, content, match):
    eid = str(load_split(tiny_benchmark, "val_unseen").episodes[0].episode_id)
    content = json.loads(json.dumps(content).replace('"EP"', json.dumps(eid)))
    with pytest.raises(VidNavError, match=match):
        evaluate(
            tiny_benchmark,
            "val_unseen",
            "forward",
            tmp_path / "run",
            progress=False,
            instructions=str(_file(tmp_path, content["instructions"], content["split"])),
        )
    with pytest.raises(VidNavError, match="no such file"):
        evaluate(
            tiny_benchmark,
            "val_unseen",
            "forward",
            tmp_path / "run",
            progress=False,
            instructions=str(tmp_path / "absent.json"),
        )
