"""Per-frame visual tokens: content tokens (pooled grid → projector) and the LLaMA-VID context token.

A :class:`FrameEncoder` is bound to one instruction (its projected text queries) and turns feature grids
X [T, N, C] from the vision tower (or from a feature cache) into LLM-width tokens. Memory strategies ask it
for tokens at a pooling size g: the grid is average-pooled to g×g (g=8 → 64 tokens, g=2 → 4, g=1 → 1) and
projected token by token. With ``mlp_downsample`` (2×2 concat) the grid is pooled to 2g×2g first, so every
pooling size still means g² tokens; a grid one short of 2g (SigLIP's 27 for g=14) is zero-padded instead,
as NaVILA does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F


@dataclass
class FrameTokens:
    """What one frame contributes, computed once when the frame arrives (streaming)."""

    context: torch.Tensor | None  # [D] or None when the strategy uses no context token
    history: torch.Tensor  # [h, D] tokens while the frame is in the short-term history
    current: torch.Tensor  # [c, D] tokens while the frame is the current observation


def pool_grid(feats: torch.Tensor, grid: int, g: int, downsample: int = 1) -> torch.Tensor:
    """[T, grid², C] → [T, s, s, C] with s = g·downsample (average pooling; identity when already that size)."""
    t, n, c = feats.shape
    if n != grid * grid:
        raise ValueError(f"expected {grid}x{grid}={grid * grid} patches per frame, got {n}")
    x = feats.reshape(t, grid, grid, c)
    s = g * downsample
    if s == grid or (downsample == 2 and s == grid + 1):
        return x
    return F.adaptive_avg_pool2d(x.permute(0, 3, 1, 2), s).permute(0, 2, 3, 1)


class FrameEncoder:
    """Projector + context attention of a model, bound to one instruction's queries."""

    def __init__(self, projector, grid: int, context=None, queries=None, query_mask=None):
        self.projector = projector
        self.grid = grid
        self.context_module = context
        self.queries = queries
        self.query_mask = query_mask
        p = next(projector.parameters())
        self.dtype, self.device = p.dtype, p.device
        self.dim = projector.fc2.out_features

    def _cast(self, feats: torch.Tensor) -> torch.Tensor:
        return feats.to(device=self.device, dtype=self.dtype)

    def content(self, feats: torch.Tensor, g: int) -> torch.Tensor:
        """[T, N, C] → [T, g², D]."""
        if feats.shape[0] == 0:
            return feats.new_zeros((0, g * g, self.dim), dtype=self.dtype, device=self.device)
        grid = pool_grid(self._cast(feats), self.grid, g, self.projector.downsample)
        return self.projector(grid)

    def context(self, feats: torch.Tensor) -> torch.Tensor:
        """[T, N, C] → [T, D] (one LLaMA-VID context token per frame)."""
        if self.context_module is None or self.queries is None:
            raise RuntimeError("this model has no context-token module (use_context_token is off)")
        if feats.shape[0] == 0:
            return feats.new_zeros((0, self.dim), dtype=self.dtype, device=self.device)
        return self.context_module(self._cast(feats), self.queries, self.query_mask)

    def frame(self, feats: torch.Tensor, current_pool: int, history_pool: int, with_context: bool) -> FrameTokens:
        """Tokens of one frame ([1, N, C]) for every role it can play later."""
        cur = self.content(feats, current_pool)[0]
        hist = cur if history_pool == current_pool else self.content(feats, history_pool)[0]
        ctx = self.context(feats)[0] if with_context else None
        return FrameTokens(ctx, hist, cur)
