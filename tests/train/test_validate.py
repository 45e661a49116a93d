"""Held-out action accuracy (vidnav.train.validate and `vidnav validate`): the scoring, not a trained model."""

from __future__ import annotations

import json

import pytest
import torch

from vidnav.data.dataset import NavSamples, synthetic_rollout
from vidnav.errors import VidNavError
from vidnav.train.validate import action_accuracy, format_report, sample_subset, swap_instructions

FAST = {"current_pool": 2, "lm_config": {"num_hidden_layers": 1}}


@pytest.fixture(scope="module")
def model():
    from vidnav.model import build_model

    torch.manual_seed(0)
    return build_model("tiny", **FAST)


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    return NavSamples(synthetic_rollout(tmp_path_factory.mktemp("val") / "R", n_trajectories=4, n_frames=6, seed=2))


def test_subset_is_seeded_sorted_and_complete_when_large():
    a, b = sample_subset(100, 10, seed=3), sample_subset(100, 10, seed=3)
    assert a == b == sorted(set(a)) and len(a) == 10 and all(0 <= i < 100 for i in a)
    assert sample_subset(100, 10, seed=4) != a
    assert sample_subset(5, 10) == sample_subset(5, None) == [0, 1, 2, 3, 4]


def test_scores_plans_against_expert_targets(model, samples, monkeypatch):
    items = [samples[i] for i in range(len(samples))]
    firsts = [it["targets"][0] for it in items]
    # a model that always plans the expert's actions (batches come in sample order)
    pending = [list(it["targets"]) for it in items]

    def perfect(batch):
        n = len(batch["num_frames"])
        out, pending[:n] = pending[:n], []
        return out

    monkeypatch.setattr(model, "score_and_plan", lambda batch: (model(**batch).loss, perfect(batch)))
    m = action_accuracy(model, samples, max_samples=None, batch_size=5)
    assert m["samples"] == len(items) == 24
    assert m["first_action_acc"] == m["plan_acc"] == 1.0 and m["word_acc"] == [1.0] * 4
    share = {w: firsts.count(w) / len(items) for w in ("forward", "left", "right", "stop")}
    assert m["label_share"] == pytest.approx(share) and m["planned_share"] == pytest.approx(share)
    assert m["recall"]["stop"] == 1.0 and m["loss"] > 0

    # a model that always says forward: recall 1 for forward, 0 for the rest, accuracy = forward's share
    monkeypatch.setattr(
        model, "score_and_plan", lambda batch: (model(**batch).loss, [["forward"] * 4 for _ in batch["num_frames"]])
    )
    m = action_accuracy(model, samples, max_samples=None, batch_size=7)
    assert m["first_action_acc"] == pytest.approx(share["forward"])
    assert m["recall"]["forward"] == 1.0 and m["recall"]["stop"] == 0.0
    assert m["planned_share"]["forward"] == 1.0
    assert sum(sum(row.values()) for row in m["confusion"].values()) == 24
    assert m["confusion"]["stop"]["forward"] == firsts.count("stop") == 4  # one stop per trajectory
    assert "first action" in format_report(m)


def test_real_plans_and_loss_do_not_depend_on_batching(model, samples):
    a = action_accuracy(model, samples, max_samples=10, batch_size=3, seed=1)
    b = action_accuracy(model, samples, max_samples=10, batch_size=10, seed=1)
    assert a["confusion"] == b["confusion"] and a["loss"] == pytest.approx(b["loss"], rel=1e-4)
    for mode in (True, False):  # scoring runs in eval mode and gives the model back as it was
        model.train(mode)
        action_accuracy(model, samples, max_samples=2)
        assert model.training is mode


def test_validate_cli_writes_json(tmp_path, model, samples):
    from vidnav.cli import main

    model.save_pretrained(tmp_path / "ckpt")
    out = tmp_path / "val.json"
    main(
        [
            "validate",
            "--agent",
            str(tmp_path / "ckpt"),
            "--data",
            str(samples.rollout_dirs[0]),
            "--samples",
            "6",
            "--out",
            str(out),
        ]
    )
    m = json.loads(out.read_text())
    assert m["samples"] == 6 and m["agent"] == str(tmp_path / "ckpt") and 0 <= m["first_action_acc"] <= 1
    assert "swapped_instructions" not in m
    main(
        [
            "validate",
            "--agent",
            str(tmp_path / "ckpt"),
            "--data",
            str(samples.rollout_dirs[0]),
            "--samples",
            "6",
            "--swap-instructions",
            "--out",
            str(out),
        ]
    )
    m = json.loads(out.read_text())
    assert m["swapped_instructions"]["samples"] == 6 and m["swapped_instructions"]["loss"] != m["loss"]
    main(
        [
            "validate",
            "--agent",
            str(tmp_path / "ckpt"),
            "--data",
            str(samples.rollout_dirs[0]),
            "--samples",
            "0",
            "--first-frames",
            "2",
            "--out",
            str(out),
        ]
    )
    assert json.loads(out.read_text())["samples"] == 4 * 2  # 4 trajectories, frames 0 and 1 of each
    main(
        [
            "validate",
            "--agent",
            str(tmp_path / "ckpt"),
            "--data",
            str(samples.rollout_dirs[0]),
            "--samples",
            "0",
            "--inflections",
            "--out",
            str(out),
        ]
    )
    from vidnav.data.dataset import inflections

    turns = sum(len(inflections(t.targets)) for t in samples.trajectories)
    assert 4 <= turns < len(samples) and json.loads(out.read_text())["samples"] == turns  # the stop is one in each


