"""The agent as an HTTP service (FastAPI): sessions for robots, one streaming agent each.

    app = create_app(lambda: Agent(model), name="default", fingerprint="...", token="s3cret")
    uvicorn.run(app, host="127.0.0.1", port=8080)     # or: vidnav serve --agent default

Endpoints (JSON unless said otherwise; every one but health and the API docs needs ``Authorization: Bearer
TOKEN`` when the server has a token):

- ``GET  /v1/health`` → the model's name and weights fingerprint, its run options (how its plans are meant to be
  executed: re-plan when blocked, break loops, ...; see docs/serve.md), live sessions;
- ``POST /v1/sessions`` ``{"instruction": str}`` → 201 ``{"session_id", "num_actions", ...}``;
- ``GET  /v1/sessions/{id}`` → the session's instruction, frames seen, idle seconds;
- ``POST /v1/sessions/{id}/act`` multipart: ``image`` (PNG or JPEG, 8-bit RGB), optional ``seq`` (0-based index of
  the frame in the session; pipelined frames are then processed strictly in that order) and ``ban_first``
  (comma-separated action words the plan may not start with) → ``{"actions": [...], "step": n}``, n = the frames
  the session has now seen;
- ``POST /v1/sessions/{id}/observe`` multipart as act → ``{"step": n}``: a frame seen while executing a plan;
- ``POST /v1/sessions/{id}/ask`` ``{"question": str}`` → ``{"answer": str}``; 422 where the model cannot answer;
- ``DELETE /v1/sessions/{id}`` → 204.

Bad input is a 4xx whose ``detail`` says what to fix: 401 (token), 404 (session), 409 (frame order, frame cap),
413 (upload size), 422 (frames, text, fields), 429 (session cap). Sessions are served concurrently: each request
runs in a worker thread; a session's requests take turns (its lock), other sessions' run beside them on agents
that share one model (eval mode, no grad: read-only; tokenizer calls, in reset and ask, take one lock). While the
app runs (its lifespan: uvicorn's ``lifespan="on"``), a background task drops idle sessions every
``Limits.sweep_interval_s``, so their memory is released without waiting for a request.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable
from contextlib import asynccontextmanager, suppress
from typing import Any, Optional

from fastapi import FastAPI, File, Form, Request, Security, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer
from pydantic import BaseModel, StrictStr
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from vidnav.actions import ACTIONS  # the model's words, without importing torch
from vidnav.errors import VidNavError
from vidnav.serve.frames import FrameError, FrameLimits, decode_frame
from vidnav.serve.sessions import Limits, SessionError, SessionStore

PUBLIC_PATHS = frozenset({"/v1/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
MAX_UPLOAD_BYTES = 8 << 20
MAX_TEXT_CHARS = 4096  # an instruction or question (RxR's longest instructions are about 2,500 characters)
log = logging.getLogger("vidnav.serve")


class NewSession(BaseModel):
    instruction: StrictStr


class Question(BaseModel):
    question: StrictStr


class Created(BaseModel):
    session_id: str
    num_actions: int
    max_frames: int
    idle_timeout_s: float


class Acted(BaseModel):
    actions: list[str]
    step: int


class Observed(BaseModel):
    step: int


class Answer(BaseModel):
    answer: str


class SessionInfo(BaseModel):
    session_id: str
    instruction: str
    step: int
    idle_s: float


def create_app(
    new_agent: Callable[[], Any],
    *,
    name: str,
    fingerprint: str | None,
    token: str | None = None,
    limits: Limits | None = None,
    frame_limits: FrameLimits | None = None,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    max_text_chars: int = MAX_TEXT_CHARS,
    run_options: dict | None = None,
):
    """The FastAPI app. ``new_agent()`` returns a fresh streaming agent (``reset(instruction)``,
    ``act(rgb, ban_first=None)``, ``observe(rgb)``, ``num_actions``; optionally ``ask(question)``); one per session.
    ``run_options``: the served checkpoint's run options (run_options.json), reported in /v1/health for clients
    that execute the plans (`vidnav eval --agent http://...` applies them)."""
    store = SessionStore(new_agent, limits)
    frame_limits = frame_limits or FrameLimits()
    app = FastAPI(
        title="vidnav agent",
        version="1",
        lifespan=sweeping(store),
        description="A vidnav navigation agent for robots: one session per episode; send the camera "
        "frames, get the next actions. See docs/serve.md.",
    )
    app.state.store = store
    app.add_middleware(GuardMiddleware, token=token, max_upload_bytes=max_upload_bytes)
    # the token itself is checked by GuardMiddleware before the body is read; this declares it in the OpenAPI schema
    bearer = [Security(HTTPBearer(auto_error=False, description="the server's token (--token-file / VIDNAV_TOKEN)"))]

    def text(value: str, field: str) -> str:
        if not value.strip():
            raise VidNavError(f"field {field!r} is empty; give the text")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # e.g. a lone surrogate escaped in JSON ("\\ud800"): tokenizers cannot take it
            raise VidNavError(
                f"field {field!r} is not valid Unicode text (it holds a lone surrogate); send UTF-8 text"
            ) from None
        if len(value) > max_text_chars:
            raise VidNavError(
                f"field {field!r} has {len(value)} characters, more than the {max_text_chars} this "
                "server takes; shorten it"
            )
        return value

    def banned(value: str | None) -> list[str] | None:
        if value is None or not value.strip():
            return None
        words = [w.strip() for w in value.split(",") if w.strip()]
        bad = [w for w in words if w not in ACTIONS]
        if bad:
            raise VidNavError(
                f"field 'ban_first' holds {', '.join(map(repr, bad))}; give action words from "
                f"{', '.join(ACTIONS)}, separated by commas"
            )
        return words

    def frame(image) -> Any:
        return decode_frame(image.file.read(max_upload_bytes + 1), frame_limits)

    @app.get("/v1/health")
    def health() -> dict:
        """Liveness and what is served (no token needed)."""
        return {
            "status": "ok",
            "model": name,
            "fingerprint": fingerprint,
            "run_options": run_options or {},
            "sessions": len(store),
            "max_sessions": store.limits.max_sessions,
        }

    @app.post("/v1/sessions", status_code=201, response_model=Created, dependencies=bearer)
    def create_session(body: NewSession) -> dict:
        """Start an episode: a new agent reset with the instruction."""
        s = store.create(text(body.instruction, "instruction"))
        return {
            "session_id": s.id,
            "num_actions": s.num_actions,
            "max_frames": store.limits.max_frames,
            "idle_timeout_s": store.limits.idle_timeout_s,
        }

    @app.get("/v1/sessions/{session_id}", response_model=SessionInfo, dependencies=bearer)
    def session_info(session_id: str) -> dict:
        s = store.get(session_id)
        return {
            "session_id": s.id,
            "instruction": s.instruction,
            "step": s.frames,
            "idle_s": round(max(0.0, store.clock() - s.last_used), 3),
        }

    @app.post("/v1/sessions/{session_id}/act", response_model=Acted, dependencies=bearer)
    def act(
        session_id: str,
        image: UploadFile = File(..., description="one RGB camera frame, PNG or JPEG"),
        seq: Optional[int] = Form(None, ge=0, description="0-based index of this frame in the session"),
        ban_first: Optional[str] = Form(
            None, description="comma-separated action words the plan may not start with, e.g. 'forward'"
        ),
    ) -> dict:
        """Add the frame to the session's memory and plan the next actions."""
        rgb, ban = frame(image), banned(ban_first)
        with store.turn(session_id, seq) as s:
            actions = s.agent.act(rgb, ban_first=ban) if ban else s.agent.act(rgb)
            s.frames += 1
            return {"actions": list(actions), "step": s.frames}

    @app.post("/v1/sessions/{session_id}/observe", response_model=Observed, dependencies=bearer)
    def observe(
        session_id: str,
        image: UploadFile = File(..., description="one RGB camera frame, PNG or JPEG"),
        seq: Optional[int] = Form(None, ge=0, description="0-based index of this frame in the session"),
    ) -> dict:
        """Add a frame seen while executing a plan, without planning."""
        rgb = frame(image)
        with store.turn(session_id, seq) as s:
            s.agent.observe(rgb)
            s.frames += 1
            return {"step": s.frames}

    @app.post("/v1/sessions/{session_id}/ask", response_model=Answer, dependencies=bearer)
    def ask(session_id: str, body: Question) -> dict:
        """Ask about what the agent has seen (models trained for embodied questions)."""
        question = text(body.question, "question")
        with store.turn(session_id, frame=False) as s:
            answer = getattr(s.agent, "ask", None)
            if not callable(answer):
                raise VidNavError(
                    f"this model ({name}) cannot answer questions: it was trained for navigation only; "
                    "serve a checkpoint trained with embodied questions"
                )
            with store.text_lock:
                return {"answer": str(answer(question))}

    @app.delete("/v1/sessions/{session_id}", status_code=204, response_class=Response, dependencies=bearer)
    def delete_session(session_id: str):
        store.delete(session_id)
        return Response(status_code=204)

    @app.exception_handler(SessionError)
    async def _session_error(request: Request, e: SessionError):
        headers = {"Retry-After": str(max(1, int(store.limits.idle_timeout_s)))} if e.status == 429 else None
        return JSONResponse({"detail": e.message}, status_code=e.status, headers=headers)

    @app.exception_handler(FrameError)
    async def _frame_error(request: Request, e: FrameError):
        return JSONResponse({"detail": e.message}, status_code=e.status)

    @app.exception_handler(VidNavError)
    async def _user_error(request: Request, e: VidNavError):
        return JSONResponse({"detail": str(e)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, e: StarletteHTTPException):
        detail, where = e.detail, f"{request.method} {request.url.path}"
        if e.status_code == 404:
            detail = f"no endpoint {where}; the endpoints are under /v1 (listed at /docs)"
        elif e.status_code == 405:
            detail = f"{where} is not allowed (allowed: {(e.headers or {}).get('Allow', '?')}); see /docs"
        return JSONResponse({"detail": detail}, status_code=e.status_code, headers=e.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, e: RequestValidationError):
        return JSONResponse({"detail": validation_message(e.errors(), request.url.path)}, status_code=422)

    return app


def sweeping(store: SessionStore):
    """The app's lifespan: a task that sweeps idle sessions every ``store.limits.sweep_interval_s`` (the sweep
    takes the store's lock, so it runs in a worker thread), cancelled when the server shuts down."""

    async def sweep_forever():
        while True:
            await asyncio.sleep(store.limits.sweep_interval_s)
            try:
                await run_in_threadpool(store.sweep)
            except Exception:  # pragma: no cover - a bug; keep serving and sweeping
                log.exception("sweeping idle sessions failed")

    @asynccontextmanager
    async def lifespan(app):
        task = asyncio.create_task(sweep_forever(), name="vidnav-sweep-idle-sessions")
        try:
            yield
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    return lifespan


_FORMS = {
    "sessions": 'JSON {"instruction": "<text>"}',
    "ask": 'JSON {"question": "<text>"}',
    "act": 'multipart/form-data with the frame (PNG or JPEG) in field "image" and optionally "seq"',
    "observe": 'multipart/form-data with the frame (PNG or JPEG) in field "image" and optionally "seq"',
}


def validation_message(errors, path: str) -> str:
    """FastAPI's validation errors as one sentence naming each field, plus what the endpoint takes."""
    parts = []
    for err in list(errors)[:5]:
        loc = [str(x) for x in err.get("loc", ())]
        where = f"{loc[0]} field {'.'.join(loc[1:])!r}" if len(loc) > 1 else (loc[0] if loc else "request")
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    want = _FORMS.get(path.rstrip("/").rsplit("/", 1)[-1])
    return "; ".join(parts) + (f"; this endpoint takes {want}" if want else "")


class GuardMiddleware:
    """Pure ASGI, before any body is read: the bearer token (401) and the upload size (413, from Content-Length
    or, for a chunked body, counted as it arrives; the body is then handed on whole)."""

    def __init__(self, app, token: str | None, max_upload_bytes: int):
        self.app, self.token, self.max = app, token, max_upload_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or ())
        if self.token is not None and scope["path"] not in PUBLIC_PATHS and not self._authorized(headers):
            return await _reply(
                send,
                401,
                "missing or wrong bearer token: send the header 'Authorization: Bearer "
                "<token>' with the server's token (vidnav serve --token-file / VIDNAV_TOKEN)",
                {b"www-authenticate": b"Bearer"},
            )
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max):
            return await _reply(send, 413, self._too_large(length))
        chunks, n = [], 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            body = msg.get("body", b"")
            n += len(body)
            if n > self.max:
                return await _reply(send, 413, self._too_large(None))
            chunks.append(body)
            if not msg.get("more_body", False):
                break
        whole, handed = b"".join(chunks), False

        async def replay():
            nonlocal handed
            if not handed:
                handed = True
                return {"type": "http.request", "body": whole, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _authorized(self, headers: dict) -> bool:
        value = headers.get(b"authorization", b"")
        scheme, _, given = value.partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.token.encode())

    def _too_large(self, length) -> str:
        size = f" ({length.decode(errors='replace')} bytes)" if length else ""
        return (
            f"the request body{size} is larger than this server's limit of {self.max} bytes; send one "
            "compressed frame (PNG or JPEG) per request, or start the server with a larger --max-upload-mb"
        )


