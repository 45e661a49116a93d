"""vidnav.train: train the model on rollout folders with transformers.Trainer (stages, resume, DDP).

    from vidnav.train import TrainConfig, train
    train(TrainConfig(preset="tiny", data=["rollouts/expert"], out="runs/tiny", max_steps=1000))

Names are imported on first use so ``vidnav --help`` stays light.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "TrainConfig": "vidnav.train.config",
    "train": "vidnav.train.trainer",
    "run_stage": "vidnav.train.trainer",
    "resolve_stages": "vidnav.train.trainer",
    "set_stage": "vidnav.train.trainer",
    "last_checkpoint": "vidnav.train.trainer",
    "load_checkpoint_weights": "vidnav.train.trainer",
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vidnav.train' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = list(_EXPORTS)
