"""`vidnav serve`: the agent behind an HTTP API for robots (see docs/serve.md)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from vidnav.errors import VidNavError


def read_token(token_file: Path | None) -> str | None:
    """The bearer token: the first line of ``token_file``, else $VIDNAV_TOKEN, else None (no auth)."""
    if token_file is not None:
        try:
            lines = token_file.read_text().splitlines()
            token = lines[0].strip() if lines else ""
        except OSError as e:
            raise VidNavError(
                f"--token-file {token_file}: cannot read it ({e.strerror}); give a file holding the token"
            ) from None
        if not token:
            raise VidNavError(
                f"--token-file {token_file} is empty; write the token into it, e.g. "
                f"`python -c 'import secrets; print(secrets.token_urlsafe(32))' > {token_file}`"
            )
        return token
    token = os.environ.get("VIDNAV_TOKEN", "").strip()
    return token or None


def serve_command(
    agent: str = typer.Option("default", help="default (the shipped agent) | a checkpoint folder"),
    host: str = typer.Option("127.0.0.1", help="address to listen on; beyond loopback a token is required"),
    port: int = typer.Option(8080, help="TCP port"),
    token_file: Optional[Path] = typer.Option(
        None, help="file holding the bearer token (else $VIDNAV_TOKEN; without either, loopback only and no auth)"
    ),
    max_sessions: int = typer.Option(32, help="live sessions at most; one more is refused with 429"),
    idle_timeout: float = typer.Option(600.0, help="seconds after which an unused session is dropped"),
    max_frames: int = typer.Option(5000, help="frames per session at most (bounds its memory)"),
    max_upload_mb: float = typer.Option(8.0, help="largest request body in MiB (413 beyond)"),
    max_frame_side: int = typer.Option(2048, help="largest frame width or height in pixels (422 beyond)"),
    threads: Optional[int] = typer.Option(None, help="torch threads (default: torch's choice, the cores)"),
) -> None:
    """Serve an agent over HTTP: sessions (one per episode), frames in, actions out; API docs at /docs.

    Example: vidnav serve --agent default --port 8080   then   RemoteAgent("http://127.0.0.1:8080")
    """
    from vidnav.eval.agents import agent_run_options
    from vidnav.serve.app import create_app, shared_model_agents
    from vidnav.serve.frames import FrameLimits
    from vidnav.serve.server import bind_socket, check_bind, serve_forever
    from vidnav.serve.sessions import Limits

    token = read_token(token_file)
    check_bind(host, token)
    if not 1 <= port <= 65535:
        raise typer.BadParameter(f"must be 1..65535, got {port}", param_hint="--port")
    if not max_upload_mb > 0:
        raise typer.BadParameter(f"must be > 0, got {max_upload_mb}", param_hint="--max-upload-mb")
    if max_frame_side < 8:
        raise typer.BadParameter(f"must be >= 8, got {max_frame_side}", param_hint="--max-frame-side")
    for flag, value, ok, want in (
        ("--max-sessions", max_sessions, max_sessions >= 1, ">= 1"),
        ("--max-frames", max_frames, max_frames >= 1, ">= 1"),
        ("--idle-timeout", idle_timeout, idle_timeout > 0, "> 0 seconds"),
    ):
        if not ok:
            raise typer.BadParameter(f"must be {want}, got {value}", param_hint=flag)
    limits = Limits(max_sessions=max_sessions, idle_timeout_s=idle_timeout, max_frames=max_frames)
    if threads is not None:
        import torch

        if threads < 1:
            raise typer.BadParameter(f"must be >= 1, got {threads}", param_hint="--threads")
        torch.set_num_threads(threads)
    sock = bind_socket(host, port)  # before the model loads: a port in use is reported at once, in one line
    typer.echo(f"loading agent {agent} ...")
    try:
        new_agent, name, fingerprint = shared_model_agents(agent)
    except BaseException:
        sock.close()
        raise
    app = create_app(
        new_agent,
        name=name,
        fingerprint=fingerprint,
        token=token,
        limits=limits,
        frame_limits=FrameLimits(max_side=max_frame_side),
        max_upload_bytes=int(max_upload_mb * 2**20),
        run_options=agent_run_options(agent).to_dict(),
    )  # reported in /v1/health
    typer.echo(
        f"serving {name} ({fingerprint}) on http://{host}:{port}  (API docs: /docs; "
        f"{'bearer token required' if token else 'no token: loopback only'})"
    )
    serve_forever(app, sock)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)
