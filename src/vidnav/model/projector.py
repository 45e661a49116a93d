"""Projectors from the vision width C into the LLM width D (LLaVA / NaVILA names)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

PROJECTORS = ("mlp2x_gelu", "mlp_downsample")


class Mlp2xGelu(nn.Module):
    """LLaVA-1.5's projector: Linear(C→D) → GELU → Linear(D→D), applied per token."""

    downsample = 1

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(in_dim, out_dim)
        self.fc2 = nn.Linear(out_dim, out_dim)

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        """grid [..., g, g, C] → tokens [..., g*g, D]."""
        x = grid.flatten(-3, -2)
        return self.fc2(F.gelu(self.fc1(x)))


class MlpDownsample(nn.Module):
    """NaVILA / VILA's ``mlp_downsample``: concatenate each 2×2 neighbourhood (odd grids are zero-padded at
    the end, as VILA does) → LayerNorm(4C) → Linear(4C→D) → GELU → Linear(D→D). A 2g×2g grid gives g×g tokens."""

    downsample = 2

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(4 * in_dim)
        self.fc1 = nn.Linear(4 * in_dim, out_dim)
        self.fc2 = nn.Linear(out_dim, out_dim)

    @staticmethod
    def concat2x2(grid: torch.Tensor) -> torch.Tensor:
        """[..., h, w, C] → [..., ceil(h/2), ceil(w/2), 4C] (row-major order inside each 2×2 block)."""
        h, w = grid.shape[-3], grid.shape[-2]
        if h % 2 or w % 2:
            grid = F.pad(grid, (0, 0, 0, w % 2, 0, h % 2))
            h, w = grid.shape[-3], grid.shape[-2]
        lead = grid.shape[:-3]
        c = grid.shape[-1]
        x = grid.reshape(*lead, h // 2, 2, w // 2, 2, c)
        x = x.movedim(-4, -3)  # [..., h/2, w/2, 2(row), 2(col), C]
        return x.reshape(*lead, h // 2, w // 2, 4 * c)

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        """grid [..., h, w, C] → tokens [..., ceil(h/2)*ceil(w/2), D]."""
        x = self.concat2x2(grid).flatten(-3, -2)
        return self.fc2(F.gelu(self.fc1(self.norm(x))))


def build_projector(kind: str, in_dim: int, out_dim: int) -> nn.Module:
    if kind == "mlp2x_gelu":
        return Mlp2xGelu(in_dim, out_dim)
    if kind == "mlp_downsample":
        return MlpDownsample(in_dim, out_dim)
    from vidnav.errors import VidNavError

    raise VidNavError(f"unknown projector {kind!r}; choose one of {', '.join(PROJECTORS)}")
