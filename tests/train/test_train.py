"""Training pipeline on synthetic rollouts: learning, SIGKILL + resume, DDP on two CPU processes, bad input.

Models are the tiny preset made cheaper (1 LM layer, 4 tokens for the current frame) through the same
``overrides`` an experiment file uses; features keep the tiny tower's shape (64 patches x 320 channels),
because prepare_batch checks them against the (frozen, real) EfficientNet-Lite0 tower.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from vidnav.data.dataset import NavCollator, NavSamples, inflections, synthetic_rollout
from vidnav.errors import VidNavError
from vidnav.train.config import TrainConfig

REPO = Path(__file__).resolve().parents[2]
FAST = {"current_pool": 2, "lm_config": {"num_hidden_layers": 1}}
FAST_ARGS = ["--set", "current_pool=2", "--set", "lm_config={num_hidden_layers: 1}"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The test machines share 2 cores with other work: one torch thread is ~10x faster than spinning two."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"  # as in this process (one_thread), so runs here and there compute alike
    return env


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


@pytest.fixture(scope="module")
def rollout(tmp_path_factory) -> Path:
    return synthetic_rollout(tmp_path_factory.mktemp("rollout") / "R", n_trajectories=6, n_frames=8, seed=0)


# -- data ------------------------------------------------------------------------------------------------------
def test_samples_order_stride_history_and_aggregation(tmp_path, rollout):
    ds = NavSamples([rollout])
    assert len(ds) == 48 and ds.samples[:3] == [(0, 0), (0, 1), (0, 2)]
    item = ds[9]
    assert (item["trajectory"], item["t"]) == (1, 1)
    f = ds.features(1, 1)
    assert f.dtype == torch.float32 and tuple(f.shape) == (2, 64, 320)
    assert NavSamples([rollout], max_history=3).features(0, 6).shape[0] == 3
    strided = NavSamples([rollout], stride=3)
    assert [t for j, t in strided.samples if j == 0] == [0, 3, 6, 7]  # the last (stop) frame always kept
    start = NavSamples([rollout], first_frames=5, stride=2)
    assert [t for j, t in start.samples if j == 0] == [0, 2, 4] and len(start) == 6 * 3  # t < 5 only
    assert [t for j, t in NavSamples([rollout], first_frames=20).samples if j == 0] == list(range(8))
    with pytest.raises(VidNavError, match="first_frames"):
        NavSamples([rollout], first_frames=0)
    # the episode start listed once more per trajectory, at every frame whatever the stride
    boosted = NavSamples([rollout], stride=3, start_frames=2, start_repeat=2)
    assert sorted(t for j, t in boosted.samples if j == 0) == [0, 0, 0, 1, 1, 3, 6, 7] and len(boosted) == 6 * 8
    assert len(NavSamples([rollout], first_frames=1, start_frames=3, start_repeat=1)) == 6 * 2  # within first_frames
    for bad in (dict(start_repeat=1), dict(start_frames=0, start_repeat=1), dict(start_frames=2, start_repeat=-1)):
        with pytest.raises(VidNavError, match="start_(repeat|frames)"):
            NavSamples([rollout], **bad)
    # the mirror at the goal: the last frames listed once more, whatever the stride
    ending = NavSamples([rollout], stride=3, end_frames=3, end_repeat=1)
    assert sorted(t for j, t in ending.samples if j == 0) == [0, 3, 5, 6, 6, 7, 7] and len(ending) == 6 * 7
    assert len(NavSamples([rollout], first_frames=6, stride=3, end_frames=3, end_repeat=2)) == 6 * (2 + 2 * 1)
    assert len(NavSamples([rollout], first_frames=2, end_frames=3, end_repeat=1)) == 6 * 2  # no end among them
    for bad in (dict(end_repeat=1), dict(end_frames=0, end_repeat=1), dict(end_frames=2, end_repeat=-1)):
        with pytest.raises(VidNavError, match="end_(repeat|frames)"):
            NavSamples([rollout], **bad)
    # inflection weighting: the frames where the expert's first action changes, listed again whatever the stride
    weighted = NavSamples([rollout], stride=3, inflection_repeat=2)
    for j, traj in enumerate(weighted.trajectories):
        firsts = [a[0] for a in traj.targets]
        turns = [t for t in range(1, len(firsts)) if firsts[t] != firsts[t - 1]]
        assert inflections(traj.targets) == turns and 7 in turns  # the final stop always is one
        assert sorted(t for i, t in weighted.samples if i == j) == sorted([0, 3, 6, 7] + 2 * turns)
    assert inflections([["left"] * 4, ["left", "stop", "stop", "stop"], ["forward"] * 4, ["right"] * 4]) == [2, 3]
    assert len(NavSamples([rollout], first_frames=2, inflection_repeat=1)) == 6 * 2 + sum(
        t < 2 for tr in NavSamples([rollout]).trajectories for t in inflections(tr.targets)
    )  # within first_frames
    with pytest.raises(VidNavError, match="inflection_repeat"):
        NavSamples([rollout], inflection_repeat=-1)
    # a folder listed twice is weighted twice: its trajectories come again, in order, read from the same store
    double = NavSamples([rollout, rollout], stride=3)
    assert len(double) == 2 * len(strided) and len(double.trajectories) == 12
    assert [tr.key for tr in double.trajectories] == [tr.key for tr in strided.trajectories] * 2
    assert torch.equal(double.features(6, 5), double.features(0, 5))
    assert double.summary()["rollouts"] == [str(rollout)] * 2
    # the inflection frames alone (vidnav validate --inflections), within first_frames when it is given
    only = NavSamples([rollout], only_inflections=True)
    assert only.samples == [(j, t) for j, tr in enumerate(only.trajectories) for t in inflections(tr.targets)]
    assert all(t < 3 for _, t in NavSamples([rollout], only_inflections=True, first_frames=3).samples)
    with pytest.raises(VidNavError, match="only_inflections takes the inflection frames as they are"):
        NavSamples([rollout], only_inflections=True, stride=2)
    dagger = synthetic_rollout(tmp_path / "D1", n_trajectories=2, n_frames=5, seed=3, source="dagger-1")
    both = NavSamples([rollout, dagger])
    assert len(both) == 48 + 10 and both.summary()["sources"] == {"expert": 6, "dagger-1": 2}
    assert both.trajectories[-1].rollout == 1


# -- bad input -------------------------------------------------------------------------------------------------
def test_bad_rollouts_raise_clear_errors(tmp_path, rollout):
    with pytest.raises(VidNavError, match="trajectories.jsonl not found"):
        (tmp_path / "empty").mkdir()
        NavSamples([tmp_path / "empty"])
    with pytest.raises(VidNavError, match="rollout folder not found"):
        NavSamples([tmp_path / "nope"])

    bad = synthetic_rollout(tmp_path / "bad", n_trajectories=3, n_frames=4)
    lines = (bad / "trajectories.jsonl").read_text().splitlines()
    (bad / "trajectories.jsonl").write_text("\n".join([lines[0], lines[1][:20], lines[2]]) + "\n")
    with pytest.raises(VidNavError, match=r"trajectories.jsonl:2: not valid JSON"):
        NavSamples([bad])
    obj = json.loads(lines[1])
    obj["targets"][1] = ["jump"]
    (bad / "trajectories.jsonl").write_text("\n".join([lines[0], json.dumps(obj)]) + "\n")
    with pytest.raises(VidNavError, match=r":2: targets\[1\]"):
        NavSamples([bad])
    del obj["instruction"]
    (bad / "trajectories.jsonl").write_text(json.dumps(obj) + "\n")
    with pytest.raises(VidNavError, match=r":1: missing field 'instruction'"):
        NavSamples([bad])

    ghost = json.loads(lines[0])
    ghost["key"] = "not-collected"
    (bad / "trajectories.jsonl").write_text(json.dumps(ghost) + "\n")
    with pytest.raises(VidNavError, match="no features for trajectory 'not-collected'"):
        NavSamples([bad])
    short = json.loads(lines[0])
    short["targets"] = short["targets"][:-1]
    (bad / "trajectories.jsonl").write_text(json.dumps(short) + "\n")
    with pytest.raises(VidNavError, match="3 target lists but 4 feature frames"):
        NavSamples([bad])

    with pytest.raises(VidNavError, match="unknown setting"):
        TrainConfig.from_dict({"prest": "tiny"})
    with pytest.raises(VidNavError, match="stage must be"):
        TrainConfig(data=[str(rollout)], stage="warmup").validate()
    with pytest.raises(VidNavError, match="no training data"):
        TrainConfig().validate()
    with pytest.raises(VidNavError, match="first_frames must be >= 1"):
        TrainConfig(data=[str(rollout)], first_frames=0).validate()
    with pytest.raises(VidNavError, match="needs start_frames"):
        TrainConfig(data=[str(rollout)], start_repeat=2).validate()
    with pytest.raises(VidNavError, match="needs end_frames"):
        TrainConfig(data=[str(rollout)], end_repeat=2).validate()
    with pytest.raises(VidNavError, match="inflection_repeat must be >= 0"):
        TrainConfig(data=[str(rollout)], inflection_repeat=-1).validate()
    for steps in (0, -3):  # these trained a whole epoch, silently (issue #33 defect 10)
        with pytest.raises(VidNavError, match="max_steps must be >= 1"):
            TrainConfig(data=[str(rollout)], max_steps=steps).validate()
    with pytest.raises(VidNavError, match="qa_data .* is not a benchmark folder"):
        TrainConfig(data=[str(rollout)], qa_data=str(rollout)).validate()


def test_cli_user_errors_exit_2(tmp_path, capsys):
    from vidnav.cli import main

    with pytest.raises(SystemExit) as e:
        main(["train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "run")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "rollout folder not found" in err and "Traceback" not in err
    (tmp_path / "exp.yaml").write_text("preset: tiny\nepochz: 3\n")
    with pytest.raises(SystemExit) as e:
        main(["train", "--config", str(tmp_path / "exp.yaml")])
    assert e.value.code == 2 and "epochz" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # the option reaches the config's checks
        main(["train", "--data", str(tmp_path), "--inflection-repeat", "-1", "--out", str(tmp_path / "run")])
    assert e.value.code == 2 and "inflection_repeat must be >= 0" in capsys.readouterr().err


def test_config_yaml_round_trip_and_rerun_guard(tmp_path, rollout):
    from vidnav.train.trainer import _check_same_run, resolve_stages

    cfg = TrainConfig.from_yaml(REPO / "configs" / "train" / "tiny.yaml").replace(data=[str(rollout)])
    cfg.save_yaml(tmp_path / "x.yaml")
    assert TrainConfig.from_yaml(tmp_path / "x.yaml") == cfg
    assert TrainConfig.from_yaml(REPO / "configs" / "train" / "small_two_stage.yaml").preset == "small"
    assert resolve_stages(cfg) == ["full"]  # tiny's LM is trained from scratch: nothing to align to
    assert resolve_stages(cfg.replace(preset="small")) == ["align", "full"]
    _check_same_run(cfg, tmp_path / "run", is_main=True)
    _check_same_run(cfg.replace(dataloader_workers=0), tmp_path / "run", is_main=True)  # harmless change
    _check_same_run(cfg.replace(eval_data=["held-out"], eval_steps=7), tmp_path / "run", is_main=True)  # also
    with pytest.raises(VidNavError, match="eval_steps"):
        cfg.replace(eval_steps=0).validate()
    with pytest.raises(VidNavError, match="different settings \\(lr\\)"):
        _check_same_run(cfg.replace(lr=1.0), tmp_path / "run", is_main=True)


def test_last_checkpoint_knows_deepspeed_checkpoints_and_cleans_only_cut_ones(tmp_path):
    """A DeepSpeed checkpoint has no optimizer.pt (its engine saves `latest` + global_step*/); resuming must
    not take it for one cut by a kill and delete it."""
    from vidnav.train.trainer import last_checkpoint

    def ckpt(step, *files):
        d = tmp_path / f"checkpoint-{step}"
        for f in files:
            (d / f).parent.mkdir(parents=True, exist_ok=True)
            (d / f).write_text(json.dumps({"global_step": step}) if f == "trainer_state.json" else "x")
        return d

    plain = ckpt(10, "model.safetensors", "optimizer.pt", "trainer_state.json")
    ds = ckpt(20, "model.safetensors", "global_step20/mp_rank_00_model_states.pt", "trainer_state.json")
    (ds / "latest").write_text("global_step20")
    cut = ckpt(30, "model.safetensors", "optimizer.pt")  # killed before trainer_state.json
    assert last_checkpoint(tmp_path, clean=True) == ds
    assert not cut.exists() and ds.is_dir() and plain.is_dir()
    (ds / "latest").write_text("global_step99")  # names a folder that is not there: not whole
    assert last_checkpoint(tmp_path) == plain and ds.is_dir()


def test_lora_checkpoint_round_trip_and_align_stage():
    """Trainer checkpoints go through save_pretrained; resume must bring the LoRA adapter back too."""
    from vidnav.model import build_model
    from vidnav.train.trainer import load_checkpoint_weights, set_stage

    small = dict(pretrained=False, lm_config={"num_hidden_layers": 1})
    torch.manual_seed(0)
    a = build_model("small", **small)
    with torch.no_grad():
        for name, p in a.named_parameters():
            if "lora_B" in name or name.startswith("projector"):
                p.normal_()
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        a.save_pretrained(d)
        assert (Path(d) / "adapter" / "adapter_model.safetensors").is_file()
        torch.manual_seed(1)
        b = build_model("small", **small)
        load_checkpoint_weights(b, d)
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    for name, p in pa.items():
        if p.requires_grad:
            assert torch.equal(p, pb[name]), name
    trainable = set_stage(b, "align")
    assert trainable == ["markers", "projector"]  # the pretrained LM (and its LoRA) waits for stage 2
    assert not any(p.requires_grad for n, p in b.named_parameters() if "lora_" in n)


# -- learning --------------------------------------------------------------------------------------------------
def test_start_end_and_inflection_repeat_reach_the_training_data_only(tmp_path):
    from vidnav.train import train

    data = synthetic_rollout(tmp_path / "R", n_trajectories=2, n_frames=4, seed=1)
    turns = sum(len(inflections(t.targets)) for t in NavSamples([data]).trajectories)
    summary = train(
        TrainConfig(
            preset="tiny",
            overrides=FAST,
            data=[str(data)],
            out=str(tmp_path / "run"),
            max_steps=1,
            batch_size=4,
            save_steps=1000,
            eval_data=[str(data)],
            progress=False,
            start_frames=3,
            start_repeat=1,
            end_frames=2,
            end_repeat=1,
            inflection_repeat=1,
        )
    )
    assert turns >= 2 and summary["samples"] == 8 + 2 * 3 + 2 * 2 + turns and summary["eval"]["samples"] == 8


def test_learns_two_trajectories(tmp_path):
    from vidnav.train import train

    data = synthetic_rollout(tmp_path / "R", n_trajectories=2, n_frames=4, seed=1)
    cfg = TrainConfig(
        preset="tiny",
        overrides=FAST,
        data=[str(data)],
        out=str(tmp_path / "run"),
        max_steps=50,
        batch_size=8,
        lr=2e-3,
        lr_scheduler="constant",
        logging_steps=5,
        save_steps=1000,
        eval_data=[str(data)],
        eval_steps=20,
        progress=False,
    )
    summary = train(cfg)
    assert summary["steps"] == 50 and summary["samples"] == 8
    assert summary["final_loss"] < summary["first_loss"] / 4
    assert (tmp_path / "run" / "tb").is_dir() and any((tmp_path / "run" / "tb").iterdir())
    saved = json.loads((tmp_path / "run" / "train_summary.json").read_text())
    assert saved["steps"] == 50 and saved["wall_seconds"] > 0

    plans, items = _plans_of(tmp_path / "run" / "final", data)
    right = sum(p == q for plan, it in zip(plans, items) for p, q in zip(plan, it["targets"]))
    assert right / (4 * len(items)) >= 0.9, (plans, [it["targets"] for it in items])
    # validation ran at steps 20 and 40 and after the last step, on the final weights: the same plans as above
    assert [h["step"] for h in saved["eval_history"]] == [20, 40, 50]
    assert summary["eval"]["samples"] == 8 and summary["eval"]["data"] == [str(data)]
    assert summary["eval"]["word_acc"] == pytest.approx(
        [sum(plan[j] == it["targets"][j] for plan, it in zip(plans, items)) / 8 for j in range(4)]
    )
    assert summary["eval"]["first_action_acc"] >= 0.9 and summary["eval"]["loss"] < summary["first_loss"] / 4
    assert saved["eval_history"][-1]["eval_first_action_acc"] == summary["eval"]["first_action_acc"]

    again = train(cfg)  # a finished run is not retrained
    assert again["steps"] == 50 and again["wall_seconds"] == summary["wall_seconds"]
    before = (tmp_path / "run" / "train_summary.json").read_bytes()
    with pytest.raises(VidNavError, match="different settings \\(max_steps\\)"):  # not "already finished"
        train(cfg.replace(max_steps=80))
    assert (tmp_path / "run" / "train_summary.json").read_bytes() == before


def _plans_of(final, data):
    """The plans of the trained model in ``final`` for every sample of the rollout folder ``data``."""
    from vidnav.model import VidNavForCausalLM

    model = VidNavForCausalLM.from_pretrained(final)
    ds = NavSamples([data])
    items = [ds[i] for i in range(len(ds))]
    return model.plan(NavCollator(model, ds, with_index=False)(items)), items


def test_packed_training_learns_two_trajectories(tmp_path):
    from vidnav.train import train

    data = synthetic_rollout(tmp_path / "R", n_trajectories=2, n_frames=4, seed=1)
    summary = train(
        TrainConfig(
            preset="tiny",
            overrides=FAST,
            data=[str(data)],
            out=str(tmp_path / "run"),
            max_steps=40,
            batch_size=2,
            lr=2e-3,
            lr_scheduler="constant",
            logging_steps=5,
            save_steps=1000,
            pack_frames=3,
            end_frames=1,
            end_repeat=2,
            progress=False,
        )
    )
    # 2 trajectories of 4 frames in items of at most 3 frames: 4 sequences, 8 supervised frames (the stops weighted 3)
    assert summary["samples"] == 4 and summary["supervised_frames"] == 8 and summary["steps"] == 40
    assert summary["final_loss"] < summary["first_loss"] / 4
    plans, items = _plans_of(tmp_path / "run" / "final", data)
    right = sum(p == q for plan, it in zip(plans, items) for p, q in zip(plan, it["targets"]))
    assert right / (4 * len(items)) >= 0.9, (plans, [it["targets"] for it in items])
    with pytest.raises(VidNavError, match="pack_frames"):
        TrainConfig(data=[str(data)], pack_frames=4, max_history=2).validate()
    with pytest.raises(VidNavError, match="gradient checkpointing"):
        TrainConfig(data=[str(data)], pack_frames=4, gradient_checkpointing=True).validate()


# -- resume ----------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_sigkill_then_rerun_resumes_to_same_weights(tmp_path, rollout):
    from vidnav.train import train

    out = tmp_path / "killed"
    opts = dict(max_steps=30, save_steps=5, batch_size=2, lr=1e-3, logging_steps=5, seed=3)
    cmd = [
        sys.executable,
        "-m",
        "vidnav.cli",
        "train",
        "--preset",
        "tiny",
        "--data",
        str(rollout),
        "--out",
        str(out),
        *[x for k, v in opts.items() for x in (f"--{k.replace('_', '-')}", str(v))],
        "--no-progress",
        *FAST_ARGS,
    ]
    log = open(tmp_path / "first.log", "w")
    proc = subprocess.Popen(cmd, env=_env(), stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    first = out / "checkpoints" / "checkpoint-5" / "trainer_state.json"
    deadline = time.time() + 120
    while not first.is_file() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    log.close()
    assert first.is_file(), (tmp_path / "first.log").read_text()[-3000:]
    assert not (out / "final").exists(), "the first run finished before the kill; the test proves nothing"

    rerun = subprocess.run(cmd, env=_env(), capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert "resuming from" in rerun.stdout
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["start_step"] >= 5 and summary["start_step"] % 5 == 0 and summary["resumed_from"]
    assert summary["steps"] == 30
    state = json.loads((out / "checkpoints" / "checkpoint-30" / "trainer_state.json").read_text())
    assert state["global_step"] == 30

    # the same experiment without interruption (in this process) ends with the same weights
    ref = train(
        TrainConfig(
            preset="tiny", overrides=FAST, data=[str(rollout)], out=str(tmp_path / "straight"), progress=False, **opts
        )
    )
    assert ref["steps"] == 30 and ref["start_step"] == 0
    wa, wb = _weights(out / "final"), _weights(tmp_path / "straight" / "final")
    assert wa.keys() == wb.keys()
    worst = max((wa[k].float() - wb[k].float()).abs().max().item() for k in wa)
    assert worst < 1e-5, worst
    assert abs(summary["final_loss"] - ref["final_loss"]) < 1e-4


def test_second_training_job_into_one_out_is_refused_and_touches_nothing(tmp_path, rollout):
    """Two identical commands into one OUT: the second would delete the first's half-saved checkpoint."""
    from vidnav.io import writer_lock
    from vidnav.train import train

    out = tmp_path / "run"
    saving = out / "checkpoints" / "checkpoint-5"  # the first job is writing it: no trainer_state.json yet
    saving.mkdir(parents=True)
    (saving / "model.safetensors").write_bytes(b"half")
    cfg = TrainConfig(
        preset="tiny", overrides=FAST, data=[str(rollout)], out=str(out), max_steps=2, batch_size=2, progress=False
    )
    with writer_lock(out, "training", name=".writer-rank0.lock"):  # what the first job (rank 0) holds
        with pytest.raises(VidNavError, match=f"{out} is being written by another training job"):
            train(cfg)
    assert (saving / "model.safetensors").read_bytes() == b"half"
    assert sorted(p.name for p in out.iterdir()) == [".writer-rank0.lock", "checkpoints"]
    with writer_lock(out, "training", name=".writer-rank1.lock"):  # another rank's lock does not block rank 0
        assert train(cfg)["steps"] == 2


