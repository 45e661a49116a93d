"""vidnav: video-based vision-and-language navigation agents on an embedded VLN-CE benchmark."""

__version__ = "0.1.0"

from vidnav.errors import VidNavError
from vidnav.registration import ENV_ID, register_env

register_env()


def __getattr__(name):  # the model stack imports torch/transformers: only when asked for
    if name in ("load_agent", "Agent", "DEFAULT_AGENT_DIR"):
        from vidnav import agent

        return getattr(agent, name)
    if name == "load_navigator":  # an agent that runs as `vidnav eval` runs it
        from vidnav.eval.agents import load_navigator

        return load_navigator
    if name == "PlanOptions":
        from vidnav.run_options import PlanOptions

        return PlanOptions
    if name in ("VidNavConfig", "VidNavForCausalLM", "build_model", "parse_actions", "ACTIONS"):
        import vidnav.model as model

        return getattr(model, name)
    raise AttributeError(f"module 'vidnav' has no attribute {name!r}")


__all__ = [
    "ACTIONS",
    "Agent",
    "DEFAULT_AGENT_DIR",
    "ENV_ID",
    "PlanOptions",
    "VidNavConfig",
    "VidNavError",
    "VidNavForCausalLM",
    "__version__",
    "build_model",
    "load_agent",
    "load_navigator",
    "parse_actions",
]
