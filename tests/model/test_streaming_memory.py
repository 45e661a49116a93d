"""The streaming memory: the Agent's edited KV cache gives what the training forward computes from scratch."""

import math

import pytest
import torch

from vidnav.agent import Agent
from vidnav.data.dataset import synthetic_rollout
from vidnav.errors import VidNavError
from vidnav.model import build_model
from vidnav.model.actions import canonical_actions
from vidnav.model.streaming import Entry, schedule

W, G = 4, 3  # small, so that eviction and merging happen many times in 300 steps
SMALL = {
    "current_pool": 2,
    "history_pool": 1,
    "lm_config": {"num_hidden_layers": 2},
    "streaming_window": W,
    "streaming_group": G,
    "use_context_token": True,
}
INSTRUCTION = "walk out of the bedroom, past the desk and stop at the red barrel in the kitchen"
STEPS = 300
CHECK = [0, 3, 4, 5, 8, 9, 20, 75, 151, 299]  # start, window full, first eviction, first merge, many merges, end


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny streaming model trained (packed, through `vidnav train`'s code) for 30 steps on a synthetic rollout
    whose trajectories are long enough to evict and merge: weights far from their random start."""
    from vidnav.model.modeling_vidnav import VidNavForCausalLM
    from vidnav.train import train
    from vidnav.train.config import TrainConfig

    tmp = tmp_path_factory.mktemp("streaming")
    data = synthetic_rollout(tmp / "R", n_trajectories=2, n_frames=12, seed=1)
    summary = train(
        TrainConfig(
            preset="tiny",
            memory="streaming",
            overrides=SMALL,
            data=[str(data)],
            out=str(tmp / "run"),
            max_steps=30,
            batch_size=4,
            lr=2e-3,
            lr_scheduler="constant",
            logging_steps=10,
            save_steps=1000,
            pack_frames=6,
            progress=False,
        )
    )
    assert summary["final_loss"] < summary["first_loss"] / 4
    return VidNavForCausalLM.from_pretrained(tmp / "run" / "final").eval()


@pytest.fixture(scope="module")
def feats():
    g = torch.Generator().manual_seed(7)
    return torch.randn(STEPS, 64, 320, generator=g)


def _agent_logits(agent):
    """The Agent's action logits of the current step: its last hidden state through the LM head."""
    lead = agent._apply_events()
    hidden = agent._continue(agent._mem.visual(), None, lambda h, cache, pos: h, lead)
    return agent.model._base_lm().get_output_embeddings()(hidden)[0]


def _run(model, feats, check=CHECK):
    agent = Agent(model)
    agent.reset(INSTRUCTION)
    got = {}
    with torch.no_grad():
        for t in range(feats.shape[0]):
            agent.observe_features(feats[t : t + 1])
            if t in check:
                got[t] = (_agent_logits(agent), agent.plan())
    return agent, got


def test_streaming_equals_recompute_for_300_steps(trained, feats):
    agent, got = _run(trained, feats)
    plans = set()
    for t, (logits, plan) in got.items():
        batch = trained.prepare_batch([INSTRUCTION], [feats[: t + 1]])
        with torch.no_grad():
            ref = trained(**batch).logits[0, -1]
            ref_plan = canonical_actions(trained.plan(batch)[0])
        torch.testing.assert_close(logits, ref, rtol=0, atol=1e-4, msg=f"step {t}")
        assert plan == ref_plan, t
        plans.add(tuple(plan))
    assert len(plans) > 1  # trained weights: the plans depend on the frames


def test_cache_stays_bounded(trained, feats):
    agent, _ = _run(trained, feats, check=[STEPS - 1])
    per_block = 1 + 1  # context token + 1×1 content token
    evicted = STEPS - 1 - W
    assert agent._cache.get_seq_length() == agent._prefix_len + W * per_block + evicted // G
    assert len(agent._entries) == W + evicted // G
    # positions kept counting: every entry ever made, evicted ones included
    assert agent._next_pos == agent._prefix_len + (STEPS - 1) * per_block + evicted // G


def test_budget_agrees_with_stream_and_build():
    torch.manual_seed(0)
    model = build_model("tiny", memory="streaming", **SMALL).eval()
    strategy = model.memory
    q = model.query_tokenizer(INSTRUCTION, return_tensors="pt")
    enc = model.frame_encoder(model.encode_queries(q["input_ids"], q["attention_mask"])[0], q["attention_mask"][0])
    feats = torch.randn(40, 64, 320)
    stream = strategy.stream()
    with torch.no_grad():
        for t in range(40):
            stream.push(strategy.frame_tokens(enc, feats[t : t + 1]))
            budget = strategy.budget(t + 1)
            vis = stream.visual()
            assert vis.budget == budget, t
            assert vis.history.shape[0] + vis.current.shape[0] == budget.total
            evicted = max(0, t - W)
            assert budget.long_term == math.ceil(evicted / G)
            assert sum(vis.long_term_counts) == evicted
            if t in (0, 5, 17, 39):
                built = strategy.build(enc, feats[: t + 1])
                assert built.budget == budget and built.long_term_counts == vis.long_term_counts
                torch.testing.assert_close(built.history, vis.history, rtol=1e-5, atol=1e-5)
                torch.testing.assert_close(built.current, vis.current, rtol=1e-5, atol=1e-5)


def test_schedule_order():
    got = [(e.kind, e.frames, e.step, e.evicted) for e in schedule(8, 2, 2)]
    assert got == [
        ("block", (0,), 1, 3),
        ("block", (1,), 2, 4),
        ("block", (2,), 3, 5),  # frame 0 leaves at step 3
        ("long", (0, 1), 4, math.inf),
        ("block", (3,), 4, 6),  # frame 1 leaves at step 4: group (0, 1) closes
        ("block", (4,), 5, 7),
        ("long", (2, 3), 6, math.inf),
        ("block", (5,), 6, 8),
        ("block", (6,), 7, 9),
    ]
    assert isinstance(schedule(2, 1, 1)[0], Entry)


def test_packed_training_equals_per_sample():
    torch.manual_seed(0)
    model = build_model("tiny", memory="streaming", **SMALL).eval()
    feats = torch.randn(30, 64, 320, generator=torch.Generator().manual_seed(1)).abs()
    frames = [0, 3, 4, 5, 9, 17, 29]
    words = ["forward", "left", "right", "stop"]
    targets = [[words[(t + i) % 4] for i in range(4)] for t in frames]
    with torch.no_grad():
        per = model(**model.prepare_batch([INSTRUCTION] * len(frames), [feats[: t + 1] for t in frames], targets))
        packed = model(
            **model.prepare_packed_batch(
                [INSTRUCTION, INSTRUCTION], [feats[:6], feats], [frames[:4], frames[4:]], [targets[:4], targets[4:]]
            )
        )
    torch.testing.assert_close(packed.logits, per.logits, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(packed.loss, per.loss, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "key, bad", [("streaming_window", 0), ("streaming_group", -1), ("streaming_window", 2.5), ("streaming_group", True)]
)
def test_bad_settings_name_the_setting(key, bad):
    with pytest.raises(VidNavError, match=key):
        build_model("tiny", memory="streaming", pretrained=False, **{key: bad})


def test_no_history_cache_is_refused():
    model = build_model("tiny", memory="streaming", pretrained=False, **SMALL)
    with pytest.raises(VidNavError, match="cache_history"):
        Agent(model, cache_history=False)


def test_asking_changes_neither_the_cache_nor_the_next_plan(trained, feats):
    plain, asking = Agent(trained), Agent(trained)
    for agent in (plain, asking):
        agent.reset(INSTRUCTION)
    with torch.no_grad():
        for t in range(20):
            for agent in (plain, asking):
                agent.observe_features(feats[t : t + 1])
            if t % 4 == 3:  # several frames' entries and evictions pending when asking
                assert isinstance(asking.ask("which room are you in?"), str)
                assert plain.plan() == asking.plan(), t
                assert plain._cache.get_seq_length() == asking._cache.get_seq_length()
                assert plain._next_pos == asking._next_pos and plain._entries == asking._entries


def test_agent_answers_like_model_answer():
    torch.manual_seed(0)
    model = build_model("tiny", memory="streaming", **SMALL).eval()
    with torch.no_grad():  # away from the initialisation, so that the answer depends on the input
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.1)
    feats = torch.randn(15, 64, 320, generator=torch.Generator().manual_seed(5))
    agent = Agent(model)
    agent.reset(INSTRUCTION)
    for t in range(15):
        agent.observe_features(feats[t : t + 1])
    question = "which room are you in?"
    with torch.no_grad():
        expected = model.answer(model.prepare_batch([INSTRUCTION], [feats], questions=[question]))[0]
    assert agent.ask(question) == expected
