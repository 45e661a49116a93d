"""Memory strategies: token counts, Uni-NaVid merging, streaming == from scratch."""

import pytest
import torch

from vidnav.model import VidNavConfig
from vidnav.model.frame_tokens import FrameEncoder
from vidnav.model.memory import MEMORY_STRATEGIES, build_memory, merge_sequence, merge_step, navila_indices
from vidnav.model.projector import build_projector
from vidnav.model.text_query import ContextAttention

C, D, GRID = 16, 12, 8


def _encoder(seed=0, context=True):
    torch.manual_seed(seed)
    ctx = ContextAttention(6, C, D) if context else None
    queries = ctx.queries(torch.randn(5, 6)) if context else None
    return FrameEncoder(build_projector("mlp2x_gelu", C, D), GRID, ctx, queries, torch.ones(5) if context else None)


def _strategy(memory, **kw):
    return build_memory(VidNavConfig(memory=memory, **kw))


EXPECTED = {  # T → (current, short_term, long_term (upper bound), context) with default settings
    "navid": {1: (64, 0, 0, 1), 5: (64, 16, 0, 5), 64: (64, 252, 0, 64), 65: (64, 256, 0, 65), 200: (64, 796, 0, 200)},
    "uninavid": {1: (64, 0, 0, 0), 5: (64, 16, 0, 0), 64: (64, 252, 0, 0), 65: (64, 256, 0, 0), 200: (64, 256, 135, 0)},
    "navila": {t: (64, 448, 0, 0) for t in (1, 5, 64, 65, 200)},
    "streaming": {
        1: (64, 0, 0, 0),
        5: (64, 16, 0, 0),
        64: (64, 252, 0, 0),
        65: (64, 256, 0, 0),
        200: (64, 256, 17, 0),
    },  # 135 evicted frames in groups of 8: 16 closed + the open one
    "llamavid": {1: (1, 0, 0, 1), 5: (1, 4, 0, 5), 64: (1, 63, 0, 64), 65: (1, 64, 0, 65), 200: (1, 199, 0, 200)},
}


