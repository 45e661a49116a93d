"""Running the app: in the foreground for `vidnav serve`, or in a background thread (tests, benchmarks).

    sock = bind_socket("127.0.0.1", 8080)      # VidNavError if the port is taken, before the model loads
    serve_forever(app, sock)
    with BackgroundServer(app) as server:      # a free loopback port, shut down on exit
        agent = RemoteAgent(server.url)

We bind the listening socket ourselves and hand it to uvicorn, so that a port in use (or a host that is not
this machine's) is one clear error naming host:port and the fix, not uvicorn's log line and exit code 3.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import threading
import time

from vidnav.errors import VidNavError

BACKLOG = 2048  # pending connections (uvicorn's default)


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
        raise VidNavError(
            f"--host {host} would let other machines drive the agent without a token; give "
            "--token-file FILE (or set VIDNAV_TOKEN), or bind to 127.0.0.1"
        )


def bind_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (``port`` 0: a free one), not yet listening; a VidNavError if it cannot
    be bound. SO_REUSEADDR as uvicorn sets it: a restarted server need not wait for old connections to time out
    (a port another socket listens on is still refused)."""
    host = host.strip("[]")
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise bind_error(host, port, e) from None
    return sock


def bind_error(host: str, port: int, e: OSError) -> VidNavError:
    """What went wrong binding ``host:port``, and what to do about it."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if isinstance(e, socket.gaierror):
        why = f"the host name {host!r} does not resolve ({e.strerror}); give an IP address such as 127.0.0.1"
    elif e.errno == errno.EADDRINUSE:
        why = (
            f"the port is already in use (another vidnav serve or another program listens on it); pick another "
            f"--port, or stop that process (`ss -ltnp 'sport = :{port}'` shows which)"
        )
    elif e.errno in (errno.EACCES, errno.EPERM):
        why = "permission denied (ports below 1024 need root); pick a --port of 1024 or more"
    elif e.errno == errno.EADDRNOTAVAIL:
        why = (
            f"{host} is not an address of this machine; give --host 127.0.0.1 (this machine only), 0.0.0.0 "
            "(every interface) or one of its own addresses"
        )
    else:
        why = f"{e.strerror or e}; pick another --port or --host"
    return VidNavError(f"cannot listen on {where}: {why}")


def _config(app, host: str, port: int, log_level: str, **kw):
    import uvicorn

    # keep-alive longer than a robot's pause between frames; the app bounds bodies itself (GuardMiddleware)
    return uvicorn.Config(
        app, host=host, port=port, log_level=log_level, timeout_keep_alive=30, lifespan="on", server_header=False, **kw
    )


def serve_forever(app, sock: socket.socket, log_level: str = "info") -> None:
    """Serve on ``sock`` (from :func:`bind_socket`) until interrupted (Ctrl-C / SIGTERM); then close it."""
    import uvicorn

    host, port = sock.getsockname()[:2]
    with sock:
        try:
            sock.listen(BACKLOG)
        except OSError as e:  # e.g. another socket bound with SO_REUSEADDR began listening first
            raise bind_error(host, port, e) from None
        uvicorn.Server(_config(app, host, port, log_level)).run(sockets=[sock])


class BackgroundServer:
    """The app on a free port of ``host`` (loopback by default) in a daemon thread; ``url`` once entered."""

    def __init__(
        self, app, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning", start_timeout: float = 30.0
    ):
        self.app, self.host, self.port, self.log_level, self.start_timeout = app, host, port, log_level, start_timeout
        self.url = None
        self._server = self._thread = self._sock = None

    def __enter__(self) -> BackgroundServer:
        import uvicorn

        self._sock = bind_socket(self.host, self.port)
        port = self._sock.getsockname()[1]
        self._server = uvicorn.Server(_config(self.app, self.host, port, self.log_level))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name=f"vidnav-serve-{port}", daemon=True
        )
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
