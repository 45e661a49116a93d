"""The HTTP API on stand-in agents (instant, deterministic): endpoints, auth, bounds, bad input, concurrency."""

import gc
import threading
import time
import weakref
from contextlib import contextmanager

import httpx
import numpy as np
import pytest
from serve_helpers import AskingAgent, StandInAgent, frame, png

from vidnav.errors import VidNavError
from vidnav.serve import RemoteAgent
from vidnav.serve.sessions import Limits

TOKEN = "t0ken-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _session(client, instruction="go to the door"):
    r = client.post("/v1/sessions", json={"instruction": instruction})
    assert r.status_code == 201, r.text
    return r.json()["session_id"]


def _act(client, sid, data, **fields):
    return client.post(f"/v1/sessions/{sid}/act", files={"image": ("f.png", data, "image/png")}, data=fields)


def test_a_session_from_start_to_end(serve_app):
    server = serve_app(token=TOKEN)
    with httpx.Client(base_url=server.url, headers=AUTH) as c:
        health = httpx.get(server.url + "/v1/health").json()  # no token needed
        assert health["model"] == "stand-in" and health["fingerprint"] == "0123456789abcdef"
        r = c.post("/v1/sessions", json={"instruction": "go to the door"})
        assert r.status_code == 201 and r.json()["num_actions"] == 4
        sid = r.json()["session_id"]
        r = _act(c, sid, png(frame(7)))
        assert r.status_code == 200 and r.json() == {"actions": ["forward", "right", "right", "right"], "step": 1}
        r = c.post(f"/v1/sessions/{sid}/observe", files={"image": ("f.png", png(frame(8)))}, data={"seq": "1"})
        assert r.json() == {"step": 2}
        r = _act(c, sid, png(frame(9)), seq="2", ban_first="forward")
        assert r.json() == {"actions": ["left", "right", "right", "right"], "step": 3}
        info = c.get(f"/v1/sessions/{sid}").json()
        assert info["instruction"] == "go to the door" and info["step"] == 3
        assert c.get("/v1/health").json()["sessions"] == 1
        r = c.post(f"/v1/sessions/{sid}/ask", json={"question": "where are you?"})
        assert r.status_code == 422 and "cannot answer questions" in r.json()["detail"]
        assert c.delete(f"/v1/sessions/{sid}").status_code == 204
        r = _act(c, sid, png(frame(1)))
        assert r.status_code == 404 and "POST /v1/sessions" in r.json()["detail"]
        assert c.delete(f"/v1/sessions/{sid}").status_code == 404
        schema = httpx.get(server.url + "/openapi.json").json()  # the API docs are served (no token)
        assert {"/v1/health", "/v1/sessions", "/v1/sessions/{session_id}/act", "/v1/sessions/{session_id}/ask"} <= set(
            schema["paths"]
        )
        assert httpx.get(server.url + "/docs").status_code == 200


def test_a_model_that_answers_is_asked(serve_app):
    server = serve_app(AskingAgent)
    with httpx.Client(base_url=server.url) as c:  # no token on the server: none needed (loopback)
        sid = _session(c)
        _act(c, sid, png(frame(1)))
        r = c.post(f"/v1/sessions/{sid}/ask", json={"question": "how many frames?"})
        assert r.status_code == 200 and r.json() == {"answer": "1 frames; you asked 'how many frames?'"}
        r = c.post(f"/v1/sessions/{sid}/ask", json={"question": " "})
        assert r.status_code == 422 and "'question' is empty" in r.json()["detail"]


def test_every_endpoint_but_health_and_docs_wants_the_token(serve_app):
    server = serve_app(token=TOKEN)
    with httpx.Client(base_url=server.url, headers=AUTH) as good:
        sid = _session(good)
    calls = [
        ("POST", "/v1/sessions", {"json": {"instruction": "x"}}),
        ("GET", f"/v1/sessions/{sid}", {}),
        ("POST", f"/v1/sessions/{sid}/act", {"files": {"image": ("f.png", png(frame()))}}),
        ("POST", f"/v1/sessions/{sid}/observe", {"files": {"image": ("f.png", png(frame()))}}),
        ("POST", f"/v1/sessions/{sid}/ask", {"json": {"question": "x"}}),
        ("DELETE", f"/v1/sessions/{sid}", {}),
        ("GET", "/v1/nothing-here", {}),
    ]
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": TOKEN},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
    ):
        for method, path, kw in calls:
            r = httpx.request(method, server.url + path, headers=headers, **kw)
            assert r.status_code == 401, (headers, path, r.status_code)
            assert "bearer token" in r.json()["detail"] and r.headers["www-authenticate"] == "Bearer"
    with httpx.Client(base_url=server.url, headers=AUTH) as good:
        assert good.get(f"/v1/sessions/{sid}").status_code == 200  # the refused calls changed nothing
        assert good.delete(f"/v1/sessions/{sid}").status_code == 204


