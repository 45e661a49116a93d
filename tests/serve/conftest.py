"""Servers for the serve tests: each listens on a free loopback port and is shut down when its test ends."""

import pytest
from serve_helpers import StandInAgent


@pytest.fixture
def serve_app():
    """make(agent_cls=StandInAgent, token=None, **create_app kwargs) -> a running BackgroundServer."""
    from vidnav.serve.app import create_app
    from vidnav.serve.server import BackgroundServer

    running = []

    def make(agent_cls=StandInAgent, token=None, **kw):
        app = create_app(agent_cls, name="stand-in", fingerprint="0123456789abcdef", token=token, **kw)
        server = BackgroundServer(app).__enter__()
        running.append(server)
        return server

    yield make
    for server in running:
        server.__exit__(None, None, None)
