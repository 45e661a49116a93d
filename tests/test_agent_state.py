"""Agent state stays whole (issue #33 defect 9): arguments are checked before the memory changes, and a second
thread using the same Agent at once is refused instead of corrupting it."""

import threading

import numpy as np
import pytest
import torch

from vidnav.agent import load_agent
from vidnav.errors import VidNavError


@pytest.fixture(scope="module")
def agent():
    torch.manual_seed(0)
    return load_agent(preset="tiny")


def _frame(seed):
    return np.random.default_rng(seed).integers(0, 255, (224, 224, 3), dtype=np.uint8)


@pytest.mark.parametrize("bad", ["jump", ["forward", "jump"], 3])
def test_a_bad_ban_first_is_refused_before_the_frame_is_added(agent, bad):
    agent.reset("walk to the kitchen")
    agent.act(_frame(0))
    steps = agent.steps
    with pytest.raises(VidNavError, match="ban_first"):
        agent.act(_frame(1), ban_first=bad)
    assert agent.steps == steps  # the frame was not added to memory
    with pytest.raises(VidNavError, match="ban_first"):
        agent.plan(ban_first=bad)


def test_a_second_thread_is_refused_while_the_agent_is_busy(agent):
    agent.reset("walk to the kitchen")
    agent.act(_frame(0))
    ref = agent.plan()
    entered, release, errors = threading.Event(), threading.Event(), []
    encode = agent.model.encode_frames

    def slow_encode(x):  # hold the agent inside act() until the other thread has tried
        entered.set()
        release.wait(30)
        return encode(x)

    agent.model.encode_frames = slow_encode
    try:
        t = threading.Thread(target=lambda: agent.act(_frame(2)))
        t.start()
        assert entered.wait(30)
        for call in (lambda: agent.act(_frame(3)), lambda: agent.reset("go"), lambda: agent.plan()):
            try:
                call()
            except VidNavError as e:
                errors.append(str(e))
        release.set()
        t.join(30)
    finally:
        agent.model.encode_frames = encode
    assert len(errors) == 3 and all("another thread" in e for e in errors)
    assert agent.steps == 2  # only the first thread's frame went in; the agent still works
    assert len(agent.plan()) == len(ref)