@pytest.mark.parametrize(
    "body, says",
    [
        ({"json": {}}, "body field 'instruction': Field required"),
        ({"json": {"instruction": ""}}, "'instruction' is empty"),
        ({"json": {"instruction": "   "}}, "'instruction' is empty"),
        ({"json": {"instruction": "x" * 10_000}}, "10000 characters, more than the 4096"),
        ({"json": {"instruction": 42}}, "'instruction': Input should be a valid string"),
        ({"content": b'{"instruction": "\\ud800"}', "headers": {"Content-Type": "application/json"}}, "lone surrogate"),
        ({"content": b"go to the door", "headers": {"Content-Type": "application/json"}}, "JSON decode error"),
        ({}, 'takes JSON {"instruction": "<text>"}'),
    ],
    ids=["missing", "empty", "blank", "10kB", "number", "surrogate", "not-json", "no-body"],
)
def test_bad_instructions_are_422_with_what_to_fix(serve_app, body, says):
    server = serve_app()
    r = httpx.post(server.url + "/v1/sessions", **body)
    assert r.status_code == 422 and says in r.json()["detail"], r.text


def test_bad_frames_are_4xx_with_what_to_fix(serve_app):
    from test_serve_frames import _png_declaring

    server = serve_app(limits=Limits(order_timeout_s=0.3))
    with httpx.Client(base_url=server.url) as c:
        sid = _session(c)
        cases = [
            ({"files": {"image": ("f.png", b"not an image at all")}}, 422, "not a PNG or JPEG"),
            ({"files": {"image": ("f.png", png(frame(h=64, w=64))[:80])}}, 422, "truncated or corrupt"),
            ({"files": {"image": ("f.png", png(np.zeros((16, 16), np.uint8)))}}, 422, "greyscale"),
            ({"files": {"image": ("f.png", png(np.zeros((16, 16, 4), np.uint8)))}}, 422, "alpha"),
            ({"files": {"image": ("f.png", _png_declaring(0, 0))}}, 422, "PNG"),
            ({"files": {"image": ("f.png", _png_declaring(100_000, 100_000))}}, 422, "too large to decode"),
            ({"files": {"image": ("f.png", _png_declaring(4000, 30))}}, 422, "4000x30 pixels"),
            ({"files": {"image": ("f.png", b"")}}, 422, "is empty"),
            ({"files": {"picture": ("f.png", png(frame()))}}, 422, "body field 'image': Field required"),
            ({"data": {"image": "not a file"}}, 422, "field 'image'"),
            ({"json": {"image": "abc"}}, 422, 'multipart/form-data with the frame (PNG or JPEG) in field "image"'),
            ({"files": {"image": ("f.png", png(frame()))}, "data": {"seq": "two"}}, 422, "field 'seq'"),
            ({"files": {"image": ("f.png", png(frame()))}, "data": {"seq": "-1"}}, 422, "field 'seq'"),
            ({"files": {"image": ("f.png", png(frame()))}, "data": {"seq": "5"}}, 409, "never came"),
            (
                {"files": {"image": ("f.png", png(frame()))}, "data": {"ban_first": "jump"}},
                422,
                "'jump'; give action words from forward, left, right, stop",
            ),
        ]
        for kw, status, says in cases:
            r = c.post(f"/v1/sessions/{sid}/act", **kw)
            assert r.status_code == status and says in r.json()["detail"], (kw.keys(), r.status_code, r.text)
        assert c.get(f"/v1/sessions/{sid}").json()["step"] == 0  # no bad frame reached the agent
        r = c.post("/v1/sessions/no-such-session/act", files={"image": ("f.png", png(frame()))})
        assert r.status_code == 404 and "no session 'no-such-session'" in r.json()["detail"]


def test_uploads_over_the_limit_are_413(serve_app):
    server = serve_app(max_upload_bytes=50_000)
    big = np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)  # ~120 kB as PNG
    with httpx.Client(base_url=server.url) as c:
        sid = _session(c)
        r = _act(c, sid, png(big))
        assert r.status_code == 413 and "limit of 50000 bytes" in r.json()["detail"]

        def chunks():  # no Content-Length: counted as it arrives
            for _ in range(20):
                yield b"x" * 10_000

        r = c.post(f"/v1/sessions/{sid}/act", content=chunks(), headers={"Content-Type": "multipart/form-data"})
        assert r.status_code == 413
        assert _act(c, sid, png(frame())).status_code == 200  # small frames still pass


