"""vidnav.model: the video-language navigation model (config, modeling, memories, actions, presets).

Names are imported on first use, so ``vidnav.model.cli`` (and ``vidnav --help``) stays free of torch and
transformers imports.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "ACTIONS": "vidnav.model.actions",
    "parse_actions": "vidnav.model.actions",
    "canonical_actions": "vidnav.model.actions",
    "VidNavConfig": "vidnav.model.configuration_vidnav",
    "VidNavForCausalLM": "vidnav.model.modeling_vidnav",
    "as_frames": "vidnav.model.processing_vidnav",
    "VidNavProcessor": "vidnav.model.processing_vidnav",
    "MEMORY_STRATEGIES": "vidnav.model.memory",
    "PRESETS": "vidnav.model.presets",
    "build_model": "vidnav.model.presets",
    "preset_config": "vidnav.model.presets",
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vidnav.model' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))


__all__ = list(_EXPORTS)
