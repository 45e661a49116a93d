"""Minimal pairs (vidnav data pairs) and the branch-frame scores of vidnav validate --pairs."""

import json

import pytest

from vidnav.data.dataset import NavSamples
from vidnav.data.pairs import branch_frame, make_pairs
from vidnav.data.rollouts import collect_rollouts, expert_targets
from vidnav.errors import VidNavError
from vidnav.sim.navmap import FollowerConfig


def read(folder):
    return [json.loads(line) for line in (folder / "trajectories.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def expert_and_pairs(tiny_benchmark, tmp_path_factory):
    root = tmp_path_factory.mktemp("pairs")
    collect_rollouts(tiny_benchmark, "train", root / "expert", episodes=6, progress=False)  # two paths
    stats = make_pairs(tiny_benchmark, root / "expert", root / "pairs", goals_per_path=6, seed=0, progress=False)
    return root, stats


def test_branch_frame():
    assert branch_frame([["left"], ["forward"], ["stop"]], [["left"], ["forward"], ["forward"]]) == 2
    assert branch_frame([["right"]], [["left"]]) == 0
    assert branch_frame([["left"], ["stop"]], [["left", "left"], ["stop"]]) is None  # only the first word counts


def test_pairs_share_the_frames_up_to_the_branch_and_act_otherwise_there(tiny_benchmark, expert_and_pairs):
    from vidnav.data.episodes import load_split
    from vidnav.sim.env import VLNEnv

    root, stats = expert_and_pairs
    source = {r["episode_id"]: r for r in read(root / "expert")}
    pairs = read(root / "pairs")
    assert stats["pairs"] == len(pairs) > 0 and stats["paths"] == 2
    env = VLNEnv(data_dir=tiny_benchmark)
    episodes = {str(e.episode_id): e for e in load_split(tiny_benchmark, "train").episodes}
    for p in pairs:
        a = source[p["pair_of"]]
        b = p["branch"]
        assert p["key"] == a["key"] and p["prefix"] is True and p["source"] == "pair"
        assert len(p["targets"]) == len(p["poses"]) == b + 1 < len(a["targets"]) + 1
        assert p["poses"] == a["poses"][: b + 1]  # the frames are the source's
        assert [w[0] for w in p["targets"][:b]] == [w[0] for w in a["targets"][:b]]
        assert p["targets"][b][0] != a["targets"][b][0]  # ... and at the branch only the words can tell
        assert p["instruction"] != a["instruction"]
        assert p["episode_id"] not in source
        # the labels are the follower's towards the pair's goal, from the recorded states
        task = env.task_from_episode(episodes[p["pair_of"]])
        assert tuple(p["goal"]) != tuple(task.goal)
        nav = env.navmap_for(task.house)
        follower = FollowerConfig(forward_tolerance=p["follower_tolerance"], stop_distance=p["follower_stop_distance"])
        assert p["targets"] == [
            expert_targets(nav, tuple(x), tuple(p["goal"]), len(a["targets"][0]), follower) for x in p["poses"]
        ]
    # trainable beside the source: the stored frames outnumber a pair's targets only because it is a prefix
    samples = NavSamples([root / "expert", root / "pairs"])
    assert len(samples.trajectories) == len(pairs) + 6


def test_pairs_are_deterministic_and_seeded(tiny_benchmark, expert_and_pairs, tmp_path):
    root, stats = expert_and_pairs
    again = make_pairs(tiny_benchmark, root / "expert", tmp_path / "again", goals_per_path=6, seed=0, progress=False)
    assert again == stats
    assert (tmp_path / "again" / "trajectories.jsonl").read_text() == (
        root / "pairs" / "trajectories.jsonl"
    ).read_text()
    make_pairs(tiny_benchmark, root / "expert", tmp_path / "other", goals_per_path=6, seed=1, progress=False)
    assert read(tmp_path / "other") != read(root / "pairs")


def test_a_short_record_must_say_it_is_a_prefix(expert_and_pairs, tmp_path):
    root, _ = expert_and_pairs
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "features").symlink_to(root / "expert" / "features")
    lines = [{**p, "prefix": False} for p in read(root / "pairs")]
    (bad / "trajectories.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    with pytest.raises(VidNavError, match="prefix"):
        NavSamples([bad])


def test_make_pairs_refuses_bad_folders(tiny_benchmark, expert_and_pairs, tmp_path):
    root, _ = expert_and_pairs
    with pytest.raises(VidNavError, match="source folder"):
        make_pairs(tiny_benchmark, root / "expert", root / "expert", progress=False)
    with pytest.raises(VidNavError, match="goals-per-path"):
        make_pairs(tiny_benchmark, root / "expert", tmp_path / "x", goals_per_path=0, progress=False)
    dagger = tmp_path / "dagger"
    dagger.mkdir()
    (dagger / "features").symlink_to(root / "expert" / "features")
    (dagger / "trajectories.jsonl").write_text(
        "".join(json.dumps({**r, "source": "dagger-1"}) + "\n" for r in read(root / "expert"))
    )
    with pytest.raises(VidNavError, match="DAgger"):
        make_pairs(tiny_benchmark, dagger, tmp_path / "y", progress=False)


class _Planner:
    """A stand-in model: plans the first word ``say`` gives (instruction, frames seen), else ``forward``."""

    training = False

    def __init__(self, say=None):
        self.say = say or {}

    def eval(self):
        return self

    def train(self, mode=True):
        return self

    def prepare_batch(self, instructions, feats, targets):
        return {"seen": [(i, len(f)) for i, f in zip(instructions, feats)]}

    def score_and_plan(self, batch):
        return 0.0, [[self.say.get(s, "forward")] * 4 for s in batch["seen"]]


def test_pair_scores_tell_a_reader_from_a_model_that_ignores_the_words(expert_and_pairs):
    from vidnav.train.validate import branch_samples, pair_accuracy

    root, _ = expert_and_pairs
    pairs = NavSamples([root / "pairs"])
    with_pair, with_own = branch_samples(pairs)
    assert len(with_pair) == len(with_own) == len(pairs.trajectories)
    for i in range(len(with_pair)):
        p, o = with_pair[i], with_own[i]
        assert (p["trajectory"], p["t"]) == (o["trajectory"], o["t"])
        assert p["instruction"] != o["instruction"] and p["targets"][0] != o["targets"][0]
    deaf = pair_accuracy(_Planner(), pairs)
    assert deaf["same_plan"] == 1.0 and deaf["both"] == 0.0
    assert deaf["pair_acc"] + deaf["own_acc"] <= 1.0
    # a planner that reads: the right word for each instruction at each frame
    say = {
        (s[i]["instruction"], s[i]["t"] + 1): s[i]["targets"][0] for s in (with_pair, with_own) for i in range(len(s))
    }
    reader = pair_accuracy(_Planner(say), pairs)
    assert reader == {"pairs": len(with_pair), "pair_acc": 1.0, "own_acc": 1.0, "both": 1.0, "same_plan": 0.0}


def test_validate_pairs_cli_scores_the_shipped_agent(expert_and_pairs, tmp_path):
    from typer.testing import CliRunner

    from vidnav.cli import app

    root, stats = expert_and_pairs
    out = tmp_path / "pairs.json"
    r = CliRunner().invoke(
        app, ["validate", "--agent", "default", "--data", str(root / "pairs"), "--pairs", "--out", str(out)]
    )
    assert r.exit_code == 0, r.output
    assert "branch frames" in r.output
    m = json.loads(out.read_text())
    assert m["pairs"] == stats["pairs"] and 0 <= m["both"] <= min(m["pair_acc"], m["own_acc"])
    assert m["both"] + m["same_plan"] <= 1.0 + 1e-9  # right with both needs two different plans
    r = CliRunner().invoke(app, ["validate", "--data", str(root / "pairs"), "--pairs", "--inflections"])
    assert r.exit_code != 0 and "--pairs" in r.output
