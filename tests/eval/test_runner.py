"""The evaluation runner: result records, summary, resume after a kill, parallel workers, videos, errors."""

import gzip
import json
import re
import shutil

import pytest

from vidnav.errors import VidNavError
from vidnav.eval.agents import PlanOptions
from vidnav.eval.runner import evaluate
from vidnav.io import writer_lock
from vidnav.sim.navmap import FORWARD, STOP

KEYS = {
    "episodes",
    "success",
    "spl",
    "ndtw",
    "sdtw",
    "oracle_success",
    "navigation_error",
    "trajectory_length",
    "steps",
    "collisions",
}


def lines(out):
    return [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def oracle_run(tiny_benchmark, tmp_path_factory):
    out = tmp_path_factory.mktemp("oracle")
    return out, evaluate(tiny_benchmark, "val_unseen", "oracle", out, episodes=6, video=1, progress=False)


def test_oracle_records_and_summary(oracle_run):
    out, summary = oracle_run
    assert set(summary) == KEYS and summary["episodes"] == 6
    assert summary["success"] == 1.0 and summary["spl"] > 0.95 and summary["ndtw"] > 0.95
    recs = lines(out)
    assert [r["episode_id"] for r in recs] == [str(i) for i in range(1, 7)]
    for r in recs:
        assert len(r["positions"]) == len(r["actions"]) + 1 and r["stopped"] and r["actions"][-1] == STOP
        assert all(len(p) == 3 for p in r["positions"]) and KEYS - {"episodes"} <= set(r)
        assert r["steps"] == len(r["actions"])
    saved = json.loads((out / "summary.json").read_text())
    assert {k: saved[k] for k in KEYS} == summary


def test_video_has_one_frame_per_step_plus_the_start(oracle_run):
    import imageio.v3 as iio

    out, _ = oracle_run
    video = iio.imread(out / "videos" / "1.mp4", index=None)
    assert video.shape[0] == lines(out)[0]["steps"] + 1
    assert video.shape[1] == 224 and video.shape[2] > 224 + 100  # ego view + top-down map side by side
    assert not (out / "videos" / "2.mp4").exists()


def test_baselines_are_far_below_the_oracle(tiny_benchmark, tmp_path):
    fwd = evaluate(tiny_benchmark, "val_unseen", "forward", tmp_path / "f", episodes=6, progress=False)
    rnd = evaluate(tiny_benchmark, "val_unseen", "random", tmp_path / "r", episodes=6, progress=False)
    assert fwd["success"] < 0.7 and rnd["success"] < 0.7
    for r in lines(tmp_path / "f"):  # forward walks until blocked, then stops (or runs out of steps)
        assert set(r["actions"][:-1]) <= {FORWARD}
    again = evaluate(tiny_benchmark, "val_unseen", "random", tmp_path / "r2", episodes=6, progress=False)
    assert again == rnd  # seeded per episode


def test_resume_after_a_kill_loses_and_duplicates_nothing(tiny_benchmark, tmp_path, oracle_run):
    out = tmp_path / "resume"
    evaluate(tiny_benchmark, "val_unseen", "oracle", out, episodes=3, progress=False)
    text = (out / "results.jsonl").read_text()
    (out / "results.jsonl").write_text(text + text.splitlines()[0][:40])  # a torn line, as after SIGKILL
    summary = evaluate(tiny_benchmark, "val_unseen", "oracle", out, episodes=6, progress=False)
    recs = lines(out)
    assert [r["episode_id"] for r in recs] == [str(i) for i in range(1, 7)]
    assert summary == oracle_run[1]
    assert recs == lines(oracle_run[0])


def test_two_workers_give_the_same_results(tiny_benchmark, tmp_path, oracle_run):
    summary = evaluate(tiny_benchmark, "val_unseen", "oracle", tmp_path / "w2", episodes=6, workers=2, progress=False)
    assert summary == oracle_run[1]
    by_id = {r["episode_id"]: r for r in lines(tmp_path / "w2")}
    assert [by_id[r["episode_id"]] for r in lines(oracle_run[0])] == lines(oracle_run[0])


def test_clear_errors(tiny_benchmark, tmp_path, oracle_run):
    with pytest.raises(VidNavError, match="val_unseen"):
        evaluate(tiny_benchmark, "test", "oracle", tmp_path / "x", progress=False)
    with pytest.raises(VidNavError, match="unknown agent"):
        evaluate(tiny_benchmark, "val_unseen", "bogus", tmp_path / "y", episodes=1, progress=False)
    with pytest.raises(VidNavError, match="another run"):
        evaluate(tiny_benchmark, "val_unseen", "random", oracle_run[0], episodes=1, progress=False)
    with pytest.raises(VidNavError, match="break_loops=False; now break_loops=True"):
        evaluate(
            tiny_benchmark,
            "val_unseen",
            "oracle",
            oracle_run[0],
            episodes=1,
            options=PlanOptions(break_loops=True),
            progress=False,
        )
    with pytest.raises(VidNavError, match="act_steps=None; now act_steps=1"):
        evaluate(
            tiny_benchmark,
            "val_unseen",
            "oracle",
            oracle_run[0],
            episodes=1,
            options=PlanOptions(act_steps=1),
            progress=False,
        )
    with pytest.raises(VidNavError, match="allow_sliding=False; now allow_sliding=True"):
        evaluate(
            tiny_benchmark,
            "val_unseen",
            "oracle",
            oracle_run[0],
            episodes=1,
            env_kw={"allow_sliding": True},
            progress=False,
        )
    with pytest.raises(VidNavError, match="workers"):
        evaluate(tiny_benchmark, "val_unseen", "oracle", tmp_path / "z", workers=0, progress=False)
    evaluate(tiny_benchmark, "val_unseen", "random", tmp_path / "r", episodes=1, seed=1, progress=False)
    with pytest.raises(VidNavError, match="seed=1; now seed=2"):  # other draws: resuming would mix two runs
        evaluate(tiny_benchmark, "val_unseen", "random", tmp_path / "r", episodes=2, seed=2, progress=False)
    with pytest.raises(VidNavError, match="env={}; now env={'max_steps': 3}"):
        evaluate(
            tiny_benchmark, "val_unseen", "oracle", oracle_run[0], episodes=1, env_kw={"max_steps": 3}, progress=False
        )
    evaluate(tiny_benchmark, "val_unseen", "oracle", oracle_run[0], episodes=1, seed=5, progress=False)  # unused
    with writer_lock(tmp_path / "busy", "evaluation"):  # another evaluation is writing there
        with pytest.raises(VidNavError, match="busy is being written by another evaluation job"):
            evaluate(tiny_benchmark, "val_unseen", "oracle", tmp_path / "busy", episodes=1, progress=False)
    assert not (tmp_path / "busy" / "results.jsonl").exists() and not (tmp_path / "busy" / "run.json").exists()


def test_an_empty_split_is_a_clear_error(tiny_benchmark, tmp_path):
    """A split file with no episodes, as `vidnav demo`'s train split (it builds no train houses)."""
    data = tmp_path / "data"
    shutil.copytree(tiny_benchmark, data)
    for name in ("val_seen.json.gz", "val_seen_gt.json.gz"):
        with gzip.open(data / "val_seen" / name, "rt") as f:
            doc = json.load(f)
        doc = {**doc, "episodes": []} if "episodes" in doc else {}
        with gzip.open(data / "val_seen" / name, "wt") as f:
            json.dump(doc, f)
    with pytest.raises(VidNavError, match="split 'val_seen' has no episodes"):
        evaluate(data, "val_seen", "oracle", tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "summary.json").exists()


def test_sliding_run_is_recorded_and_the_oracle_still_succeeds(tiny_benchmark, tmp_path):
    out = tmp_path / "slide"
    summary = evaluate(
        tiny_benchmark, "val_unseen", "oracle", out, episodes=2, env_kw={"allow_sliding": True}, progress=False
    )
    assert json.loads((out / "run.json").read_text())["allow_sliding"] is True
    assert summary["success"] == 1.0


def test_retrained_checkpoint_is_another_run(tiny_benchmark, tmp_path):
    """Resuming into OUT after the checkpoint's weights changed (retrained into the same folder, a new shipped
    agent) would mix two models' episodes: it raises, or starts over with restart_if_changed."""
    torch = pytest.importorskip("torch")
    from vidnav.eval.agents import agent_weights
    from vidnav.model import build_model

    ckpt, out = tmp_path / "ckpt", tmp_path / "run"
    torch.manual_seed(0)
    build_model("tiny").save_pretrained(ckpt)
    kw = dict(episodes=1, env_kw={"max_steps": 3}, progress=False)
    evaluate(tiny_benchmark, "val_unseen", str(ckpt), out, **kw)
    first = json.loads((out / "run.json").read_text())["weights"]
    assert first == agent_weights(str(ckpt)) and len(first) == 16 and agent_weights("oracle") is None
    evaluate(tiny_benchmark, "val_unseen", str(ckpt), out, **kw)  # same weights: resumes
    torch.manual_seed(1)
    build_model("tiny").save_pretrained(ckpt)
    assert agent_weights(str(ckpt)) != first
    with pytest.raises(VidNavError, match=f"weights='{first}'"):
        evaluate(tiny_benchmark, "val_unseen", str(ckpt), out, **kw)
    (out / "results.jsonl").write_text((out / "results.jsonl").read_text() * 2)  # would be read as done
    evaluate(tiny_benchmark, "val_unseen", str(ckpt), out, restart_if_changed=True, **kw)
    assert json.loads((out / "run.json").read_text())["weights"] == agent_weights(str(ckpt))
    assert len(lines(out)) == 1


@pytest.mark.parametrize("mode", ["turns", "room"])
def test_expert_start_runs_the_expert_then_the_model(tiny_benchmark, tmp_path, mode):
    """--expert-start in real episodes: the recorded actions open with the expert's from the start pose, up to
    its first forward (turns) or until the agent stands in another room (room); the run records the mode, so a
    run without it is another run."""
    from vidnav.data.episodes import load_split
    from vidnav.sim.env import VLNEnv
    from vidnav.sim.navmap import LEFT, RIGHT

    out = tmp_path / mode
    kw = dict(episodes=3, env_kw={"max_steps": 60}, progress=False)
    evaluate(tiny_benchmark, "val_unseen", "default", out, options=PlanOptions(), expert_start=mode, **kw)
    assert json.loads((out / "run.json").read_text())["expert_start"] == mode
    eps = load_split(tiny_benchmark, "val_unseen")
    env = VLNEnv(data_dir=tiny_benchmark)
    led = handed = 0
    for rec, ep in zip(lines(out), eps.episodes):
        task = env.task_from_episode(ep, eps.gt_for(ep))
        env.reset(options={"task": task})
        start_room = task.house.room_at(task.start[0], task.start[1])
        expert = []
        while True:
            a = env.expert_action()
            room = task.house.room_at(env.pose[0], env.pose[1])
            if (a not in (LEFT, RIGHT)) if mode == "turns" else (a == STOP or room not in (None, start_room)):
                break
            expert.append(a)
            env.step(a)
        assert rec["actions"][: len(expert)] == expert
        if mode == "room" and len(rec["actions"]) > len(expert):  # handed over in the next room, not before
            x, _, z = rec["positions"][len(expert)]
            assert task.house.room_at(x, z) not in (None, start_room)
            handed += 1
        led += len(expert)
    env.close()
    assert led > 0 and (mode == "turns" or handed > 0)  # the expert led, and (room) handed over in the next room
    with pytest.raises(VidNavError, match=f"expert_start='{mode}'; now expert_start=None"):
        evaluate(tiny_benchmark, "val_unseen", "default", out, options=PlanOptions(), **kw)


def test_eval_cli_prints_the_table(tiny_benchmark, tmp_path, capsys):
    from vidnav.cli import main

    main(["eval", "--agent", "forward", "--data", str(tiny_benchmark), "--episodes", "2", "--out", str(tmp_path / "c")])
    out = capsys.readouterr().out
    rows = {c[0]: c for c in (re.split(r"\s{2,}", line.strip()) for line in out.splitlines())}  # the table's cells
    assert rows["agent"][:3] == ["agent", "eps", "SR"] and len(rows["forward"]) == len(rows["agent"]) == 11
    assert rows["forward"][1] == "2"
    with pytest.raises(SystemExit) as e:
        main(["eval", "--agent", "oracle", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "d")])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(
            [
                "eval",
                "--agent",
                "default",
                "--data",
                str(tiny_benchmark),
                "--act-steps",
                "0",
                "--out",
                str(tmp_path / "e"),
            ]
        )
    assert e.value.code == 2 and "--act-steps must be a whole number >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(
            [
                "eval",
                "--agent",
                "default",
                "--data",
                str(tiny_benchmark),
                "--no-break-loops",
                "--loop-plans",
                "3",
                "--out",
                str(tmp_path / "e"),
            ]
        )  # the shipped agent breaks loops unless told not to
    assert e.value.code == 2 and "add --break-loops" in capsys.readouterr().err


