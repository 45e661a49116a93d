"""vidnav.model: the video-language navigation model (config, modeling, processing, memories, actions, presets).

Names are imported on first use, so ``vidnav.model.cli`` (and ``vidnav --help``) stays free of torch and
transformers imports. Importing this package registers the config and the model with transformers' Auto classes
(``AutoConfig``, ``AutoModel``, ``AutoModelForCausalLM``): right away when transformers' auto modules are loaded
already, else as soon as they are.
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
import warnings

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

# transformers' auto module -> ours, which registers with it when imported
_AUTO_MODULES = {
    "transformers.models.auto.configuration_auto": "vidnav.model.configuration_vidnav",
    "transformers.models.auto.modeling_auto": "vidnav.model.modeling_vidnav",
}


def _register(auto_module: str) -> None:
    try:
        importlib.import_module(_AUTO_MODULES[auto_module])
    except Exception as e:  # never break importing transformers
        warnings.warn(f"vidnav could not register with transformers' Auto classes: {e}", stacklevel=2)


class _RegisterAfterImport(importlib.abc.MetaPathFinder):
    """Registers vidnav with transformers' Auto classes right after transformers imports its auto modules, so
    that importing vidnav.model does not import torch and transformers (seconds) before they are needed."""

    def find_spec(self, name, path=None, target=None):
        if name not in _AUTO_MODULES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        exec_module = loader.exec_module

        def exec_and_register(module):
            exec_module(module)
            _register(name)

        loader.exec_module = exec_and_register
        return spec


def _register_with_auto_classes() -> None:
    pending = [name for name in _AUTO_MODULES if name not in sys.modules]
    for name in _AUTO_MODULES:
        if name in sys.modules:
            _register(name)
    if pending and not any(isinstance(f, _RegisterAfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterImport())


_register_with_auto_classes()