# -- DDP -------------------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path, rollout):
    """torchrun --nproc_per_node 2 (gloo): the Trainer shards the data; each rank trains on other samples."""
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(_free_port()),
        "-m",
        "vidnav.cli",
        "train",
        "--preset",
        "tiny",
        "--data",
        str(rollout),
        "--out",
        str(out),
        "--max-steps",
        "3",
        "--batch-size",
        "2",
        "--save-steps",
        "2",
        "--record-samples",
        "--no-progress",
        "--gradient-checkpointing",
        *FAST_ARGS,
    ]
    run = subprocess.run(cmd, env=_env(), capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    seen = [json.loads((out / f"seen_samples-rank{r}.json").read_text()) for r in (0, 1)]
    assert all(s["world_size"] == 2 for s in seen)
    a, b = seen[0]["samples"], seen[1]["samples"]
    assert len(a) == len(b) == 3 * 2
    assert not set(a) & set(b)  # one epoch not yet over: the shards are disjoint
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 3
    assert (out / "final" / "model.safetensors").is_file()
    # each rank locked OUT under its own rank (the Trainer's), so neither refused the other
    assert sorted(p.name for p in out.glob(".writer-rank*.lock")) == [".writer-rank0.lock", ".writer-rank1.lock"]


def test_features_of_inf_are_refused_naming_folder_and_key_before_the_model_is_built(tmp_path, monkeypatch):
    """Issue #33 defect 8: a shard holding inf failed at the first batch, after the model was built, with an error
    naming neither folder nor key."""
    import numpy as np

    import vidnav.train.trainer as trainer

    bad = synthetic_rollout(tmp_path / "bad", n_trajectories=3, n_frames=4)
    shard = bad / "features" / "shard-00000.f16"
    rows = np.fromfile(shard, dtype=np.float16)
    rows[64 * 320 * 5 + 7] = np.inf  # frame 1 of the second trajectory
    rows.tofile(shard)

    def no_model(*a, **k):
        raise AssertionError("the model was built before the features were checked")

    monkeypatch.setattr(trainer, "build_train_model", no_model)
    for held_out in (False, True):
        cfg = TrainConfig(
            data=[str(synthetic_rollout(tmp_path / "ok", n_trajectories=3, n_frames=4)) if held_out else str(bad)],
            eval_data=[str(bad)] if held_out else [],
            out=str(tmp_path / f"run{held_out}"),
            max_steps=1,
            preset="tiny",
        )
        with pytest.raises(VidNavError, match=rf"{bad / 'features'}: key 'traj-0001' frame 1 .*inf or NaN"):
            trainer.train(cfg)