def test_swap_instructions_gives_each_path_another_paths_instructions(tmp_path):
    import numpy as np

    from vidnav.data.dataset import write_rollout

    # 4 paths with 3 instructions each (as R2R), one feature key per path
    trajs, feats = [], {}
    for p in range(4):
        feats[f"path-{p}"] = np.zeros((3, 4, 8), dtype=np.float16)
        trajs += [
            {
                "key": f"path-{p}",
                "instruction": f"instruction {i} of path {p}",
                "targets": [["forward"], ["left"], ["stop"]],
            }
            for i in range(3)
        ]
    samples = NavSamples(write_rollout(tmp_path / "R", trajs, feats))
    swapped = swap_instructions(samples, seed=0)
    assert swapped.samples == samples.samples and len(swapped) == len(samples)
    owner = {t.instruction: t.key for t in samples.trajectories}
    for before, after in zip(samples.trajectories, swapped.trajectories):
        assert after.key == before.key and after.targets == before.targets
        assert owner[after.instruction] != before.key  # always another path's words
    assert sorted(t.instruction for t in swapped.trajectories) == sorted(owner)  # each used once
    assert [t.instruction for t in samples.trajectories] == [
        f"instruction {i} of path {p}" for p in range(4) for i in range(3)
    ]  # the original is untouched
    assert swapped[0]["instruction"] == swapped.trajectories[0].instruction
    again = swap_instructions(samples, seed=0)
    assert [t.instruction for t in again.trajectories] == [t.instruction for t in swapped.trajectories]
    # DAgger folders: one feature key per episode, the path in trajectory_id; never a sibling's instruction
    dagger = [{**t, "key": f"ep-{j}", "trajectory_id": t["key"], "scene_id": "s"} for j, t in enumerate(trajs)]
    folder = write_rollout(tmp_path / "D", dagger, {f"ep-{j}": feats[t["key"]] for j, t in enumerate(trajs)})
    dag = NavSamples(folder)
    for seed in range(5):
        for before, after in zip(dag.trajectories, swap_instructions(dag, seed=seed).trajectories):
            assert owner[after.instruction] != before.extra["trajectory_id"]
    one_path = NavSamples(write_rollout(tmp_path / "one", trajs[:3], {"path-0": feats["path-0"]}))
    with pytest.raises(VidNavError, match="at least two paths"):
        swap_instructions(one_path)


def test_validate_cli_rejects_missing_data(tmp_path):
    from vidnav.cli import main

    with pytest.raises(SystemExit) as e:
        main(["validate", "--agent", "default", "--data", str(tmp_path / "nope")])
    assert e.value.code == 2


def test_samples_zero_means_all_and_a_negative_count_is_refused_before_the_model_loads(
    tmp_path, samples, capsys, monkeypatch
):
    """Issue #33 defect 10: `validate --samples 0` meant all samples while `-1` failed after the model had loaded,
    as "max_samples must be >= 1"; `train --eval-samples 0` was an error. Now 0 means all for both, and a negative
    count is refused naming the option, before anything is loaded."""
    import vidnav.agent
    from vidnav.cli import main
    from vidnav.train.config import TrainConfig

    def no_model(*a, **k):
        raise AssertionError("the model was loaded before --samples was checked")

    monkeypatch.setattr(vidnav.agent, "load_agent", no_model)
    for bad in ("-1", "-5"):
        with pytest.raises(SystemExit) as e:
            main(["validate", "--agent", "default", "--data", str(samples.rollout_dirs[0]), "--samples", bad])
        err = capsys.readouterr().err
        assert e.value.code == 2 and f"--samples must be >= 0 (0 = all samples), got {bad}" in err, err
    rollout = str(samples.rollout_dirs[0])
    assert TrainConfig(data=[rollout], eval_samples=0).validate().eval_samples == 0  # all held-out samples
    with pytest.raises(VidNavError, match=r"eval_samples must be >= 0 \(0 or unset = all held-out samples\), got -1"):
        TrainConfig(data=[rollout], eval_samples=-1).validate()
    assert sample_subset(5, 0) == [0, 1, 2, 3, 4]  # what both mean by 0
    with pytest.raises(VidNavError, match="max_samples must be >= 0"):
        sample_subset(5, -1)
