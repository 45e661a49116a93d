"""Held-out action accuracy (vidnav.train.validate and `vidnav validate`): the scoring, not a trained model."""

from __future__ import annotations

import json

import pytest
import torch

from vidnav.data.dataset import NavSamples, synthetic_rollout
from vidnav.errors import VidNavError
from vidnav.train.validate import action_accuracy, format_report, sample_subset

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
    with pytest.raises(VidNavError, match="max_samples"):
        sample_subset(5, 0)


def test_scores_plans_against_expert_targets(model, samples, monkeypatch):
    items = [samples[i] for i in range(len(samples))]
    firsts = [it["targets"][0] for it in items]
    # a model that always plans the expert's actions (batches come in sample order)
    pending = [list(it["targets"]) for it in items]

    def perfect(batch):
        n = len(batch["num_frames"])
        out, pending[:n] = pending[:n], []
        return out

    monkeypatch.setattr(model, "plan", perfect)
    m = action_accuracy(model, samples, max_samples=None, batch_size=5)
    assert m["samples"] == len(items) == 24
    assert m["first_action_acc"] == m["plan_acc"] == 1.0 and m["word_acc"] == [1.0] * 4
    share = {w: firsts.count(w) / len(items) for w in ("forward", "left", "right", "stop")}
    assert m["label_share"] == pytest.approx(share) and m["planned_share"] == pytest.approx(share)
    assert m["recall"]["stop"] == 1.0 and m["loss"] > 0

    # a model that always says forward: recall 1 for forward, 0 for the rest, accuracy = forward's share
    monkeypatch.setattr(model, "plan", lambda batch: [["forward"] * 4 for _ in batch["num_frames"]])
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
    main(["validate", "--agent", str(tmp_path / "ckpt"), "--data", str(samples.rollout_dirs[0]), "--samples", "6",
          "--out", str(out)])
    m = json.loads(out.read_text())
    assert m["samples"] == 6 and m["agent"] == str(tmp_path / "ckpt") and 0 <= m["first_action_acc"] <= 1


def test_validate_cli_rejects_missing_data(tmp_path):
    from vidnav.cli import main

    with pytest.raises(SystemExit) as e:
        main(["validate", "--agent", "default", "--data", str(tmp_path / "nope")])
    assert e.value.code == 2
