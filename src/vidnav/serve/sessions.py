"""Sessions of the agent server: one streaming agent per robot episode, bounded in number and idle time.

    store = SessionStore(new_agent, Limits(max_sessions=32, idle_timeout_s=600))
    sid = store.create("walk past the sofa and stop at the door").id
    with store.turn(sid, seq=0) as session:       # exclusive use of the session, frames strictly in order
        actions = session.agent.act(rgb)

Bounds: at most ``max_sessions`` live sessions; a session unused for ``idle_timeout_s`` is dropped (swept on
every store operation, and by the server every ``Limits.sweep_interval_s`` even without traffic), and creating
one more than the maximum is refused (:class:`Full`, HTTP 429) rather than evicting a session a robot may still
be driving. ``max_frames`` caps one session's frames, so its memory and KV cache stay bounded too. Dropping a
session (DELETE, or expiry) closes it at once: later requests and those waiting for its turn get 404; a request
already running on it completes, and the agent is freed when it ends. So memory does not grow with the number
of sessions that came and went.

Ordering: a request may carry ``seq``, the 0-based index of its frame in the session; it waits (up to
``order_timeout_s``) until the frames before it have been processed, so pipelined requests cannot overtake
one another. Without ``seq`` a request is processed when it gets the session's lock.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

MAX_AHEAD = 64  # frames a request given with seq may be ahead of the session and still wait for its turn


class SessionError(Exception):
    """A request the session store refuses; ``status`` is the HTTP status that says why."""

    status = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class Unknown(SessionError):
    status = 404


class Full(SessionError):
    status = 429


class OutOfOrder(SessionError):
    status = 409


@dataclass(frozen=True)
class Limits:
    """Bounds of one server (each a `vidnav serve` option)."""

    max_sessions: int = 32
    idle_timeout_s: float = 600.0
    max_frames: int = 5000  # frames per session (an eval episode is at most 500 steps)
    order_timeout_s: float = 30.0  # how long a frame given with seq waits for the frames before it

    def __post_init__(self):
        for name in ("max_sessions", "max_frames"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {v!r}")
        for name in ("idle_timeout_s", "order_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0 seconds, got {getattr(self, name)!r}")

    @property
    def sweep_interval_s(self) -> float:
        """How often the server sweeps idle sessions: half the idle timeout, at most 30 s (at least 0.05 s), so a
        session is dropped at most min(timeout / 2, 30 s) after its timeout, with or without requests."""
        return min(max(self.idle_timeout_s / 2, 0.05), 30.0)


class Session:
    def __init__(self, sid: str, agent: Any, instruction: str):
        self.id = sid
        self.agent = agent
        self.instruction = instruction
        self.frames = 0  # frames processed (act or observe)
        self.num_actions = 0  # the agent's plan length, kept for the reply after the agent may have been freed
        self.last_used = time.monotonic()
        self.cond = threading.Condition()
        self.busy = False
        self.closed = False


class SessionStore:
    """Thread-safe map of live sessions (see the module docstring).

    ``new_agent()`` makes an agent with ``reset(instruction)`` and ``num_actions``; ``text_lock`` is held around
    ``reset`` (and, by the app, ``ask``): the agents share one model whose fast tokenizers must not be called from
    two threads at once (a call with other truncation settings mutates the Rust tokenizer: "Already borrowed").
    """

    def __init__(
        self, new_agent: Callable[[], Any], limits: Limits | None = None, clock: Callable[[], float] = time.monotonic
    ):
        self.new_agent = new_agent
        self.limits = limits or Limits()
        self.clock = clock
        self.text_lock = threading.Lock()
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def sweep(self) -> int:
        """Drop sessions idle for longer than the timeout (not those in use); return how many."""
        now = self.clock()
        with self._lock:
            old = [s for s in self._sessions.values() if self._expired(s, now)]
            for s in old:
                self._drop(s)
        return len(old)

    def _expired(self, s: Session, now: float) -> bool:
        with s.cond:  # busy and last_used change under the session's condition
            return not s.busy and now - s.last_used > self.limits.idle_timeout_s

    def create(self, instruction: str) -> Session:
        """A new session whose agent has been reset with ``instruction`` (the agent's errors propagate)."""
        self.sweep()
        with self._lock:
            if len(self._sessions) >= self.limits.max_sessions:
                raise Full(
                    f"the server holds its maximum of {self.limits.max_sessions} sessions; DELETE sessions "
                    f"you are done with, wait for idle ones to expire ({self.limits.idle_timeout_s:g} s), "
                    "or start the server with a larger --max-sessions"
                )
            sid = secrets.token_urlsafe(12)
            placeholder = Session(sid, None, instruction)
            placeholder.busy = True  # counts against the maximum while its agent is built
            self._sessions[sid] = placeholder
        try:
            agent = self.new_agent()
            with self.text_lock:
                agent.reset(instruction)
        except BaseException:
            with self._lock:
                self._sessions.pop(sid, None)
            raise
        with placeholder.cond:
            placeholder.agent, placeholder.num_actions = agent, int(agent.num_actions)
            placeholder.busy = False
            placeholder.last_used = self.clock()
            placeholder.cond.notify_all()
        return placeholder

    def get(self, sid: str) -> Session:
        self.sweep()
        with self._lock:
            s = self._sessions.get(sid)
        if s is None or s.agent is None:
            raise Unknown(
                f"no session {sid!r} (never created, deleted, or dropped after "
                f"{self.limits.idle_timeout_s:g} s idle); create one with POST /v1/sessions"
            )
        return s

    def delete(self, sid: str) -> None:
        s = self.get(sid)
        with self._lock:
            self._drop(s)

    def _drop(self, s: Session) -> None:  # caller holds self._lock
        """Close the session: it leaves the map at once (new and queued requests: 404); its agent (memory, KV
        cache) is freed now, or, while a request holds its turn, when that request ends, so that it completes."""
        if self._sessions.get(s.id) is s:
            del self._sessions[s.id]
        with s.cond:
            s.closed = True
            if not s.busy:
                s.agent = None
            s.cond.notify_all()

    @contextmanager
    def turn(self, sid: str, seq: int | None = None, frame: bool = True) -> Iterator[Session]:
        """Exclusive use of a session; with ``seq``, only once ``seq`` frames have been processed (then it is
        this frame's turn). ``frame``: the turn adds a frame (counted against ``max_frames``; ``ask`` does not)."""
        s = self.get(sid)
        deadline = time.monotonic() + self.limits.order_timeout_s
        with s.cond:
            if seq is not None and seq - s.frames > MAX_AHEAD:
                raise OutOfOrder(
                    f"frame seq={seq} of session {sid} is more than {MAX_AHEAD} frames ahead of the "
                    f"{s.frames} it has seen; send every frame, in order, with seq counting from 0"
                )
            while not s.closed and (s.busy or (seq is not None and s.frames < seq)):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise OutOfOrder(
                        f"frame seq={seq} of session {sid} waited {self.limits.order_timeout_s:g} s for "
                        f"frames {s.frames}..{seq - 1} that never came; send every frame, in order, "
                        "with seq counting from 0"
                        if seq is not None and s.frames < seq
                        else f"session {sid} stayed busy for {self.limits.order_timeout_s:g} s; retry"
                    )
                s.cond.wait(left)
            if s.closed:
                raise Unknown(f"session {sid} was deleted while this request waited for its turn")
            if seq is not None and s.frames > seq:
                raise OutOfOrder(
                    f"session {sid} has already processed frame seq={seq} (it has seen {s.frames} "
                    f"frames); the next frame is seq={s.frames}"
                )
            if frame and s.frames >= self.limits.max_frames:
                raise OutOfOrder(
                    f"session {sid} has seen the maximum of {self.limits.max_frames} frames; start a "
                    "new session (POST /v1/sessions) or a server with a larger --max-frames"
                )
            s.busy = True
        try:
            yield s
        finally:
            with s.cond:
                s.busy = False
                s.last_used = self.clock()
                if s.closed:  # deleted or expired during this turn: free the agent now that it is done
                    s.agent = None
                s.cond.notify_all()
