"""The embedded benchmark: VLN-CE layout, R2R conventions, determinism, and the data CLI."""

import gzip
import json

import numpy as np
import pytest

from vidnav.data.build import BENCHMARK_VERSION, BuildConfig, build_benchmark
from vidnav.data.episodes import load_split
from vidnav.geometry import heading_from_quaternion
from vidnav.sim.house import House
from vidnav.sim.navmap import FORWARD, STOP, NavMap


def test_splits_follow_vlnce_layout_and_r2r_conventions(tiny_benchmark):
    meta = json.loads((tiny_benchmark / "benchmark.json").read_text())
    assert meta["version"] == BENCHMARK_VERSION
    assert meta["splits"] == {
        "train": {"episodes": 12, "paths": 4, "houses": 2},
        "val_seen": {"episodes": 6, "paths": 2, "houses": 2},
        "val_unseen": {"episodes": 12, "paths": 4, "houses": 2},
    }
    raw = json.loads(gzip.decompress((tiny_benchmark / "train" / "train.json.gz").read_bytes()))
    assert set(raw) == {"episodes", "instruction_vocab", "vidnav"} and raw["vidnav"]["version"] == BENCHMARK_VERSION
    ep = raw["episodes"][0]
    assert {
        "episode_id",
        "trajectory_id",
        "scene_id",
        "start_position",
        "start_rotation",
        "info",
        "goals",
        "reference_path",
        "instruction",
    } <= set(ep)
    assert ep["goals"][0]["radius"] == 3.0 and len(ep["instruction"]["instruction_tokens"]) == 200

    train, unseen = load_split(tiny_benchmark, "train"), load_split(tiny_benchmark, "val_unseen")
    assert not {e.scene_id for e in train} & {e.scene_id for e in unseen}  # unseen houses are unseen
    by_traj = {}
    for e in train:
        by_traj.setdefault(e.trajectory_id, []).append(e)
    assert all(len(v) == 3 and len({e.instruction.instruction_text for e in v}) == 3 for v in by_traj.values())


def test_episodes_agree_with_the_map_and_the_follower(tiny_benchmark):
    eps = load_split(tiny_benchmark, "val_unseen")
    for e in eps.episodes[::3]:
        house = House.load(tiny_benchmark / e.scene_id)
        nav = NavMap(house)
        (sx, _, sz), (gx, _, gz) = e.start_position, e.goals[0].position
        d = nav.distance(sx, sz, gx, gz)
        assert 5.0 <= d <= 20.0 and d == pytest.approx(e.info["geodesic_distance"], abs=1e-6)
        assert len({house.room_at(x, z).id for x, _, z in e.reference_path if house.room_at(x, z)}) >= 2
        gt = eps.gt_for(e)
        assert gt.actions[-1] == STOP and len(gt.locations) == gt.forward_steps + 1
        assert gt.forward_steps == sum(a == FORWARD for a in gt.actions)
        roll = nav.expert_rollout(sx, sz, heading_from_quaternion(e.start_rotation), gx, gz)
        assert roll.actions == gt.actions  # the gt is exactly the follower from the episode's start pose
        assert np.allclose(gt.locations[-1], [roll.poses[-1][0], 0.0, roll.poses[-1][1]])


def test_same_seed_same_bytes_for_any_worker_count(tmp_path):
    cfg = BuildConfig(
        train_houses=1, unseen_houses=1, episodes_per_house=3, val_seen_per_house=3, unseen_per_house=3, seed=11
    )
    build_benchmark(tmp_path / "a", cfg, workers=1, progress=False)
    build_benchmark(tmp_path / "b", cfg, workers=2, progress=False)
    for rel in ("train/train.json.gz", "val_unseen/val_unseen_gt.json.gz", "houses/unseen_0000.json"):
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()


def test_data_cli_build_and_inspect(tmp_path, capsys):
    from vidnav.cli import main

    main(
        [
            "data",
            "build",
            "--out",
            str(tmp_path / "d"),
            "--train-houses",
            "1",
            "--unseen-houses",
            "0",
            "--episodes-per-house",
            "3",
            "--val-seen-per-house",
            "0",
            "--workers",
            "1",
        ]
    )
    assert "train" in capsys.readouterr().out
    main(["data", "inspect", str(tmp_path / "d" / "train" / "train.json.gz"), "--json"])
    info = json.loads(capsys.readouterr().out)
    assert info["episodes"] == 3 and info["scenes"] == 1 and info["has_gt"]
    with pytest.raises(SystemExit) as e:
        main(["data", "build", "--out", str(tmp_path / "e"), "--train-houses", "-1"])
    assert e.value.code == 2
