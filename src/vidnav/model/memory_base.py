"""The interface every memory strategy implements (:class:`MemoryStrategy`, :class:`StreamingMemory`) and what
it returns (:class:`Visual`, :class:`Budget`); the strategies are in :mod:`vidnav.model.memory` and
:mod:`vidnav.model.streaming`, chosen by :func:`vidnav.model.memory.build_memory`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from vidnav.errors import VidNavError
from vidnav.model.frame_tokens import FrameEncoder, FrameTokens


@dataclass
class Budget:
    """Visual-token counts after T frames (markers and text not included)."""

    current: int
    short_term: int
    long_term: int
    context: int
    long_term_is_upper_bound: bool = False

    @property
    def total(self) -> int:
        return self.current + self.short_term + self.long_term + self.context

    def as_dict(self) -> dict:
        d = asdict(self)
        d["total"] = self.total
        return d


@dataclass
class Visual:
    """A memory's output: the token rows placed after <hist> and after <obs>."""

    history: torch.Tensor  # [Lh, D]
    current: torch.Tensor  # [Lc, D]
    budget: Budget
    long_term_counts: list[int] = field(default_factory=list)  # frames merged into each long-term token


def _frame_block(ft: FrameTokens, tokens: torch.Tensor) -> torch.Tensor:
    return tokens if ft.context is None else torch.cat([ft.context[None], tokens], dim=0)


def _check_frames(feats: torch.Tensor) -> int:
    if feats.dim() != 3 or feats.shape[0] < 1:
        raise VidNavError(f"memory needs features [T>=1, N, C], got shape {tuple(feats.shape)}")
    return feats.shape[0]


class StreamingMemory:
    """Incremental state of one episode: push one frame's tokens per step, read the visual tokens."""

    def __init__(self, strategy: "MemoryStrategy"):
        self.strategy = strategy
        self.num_frames = 0
        self.current: FrameTokens | None = None

    def push(self, ft: FrameTokens) -> None:
        if self.current is not None:
            self._to_history(self.current)
        self.current = ft
        self.num_frames += 1

    def _to_history(self, ft: FrameTokens) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _history(self) -> tuple[torch.Tensor, list[int], int, int]:  # pragma: no cover - abstract
        raise NotImplementedError

    def stable_tokens(self) -> int:
        """How many leading history tokens are final: they will never change or move, whatever comes next.

        A consumer may keep the LM's KV cache of those tokens across calls (exact for a causal LM)."""
        return 0

    def visual(self) -> Visual:
        if self.current is None:
            raise VidNavError("the memory holds no frame yet; call agent.act(frame) or agent.observe(frame) first")
        history, counts, short, n_ctx_hist = self._history()
        cur = _frame_block(self.current, self.current.current)
        ctx = n_ctx_hist + (1 if self.current.context is not None else 0)
        budget = Budget(self.current.current.shape[0], short, len(counts), ctx)
        return Visual(history, cur, budget, counts)

    def _empty(self) -> torch.Tensor:
        return self.current.current[:0]


class MemoryStrategy:
    name = ""
    default_context = False

    def __init__(self, config):
        self.config = config
        uc = config.use_context_token
        self.use_context = self.default_context if uc is None else bool(uc)
        self.current_pool = config.current_pool
        self.history_pool = config.history_pool

    # -- counts without data (vidnav model info) --------------------------------------------------------
    def budget(self, num_frames: int) -> Budget:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- from all features at once (training) ------------------------------------------------------------
    def build(self, enc: FrameEncoder, feats: torch.Tensor, black: torch.Tensor | None = None) -> Visual:
        raise NotImplementedError  # pragma: no cover

    # -- one frame at a time (Agent) -----------------------------------------------------------------------
    def stream(self, black: FrameTokens | None = None) -> StreamingMemory:
        raise NotImplementedError  # pragma: no cover

    def frame_tokens(self, enc: FrameEncoder, feats: torch.Tensor) -> FrameTokens:
        return enc.frame(feats, self.current_pool, self.history_pool, self.use_context)

    # -- packed training (vidnav.model.packing) ----------------------------------------------------------
    # While a strategy's history is the concatenation of per-frame blocks, frames 0..t-1 in order, the
    # history of frame t is a prefix of frame t+1's; one sequence can then hold the history once and the
    # current-frame blocks of many frames t after it (each attending only to its own prefix).
    # frames t <= this have as history exactly the blocks of frames 0..t-1 (build() agrees); -1: none (NaVILA
    # pads even frame 0's history with black frames)
    shared_history_frames: float = -1

    def history_blocks(self, enc: FrameEncoder, feats: torch.Tensor) -> torch.Tensor:
        """[T, N, C] → [T, r, D]: each frame's block while it is history (context token first, if any)."""
        content = enc.content(feats, self.history_pool)
        if self.use_context:
            content = torch.cat([enc.context(feats)[:, None], content], dim=1)
        return content

    def current_blocks(self, enc: FrameEncoder, feats: torch.Tensor) -> torch.Tensor:
        """[T, N, C] → [T, c, D]: each frame's block while it is the current observation."""
        content = enc.content(feats, self.current_pool)
        if self.use_context:
            content = torch.cat([enc.context(feats)[:, None], content], dim=1)
        return content

    def _current(self, enc: FrameEncoder, feats: torch.Tensor) -> torch.Tensor:
        return self.current_blocks(enc, feats[-1:])[0]
