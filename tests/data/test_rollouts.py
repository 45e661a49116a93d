"""Expert and DAgger rollouts: features per frame, expert labels per visited state, resume."""

import json

import numpy as np
import pytest

from vidnav.data.episodes import load_split
from vidnav.data.features import FeatureStore
from vidnav.data.rollouts import collect_rollouts, expert_targets, select_episodes
from vidnav.errors import VidNavError
from vidnav.io import writer_lock
from vidnav.sim.house import House
from vidnav.sim.navmap import ACTION_WORDS, NavMap


def read(out):
    return [json.loads(x) for x in (out / "trajectories.jsonl").read_text().splitlines()]


def test_expert_rollouts_cache_features_once_per_path_and_label_every_frame(tiny_benchmark, tmp_path):
    out = tmp_path / "expert"
    stats = collect_rollouts(tiny_benchmark, "train", out, episodes=4, progress=False)
    eps = load_split(tiny_benchmark, "train")
    recs = read(out)
    assert [r["episode_id"] for r in recs] == ["1", "2", "3", "4"] and stats["success"] == 4
    store = FeatureStore(out / "features")
    assert store.shape == (64, 320)
    assert recs[0]["key"] == recs[1]["key"] == recs[2]["key"] != recs[3]["key"]  # 3 instructions share a path
    assert stats["frames_encoded"] == sum(len(store.get(k)) for k in {r["key"] for r in recs})
    for r in recs:
        ep = next(e for e in eps.episodes if str(e.episode_id) == r["episode_id"])
        gt = eps.gt_for(ep)
        assert r["instruction"] == ep.instruction.instruction_text
        assert len(r["targets"]) == len(store.get(r["key"])) == len(gt.actions)
        assert [t[0] for t in r["targets"]] == [ACTION_WORDS[a] for a in gt.actions]
        for t in range(len(gt.actions) - 3):  # the next k expert actions
            assert r["targets"][t] == [ACTION_WORDS[a] for a in gt.actions[t : t + 4]]
        assert r["targets"][-1] == ["stop"] * 4
    assert np.isfinite(store.get(recs[0]["key"]).astype(np.float32)).all()

    with writer_lock(out, "rollouts"):  # a second job on a folder still being written is refused untouched
        before = (out / "trajectories.jsonl").read_bytes()
        with pytest.raises(VidNavError, match="is being written by another rollouts job"):
            collect_rollouts(tiny_benchmark, "train", out, episodes=5, progress=False)
        assert (out / "trajectories.jsonl").read_bytes() == before
    again = collect_rollouts(tiny_benchmark, "train", out, episodes=5, progress=False)  # resume: only the new one
    assert again["skipped"] == 4 and again["episodes"] == 1 and len(read(out)) == 5


def test_dagger_labels_visited_states_with_the_expert(tiny_benchmark, tmp_path):
    from vidnav.model import build_model

    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    ckpt = tmp_path / "policy"
    build_model("tiny").save_pretrained(ckpt)
    out = tmp_path / "dagger"
    collect_rollouts(
        tiny_benchmark,
        "train",
        out,
        episodes=1,
        policy=str(ckpt),
        beta=0.5,
        max_steps=12,
        source="dagger-1",
        progress=False,
    )
    (r,) = read(out)
    assert r["source"] == "dagger-1" and r["key"].startswith("train/dagger-1/")
    feats = FeatureStore(out / "features").get(r["key"])
    assert len(feats) == len(r["targets"]) <= 12
    ep = load_split(tiny_benchmark, "train").episodes[0]
    nav = NavMap(House.load(tiny_benchmark / ep.scene_id))
    # the first state is the episode start: its label is the expert's plan from there
    from vidnav.geometry import heading_from_quaternion

    start = (ep.start_position[0], ep.start_position[2], heading_from_quaternion(ep.start_rotation))
    goal = (ep.goals[0].position[0], ep.goals[0].position[2])
    assert r["targets"][0] == expert_targets(nav, start, goal, 4)