@pytest.mark.parametrize("memory", MEMORY_STRATEGIES)
@pytest.mark.parametrize("t", [1, 5, 64, 65, 200])
def test_token_counts(memory, t):
    # merge_threshold 1.0: cosine similarity never exceeds it, so Uni-NaVid keeps every long-term token
    strategy = _strategy(memory, merge_threshold=1.0)
    budget = strategy.budget(t)
    assert (budget.current, budget.short_term, budget.long_term, budget.context) == EXPECTED[memory][t]
    enc = _encoder(context=strategy.use_context)
    feats = torch.randn(t, GRID * GRID, C)
    black = torch.zeros(1, GRID * GRID, C)
    vis = strategy.build(enc, feats, black)
    counts = lambda b: (b.current, b.short_term, b.long_term, b.context)  # noqa: E731
    assert counts(vis.budget) == counts(budget)
    assert vis.history.shape == (budget.total - vis.current.shape[0], D)
    assert vis.current.shape[0] == budget.current + (1 if strategy.use_context else 0)
    # the same frames one at a time
    stream = strategy.stream(strategy.frame_tokens(enc, black))
    for i in range(t):
        stream.push(strategy.frame_tokens(enc, feats[i : i + 1]))
    svis = stream.visual()
    assert counts(svis.budget) == counts(budget)
    assert svis.long_term_counts == vis.long_term_counts
    torch.testing.assert_close(svis.history, vis.history, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(svis.current, vis.current, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("memory", MEMORY_STRATEGIES)
def test_context_token_can_be_switched(memory):
    on, off = _strategy(memory, use_context_token=True), _strategy(memory, use_context_token=False)
    assert on.budget(10).context > 0
    if memory != "llamavid":  # LLaMA-VID's two tokens per frame always include the context token
        assert off.budget(10).context == 0
    for strategy in (on, off):
        vis = strategy.build(_encoder(context=True), torch.randn(10, 64, C), torch.zeros(1, 64, C))
        assert vis.history.shape[0] + vis.current.shape[0] == strategy.budget(10).total


def test_context_token_precedes_each_frames_content():
    enc = _encoder()
    strategy = _strategy("navid")
    feats = torch.randn(3, 64, C)
    vis = strategy.build(enc, feats)
    ctx = enc.context(feats)
    hist = enc.content(feats, 2)
    torch.testing.assert_close(vis.history[0], ctx[0])
    torch.testing.assert_close(vis.history[1:5], hist[0])
    torch.testing.assert_close(vis.history[5], ctx[1])
    torch.testing.assert_close(vis.current[0], ctx[2])
    torch.testing.assert_close(vis.current[1:], enc.content(feats[2:], 8)[0])


def test_merge_step_threshold_running_mean_and_counts():
    long, counts = [], []
    a = torch.tensor([1.0, 0.0])
    assert not merge_step(long, counts, a, 0.95)  # first token: appended
    b = torch.tensor([1.0, 0.1])  # cos(a, b) = 0.995 > 0.95: merged
    assert merge_step(long, counts, b, 0.95)
    torch.testing.assert_close(long[0], (a + b) / 2)
    assert counts == [2]
    c = torch.tensor([1.0, 0.2])
    assert merge_step(long, counts, c, 0.95)
    torch.testing.assert_close(long[0], (a + b + c) / 3)  # count-weighted running mean = mean of all
    assert counts == [3]
    d = torch.tensor([0.0, 1.0])  # orthogonal: appended
    assert not merge_step(long, counts, d, 0.95)
    assert counts == [3, 1] and len(long) == 2
    # exactly at the threshold is not above it
    e = torch.tensor([0.0, 1.0])
    f_cos = torch.nn.functional.cosine_similarity(e, long[-1], dim=0).item()
    assert not merge_step(long, counts, e, f_cos)
    assert counts == [3, 1, 1]


def test_merge_threshold_is_configurable():
    tokens = torch.tensor([[1.0, 0.0], [1.0, 0.3]])  # cos ≈ 0.958
    assert merge_sequence(tokens, 0.95)[1] == [2]
    assert merge_sequence(tokens, 0.985)[1] == [1, 1]  # the released Uni-NaVid code's threshold


def test_merge_sequence_equals_online_merging_and_is_differentiable():
    torch.manual_seed(3)
    base = torch.randn(4, 8)
    # runs of similar tokens: 4 clusters of 5 noisy copies each
    tokens = (base.repeat_interleave(5, dim=0) + 0.05 * torch.randn(20, 8)).requires_grad_(True)
    merged, counts = merge_sequence(tokens, 0.95)
    long, online_counts = [], []
    for i in range(20):
        merge_step(long, online_counts, tokens[i].detach(), 0.95)
    assert counts == online_counts == [5, 5, 5, 5]
    torch.testing.assert_close(merged, torch.stack(long), rtol=1e-5, atol=1e-6)
    merged.sum().backward()
    assert tokens.grad is not None and torch.all(tokens.grad != 0)


def test_uninavid_window_and_long_term_order():
    strategy = _strategy("uninavid", uninavid_window=3, merge_threshold=2.0)  # never merge
    enc = _encoder(context=False)
    feats = torch.randn(8, 64, C)
    vis = strategy.build(enc, feats)
    # history frames 0..6: 0..3 left the window (1 token each), 4..6 are short-term (4 tokens each)
    assert vis.long_term_counts == [1, 1, 1, 1]
    torch.testing.assert_close(vis.history[:4], enc.content(feats[:4], 2).mean(dim=1))
    torch.testing.assert_close(vis.history[4:], enc.content(feats[4:7], 2).reshape(-1, D))
    always = _strategy("uninavid", uninavid_window=3, merge_threshold=-1.0).build(enc, feats)
    assert always.long_term_counts == [4]
    torch.testing.assert_close(always.history[0], enc.content(feats[:4], 2).mean(dim=1).mean(dim=0))


def test_navila_sampling_and_black_padding():
    assert navila_indices(0, 7) == []
    assert navila_indices(3, 7) == [0, 1, 2]
    assert navila_indices(7, 7) == list(range(7))
    idx = navila_indices(100, 7)
    assert idx[0] == 0 and idx[-1] == 99 and len(set(idx)) == 7 and idx == sorted(idx)
    strategy = _strategy("navila")
    enc = _encoder(context=False)
    feats, black = torch.randn(3, 64, C), torch.zeros(1, 64, C)
    vis = strategy.build(enc, feats, black)
    black_tokens = enc.content(black, 8)[0]
    for i in range(5):  # 7 - 2 history frames = 5 black frames first
        torch.testing.assert_close(vis.history[64 * i : 64 * (i + 1)], black_tokens)
    torch.testing.assert_close(vis.history[320:384], enc.content(feats[:1], 8)[0])


def test_unknown_strategy_is_a_clear_error():
    from vidnav.errors import VidNavError

    with pytest.raises(VidNavError, match="navid, uninavid"):
        build_memory(VidNavConfig(memory="lstm"))