async def _reply(send, status: int, detail: str, headers: dict | None = None) -> None:
    import json

    body = json.dumps({"detail": detail}).encode()
    hs = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *(headers or {}).items(),
    ]
    await send({"type": "http.response.start", "status": status, "headers": hs})
    await send({"type": "http.response.body", "body": body})


def shared_model_agents(agent: str = "default"):
    """For `vidnav serve --agent default|PATH`: the model loaded once, warmed up, and a factory of fresh Agents
    on it (one per session); returns ``(new_agent, name, fingerprint)``."""
    from pathlib import Path

    import numpy as np

    from vidnav.agent import Agent, load_agent
    from vidnav.eval.agents import BUILTIN, agent_weights

    if agent != "default":
        path = Path(agent)
        if agent in BUILTIN or not (path / "config.json").is_file():
            raise VidNavError(
                f"--agent {agent}: serve 'default' (the shipped agent) or a checkpoint folder with "
                "config.json (written by `vidnav train`); the baselines need the simulator"
            )
    first = load_agent(None if agent == "default" else agent)
    model = first.model
    # load the tokenizers, the action codec and any lazily built tensors now, not in concurrent first requests
    first.reset("warm up")
    first.act(np.zeros((224, 224, 3), np.uint8))
    name = "default" if agent == "default" else Path(agent).resolve().name
    return (lambda: Agent(model)), name, agent_weights(agent)
