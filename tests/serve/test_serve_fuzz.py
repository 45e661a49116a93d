"""Fuzzing the endpoints (hypothesis): whatever a client sends, the answer is a 2xx or a 4xx whose detail says
what to fix, never a 5xx, and the server keeps serving."""

import io
import json
from urllib.parse import quote

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from serve_helpers import png

from vidnav.serve.sessions import Limits

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def server():
    from serve_helpers import AskingAgent

    from vidnav.serve.app import create_app
    from vidnav.serve.server import BackgroundServer

    app = create_app(
        AskingAgent,
        name="stand-in",
        fingerprint=None,
        token="tok",
        max_upload_bytes=200_000,
        limits=Limits(max_sessions=8, order_timeout_s=0.05, max_frames=50),
    )
    with (
        BackgroundServer(app) as s,
        httpx.Client(base_url=s.url, headers={"Authorization": "Bearer tok"}, timeout=30) as client,
    ):
        yield s, client
        assert client.get("/v1/health").status_code == 200  # still serving after everything


def _check(r: httpx.Response) -> None:
    assert r.status_code < 500, (r.status_code, r.text)
    if r.status_code >= 400:
        detail = r.json()["detail"]
        assert isinstance(detail, str) and len(detail) > 10, r.text


@st.composite
def images(draw):
    """Bytes that are, or almost are, an image: PNG/JPEG of any mode and size, cut or with a byte changed, or
    any bytes at all."""
    kind = draw(st.sampled_from(["image", "cut", "flip", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=2000))
    mode = draw(st.sampled_from(["RGB", "RGB", "L", "LA", "RGBA", "P", "1", "I;16", "CMYK"]))
    w, h = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    fmt = draw(st.sampled_from({"RGB": ["PNG", "JPEG"], "L": ["PNG", "JPEG"], "CMYK": ["JPEG"]}.get(mode, ["PNG"])))
    rgb = np.random.default_rng(draw(st.integers(0, 9))).integers(0, 256, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").convert(mode).save(buf, format=fmt)
    data = buf.getvalue()
    if kind == "cut":
        return data[: draw(st.integers(0, len(data) - 1))]
    if kind == "flip":
        i = draw(st.integers(0, len(data) - 1))
        return data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1 :]
    return data


fields = st.one_of(st.none(), st.text(max_size=12), st.integers(-3, 120).map(str))
bans = st.one_of(
    st.none(),
    st.text(max_size=20),
    st.lists(st.sampled_from(["forward", "left", "right", "stop", "jump", ""]), max_size=5).map(",".join),
)


@SETTINGS
@given(
    image=images(),
    seq=fields,
    ban=bans,
    name=st.sampled_from(["image", "image", "frame"]),
    as_file=st.booleans(),
    endpoint=st.sampled_from(["act", "observe"]),
    session=st.sampled_from(["live", "other"]),
    junk=st.text(max_size=20),
)
def test_frames_endpoints(server, image, seq, ban, name, as_file, endpoint, session, junk):
    s, c = server
    sid = _live_session(c) if session == "live" else quote(junk, safe="") or "x"
    data = {k: v for k, v in (("seq", seq), ("ban_first", ban)) if v is not None}
    if as_file:
        r = c.post(f"/v1/sessions/{sid}/{endpoint}", files={name: ("f", image)}, data=data)
    else:
        r = c.post(f"/v1/sessions/{sid}/{endpoint}", data={**data, name: image.decode("latin-1")})
    _check(r)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=3),
    max_leaves=8,
)


@SETTINGS
@given(
    body=st.one_of(
        st.fixed_dictionaries({"instruction": st.text(max_size=5000)}),
        st.fixed_dictionaries({"instruction": json_values}),
        json_values.map(lambda v: v),
    ),
    raw=st.one_of(st.none(), st.binary(max_size=300)),
    content_type=st.sampled_from(["application/json", "text/plain", "multipart/form-data", ""]),
)
def test_session_creation(server, body, raw, content_type):
    s, c = server
    content = raw if raw is not None else json.dumps(body).encode()
    r = c.post("/v1/sessions", content=content, headers={"Content-Type": content_type} if content_type else {})
    _check(r)
    if r.status_code == 201:
        assert c.delete(f"/v1/sessions/{r.json()['session_id']}").status_code == 204


@settings(SETTINGS, max_examples=40)
@given(
    question=st.one_of(st.text(max_size=5000), json_values),
    frames=st.integers(0, 1),
    method=st.sampled_from(["GET", "DELETE", "POST", "PUT"]),
    tail=st.sampled_from(["", "/ask", "/act", "/x"]),
)
def test_ask_and_other_methods(server, question, frames, method, tail):
    s, c = server
    sid = _live_session(c)
    for _ in range(frames):
        _check(c.post(f"/v1/sessions/{sid}/act", files={"image": ("f.png", png(np.zeros((8, 8, 3), np.uint8)))}))
    _check(c.post(f"/v1/sessions/{sid}/ask", json={"question": question}))
    _check(c.request(method, f"/v1/sessions/{sid}{tail}", json={"question": question}))


def _live_session(c) -> str:
    """A session to use (one is kept and renewed once it has seen its maximum of frames)."""
    sid = getattr(_live_session, "sid", None)
    if (
        sid is None
        or c.get(f"/v1/sessions/{sid}").status_code != 200
        or c.get(f"/v1/sessions/{sid}").json()["step"] >= 45
    ):
        if sid is not None:
            c.delete(f"/v1/sessions/{sid}")
        r = c.post("/v1/sessions", json={"instruction": "go to the door"})
        assert r.status_code == 201, r.text
        sid = _live_session.sid = r.json()["session_id"]
    return sid