def test_dagger_policy_plans_again_after_the_expert_overrides_it(tiny_benchmark, tmp_path, monkeypatch):
    """The policy's queued plan assumed its own first action; once the expert's action is taken instead, the
    policy must plan from the new state rather than play on the stale queue."""
    from vidnav.agent import Agent
    from vidnav.model import build_model

    pytest.importorskip("torch")
    ckpt = tmp_path / "policy"
    build_model("tiny").save_pretrained(ckpt)
    calls = []

    def plan(self, ban_first=None):
        calls.append(1)
        return ["left"] * 4

    monkeypatch.setattr(Agent, "plan", plan)
    out = tmp_path / "dagger"
    collect_rollouts(
        tiny_benchmark,
        "train",
        out,
        episodes=1,
        policy=str(ckpt),
        beta=1.0,
        max_steps=20,
        source="dagger-x",
        progress=False,
    )
    (r,) = read(out)
    executed = [t[0] for t in r["targets"]]  # beta 1: the expert's action at every state
    expected, queue = 0, []
    for word in executed:
        if not queue:
            queue, expected = ["left"] * 4, expected + 1
        if queue.pop(0) != word:
            queue = []
    assert "forward" in executed and len(calls) == expected > -(-len(executed) // 4)


def test_bad_arguments(tiny_benchmark, tmp_path):
    with pytest.raises(VidNavError, match="beta"):
        collect_rollouts(tiny_benchmark, "train", tmp_path / "x", beta=1.5, progress=False)
    with pytest.raises(VidNavError, match="--policy"):
        collect_rollouts(tiny_benchmark, "train", tmp_path / "x", beta=0.5, progress=False)
    for bad in ("2/2", "1", "a/b", "0/0"):
        with pytest.raises(VidNavError, match="--shard"):
            collect_rollouts(tiny_benchmark, "train", tmp_path / "x", shard=bad, progress=False)


def test_shards_split_whole_paths_between_processes(tiny_benchmark, tmp_path):
    from vidnav.data.episodes import load_split

    path_of = {str(e.episode_id): e.trajectory_id for e in load_split(tiny_benchmark, "train").episodes}
    for i in (0, 1):
        # max_steps=4: which shard gets which path does not need whole paths rendered
        collect_rollouts(
            tiny_benchmark, "train", tmp_path / f"s{i}", episodes=6, shard=f"{i}/2", max_steps=4, progress=False
        )
    s0, s1 = ([r["episode_id"] for r in read(tmp_path / f"s{i}")] for i in (0, 1))
    assert sorted(s0 + s1, key=int) == [str(i) for i in range(1, 7)]  # every episode once
    paths0, paths1 = {path_of[e] for e in s0}, {path_of[e] for e in s1}
    assert paths0 and paths1 and not paths0 & paths1  # a path's episodes stay in one shard
    for i, paths in ((0, paths0), (1, paths1)):  # one feature key per path
        assert len({r["key"] for r in read(tmp_path / f"s{i}")}) == len(paths)


def test_instructions_per_path(tiny_benchmark, tmp_path):
    from vidnav.data.episodes import load_split

    eps = load_split(tiny_benchmark, "train").episodes
    firsts = {}
    for e in eps:
        firsts.setdefault(e.trajectory_id, str(e.episode_id))
    collect_rollouts(
        tiny_benchmark, "train", tmp_path / "one", episodes=2, instructions_per_path=1, max_steps=4, progress=False
    )
    assert [r["episode_id"] for r in read(tmp_path / "one")] == list(firsts.values())[:2]
    with pytest.raises(VidNavError, match="--instructions-per-path"):
        collect_rollouts(tiny_benchmark, "train", tmp_path / "x", instructions_per_path=0, progress=False)


def test_select_episodes_takes_the_paths_after_the_skipped_ones():
    from types import SimpleNamespace

    # two houses, three paths each, two instructions per path; house b's paths come interleaved with a's
    order = [("a", 1), ("b", 4), ("a", 2), ("b", 5), ("a", 3), ("b", 6)]
    eps = [SimpleNamespace(scene_id=h, trajectory_id=t, episode_id=10 * t + j) for h, t in order for j in (1, 2)]

    def paths(**kw):
        return [e.trajectory_id for e in select_episodes(eps, **kw)]

    assert paths(paths_per_house=1) == [1, 1, 4, 4]
    assert paths(paths_per_house=1, skip_paths=1) == [2, 2, 5, 5]  # each house's second path
    assert paths(paths_per_house=2, skip_paths=1) == [2, 2, 5, 5, 3, 3, 6, 6]
    assert paths(paths_per_house=5, skip_paths=2) == [3, 3, 6, 6]  # fewer paths left than asked for
    assert paths(paths_per_house=1, skip_paths=3) == []
    assert paths(paths_per_house=2, skip_paths=1, instructions_per_path=1) == [2, 5, 3, 6]
    assert paths(paths_per_house=2, skip_paths=1, episodes_limit=3) == [2, 2, 5]
    assert paths() == [t for _, t in order for _ in (1, 2)]
    with pytest.raises(VidNavError, match="--skip-paths needs --paths-per-house"):
        select_episodes(eps, skip_paths=1)
    with pytest.raises(VidNavError, match="--skip-paths"):
        select_episodes(eps, paths_per_house=1, skip_paths=-1)
    with pytest.raises(VidNavError, match="--paths-per-house"):
        select_episodes(eps, paths_per_house=0)


def test_relabel_replays_states_and_labels_them_with_another_follower(tiny_benchmark, tmp_path):
    from vidnav.data.dataset import NavSamples
    from vidnav.data.rollouts import relabel_rollouts
    from vidnav.errors import VidNavError
    from vidnav.geometry import heading_from_quaternion
    from vidnav.sim.navmap import FollowerConfig

    src = tmp_path / "expert"
    collect_rollouts(tiny_benchmark, "train", src, episodes=3, progress=False)  # one path, three instructions
    recs = read(src)
    ep = load_split(tiny_benchmark, "train").episodes[0]
    start = (ep.start_position[0], ep.start_position[2], heading_from_quaternion(ep.start_rotation))
    goal = (ep.goals[0].position[0], ep.goals[0].position[2])
    assert all(len(r["poses"]) == len(r["targets"]) for r in recs)
    assert recs[0]["poses"][0] == pytest.approx(list(start), abs=1e-4)
    assert recs[0]["follower_stop_distance"] == 0.25

    # a folder from before poses were stored: the expert's states are replayed from its actions
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "features").symlink_to(src / "features")
    (legacy / "trajectories.jsonl").write_text(
        "".join(json.dumps({k: v for k, v in r.items() if k != "poses"}) + "\n" for r in recs)
    )
    same = relabel_rollouts(tiny_benchmark, legacy, tmp_path / "same", FollowerConfig(), progress=False)
    assert same == {
        "episodes": 3,
        "states": sum(len(r["targets"]) for r in recs),
        "targets_changed": 0,
        "stop_first": 3,
    }  # the last state of each trajectory
    for a, b in zip(read(tmp_path / "same"), recs):
        assert a["targets"] == b["targets"]
        assert np.allclose(a["poses"], b["poses"], atol=1e-3)

    course = FollowerConfig(forward_tolerance=1.0)
    out = tmp_path / "tol1"
    stats = relabel_rollouts(tiny_benchmark, src, out, course, progress=False)
    assert stats["targets_changed"] > 0
    new = read(out)
    nav = NavMap(House.load(tiny_benchmark / ep.scene_id))
    for t in (0, len(new[0]["poses"]) // 2):
        assert new[0]["targets"][t] == expert_targets(nav, tuple(new[0]["poses"][t]), goal, 4, course)
    assert [r["instruction"] for r in new] == [r["instruction"] for r in recs] and new[0]["follower_tolerance"] == 1.0
    samples = NavSamples(out)  # features come through the link, unchanged
    assert len(samples) == sum(len(r["targets"]) for r in new)
    assert np.array_equal(
        FeatureStore(out / "features").get(recs[0]["key"]), FeatureStore(src / "features").get(recs[0]["key"])
    )

    # a wider stop zone: every state within 1.5 m (geodesic) of the goal is labelled stop, the others are not
    zone = FollowerConfig(stop_distance=1.5, forward_tolerance=1.0)
    near = relabel_rollouts(tiny_benchmark, src, tmp_path / "near", zone, progress=False)
    wide = read(tmp_path / "near")
    dist = [nav.distance(p[0], p[1], *goal) for p in wide[0]["poses"]]
    assert [t[0] == "stop" for t in wide[0]["targets"]] == [d < 1.5 for d in dist]
    assert all(t == ["stop"] * 4 for t, d in zip(wide[0]["targets"], dist) if d < 1.5)
    assert near["stop_first"] == 3 * sum(d < 1.5 for d in dist) > stats["stop_first"] == 3
    assert wide[0]["follower_stop_distance"] == 1.5 and new[0]["follower_stop_distance"] == 0.25
    with pytest.raises(VidNavError, match="stop_distance must be in"):
        FollowerConfig(stop_distance=5.0)

    with pytest.raises(VidNavError, match="another folder"):
        relabel_rollouts(tiny_benchmark, src, src, course, progress=False)
    (tmp_path / "other" / "features").mkdir(parents=True)  # out already holds another store
    with pytest.raises(VidNavError, match="relabel into a new --out"):
        relabel_rollouts(tiny_benchmark, src, tmp_path / "other", course, progress=False)
    assert not (tmp_path / "other" / "trajectories.jsonl").exists()
    with pytest.raises(VidNavError, match="forward-tolerance 0.5"):  # a resume must not mix two followers
        collect_rollouts(tiny_benchmark, "train", src, episodes=4, follower=course, progress=False)
    with pytest.raises(VidNavError, match="stop distance 0.25, not 1.5"):
        collect_rollouts(
            tiny_benchmark, "train", src, episodes=4, follower=FollowerConfig(stop_distance=1.5), progress=False
        )
    dagger = tmp_path / "dagger"
    dagger.mkdir()
    (dagger / "features").symlink_to(src / "features")
    (dagger / "trajectories.jsonl").write_text(
        json.dumps({**{k: v for k, v in recs[0].items() if k != "poses"}, "source": "dagger-1"}) + "\n"
    )
    with pytest.raises(VidNavError, match="cannot be replayed"):
        relabel_rollouts(tiny_benchmark, dagger, tmp_path / "x", course, progress=False)


def test_a_damaged_feature_index_stops_a_rerun_instead_of_wiping_the_folder(tiny_benchmark, tmp_path):
    """Defect 1 of issue #33: one corrupt line in the middle of features/index.jsonl, then a rerun with more
    paths cut the store back to that line and wrote the new paths over the old rows (exit 0)."""
    out = tmp_path / "expert"
    collect_rollouts(tiny_benchmark, "train", out, episodes=7, progress=False)  # 3 paths: 3 index lines
    index = out / "features" / "index.jsonl"
    lines = index.read_bytes().split(b"\n")
    lines[0] = lines[0][:-5] + b"#" + lines[0][-4:]
    index.write_bytes(b"\n".join(lines))
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(VidNavError, match=r"index\.jsonl: line 1"):
        collect_rollouts(tiny_benchmark, "train", out, episodes=10, progress=False)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_trajectories_whose_features_are_gone_are_refused(tiny_benchmark, tmp_path):
    out = tmp_path / "expert"
    collect_rollouts(tiny_benchmark, "train", out, episodes=4, progress=False)
    index = out / "features" / "index.jsonl"
    index.write_bytes(index.read_bytes().split(b"\n", 1)[1])  # the first path's line is gone
    with pytest.raises(VidNavError, match=r"trajectories\.jsonl lists trajectories whose features.*traj-1"):
        collect_rollouts(tiny_benchmark, "train", out, episodes=5, progress=False)