def test_the_session_cap_is_429_with_retry_after(serve_app):
    server = serve_app(limits=Limits(max_sessions=2, idle_timeout_s=90))
    with httpx.Client(base_url=server.url) as c:
        first = _session(c)
        _session(c)
        r = c.post("/v1/sessions", json={"instruction": "three"})
        assert r.status_code == 429 and r.headers["retry-after"] == "90" and "--max-sessions" in r.json()["detail"]
        c.delete(f"/v1/sessions/{first}")
        _session(c)


def test_sessions_are_served_concurrently_and_each_in_order(serve_app):
    """Four sessions' acts (0.5 s each) run at the same time; frames pipelined on one session in reverse order of
    sending still reach its agent in seq order, never two at once."""

    busy = {"now": 0, "peak": 0}
    lock = threading.Lock()

    class Slow(StandInAgent):
        def act(self, rgb, ban_first=None):
            with lock:
                busy["now"] += 1
                busy["peak"] = max(busy["peak"], busy["now"])
            time.sleep(0.5)
            with lock:
                busy["now"] -= 1
            return super().act(rgb, ban_first)

    server = serve_app(Slow)
    with httpx.Client(base_url=server.url) as c:
        sids = [_session(c, f"episode {i}") for i in range(4)]

    def send(sid, value, seq, codes, k):
        with httpx.Client(base_url=server.url) as c:
            codes[k] = _act(c, sid, png(frame(value)), seq=str(seq)).status_code

    def run(jobs, gap=0.0):
        codes = [None] * len(jobs)
        threads = [threading.Thread(target=send, args=(*job, codes, k)) for k, job in enumerate(jobs)]
        for t in threads:
            t.start()
            time.sleep(gap)
        for t in threads:
            t.join()
        return codes

    assert run([(sid, i, 0) for i, sid in enumerate(sids)]) == [200] * 4
    assert busy["peak"] >= 2  # several sessions' acts were in progress at once (4 on an idle machine)
    sid = sids[1]  # has seen frame 0; frames 1..6 sent last first
    assert run([(sid, i, i) for i in reversed(range(1, 7))], gap=0.01) == [200] * 6
    agent = server.app.state.store.get(sid).agent
    assert agent.seen == [1, 1, 2, 3, 4, 5, 6] and agent.overlaps == 0


def test_deleting_a_session_while_its_act_runs_is_never_a_5xx(serve_app):
    """The act already running finishes with 200, the DELETE is 204 at once, a request queued behind the act and
    later ones are 404, and the agent is freed when the act ends (the old store freed it under the act: 500)."""
    server = serve_app()
    store = server.app.state.store
    entered, release = threading.Event(), threading.Event()
    turn = store.turn

    @contextmanager
    def paused_turn(sid, seq=None, frame=True):  # the first act holds the turn and waits, before using the agent
        with turn(sid, seq, frame) as session:
            if seq == 0:
                entered.set()
                release.wait(10)
            yield session

    store.turn = paused_turn
    codes = {}

    def send(sid, seq):
        with httpx.Client(base_url=server.url) as c:
            r = _act(c, sid, png(frame(seq)), seq=str(seq))
            codes[seq] = (r.status_code, r.text)

    with httpx.Client(base_url=server.url) as c:
        sid = _session(c)
        agent = weakref.ref(store.get(sid).agent)
        first = threading.Thread(target=send, args=(sid, 0))
        first.start()
        assert entered.wait(10)
        queued = threading.Thread(target=send, args=(sid, 1))
        queued.start()
        time.sleep(0.1)
        assert c.delete(f"/v1/sessions/{sid}").status_code == 204
        queued.join(10)
        assert codes[1][0] == 404, codes
        release.set()
        first.join(10)
        assert codes[0] == (200, '{"actions":["forward","right","right","right"],"step":1}'), codes
        assert _act(c, sid, png(frame(2))).status_code == 404
        assert c.delete(f"/v1/sessions/{sid}").status_code == 404
        assert c.get("/v1/health").json()["sessions"] == 0
    gc.collect()
    assert agent() is None


def test_idle_sessions_are_swept_without_any_request(serve_app):
    """With no request at all after the session's last act, the server's background sweep drops it once idle for
    the timeout (0.8 s; sweeps every 0.4 s), and its agent is freed."""
    made = []

    class Tracked(StandInAgent):
        def __init__(self):
            super().__init__()
            made.append(weakref.ref(self))

    server = serve_app(Tracked, limits=Limits(idle_timeout_s=0.8))
    store = server.app.state.store
    with httpx.Client(base_url=server.url) as c:
        sid = _session(c)
        assert _act(c, sid, png(frame(1))).status_code == 200
    last_used = time.monotonic()
    while len(store) and time.monotonic() - last_used < 3:  # len() does not sweep; nothing else touches it
        time.sleep(0.02)
    gone_after = time.monotonic() - last_used
    assert len(store) == 0, f"the session was still there {gone_after:.1f} s after its last request"
    assert gone_after > 0.7  # not before its idle timeout
    gc.collect()
    assert len(made) == 1 and made[0]() is None
    assert httpx.get(server.url + "/v1/health").json()["sessions"] == 0


