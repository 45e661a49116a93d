"""Run options travel with the checkpoint (run_options.json) and are what `vidnav eval`, `vidnav demo`,
`vidnav.load_navigator()` and the server use; command-line flags change them for one run."""

import json
import re
import socket

import pytest

import vidnav
from vidnav.errors import VidNavError
from vidnav.eval import runner
from vidnav.eval.agents import agent_run_options, make_agent
from vidnav.eval.runner import evaluate
from vidnav.run_options import RUN_OPTIONS_NAME, PlanOptions, read_run_options, resolve, write_run_options

CARRIED = PlanOptions(replan_when_blocked=True, break_loops=True, act_steps=1, loop_plans=3)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny random-weights checkpoint saved with CARRIED as its run options."""
    torch = pytest.importorskip("torch")
    from vidnav.model import build_model

    folder = tmp_path_factory.mktemp("ckpt") / "tiny"
    torch.manual_seed(0)
    model = build_model("tiny")
    model.run_options = CARRIED
    model.save_pretrained(folder)
    return folder


def test_run_options_round_trip_through_a_saved_checkpoint(checkpoint, tmp_path):
    from vidnav.model import VidNavForCausalLM

    assert json.loads((checkpoint / RUN_OPTIONS_NAME).read_text()) == {
        "replan_when_blocked": True,
        "break_loops": True,
        "act_steps": 1,
        "loop_plans": 3,
    }
    model = VidNavForCausalLM.from_pretrained(checkpoint)
    assert model.run_options == read_run_options(checkpoint) == CARRIED
    model.save_pretrained(tmp_path / "again")  # saved again (e.g. by the trainer): the options stay
    assert read_run_options(tmp_path / "again") == CARRIED
    agent = vidnav.load_agent(checkpoint)
    assert agent.run_options == CARRIED
    nav = vidnav.load_navigator(checkpoint)  # the Python way to run it as `vidnav eval` does
    assert nav.options == CARRIED and nav.agent.run_options == CARRIED
    assert vidnav.load_navigator(checkpoint, options={"act_steps": 2}).options == PlanOptions(True, True, 2, 3)
    (tmp_path / "again" / RUN_OPTIONS_NAME).unlink()  # a checkpoint from before run options: all off, as before
    assert read_run_options(tmp_path / "again") == PlanOptions()
    assert vidnav.load_agent(tmp_path / "again").run_options == PlanOptions()


def test_the_shipped_agent_carries_replanning_and_loop_breaking():
    shipped = PlanOptions(replan_when_blocked=True, break_loops=True)
    assert read_run_options(vidnav.DEFAULT_AGENT_DIR) == shipped
    assert agent_run_options("default") == shipped
    assert agent_run_options("oracle") == agent_run_options("random") == PlanOptions()  # baselines: none


def test_flags_change_the_carried_options_both_ways():
    assert resolve(CARRIED, None) == CARRIED
    assert resolve(CARRIED, {}) == CARRIED
    assert resolve(CARRIED, {"replan_when_blocked": False}) == PlanOptions(False, True, 1, 3)
    # the loop breaker off takes its loop_plans with it (else: "--loop-plans applies to the loop breaker")
    assert resolve(CARRIED, {"break_loops": False}) == PlanOptions(True, False, 1, 2)
    assert resolve(PlanOptions(), {"replan_when_blocked": True, "break_loops": True}) == PlanOptions(
        True, True, None, 2
    )
    assert resolve(CARRIED, PlanOptions()) == PlanOptions()  # a whole PlanOptions replaces them
    with pytest.raises(VidNavError, match="add --break-loops"):
        resolve(PlanOptions(), {"loop_plans": 3})
    assert resolve(CARRIED, {"loop_plans": 4}).loop_plans == 4  # the agent breaks loops already


def test_eval_cli_without_flags_runs_the_checkpoints_options_and_flags_override_them(
    checkpoint, tiny_benchmark, tmp_path, monkeypatch
):
    from vidnav.cli import main

    real = runner.evaluate

    def short(*args, **kw):  # 3 steps an episode: the random model would walk to the step cap
        return real(*args, **{**kw, "env_kw": {**(kw.get("env_kw") or {}), "max_steps": 3}})

    monkeypatch.setattr(runner, "evaluate", short)
    base = ["eval", "--agent", str(checkpoint), "--data", str(tiny_benchmark), "--episodes", "1"]

    def ran(out, *flags):
        main([*base, *flags, "--out", str(tmp_path / out)])
        run = json.loads((tmp_path / out / "run.json").read_text())
        used = runner._W["agent"].options  # the options the worker's agent really ran with
        assert {k: run[k] for k in used.to_dict()} == used.to_dict()  # and run.json records them
        return used

    assert ran("own") == CARRIED
    assert ran("off", "--no-replan-when-blocked", "--no-break-loops") == PlanOptions(False, False, 1, 2)
    assert ran("steps", "--act-steps", "2", "--loop-plans", "5") == PlanOptions(True, True, 2, 5)
    main([*base, "--out", str(tmp_path / "own")])  # the same run again: resumes (nothing to do)
    with pytest.raises(SystemExit) as e:  # the same OUT with other options is another run: refused, as before
        main([*base, "--no-break-loops", "--out", str(tmp_path / "own")])
    assert e.value.code == 2

    write_run_options(checkpoint, PlanOptions())  # the checkpoint's options edited: its next run is another run
    try:
        with pytest.raises(
            VidNavError,
            match="replan_when_blocked=True, break_loops=True.*; now replan_when_blocked=False, break_loops=False",
        ):
            evaluate(
                tiny_benchmark,
                "val_unseen",
                str(checkpoint),
                tmp_path / "own",
                episodes=1,
                progress=False,
                env_kw={"max_steps": 3},
            )
        assert ran("on", "--replan-when-blocked", "--break-loops") == PlanOptions(True, True, None, 2)
    finally:
        write_run_options(checkpoint, CARRIED)


def test_eval_of_the_shipped_agent_without_flags_replans_and_breaks_loops(tiny_benchmark, tmp_path):
    evaluate(
        tiny_benchmark, "val_unseen", "default", tmp_path / "d", episodes=1, env_kw={"max_steps": 2}, progress=False
    )
    run = json.loads((tmp_path / "d" / "run.json").read_text())
    assert run["replan_when_blocked"] is run["break_loops"] is True and run["expert_start"] is None
    assert runner._W["agent"].options == PlanOptions(replan_when_blocked=True, break_loops=True)
    assert make_agent("default", options={"break_loops": False}).options == PlanOptions(replan_when_blocked=True)


def test_a_bad_run_options_file_names_the_file_and_the_fix(checkpoint, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(checkpoint, bad)
    for text, says in (
        ('{"break_loop": true}', "unknown run option(s) break_loop; valid: replan_when_blocked"),
        ('{"act_steps": 0}', "--act-steps must be a whole number >= 1"),
        ('{"replan_when_blocked": "yes"}', "--replan-when-blocked is on or off"),
        ("[true]", "must be a JSON object of run options"),
        ("{", "is not valid JSON"),
    ):
        (bad / RUN_OPTIONS_NAME).write_text(text)
        with pytest.raises(VidNavError, match=re.escape(str(bad / RUN_OPTIONS_NAME)) + ".*" + re.escape(says)) as e:
            read_run_options(bad)
        assert "delete it" in str(e.value)
        with pytest.raises(VidNavError, match=RUN_OPTIONS_NAME):
            vidnav.load_agent(bad)


def test_training_writes_the_options_inherited_from_init_from_with_run_option_changes(
    checkpoint, tmp_path, monkeypatch
):
    from vidnav.train.config import TrainConfig
    from vidnav.train.trainer import _atomic_save, build_train_model

    model = build_train_model(TrainConfig(), None)  # from a preset: the defaults
    assert model.run_options == PlanOptions()
    model = build_train_model(TrainConfig(init_from=str(checkpoint)), checkpoint)  # inherited
    assert model.run_options == CARRIED
    cfg = TrainConfig(init_from=str(checkpoint), run_options={"act_steps": None, "break_loops": False})
    model = build_train_model(cfg, checkpoint)
    _atomic_save(model, tmp_path / "final")  # how the trainer writes OUT/final
    assert read_run_options(tmp_path / "final") == PlanOptions(replan_when_blocked=True)
    with pytest.raises(VidNavError, match="run_options .*unknown run option.*act_step"):
        TrainConfig(data=["r"], run_options={"act_step": 1}).validate()

    from vidnav.cli import main
    from vidnav.train import trainer

    seen = {}

    def train(cfg):  # what `vidnav train` would train
        seen["cfg"] = cfg
        return {"steps": 0, "final_loss": 0.0}

    monkeypatch.setattr(trainer, "train", train)
    main(
        [
            "train",
            "--data",
            "r",
            "--out",
            str(tmp_path / "t"),
            "--run-option",
            "replan_when_blocked=true",
            "--run-option",
            "act_steps=2",
        ]
    )
    assert seen["cfg"].run_options == {"replan_when_blocked": True, "act_steps": 2}
    with pytest.raises(SystemExit) as e:
        main(["train", "--data", "r", "--out", str(tmp_path / "t"), "--run-option", "act_steps"])
    assert e.value.code == 2


def test_the_server_reports_its_agents_options_and_eval_through_it_uses_them(monkeypatch):
    from vidnav.serve.app import create_app
    from vidnav.serve.server import BackgroundServer

    app = create_app(lambda: None, name="stand-in", fingerprint=None, run_options=CARRIED.to_dict())
    with BackgroundServer(app) as server:
        assert agent_run_options(server.url) == CARRIED
        assert make_agent(server.url).options == CARRIED
        assert make_agent(server.url, options={"break_loops": False}).options == PlanOptions(True, False, 1, 2)
    with BackgroundServer(create_app(lambda: None, name="old", fingerprint=None)) as server:
        assert agent_run_options(server.url) == PlanOptions()  # a server that reports none: all off

    from vidnav.serve import cli as serve_cli  # `vidnav serve --agent default` reports the shipped agent's
    from vidnav.serve import server as serve_server

    served = {}
    monkeypatch.setattr("vidnav.serve.app.shared_model_agents", lambda agent: (lambda: None, agent, "fp"))

    def serve_forever(app, sock):
        sock.close()
        served["app"] = app

    monkeypatch.setattr(serve_server, "serve_forever", serve_forever)
    with socket.socket() as s:  # a free loopback port for the CLI to bind
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    serve_cli.serve_command(
        agent="default",
        host="127.0.0.1",
        port=port,
        token_file=None,
        max_sessions=1,
        idle_timeout=1.0,
        max_frames=10,
        max_upload_mb=1.0,
        max_frame_side=64,
        threads=None,
    )
    with BackgroundServer(served["app"]) as server:
        assert agent_run_options(server.url) == PlanOptions(replan_when_blocked=True, break_loops=True)


def test_load_navigator_drives_the_gym_env_as_the_readme_shows():
    """The README's loop: the shipped agent with its run options, one action per step on the gym env."""
    import gymnasium as gym

    env = gym.make("vidnav/MiniHouseVLN-v0", max_steps=6)
    try:
        obs, info = env.reset(seed=0)
        nav = vidnav.load_navigator()
        assert nav.options == PlanOptions(replan_when_blocked=True, break_loops=True)
        nav.reset(env, obs)
        done, steps = False, 0
        while not done:
            obs, reward, terminated, truncated, info = env.step(nav.act(obs, info))
            done, steps = terminated or truncated, steps + 1
        assert 1 <= steps <= 6 and nav.agent.steps == steps and isinstance(nav.agent.ask("which room are you in?"), str)
    finally:
        env.close()
