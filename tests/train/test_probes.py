"""Linear probes of frozen features: a linearly encoded label is read, a random one is not, pooling matters,
and `vidnav probe` runs end to end on rollout folders (synthetic features over real house geometry)."""

import json
import math

import numpy as np
import pytest

from vidnav.cli import main
from vidnav.data.features import FeatureStore
from vidnav.data.frame_labels import frame_labels
from vidnav.errors import VidNavError
from vidnav.sim.house import House
from vidnav.train.probes import ProbeFrames, label_rollouts, run_probes, stratified_sample


def synthetic(houses: int, per_house: int, seed: int) -> ProbeFrames:
    """Frames on a 4x4 grid of 8 channels: 'linear' is written into channels 0-2 of every patch, 'spatial' is
    +signal on the left half of the grid and -signal on the right (so a 1x1 mean cancels it), 'random' is not
    in the features at all (70 % one class)."""
    rng = np.random.default_rng(seed)
    n = houses * per_house
    feats = rng.normal(size=(n, 16, 8)).astype(np.float16)
    linear = rng.integers(0, 3, n)
    spatial = rng.integers(0, 2, n)
    grid = feats.reshape(n, 4, 4, 8)
    grid[np.arange(n), :, :, linear] += 2.0
    sign = np.where(spatial == 1, 1.0, -1.0)[:, None, None]
    grid[:, :, :2, 3] += 1.5 * sign
    grid[:, :, 2:, 3] -= 1.5 * sign
    labels = {
        "linear": [f"c{v}" for v in linear],
        "spatial": [bool(v) for v in spatial],
        "random": [bool(v) for v in rng.random(n) < 0.3],
    }
    return ProbeFrames(lambda idx: feats[np.asarray(idx)], [f"h{i // per_house}" for i in range(n)], labels)


def test_probes_read_what_is_linearly_encoded_and_nothing_else():
    train, held = synthetic(8, 120, seed=0), synthetic(4, 120, seed=1)
    res = run_probes(
        train, held, [1, 4], ["linear", "spatial", "random"], max_frames=600, max_heldout=400, max_iter=100
    )
    assert res["linear"]["grids"]["1"]["acc"] > 0.95 and res["linear"]["grids"]["4"]["acc"] > 0.95
    # a left/right pattern survives 4x4 pooling but not the 1x1 mean
    assert res["spatial"]["grids"]["4"]["acc"] > 0.95
    assert abs(res["spatial"]["grids"]["1"]["acc"] - 0.5) < 0.12
    # a label the features do not carry: no better than always answering the majority class
    r = res["random"]
    assert r["majority_class"] == "False" and 0.6 < r["majority_acc"] < 0.8
    assert r["grids"]["4"]["acc"] < r["majority_acc"] + 0.05
    assert abs(r["grids"]["4"]["balanced_acc"] - 0.5) < 0.1
    assert r["n_train"] == 600 and r["n_heldout"] == 400
    assert res["linear"]["majority_balanced_acc"] == pytest.approx(1 / 3)


def test_stratified_sample_keeps_class_shares_and_rare_classes():
    values = ["a"] * 900 + ["b"] * 90 + ["c"] * 10 + [None] * 50
    order = np.random.default_rng(0).permutation(len(values))
    pick = stratified_sample(values, 200, order, min_per_class=20)
    counts = {c: sum(values[i] == c for i in pick) for c in "abc"}
    assert counts == {"a": 180, "b": 20, "c": 10}  # 90 % and 9 % of 200; c has fewer than 20: all of them
    assert all(values[i] is not None for i in pick)
    # the frames come earliest in the shared order: a second probe with the same order draws the same ones
    rank = np.argsort(order)
    a_rows = [i for i in pick if values[i] == "a"]
    assert max(rank[a_rows]) < min(rank[i] for i in range(900) if i not in set(a_rows))
    assert len(stratified_sample(values, 5000, order)) == 1000  # under the budget: every labelled frame


def fake_rollouts(folder, bench, scenes, seed, with_poses=True):
    """A rollout folder over real houses: random poses in the rooms; features carry the room type in channel
    (type index) of every patch, and noise."""
    from vidnav.sim.house import ROOM_TYPES

    types = sorted(ROOM_TYPES)
    rng = np.random.default_rng(seed)
    store = FeatureStore(folder / "features", shape=(64, 16), encoder="synthetic")
    lines = []
    for s, scene in enumerate(scenes):
        house = House.load(bench / scene)
        for t in range(3):
            poses, feats = [], []
            while len(poses) < 60:
                room = house.rooms[int(rng.integers(len(house.rooms)))]
                pose = (
                    float(rng.uniform(room.x0, room.x1)),
                    float(rng.uniform(room.z0, room.z1)),
                    float(rng.uniform(-math.pi, math.pi)),
                )
                f = rng.normal(size=(64, 16))
                f[:, types.index(frame_labels(house, pose).room_type)] += 2.0
                poses.append(list(pose))
                feats.append(f)
            key = f"x/traj-{s}-{t}"
            store.add(key, np.stack(feats))
            rec = {"key": key, "instruction": "go", "targets": [["stop"]] * 60, "scene_id": scene}
            if with_poses:
                rec["poses"] = poses
            lines += [json.dumps(rec)] * 2  # two instructions of one path share its frames
    (folder / "trajectories.jsonl").write_text("\n".join(lines) + "\n")


