"""RemoteAgent: the streaming Agent's contract over HTTP, against a `vidnav serve` server.

    agent = RemoteAgent("http://127.0.0.1:8080", token=None)   # token: else $VIDNAV_TOKEN, else none
    agent.reset("walk past the sofa and stop at the door")   # a new server session (the previous one is deleted)
    actions = agent.act(rgb)                                   # uint8 [H, W, 3] → e.g. ['forward', 'left', ...]
    agent.observe(next_rgb)                                    # frames seen while executing the plan
    agent.close()                                              # or use it as a context manager

Frames travel as PNG (lossless), each with its index in the session (``seq``), so the server's agent sees exactly
the arrays given here, in order: `vidnav eval --agent http://HOST:PORT` gets the in-process agent's results.
One RemoteAgent is one episode stream, like an Agent: use one per thread. Only the standard library speaks HTTP
(one kept-alive connection per RemoteAgent).
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import weakref
from collections.abc import Collection
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from vidnav.errors import VidNavError


def is_url(name: str) -> bool:
    return isinstance(name, str) and name.lower().startswith(("http://", "https://"))


class RemoteAgent:
    """See the module docstring. ``timeout``: seconds per request."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 120.0):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise VidNavError(f"agent URL {url!r} must look like http://HOST:PORT (a `vidnav serve` server)")
        self.url = url.rstrip("/")
        self._base = parts.path.rstrip("/")
        self._conn_args = (parts.scheme, parts.hostname, parts.port, timeout)
        token = token if token is not None else os.environ.get("VIDNAV_TOKEN")
        self._headers = {"Authorization": f"Bearer {token.strip()}"} if token else {}
        self._state = {"conn": None, "session": None}  # shared with the finalizer, which deletes the session
        self._request = self._request_fn()  # a closure over the state, not over self (the finalizer holds it)
        self._finalizer = weakref.finalize(self, _close, self._state, self._request)
        self.num_actions: int | None = None
        self.instruction: str | None = None
        self.steps = 0

    # -- the Agent contract -----------------------------------------------------------------------------------
    def reset(self, instruction: str) -> None:
        """Start an episode: a new session on the server (the previous one, if any, is deleted)."""
        self._end_session()
        out = self._json("POST", "/v1/sessions", {"instruction": instruction}, expect=201)
        self._state["session"] = out["session_id"]
        self.num_actions = int(out["num_actions"])
        self.instruction = instruction
        self.steps = 0

    def act(self, rgb: Any, ban_first: str | Collection[str] | None = None) -> list[str]:
        """Send the frame, get the plan (``ban_first``: action words the plan may not start with)."""
        fields = {}
        if ban_first:
            fields["ban_first"] = ",".join(sorted({ban_first} if isinstance(ban_first, str) else set(ban_first)))
        out = self._frame("act", rgb, fields)
        return list(out["actions"])

    def observe(self, rgb: Any) -> None:
        """Send a frame seen while executing a plan (no planning)."""
        self._frame("observe", rgb, {})

    def ask(self, question: str) -> str:
        return self._json("POST", f"/v1/sessions/{self._session()}/ask", {"question": question})["answer"]

    def health(self) -> dict:
        """The server's model name, weights fingerprint and sessions (no token needed)."""
        return self._json("GET", "/v1/health", None)

    def close(self) -> None:
        """Delete the session and close the connection (also done when the object is collected)."""
        self._finalizer()

    def __enter__(self) -> RemoteAgent:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- HTTP -------------------------------------------------------------------------------------------------
    def _session(self) -> str:
        if self._state["session"] is None:
            raise VidNavError("call agent.reset(instruction) before giving it frames")
        return self._state["session"]

    def _end_session(self) -> None:
        sid, self._state["session"] = self._state["session"], None
        if sid is not None:
            self._request("DELETE", f"/v1/sessions/{sid}", None, {}, expect=(204, 404))

    def _frame(self, endpoint: str, rgb: Any, fields: dict) -> dict:
        from vidnav.serve.frames import encode_png

        sid = self._session()
        arr = np.asarray(rgb)
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[-1] != 3:
            raise VidNavError(f"the agent takes one uint8 RGB frame [H, W, 3], got {arr.dtype} {tuple(arr.shape)}")
        body, ctype = _multipart({"seq": str(self.steps), **fields}, "image", "frame.png", encode_png(arr))
        out = self._request("POST", f"/v1/sessions/{sid}/{endpoint}", body, {"Content-Type": ctype})
        self.steps = int(out["step"])
        return out

    def _json(self, method: str, path: str, payload, expect=200) -> dict:
        body = None if payload is None else json.dumps(payload).encode()
        headers = {} if body is None else {"Content-Type": "application/json"}
        return self._request(method, path, body, headers, expect=expect)

    def _request_fn(self):
        state, base, conn_args, auth = self._state, self._base, self._conn_args, self._headers
        url = self.url

        def request(method: str, path: str, body: bytes | None, headers: dict, expect=200):
            expect = (expect,) if isinstance(expect, int) else tuple(expect)
            for attempt in (0, 1):
                fresh = state["conn"] is None
                if fresh:
                    scheme, host, port, timeout = conn_args
                    cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
                    state["conn"] = cls(host, port, timeout=timeout)
                conn = state["conn"]
                try:
                    conn.request(method, base + path, body=body, headers={**auth, **headers})
                    resp = conn.getresponse()
                    data = resp.read()
                except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                    conn.close()
                    state["conn"] = None
                    if fresh or attempt:  # a kept-alive connection the server closed: retry once on a new one
                        raise VidNavError(f"the vidnav server at {url} closed the connection ({e})") from None
                    continue
                except OSError as e:
                    conn.close()
                    state["conn"] = None
                    raise VidNavError(
                        f"cannot reach the vidnav server at {url} ({e}); start it with `vidnav serve` or check the URL"
                    ) from None
                if resp.getheader("connection", "").lower() == "close":
                    conn.close()
                    state["conn"] = None
                if resp.status not in expect:
                    try:
                        detail = json.loads(data)["detail"]
                    except Exception:
                        detail = data[:300].decode(errors="replace")
                    raise VidNavError(f"{url}: {method} {path} answered HTTP {resp.status}: {detail}")
                return json.loads(data) if data else {}

        return request


def _close(state: dict, request) -> None:
    sid, state["session"] = state["session"], None
    try:
        if sid is not None:
            request("DELETE", f"/v1/sessions/{sid}", None, {}, expect=(204, 404))
    except Exception:  # best effort: the server drops idle sessions anyway
        pass
    if state["conn"] is not None:
        state["conn"].close()
        state["conn"] = None


def _multipart(fields: dict[str, str], file_field: str, filename: str, data: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body with text fields and one file, and its Content-Type."""
    boundary = "vidnav-" + secrets.token_hex(12)
    out = []
    for k, v in fields.items():
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode())
    out.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{filename}"\r\n'
        f"Content-Type: image/png\r\n\r\n".encode()
    )
    out.append(data)
    out.append(f"\r\n--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"
