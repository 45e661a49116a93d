"""Running the app: in the foreground for `vidnav serve`, or in a background thread (tests, benchmarks).

    with BackgroundServer(app) as server:      # a free loopback port, shut down on exit
        agent = RemoteAgent(server.url)
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time

from vidnav.errors import VidNavError


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond this machine without a token."""
    if token is None and not is_loopback(host):
        raise VidNavError(f"--host {host} would let other machines drive the agent without a token; give "
                          "--token-file FILE (or set VIDNAV_TOKEN), or bind to 127.0.0.1")


def _config(app, host: str, port: int, log_level: str, **kw):
    import uvicorn

    # keep-alive longer than a robot's pause between frames; the app bounds bodies itself (GuardMiddleware)
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, timeout_keep_alive=30, lifespan="off",
                          server_header=False, **kw)


def serve_forever(app, host: str, port: int, log_level: str = "info") -> None:
    """Serve until interrupted (Ctrl-C / SIGTERM)."""
    import uvicorn

    try:
        uvicorn.Server(_config(app, host, port, log_level)).run()
    except OSError as e:
        raise VidNavError(f"cannot listen on {host}:{port} ({e}); pick another --port or --host") from None


class BackgroundServer:
    """The app on a free port of ``host`` (loopback by default) in a daemon thread; ``url`` once entered."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning",
                 start_timeout: float = 30.0):
        self.app, self.host, self.port, self.log_level, self.start_timeout = app, host, port, log_level, start_timeout
        self.url = None
        self._server = self._thread = self._sock = None

    def __enter__(self) -> BackgroundServer:
        import uvicorn

        self._sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((self.host, self.port))
        port = self._sock.getsockname()[1]
        self._server = uvicorn.Server(_config(self.app, self.host, port, self.log_level))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name=f"vidnav-serve-{port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self.start_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"the server on {self.host}:{port} did not start")
            time.sleep(0.01)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{host}:{port}"
        return self

    def __exit__(self, *exc) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._sock is not None:
            self._sock.close()