def test_demo_builds_unseen_houses_and_prints_every_agent(tmp_path, capsys):
    """`vidnav demo` at a small size: one unseen house, 1 episode, the shipped agent re-planning when blocked
    and breaking loops."""
    import json

    from vidnav.cli import main

    main(
        [
            "demo",
            "--episodes",
            "1",
            "--videos",
            "1",
            "--workers",
            "1",
            "--data",
            str(tmp_path / "data"),
            "--out",
            str(tmp_path / "demo"),
        ]
    )
    out = capsys.readouterr().out
    rows = {c[0]: c for c in (re.split(r"\s{2,}", line.strip()) for line in out.splitlines())}  # the table's cells
    for name in ("default+replan+loops", "symbolic", "oracle", "forward", "random"):
        assert rows[name][1] == "1" and len(rows[name]) == len(rows["agent"]) == 11, out
    assert rows["oracle"][2] == "1.00"  # its SR
    assert "where the shipped agent fails" in out and "by rooms on the reference route" in out
    run = json.loads((tmp_path / "demo" / "default" / "run.json").read_text())
    assert run["replan_when_blocked"] is run["break_loops"] is True and run["split"] == "val_unseen"
    oracle = json.loads((tmp_path / "demo" / "oracle" / "run.json").read_text())
    assert oracle["replan_when_blocked"] is oracle["break_loops"] is False
    for name in ("default", "symbolic", "oracle", "forward", "random"):
        assert len(list((tmp_path / "demo" / name / "videos").glob("*.mp4"))) == 1
    page = tmp_path / "demo" / "report.html"  # one page with the five agents side by side
    assert f"open {page} in a browser" in out and page.read_text().count("<td>oracle</td><td>oracle</td>") == 1
    assert "A = default, B = random" in page.read_text()
    # a new shipped agent since the last demo: its row is run again, not read back from the old results
    from vidnav.eval.agents import agent_weights

    (tmp_path / "demo" / "default" / "run.json").write_text(json.dumps({**run, "weights": "an-older-agent"}))
    main(
        [
            "demo",
            "--episodes",
            "1",
            "--videos",
            "1",
            "--workers",
            "1",
            "--data",
            str(tmp_path / "data"),
            "--out",
            str(tmp_path / "demo"),
        ]
    )
    assert "weights changed): starting it over" in capsys.readouterr().out
    assert json.loads((tmp_path / "demo" / "default" / "run.json").read_text())["weights"] == agent_weights("default")
    with pytest.raises(SystemExit) as e:  # the set built for 1 episode holds 6: more is an error, not a silent cap
        main(
            [
                "demo",
                "--episodes",
                "7",
                "--workers",
                "1",
                "--data",
                str(tmp_path / "data"),
                "--out",
                str(tmp_path / "d7"),
            ]
        )
    assert e.value.code == 2 and "holds 6 val_unseen episodes, fewer than --episodes 7" in capsys.readouterr().err
