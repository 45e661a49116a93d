"""The session store: its bounds (count, idle time, frames), frame order, and that dropped agents are freed."""

import gc
import threading
import time
import weakref

import numpy as np
import pytest
from serve_helpers import StandInAgent

from vidnav.serve.sessions import MAX_AHEAD, Full, Limits, OutOfOrder, SessionStore, Unknown


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_the_maximum_is_refused_with_429_until_one_is_deleted():
    store = SessionStore(StandInAgent, Limits(max_sessions=2))
    a, b = store.create("one"), store.create("two")
    with pytest.raises(Full, match="maximum of 2 sessions.*--max-sessions") as e:
        store.create("three")
    assert e.value.status == 429 and len(store) == 2
    store.delete(a.id)
    store.create("three")
    with pytest.raises(Unknown, match="no session"):
        store.get(a.id)
    assert store.get(b.id).instruction == "two"


def test_idle_sessions_expire_but_not_one_in_use():
    clock = Clock()
    store = SessionStore(StandInAgent, Limits(max_sessions=2, idle_timeout_s=60), clock=clock)
    old, busy = store.create("old"), store.create("busy")
    clock.t += 30
    store.get(busy.id).last_used = clock.t  # used half way
    clock.t += 31  # old: idle 61 s; busy: 31 s
    assert store.sweep() == 1
    with pytest.raises(Unknown):
        store.get(old.id)
    with store.turn(busy.id):  # in use for longer than the timeout: not dropped under its request
        clock.t += 120
        assert store.sweep() == 0
    clock.t += 59
    assert store.sweep() == 0 and len(store) == 1  # its idle time counts from the end of its last request
    clock.t += 2
    store.create("new")  # creating sweeps too
    assert len(store) == 1


def test_frames_given_with_seq_are_processed_in_that_order():
    """Requests that arrive in reverse order (one thread per frame, started last frame first) are still
    processed 0, 1, 2, ...; a repeated or far-ahead seq is a 409."""
    store = SessionStore(StandInAgent, Limits(order_timeout_s=10))
    s = store.create("go")
    errors = []

    def send(i):
        try:
            with store.turn(s.id, seq=i) as session:
                session.agent.observe(np.full((8, 8, 3), i, np.uint8))
                session.frames += 1
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=send, args=(i,)) for i in reversed(range(12))]
    for t in threads:
        t.start()
        time.sleep(0.005)
    for t in threads:
        t.join()
    assert not errors and s.agent.seen == list(range(12)) and s.agent.overlaps == 0
    with pytest.raises(OutOfOrder, match=r"already processed frame seq=3.*next frame is seq=12"):
        with store.turn(s.id, seq=3):
            pass
    with pytest.raises(OutOfOrder, match=f"more than {MAX_AHEAD} frames ahead"):
        with store.turn(s.id, seq=12 + MAX_AHEAD + 1):
            pass


def test_a_missing_frame_times_out_with_409():
    store = SessionStore(StandInAgent, Limits(order_timeout_s=0.2))
    s = store.create("go")
    t0 = time.monotonic()
    with pytest.raises(OutOfOrder, match=r"seq=2 .* waited 0.2 s for frames 0..1"):
        with store.turn(s.id, seq=2):
            pass
    assert time.monotonic() - t0 < 2


def test_the_frame_cap_bounds_a_session():
    store = SessionStore(StandInAgent, Limits(max_frames=2))
    s = store.create("go")
    for _ in range(2):
        with store.turn(s.id) as session:
            session.frames += 1
    with pytest.raises(OutOfOrder, match="maximum of 2 frames"):
        with store.turn(s.id):
            pass
    with store.turn(s.id, frame=False):  # asking adds no frame
        pass


def test_sessions_that_come_and_go_leave_no_agent_behind():
    store = SessionStore(StandInAgent, Limits(max_sessions=4))
    refs = []
    for i in range(300):
        s = store.create(f"episode {i}")
        refs.append(weakref.ref(s.agent))
        with store.turn(s.id) as session:
            session.agent.observe(np.zeros((8, 8, 3), np.uint8))
        store.delete(s.id)
    del s, session
    gc.collect()
    assert len(store) == 0 and sum(r() is not None for r in refs) == 0


def test_a_failing_reset_frees_its_place():
    class Refusing(StandInAgent):
        def reset(self, instruction):
            raise ValueError("no")

    store = SessionStore(Refusing, Limits(max_sessions=1))
    for _ in range(3):
        with pytest.raises(ValueError):
            store.create("x")
    assert len(store) == 0


def test_a_session_deleted_during_its_turn_keeps_its_agent_until_the_turn_ends():
    """DELETE while an act runs: the act still has its agent (the old store set it to None under the request:
    a 500), a request queued behind it and later ones get 404, and the agent is freed when the turn ends."""
    store = SessionStore(StandInAgent, Limits(order_timeout_s=10))
    s = store.create("go")
    sid, agent = s.id, weakref.ref(s.agent)
    inside, deleted = threading.Event(), threading.Event()
    outcome = {}

    def act():
        with store.turn(sid) as session:
            inside.set()
            deleted.wait(10)
            outcome["actions"] = session.agent.act(np.zeros((8, 8, 3), np.uint8))

    def queued():
        try:
            with store.turn(sid, seq=1):
                outcome["queued"] = "served"
        except Unknown as e:
            outcome["queued"] = e.message

    first = threading.Thread(target=act)
    first.start()
    assert inside.wait(10)
    second = threading.Thread(target=queued)
    second.start()
    time.sleep(0.05)  # let it wait for its turn
    store.delete(s.id)
    second.join(10)
    assert "deleted while this request waited" in outcome["queued"]
    with pytest.raises(Unknown):
        store.get(s.id)
    assert agent() is not None  # still in use by the first request
    deleted.set()
    first.join(10)
    assert outcome["actions"][0] == "forward" and len(store) == 0
    del s
    gc.collect()
    assert agent() is None  # freed once its last request ended


def test_the_server_sweeps_at_half_the_idle_timeout_and_at_least_every_30_s():
    assert Limits(idle_timeout_s=600).sweep_interval_s == 30
    assert Limits(idle_timeout_s=10).sweep_interval_s == 5
    assert Limits(idle_timeout_s=0.001).sweep_interval_s == 0.05  # not a busy loop