def test_probe_command_end_to_end(tiny_benchmark, tmp_path, capsys):
    houses = sorted(p.name for p in (tiny_benchmark / "houses").glob("*.json"))
    train = [f"houses/{h}" for h in houses if h.startswith("train")]
    unseen = [f"houses/{h}" for h in houses if not h.startswith("train")]
    assert len(train) >= 2 and unseen
    fake_rollouts(tmp_path / "tr", tiny_benchmark, train, seed=0)
    fake_rollouts(tmp_path / "ho", tiny_benchmark, unseen, seed=1)
    out = tmp_path / "probes"
    main(
        [
            "probe",
            "--data",
            str(tiny_benchmark),
            "--rollouts",
            str(tmp_path / "tr"),
            "--heldout",
            str(tmp_path / "ho"),
            "--grid",
            "1",
            "--grid",
            "8",
            "--probe",
            "room_type",
            "--probe",
            "door_ahead",
            "--max-iter",
            "100",
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    res = json.loads((out / "probes.json").read_text())
    assert res["grids"] == [1, 8] and set(res["probes"]) == {"room_type", "door_ahead"}
    rt = res["probes"]["room_type"]
    assert rt["n_train"] == 60 * 3 * len(train)  # each path's frames once, though two lines name it
    assert rt["grids"]["1"]["acc"] > 0.95 and rt["grids"]["8"]["acc"] > 0.9 and rt["majority_acc"] < 0.6
    # where the doors are is not in these features
    da = res["probes"]["door_ahead"]
    assert da["grids"]["1"]["acc"] < da["majority_acc"] + 0.08
    assert "| room_type |" in printed and (out / "probes.md").read_text().startswith("| probe |")

    with pytest.raises(SystemExit) as e:  # held-out frames from the training houses
        main(
            [
                "probe",
                "--data",
                str(tiny_benchmark),
                "--rollouts",
                str(tmp_path / "tr"),
                "--heldout",
                str(tmp_path / "tr"),
                "--out",
                str(out),
            ]
        )
    assert e.value.code == 2 and "--rollouts and --heldout share 2 houses" in capsys.readouterr().err
    fake_rollouts(tmp_path / "old", tiny_benchmark, unseen, seed=1, with_poses=False)
    with pytest.raises(VidNavError, match="has no 'poses'.*collect the rollouts again"):
        label_rollouts(tiny_benchmark, [tmp_path / "old"])


def test_fitting_in_the_span_of_the_frames_gives_the_same_probe():
    """With more dimensions than frames the fit runs on x @ span(x); the penalised optimum is the same, so the
    held-out predictions and the penalised loss agree with a fit on x itself."""
    import torch

    from vidnav.train.probes import _fit, _Head, _span

    g = torch.Generator().manual_seed(0)
    x, x_new = torch.randn(40, 300, generator=g), torch.randn(25, 300, generator=g)
    y = (x[:, :5].sum(1) > 0).long() + (x[:, 5] > 1).long()
    heads = [_Head(torch.arange(40), y, 3)]
    basis = _span(x)
    assert basis.shape == (300, 40)
    ((w, b),) = _fit(x, heads, [1e-2], max_iter=300)
    ((v, c),) = _fit(x @ basis, heads, [1e-2], max_iter=300)
    torch.testing.assert_close(x_new @ w + b, x_new @ basis @ v + c, atol=2e-3, rtol=1e-3)
    assert float((w - basis @ v).abs().max()) < 2e-3  # the same weights, written in the span's basis


def test_the_look_oracle_names_the_room_type_from_its_textures():
    from vidnav.train.probes import look_oracle

    def frames(types, floors, walls):
        return ProbeFrames(None, ["h"] * len(types), {"room_type": types, "floor": floors, "wall": walls})

    train = frames(
        ["kitchen", "kitchen", "bedroom", "office", "office", "bathroom"],
        ["marble", "marble", "wood", "wood", "wood", "marble"],
        ["white", "white", "drywall", "drywall", "drywall", "concrete_tiles"],
    )
    held = frames(
        ["kitchen", "office", "bedroom", "bathroom", "kitchen"],
        ["marble", "wood", "wood", "marble", "marble"],
        ["white", "drywall", "drywall", "stucco", "concrete_tiles"],
    )
    # (marble, white) -> kitchen; (wood, drywall) -> office (2 of 3); marble + unseen stucco -> by floor, kitchen;
    # (marble, concrete_tiles) -> bathroom
    assert look_oracle(train, held, np.arange(6), np.arange(5)) == pytest.approx(2 / 5)
