"""Tree decoding (one LM call for k action words) writes what the sequential decoder writes."""

import pytest
import torch

from vidnav.agent import Agent
from vidnav.errors import VidNavError
from vidnav.model import build_model
from vidnav.model.tree_decode import tree_decode_actions, tree_size

INSTRUCTIONS = ["walk past the sofa and stop at the door", "turn left at the kitchen, then go straight"]


def _model(memory):
    torch.manual_seed(0)
    model = build_model(
        "tiny",
        memory=memory,
        current_pool=2,
        lm_config={"num_hidden_layers": 2},
        uninavid_window=4,
        streaming_window=4,
        streaming_group=3,
    ).eval()
    with torch.no_grad():  # away from the initialisation, so that the words depend on the input
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.1)
    return model


@pytest.fixture(scope="module")
def feats():
    return torch.randn(30, 64, 320, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("memory", ["uninavid", "navid", "streaming"])
def test_tree_logits_are_the_teacher_forced_logits_and_words_match_sequential(memory, feats):
    model = _model(memory)
    assert model.codec.single_token and tree_size(4, 4) == 84
    batch = model.prepare_batch(INSTRUCTIONS, [feats[:9], feats[9:30]])
    with torch.no_grad():
        out, mask, pos = model._prefill(batch)
        words, logits = tree_decode_actions(
            model._base_lm(),
            model.codec,
            4,
            out.last_hidden_state[:, -1],
            out.cache,
            mask,
            pos[:, -1],
            return_logits=True,
        )
        # the logits the walk read = the training forward's, teacher-forced with the words it chose (raw words as
        # labels: prepare_batch would make everything after a stop a stop)
        forced_batch = model.prepare_batch(INSTRUCTIONS, [feats[:9], feats[9:30]], [["left"] * 4] * 2)
        forced_batch["labels"] = torch.tensor([model.codec.encode(w) for w in words])
        forced = model(**forced_batch).logits
        first = [model.codec.seqs[w][0] for w in model.codec.words]
        torch.testing.assert_close(logits, forced[..., first].float(), rtol=0, atol=1e-4)
        for ban in (None, "forward", ["stop", "left"]):
            model.decoding = "sequential"
            seq = model.plan(batch) if ban is None else _plan_banned(model, batch, ban)
            model.decoding = "tree"
            tree = model.plan(batch) if ban is None else _plan_banned(model, batch, ban)
            assert tree == seq, (ban, tree, seq)


def _plan_banned(model, batch, ban):
    out, mask, pos = model._prefill(batch)
    return model.decode_actions(out.last_hidden_state[:, -1], out.cache, mask, pos[:, -1], ban)


@pytest.mark.parametrize("memory", ["uninavid", "streaming"])
def test_agent_plans_equal_with_either_decoder(memory, feats):
    model = _model(memory)
    plans = {}
    for decoding in ("sequential", "tree"):
        model.decoding = decoding
        agent = Agent(model)
        agent.reset(INSTRUCTIONS[1])
        got = []
        for t in range(12):
            agent.observe_features(feats[t : t + 1])
            got.append(agent.plan(ban_first="forward" if t % 3 == 0 else None))
        plans[decoding] = got
    assert plans["tree"] == plans["sequential"]
    assert len({tuple(p) for p in plans["tree"]}) > 1


def test_fallback_and_errors(feats):
    model = _model("navid")
    batch = model.prepare_batch(INSTRUCTIONS[:1], [feats[:5]])
    with torch.no_grad():
        out, mask, pos = model._prefill(batch)
        words, logits = tree_decode_actions(
            model._base_lm(),
            model.codec,
            4,
            out.last_hidden_state[:, -1],
            out.cache,
            mask,
            pos[:, -1],
            max_nodes=10,
            return_logits=True,
        )
        assert logits is None and len(words[0]) == 4  # the tree (84 nodes) exceeds max_nodes: sequential
        out, mask, pos = model._prefill(batch)
        with pytest.raises(VidNavError, match="attention mask covers"):
            tree_decode_actions(
                model._base_lm(), model.codec, 4, out.last_hidden_state[:, -1], out.cache, mask[:, 1:], pos[:, -1]
            )
        with pytest.raises(VidNavError, match="bans every action word"):
            tree_decode_actions(
                model._base_lm(),
                model.codec,
                4,
                out.last_hidden_state[:, -1],
                out.cache,
                mask,
                pos[:, -1],
                ["forward", "left", "right", "stop"],
            )
    assert model.decoding == "auto"  # sequential on a CPU, tree on a GPU
    model.decoding = "beam"
    with pytest.raises(VidNavError, match="decoding must be"):
        model.plan(batch)


@pytest.mark.parametrize("memory", ["uninavid", "streaming"])
def test_suffix_and_tree_in_one_call_reads_the_logits_of_two_calls(memory, feats):
    """The Agent's fused call (suffix + action tree) reads what the suffix call and then the tree call read."""
    from vidnav.model.tree_decode import suffix_and_tree

    model = _model(memory)
    lm, codec = model._base_lm(), model.codec
    agents = [Agent(model), Agent(model)]
    for agent in agents:
        agent.reset(INSTRUCTIONS[0])
    with torch.no_grad():
        for t in range(14):
            for agent in agents:
                agent.observe_features(feats[t : t + 1])
            if t % 3 != 2:
                continue
            got = []
            for i, agent in enumerate(agents):
                lead = agent._apply_events() if memory == "streaming" else ()  # uninavid: all history in the suffix
                vis = agent._mem.visual()
                if i == 0:
                    got.append(
                        agent._continue(
                            vis,
                            None,
                            None,
                            lead,
                            lambda s, c, p: suffix_and_tree(lm, codec, 4, s, c, p, "left", return_logits=True),
                        )
                    )
                else:
                    got.append(
                        agent._continue(
                            vis,
                            None,
                            lambda h, c, p: tree_decode_actions(
                                lm, codec, 4, h, c, None, p, "left", return_logits=True
                            ),
                            lead,
                        )
                    )
            assert got[0][0] == got[1][0], t
            torch.testing.assert_close(got[0][1], got[1][1], rtol=0, atol=1e-4, msg=f"step {t}")
            assert agents[0]._cache.get_seq_length() == agents[1]._cache.get_seq_length()
