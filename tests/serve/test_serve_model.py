"""The shipped agent served over HTTP: `vidnav eval` through RemoteAgent gets the in-process agent's results, and
sessions running at once on one shared model plan exactly as they do one at a time."""

import json
import threading

import httpx
import numpy as np
import pytest
from serve_helpers import png

from vidnav.eval.agents import PlanOptions, agent_weights
from vidnav.eval.runner import evaluate
from vidnav.serve import RemoteAgent


@pytest.fixture(scope="module")
def served():
    """The shipped agent on a free loopback port: (server, new_agent) for the module, then shut down."""
    from vidnav.serve.app import create_app, shared_model_agents
    from vidnav.serve.server import BackgroundServer

    new_agent, name, fingerprint = shared_model_agents("default")
    with BackgroundServer(create_app(new_agent, name=name, fingerprint=fingerprint)) as server:
        yield server, new_agent


def _records(out):
    """The result lines, without where the model ran (an in-process agent names its device and dtype; a server
    does not say)."""
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("device", "dtype")} for r in records]


@pytest.mark.slow  # two short evaluations of the shipped agent: about a minute of CPU
def test_eval_through_the_server_equals_the_in_process_agent(served, tiny_benchmark, tmp_path):
    """Same options (re-planning, loop breaking, 2 actions per plan), same episodes: every record equal."""
    server, _ = served
    kw = dict(
        episodes=2,
        env_kw={"max_steps": 24},
        progress=False,
        options=PlanOptions(replan_when_blocked=True, break_loops=True, act_steps=2),
    )
    local = evaluate(tiny_benchmark, "val_unseen", "default", tmp_path / "local", **kw)
    remote = evaluate(tiny_benchmark, "val_unseen", server.url, tmp_path / "remote", **kw)
    a, b = _records(tmp_path / "local"), _records(tmp_path / "remote")
    assert len(a) == 2 and a == b and local == remote
    assert sum(len(r["actions"]) for r in a) > 12  # real episodes, not immediate stops
    run = json.loads((tmp_path / "remote" / "run.json").read_text())
    assert run["agent"] == server.url and run["weights"] == agent_weights("default")  # the served weights
    assert httpx.get(server.url + "/v1/health").json()["sessions"] <= 1  # each episode's session replaced


def test_sessions_at_once_on_one_model_plan_as_one_at_a_time(served):
    """Four clients in four threads, each its own instruction and frames: the server's concurrent agents (one
    shared model) plan the same actions as fresh in-process agents run one after the other."""
    server, new_agent = served
    rng = np.random.default_rng(5)
    work = [
        (f"walk to room {i} and stop by the {w}", rng.integers(0, 256, (6, 96, 128, 3), dtype=np.uint8))
        for i, w in enumerate(("sofa", "door", "bed", "table"))
    ]
    expected = []
    for instruction, frames in work:
        agent = new_agent()
        agent.reset(instruction)
        expected.append([agent.act(f) if i % 3 == 0 else agent.observe(f) for i, f in enumerate(frames)])

    got = [None] * len(work)

    def drive(k):
        with RemoteAgent(server.url) as agent:
            instruction, frames = work[k]
            agent.reset(instruction)
            got[k] = [agent.act(f) if i % 3 == 0 else agent.observe(f) for i, f in enumerate(frames)]

    threads = [threading.Thread(target=drive, args=(k,)) for k in range(len(work))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == expected


def test_the_model_takes_every_frame_size_the_server_lets_in(served):
    server, _ = served
    with httpx.Client(base_url=server.url, timeout=60) as c:
        sid = c.post("/v1/sessions", json={"instruction": "go to the kitchen"}).json()["session_id"]
        for shape in ((8, 8), (8, 2048), (2048, 8), (480, 640)):
            rgb = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
            r = c.post(f"/v1/sessions/{sid}/act", files={"image": ("f.png", png(rgb))})
            assert r.status_code == 200 and len(r.json()["actions"]) == 4, shape
        r = c.post(
            f"/v1/sessions/{sid}/act",
            files={"image": ("f.png", png(rgb))},
            data={"ban_first": "forward,left,right,stop"},
        )
        assert r.status_code == 422 and "bans every action word" in r.json()["detail"]
        r = c.post(f"/v1/sessions/{sid}/ask", json={"question": "x" * 5000})
        assert r.status_code == 422
        c.delete(f"/v1/sessions/{sid}")
