"""Instruction side of LLaMA-VID's context token: a frozen BERT-like text encoder and the context attention.

Context token of one frame (LLaMA-VID, "context attention"):
    Q = query_proj(text hidden states)            [M, C]   (M instruction tokens, C = vision width)
    K = key_proj(X)                               [N, C]   (N patches of the frame's feature grid X)
    A = softmax_over_N(Q Kᵀ / √C)                 [M, N]
    E = mean_over_M(A X)                          [C]      (weighted sum of the *unprojected* X)
    token = value_proj(E)                         [D]      (LLM width)
Padding tokens of the instruction are excluded from the mean.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class ContextAttention(nn.Module):
    def __init__(self, text_dim: int, vision_dim: int, llm_dim: int):
        super().__init__()
        self.vision_dim = vision_dim
        self.query_proj = nn.Linear(text_dim, vision_dim)
        self.key_proj = nn.Linear(vision_dim, vision_dim)
        self.value_proj = nn.Linear(vision_dim, llm_dim)

    def queries(self, text_hidden: torch.Tensor) -> torch.Tensor:
        """[..., M, text_dim] → [..., M, C]."""
        return self.query_proj(text_hidden)

    def forward(self, feats: torch.Tensor, queries: torch.Tensor, query_mask: torch.Tensor) -> torch.Tensor:
        """feats [T, N, C], queries [M, C], query_mask [M] (1 = real token) → one token per frame [T, D].

        Two rewrites give the same numbers at a fraction of the cost:
        - the key projection moves onto the queries: Q (X Wᵀ + b)ᵀ = (Q W) Xᵀ + Q b, and Q b is constant over
          the N patches, so the softmax drops it. That is M·C² work once instead of T·N·C² per sample (M ≈ 40
          instruction tokens, N = 64 patches, T frames); ``key_proj.bias`` has no effect, as in the direct form.
        - the mean over queries commutes with the weighted sum, so it is taken on the attention weights first
          (mean_m(A_m X) = (mean_m A_m) X): an [T, N] instead of an [T, M, C] intermediate.
        """
        q = queries @ self.key_proj.weight.to(queries.dtype)  # [M, C], in the patch feature space
        scores = torch.einsum("mc,tnc->tmn", q, feats) / math.sqrt(self.vision_dim)
        attn = scores.softmax(dim=-1)  # over the N patches
        w = query_mask.to(attn.dtype)
        attn = (attn * w[None, :, None]).sum(dim=1) / w.sum().clamp(min=1.0)  # [T, N]
        pooled = torch.einsum("tn,tnc->tc", attn, feats)
        return self.value_proj(pooled)


class FrozenTextEncoder(nn.Module):
    """A BERT-like encoder (MiniLM-L6 by default) returning per-token hidden states; never trained."""

    def __init__(self, bert: nn.Module):
        super().__init__()
        self.bert = bert
        self.bert.requires_grad_(False)
        self.bert.eval()
        self.hidden_size = bert.config.hidden_size

    def train(self, mode: bool = True):  # stays in eval mode (no dropout) whatever the parent does
        return super().train(False)

    @torch.no_grad()
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.bert(input_ids=input_ids, attention_mask=attention_mask)
        return out.last_hidden_state