def test_remote_agent_speaks_the_agent_contract(serve_app, monkeypatch):
    server = serve_app(AskingAgent, token=TOKEN)
    monkeypatch.setenv("VIDNAV_TOKEN", TOKEN)
    store = server.app.state.store
    with RemoteAgent(server.url) as agent:  # the token from $VIDNAV_TOKEN
        assert agent.health()["model"] == "stand-in"
        with pytest.raises(VidNavError, match="call agent.reset"):
            agent.act(frame())
        agent.reset("go to the door")
        assert agent.act(frame(3)) == ["forward", "right", "right", "right"] and agent.num_actions == 4
        agent.observe(frame(4))
        assert agent.act(frame(5), ban_first={"forward"})[0] == "left" and agent.steps == 3
        assert agent.ask("how many?").startswith("3 frames")
        first = agent._state["session"]
        assert store.get(first).agent.seen == [3, 4, 5]
        agent.reset("another episode")  # the previous session is deleted
        assert len(store) == 1 and agent.steps == 0
        with pytest.raises(VidNavError, match="HTTP 422: field 'image' is a L image"):
            agent._request("POST", f"/v1/sessions/{agent._state['session']}/act", *_multipart_grey())
        with pytest.raises(VidNavError, match=r"uint8 RGB frame \[H, W, 3\]"):
            agent.act(np.zeros((16, 16), np.uint8))
    assert len(store) == 0  # closing deleted the session
    with pytest.raises(VidNavError, match="HTTP 401"):
        RemoteAgent(server.url, token="wrong").reset("x")
    with pytest.raises(VidNavError, match="cannot reach the vidnav server"):
        RemoteAgent("http://127.0.0.1:9").reset("x")
    with pytest.raises(VidNavError, match="must look like http://HOST:PORT"):
        RemoteAgent("ftp://somewhere")


def _multipart_grey():
    from vidnav.serve.client import _multipart

    body, ctype = _multipart({}, "image", "g.png", png(np.zeros((16, 16), np.uint8)))
    return body, {"Content-Type": ctype}


def test_the_client_reconnects_when_the_server_closed_an_idle_connection(serve_app):
    server = serve_app()
    with RemoteAgent(server.url) as agent:
        agent.reset("go")
        agent._state["conn"].sock.shutdown(2)  # as if the server had dropped the kept-alive connection
        assert agent.act(frame(1))[0] == "forward"


def test_binding_beyond_loopback_needs_a_token(tmp_path, monkeypatch):
    from vidnav.cli import main
    from vidnav.serve.server import check_bind, is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("127.8.9.10") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("robot.local")
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", "secret")
    with pytest.raises(VidNavError, match="--host 0.0.0.0 would let other machines .* --token-file"):
        check_bind("0.0.0.0", None)
    monkeypatch.delenv("VIDNAV_TOKEN", raising=False)
    for argv, says in (
        (["serve", "--host", "0.0.0.0"], "--host 0.0.0.0 would let"),
        (["serve", "--token-file", str(tmp_path / "none")], "cannot read it"),
        (["serve", "--token-file", str(_write(tmp_path / "empty", "\n"))], "is empty"),
    ):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2


def test_a_port_in_use_is_one_clear_line_before_the_model_loads(tmp_path):
    """`vidnav serve` on a port another socket listens on: exit 2 with one line naming host:port and the fix, no
    traceback, and before loading the model (uvicorn's own bind failure was a log line and exit code 3)."""
    import os
    import socket
    import subprocess
    import sys

    from vidnav.serve.server import bind_socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if k != "VIDNAV_TOKEN"}
        run = subprocess.run(
            [sys.executable, "-m", "vidnav.cli", "serve", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )
        with pytest.raises(VidNavError, match=f"cannot listen on 127.0.0.1:{port}: the port is already in use"):
            bind_socket("127.0.0.1", port)
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2 and len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
    assert lines[0].startswith(f"error: cannot listen on 127.0.0.1:{port}: the port is already in use")
    assert "pick another --port, or stop that process" in lines[0]
    assert "loading agent" not in run.stdout


def _write(path, text):
    path.write_text(text)
    return path


def test_the_token_comes_from_the_file_or_the_environment(tmp_path, monkeypatch):
    from vidnav.serve.cli import read_token

    monkeypatch.setenv("VIDNAV_TOKEN", " from-env \n")
    assert read_token(None) == "from-env"
    assert read_token(_write(tmp_path / "t", "from-file\n")) == "from-file"
    monkeypatch.delenv("VIDNAV_TOKEN")
    assert read_token(None) is None
