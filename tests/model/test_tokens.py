"""Context token against a plain loop, pooling and projector shapes."""

import math

import pytest
import torch

from vidnav.model.frame_tokens import FrameEncoder, pool_grid
from vidnav.model.projector import Mlp2xGelu, MlpDownsample, build_projector
from vidnav.model.text_query import ContextAttention


def _context_loop(module: ContextAttention, feats, text_hidden, mask):
    """LLaMA-VID's context token written out with Python loops, straight from the formula."""
    c = feats.shape[-1]
    out = []
    for t in range(feats.shape[0]):
        x = feats[t]  # [N, C]
        per_query = []
        for m in range(text_hidden.shape[0]):
            if not mask[m]:
                continue
            q = module.query_proj(text_hidden[m])  # [C]
            scores = [float(q @ module.key_proj(x[n])) / math.sqrt(c) for n in range(x.shape[0])]
            mx = max(scores)
            e = [math.exp(s - mx) for s in scores]
            a = [v / sum(e) for v in e]
            per_query.append(sum(a[n] * x[n] for n in range(x.shape[0])))  # weighted sum of UNprojected x
        pooled = sum(per_query) / len(per_query)
        out.append(module.value_proj(pooled))
    return torch.stack(out)


def test_context_token_matches_a_loop_implementation():
    torch.manual_seed(0)
    ctx = ContextAttention(text_dim=12, vision_dim=8, llm_dim=10).double()
    feats = torch.randn(3, 16, 8, dtype=torch.double)
    text = torch.randn(5, 12, dtype=torch.double)
    mask = torch.tensor([1, 1, 1, 0, 0])  # two padding tokens must not count
    fast = ctx(feats, ctx.queries(text), mask)
    with torch.no_grad():
        slow = _context_loop(ctx, feats, text, mask)
    assert fast.shape == (3, 10)
    torch.testing.assert_close(fast, slow, rtol=1e-10, atol=1e-10)


def test_context_token_depends_on_the_instruction():
    torch.manual_seed(1)
    ctx = ContextAttention(12, 8, 10)
    feats = torch.randn(2, 16, 8)
    a = ctx(feats, ctx.queries(torch.randn(4, 12)), torch.ones(4))
    b = ctx(feats, ctx.queries(torch.randn(4, 12)), torch.ones(4))
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("g, tokens", [(8, 64), (4, 16), (2, 4), (1, 1)])
def test_pooling_shapes_and_values(g, tokens):
    feats = torch.randn(3, 64, 320)
    pooled = pool_grid(feats, grid=8, g=g)
    assert pooled.shape == (3, g, g, 320)
    if g == 8:
        assert torch.equal(pooled.reshape(3, 64, 320), feats)  # identity at full resolution
    if g == 1:
        torch.testing.assert_close(pooled.reshape(3, 320), feats.mean(dim=1))
    if g == 2:  # top-left 4x4 block of the 8x8 grid
        block = feats.reshape(3, 8, 8, 320)[:, :4, :4].mean(dim=(1, 2))
        torch.testing.assert_close(pooled[:, 0, 0], block)
    proj = Mlp2xGelu(320, 384)
    assert proj(pooled).shape == (3, tokens, 384)


def test_mlp_downsample_concats_2x2_and_pads_odd_grids():
    x = torch.arange(4 * 4 * 2, dtype=torch.float).reshape(1, 4, 4, 2)
    cat = MlpDownsample.concat2x2(x)
    assert cat.shape == (1, 2, 2, 8)
    # block (0,0) holds pixels (0,0), (0,1), (1,0), (1,1) in that order
    expected = torch.cat([x[0, 0, 0], x[0, 0, 1], x[0, 1, 0], x[0, 1, 1]])
    assert torch.equal(cat[0, 0, 0], expected)
    odd = torch.randn(2, 27, 27, 16)
    assert MlpDownsample.concat2x2(odd).shape == (2, 14, 14, 64)  # SigLIP 27x27 → 196 tokens (NaVILA)
    assert torch.equal(MlpDownsample.concat2x2(odd)[:, -1, -1, 16:], torch.zeros(2, 48))  # zero padding
    proj = MlpDownsample(16, 32)
    assert proj(odd).shape == (2, 196, 32)


@pytest.mark.parametrize(
    "projector, grid, g",
    [
        ("mlp2x_gelu", 8, 8),
        ("mlp2x_gelu", 8, 2),
        ("mlp_downsample", 8, 4),
        ("mlp_downsample", 8, 2),
        ("mlp_downsample", 27, 14),
        ("mlp_downsample", 16, 8),
        ("mlp2x_gelu", 16, 8),
    ],
)
def test_frame_encoder_gives_g_squared_tokens(projector, grid, g):
    enc = FrameEncoder(build_projector(projector, 24, 32), grid)
    out = enc.content(torch.randn(5, grid * grid, 24), g)
    assert out.shape == (5, g * g, 32)
    assert enc.content(torch.randn(0, grid * grid, 24), g).shape == (0, g * g, 32)
