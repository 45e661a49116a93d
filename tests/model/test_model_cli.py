import json
import subprocess
import sys

import pytest


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "vidnav.cli", *args], capture_output=True, text=True)


def cli_json(capsys, *args):
    """``vidnav ARGS --json`` in this process (a subprocess would pay the torch import again)."""
    from vidnav.cli import main

    capsys.readouterr()
    main([*args, "--json"])
    return json.loads(capsys.readouterr().out)


def test_model_info_json_for_tiny_uninavid(capsys):
    info = cli_json(capsys, "model", "info", "--preset", "tiny", "--memory", "uninavid", "--frames", "200")
    assert {"current", "short_term", "long_term", "context", "total", "params_total", "params_trainable"} <= set(info)
    assert (info["current"], info["short_term"], info["long_term"], info["context"]) == (64, 256, 135, 0)
    assert info["total"] == 455 and info["long_term_is_upper_bound"]
    assert info["params_trainable"] < info["params_total"]
    assert info["params_trainable"] * 4 <= 50e6  # tiny's trainable weights fit in 50 MB as fp32


def test_model_info_every_preset_and_strategy_in_one_process():
    """Every preset × strategy (meta device, no weights) — in-process to keep the suite fast."""
    from vidnav.model import MEMORY_STRATEGIES, PRESETS
    from vidnav.model.cli import model_info

    for preset in PRESETS:
        for memory in MEMORY_STRATEGIES:
            info = model_info(preset, memory, 20)
            assert info["total"] == info["current"] + info["short_term"] + info["long_term"] + info["context"] > 0


def test_model_info_7b_counts_without_weights(capsys):
    info = cli_json(capsys, "model", "info", "--preset", "navid-7b", "--memory", "navid", "--frames", "64")
    assert (info["current"], info["short_term"], info["context"]) == (64, 252, 64)
    assert 7.8e9 < info["params_total"] < 8.0e9  # EVA-CLIP-g ~1.0B + BERT-base 0.1B + Vicuna-7B 6.7B + LoRA


def test_model_info_table_and_errors(capsys):
    from vidnav.cli import main

    main(["model", "info", "--preset", "tiny", "--memory", "navid", "--frames", "5", "--no-context"])
    out = capsys.readouterr().out
    assert "short-term" in out and "16" in out
    for args, message in ((["--memory", "rnn"], "unknown memory strategy"), (["--frames", "0"], "--frames")):
        with pytest.raises(SystemExit) as e:
            main(["model", "info", *args])
        assert e.value.code == 2 and message in capsys.readouterr().err
    # as a real process: one clear line, exit 2, no traceback
    r = run_cli("model", "info", "--preset", "giant")
    assert r.returncode == 2 and "unknown preset 'giant'" in r.stderr and "Traceback" not in r.stderr


def test_model_help_has_an_example():
    r = run_cli("model", "info", "--help")
    assert r.returncode == 0 and "Example: vidnav model info" in r.stdout
    r = run_cli("--help")
    assert r.returncode == 0 and "model" in r.stdout
