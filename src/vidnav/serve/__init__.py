"""The agent as an HTTP service (`vidnav serve`) and its client.

``RemoteAgent``: the Agent contract over HTTP; ``create_app``: the FastAPI app (imports FastAPI on first use).
"""

from vidnav.serve.client import RemoteAgent

__all__ = ["RemoteAgent", "create_app"]


def __getattr__(name):
    if name == "create_app":
        from vidnav.serve.app import create_app

        return create_app
    raise AttributeError(f"module 'vidnav.serve' has no attribute {name!r}")
