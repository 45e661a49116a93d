"""One source of truth for training settings (issue #32 point 5): `vidnav train` options are TrainConfig's
fields, values are type-checked naming the key, the frame-sampling knobs are one dataclass with a pure
function, and `--set num_actions=k` trains on rollouts collected with more target words."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from typer.testing import CliRunner

from vidnav.data.dataset import NavSamples, synthetic_rollout
from vidnav.data.sampling import FrameSampling, listed_frames
from vidnav.errors import VidNavError
from vidnav.train.config import TrainConfig

FAST = {"current_pool": 2, "lm_config": {"num_hidden_layers": 1}}
# a value of each field's type that differs from the default, as a CLI option would give it
SAMPLE = {str: "x", int: 7, float: 0.25, bool: True, list: ["a", "b"], dict: ["name=3"]}


@pytest.fixture
def captured(monkeypatch):
    """Run `vidnav train` with the trainer replaced: returns the TrainConfig the command built."""
    import vidnav.train.trainer as trainer

    seen = {}

    def fake_train(cfg):
        seen["cfg"] = cfg
        return {"steps": 0, "final_loss": 0.0}

    monkeypatch.setattr(trainer, "train", fake_train)

    def run(*args):
        from vidnav.cli import app

        seen.clear()
        result = CliRunner().invoke(app, ["train", *args])
        return result, seen.get("cfg")

    return run


def test_every_config_field_is_a_train_option_with_its_type(captured):
    from vidnav.train.config import _kind, field_types

    types = field_types()
    for f in dataclasses.fields(TrainConfig):
        base, _ = _kind(types[f.name])
        flag = f.metadata.get("flag", "--" + f.name.replace("_", "-"))
        value = SAMPLE[base]
        if base is bool:
            args = [flag if getattr(TrainConfig(), f.name) is False else f"--no-{flag[2:]}"]
        elif isinstance(value, list):
            args = [a for v in value for a in (flag, v)]
        else:
            args = [flag, str(value)]
        result, cfg = captured("--data", "R", *args)
        assert result.exit_code == 0, (f.name, result.output)
        got = getattr(cfg, f.name)
        if base is dict:
            assert got == {"name": 3}, f.name
        elif base is bool:
            assert got is not getattr(TrainConfig(), f.name), f.name
        elif f.name == "data":
            assert got == ["R", "a", "b"]  # every --data given, in order
        else:
            assert got == value, f.name


def test_yaml_then_key_value_then_options_each_type_checked(captured, tmp_path):
    exp = tmp_path / "exp.yaml"
    exp.write_text("data: [R]\nlr: 2e-4\nmax_steps: 1e3\nbatch_size: 8\nrun_options: {break_loops: true}\n")
    result, cfg = captured("--config", str(exp), "batch_size=16", "eval_samples=null", "--run-option", "act_steps=2")
    assert result.exit_code == 0, result.output
    assert cfg.lr == 2e-4 and isinstance(cfg.lr, float)  # PyYAML reads 2e-4 as a string
    assert cfg.max_steps == 1000 and isinstance(cfg.max_steps, int)
    assert cfg.batch_size == 16 and cfg.eval_samples is None
    assert cfg.run_options == {"break_loops": True, "act_steps": 2}  # merged over the file's
    _, cfg = captured("--config", str(exp), "batch_size=16", "--batch-size", "32")
    assert cfg.batch_size == 32  # an option beats a KEY=VALUE argument


@pytest.mark.parametrize(
    "text, key",
    [
        ("lr: fast\n", "lr"),
        ("batch_size: 2.5\n", "batch_size"),
        ("bf16: 'yes'\n", "bf16"),
        ("data: 3\n", "data"),
        ("preset: 7\n", "preset"),
        ("overrides: [a]\n", "overrides"),
        ("max_steps: true\n", "max_steps"),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_naming_file_and_key(tmp_path, text, key):
    exp = tmp_path / "exp.yaml"
    exp.write_text(text)
    with pytest.raises(VidNavError, match=rf"{exp}: {key} must be"):
        TrainConfig.from_yaml(exp)


def test_text_fields_take_key_value_text_as_written_and_numbers_must_be_finite(captured):
    result, cfg = captured("out=2024", "init_from=2024-01-01", "data=0042", "memory=null")
    assert result.exit_code == 0, result.output
    assert cfg.out == "2024" and cfg.init_from == "2024-01-01" and cfg.data == ["0042"] and cfg.memory is None
    for bad in ("lr=nan", "epochs=inf", "weight_decay=-inf"):
        with pytest.raises(VidNavError, match="must be a finite number"):
            TrainConfig.from_dict({"data": ["R"], bad.split("=")[0]: bad.split("=")[1]})


def test_help_shows_each_default_and_how_to_unset():
    from vidnav.cli import app

    text = " ".join(CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "250"}).output.split())
    assert "(default 0.5)" in text and "(default 0.0002)" in text and "(default cosine)" in text
    assert "eval_samples=null unsets it" in text and "--workers" in text and "streaming" in text


def test_python_configs_are_checked_too():
    with pytest.raises(VidNavError, match="lr must be a finite number"):
        TrainConfig(data=["R"], lr="fast").validate()
    assert TrainConfig(data="R", lr="1e-3").validate().lr == 1e-3
    with pytest.raises(VidNavError, match="unknown setting"):
        TrainConfig().replace(learning_rate=1.0)


def test_a_bad_key_value_argument_is_one_line_naming_the_key():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "vidnav.cli", "train", "--data", "R", "batch_size=many"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "batch_size must be an integer" in out.stderr


# -- frame sampling ----------------------------------------------------------------------------------------------
def _targets(firsts: str) -> list[list[str]]:
    return [[w, "stop"] for w in firsts.split()]


def test_listed_frames_is_a_pure_function_of_the_targets():
    t = _targets("forward forward left left forward forward forward stop")  # inflections at 2, 4, 7
    assert listed_frames(t) == list(range(8))
    assert listed_frames(t, FrameSampling(stride=3)) == [0, 3, 6, 7]  # the last frame always
    assert listed_frames(t, FrameSampling(first_frames=3)) == [0, 1, 2]  # then the last only if among them
    assert listed_frames(t, FrameSampling(stride=4, start_frames=2, start_repeat=2)) == [0, 4, 7, 0, 1, 0, 1]
    assert listed_frames(t, FrameSampling(stride=8, end_frames=2, end_repeat=1)) == [0, 7, 6, 7]
    assert listed_frames(t, FrameSampling(stride=8, inflection_repeat=2)) == [0, 7, 2, 4, 7, 2, 4, 7]
    assert listed_frames(t, FrameSampling(only_inflections=True, first_frames=5)) == [2, 4]


@pytest.mark.parametrize(
    "bad, name",
    [
        ({"stride": 0}, "stride"),
        ({"first_frames": 0}, "first_frames"),
        ({"start_repeat": 1}, "start_frames"),
        ({"end_repeat": 2}, "end_frames"),
        ({"inflection_repeat": -1}, "inflection_repeat"),
        ({"stride": 2, "only_inflections": True}, "only_inflections"),
    ],
)
def test_bad_sampling_is_refused_naming_the_setting(bad, name):
    with pytest.raises(VidNavError, match=name):
        FrameSampling(**bad)
    if "only_inflections" not in bad:
        with pytest.raises(VidNavError, match=name):
            TrainConfig(data=["R"], **bad).validate()


def test_nav_samples_list_what_listed_frames_says(tmp_path):
    data = synthetic_rollout(tmp_path / "R", n_trajectories=3, n_frames=9, seed=4)
    s = FrameSampling(stride=3, start_frames=2, start_repeat=1, inflection_repeat=1)
    ds = NavSamples([data], sampling=s)
    assert ds.samples == [(j, t) for j, tr in enumerate(ds.trajectories) for t in listed_frames(tr.targets, s)]
    assert NavSamples([data], stride=3, start_frames=2, start_repeat=1, inflection_repeat=1).samples == ds.samples


# -- num_actions ----------------------------------------------------------------------------------------------------
def test_fewer_action_words_train_on_rollouts_collected_with_more(tmp_path):
    from vidnav.train import train

    torch.set_num_threads(1)
    data = synthetic_rollout(tmp_path / "R4", n_trajectories=2, n_frames=8, k=4, seed=1)  # early targets: no stop
    summary = train(
        TrainConfig(
            preset="tiny",
            overrides={**FAST, "num_actions": 2},
            data=[str(data)],
            out=str(tmp_path / "run"),
            max_steps=1,
            batch_size=4,
            save_steps=1000,
            eval_data=[str(data)],
            progress=False,
        )
    )
    assert summary["steps"] == 1 and len(summary["eval"]["word_acc"]) == 2
    with pytest.raises(VidNavError, match=r"R4.*num_actions=6"):
        train(
            TrainConfig(
                preset="tiny",
                overrides={**FAST, "num_actions": 6},
                data=[str(data)],
                out=str(tmp_path / "run6"),
                max_steps=1,
                progress=False,
            )
        )
    r2 = synthetic_rollout(tmp_path / "R2", n_trajectories=2, n_frames=8, k=2, seed=2)  # held-out of 2 words
    with pytest.raises(VidNavError, match=r"R2.*num_actions=4"):
        train(
            TrainConfig(
                preset="tiny",
                overrides=FAST,
                data=[str(data)],
                eval_data=[str(r2)],
                out=str(tmp_path / "r"),
                max_steps=1,
                progress=False,
            )
        )


def test_frame_counts_matter_only_when_repeated_and_numpy_integers_are_integers():
    import numpy as np

    assert FrameSampling(start_frames=0, end_frames=0).start_repeat == 0  # as before: no repeat, no check
    s = FrameSampling(stride=np.int64(2), start_frames=np.int32(1), start_repeat=1)
    assert listed_frames(_targets("forward left stop"), s) == [0, 2, 0]
