"""Memory strategies: which frames keep how many visual tokens in the LLM input.

One interface, chosen by ``config.memory``:

========== ================================================================================================
``navid``    every history frame at 4 tokens (2×2 pool) + the current frame at 64 (8×8)           [NaVid]
``uninavid`` current 64; the last B (=64) history frames at 4 tokens; a frame leaving that window
             becomes 1 token (mean of its 4 projected tokens) and is merged into the last long-term token
             by a count-weighted running mean when their cosine similarity exceeds τ (default 0.95), else
             appended as a new long-term token                                                   [Uni-NaVid]
``navila``   8 frames at the current resolution: 7 sampled uniformly from the history + the current one;
             black frames pad the front while fewer than 7 history frames exist                  [NaVILA]
``llamavid`` per frame one context token + 1 content token (1×1 pool), the current frame included  [LLaMA-VID]
``streaming`` current 64; each frame's 4 history tokens enter the LM's KV cache once, at a fixed position, when
             it stops being current; a frame leaving the window of the last W (=64) is evicted from the cache;
             every G (=8) evicted frames become one long-term token (their mean) that enters the cache once;
             per step only the new frame runs through the LM (:mod:`vidnav.model.streaming`)  [StreamVLN-like]
========== ================================================================================================

Any strategy can add the per-frame context token (``use_context_token``; on by default for navid and
llamavid, off for uninavid and navila). It is placed before the frame's content tokens, for the current
frame and every frame kept individually (short-term or sampled); merged long-term tokens get none.

Each strategy builds its tokens two ways that must agree: :meth:`MemoryStrategy.build` from all features at
once (training; vectorised except the inherently sequential Uni-NaVid merge decisions) and
:meth:`MemoryStrategy.stream` (the Agent: one new frame per call, O(1) new token work per frame).
The LLM sees ``<hist> history <obs> current``.
"""

from __future__ import annotations

from collections import deque

import torch
from torch.nn import functional as F

from vidnav.errors import VidNavError
from vidnav.model.frame_tokens import FrameTokens
from vidnav.model.memory_base import Budget, MemoryStrategy, StreamingMemory, Visual, _check_frames, _frame_block
from vidnav.model.streaming import StreamingWindowMemory

MEMORY_STRATEGIES = ("navid", "uninavid", "navila", "llamavid", "streaming")


def merge_step(long_term: list[torch.Tensor], counts: list[int], token: torch.Tensor, tau: float) -> bool:
    """Uni-NaVid's online merge of one long-term token (in place). Returns True when it merged.

    Merged into the last long-term token when cos(token, last) > tau, by the count-weighted running mean
    last ← last + (token − last) / (n + 1); otherwise appended with count 1.
    """
    if long_term and F.cosine_similarity(token, long_term[-1], dim=0).item() > tau:
        n = counts[-1]
        long_term[-1] = long_term[-1] + (token - long_term[-1]) / (n + 1)
        counts[-1] = n + 1
        return True
    long_term.append(token)
    counts.append(1)
    return False


def merge_sequence(tokens: torch.Tensor, tau: float) -> tuple[torch.Tensor, list[int]]:
    """All merges of a sequence of long-term tokens [n, D] at once → (merged [m, D], counts).

    The decisions need the running mean, so they are taken sequentially (without autograd, with exactly the
    arithmetic of :func:`merge_step`); merges only ever go into the last token, so every merged token is
    the mean of a contiguous run of frames and the values are computed in one differentiable index_add.
    """
    n = tokens.shape[0]
    if n == 0:
        return tokens[:0], []
    with torch.no_grad():
        long: list[torch.Tensor] = []
        counts: list[int] = []
        seg = []
        for i in range(n):
            merge_step(long, counts, tokens[i].detach(), tau)
            seg.append(len(long) - 1)
    seg_ids = torch.tensor(seg, device=tokens.device)
    sums = tokens.new_zeros((len(counts), tokens.shape[1])).index_add(0, seg_ids, tokens)
    return sums / torch.tensor(counts, device=tokens.device, dtype=tokens.dtype)[:, None], counts


# ---------------------------------------------------------------------------------------------------------
class NaVidMemory(MemoryStrategy):
    name = "navid"
    default_context = True
    shared_history_frames = float("inf")

    def budget(self, num_frames: int) -> Budget:
        t = num_frames
        return Budget(self.current_pool**2, self.history_pool**2 * (t - 1), 0, t if self.use_context else 0)

    def build(self, enc, feats, black=None):
        t = _check_frames(feats)
        hist = self.history_blocks(enc, feats[:-1]).flatten(0, 1)
        return Visual(hist, self._current(enc, feats), self.budget(t))

    def stream(self, black=None):
        return _NaVidStream(self)


class _NaVidStream(StreamingMemory):
    def __init__(self, strategy):
        super().__init__(strategy)
        self.blocks: list[torch.Tensor] = []
        self._cat: torch.Tensor | None = None  # concatenation of blocks, extended (not rebuilt) each step

    def _to_history(self, ft):
        block = _frame_block(ft, ft.history)
        self.blocks.append(block)
        self._cat = block if self._cat is None else torch.cat([self._cat, block], dim=0)

    def stable_tokens(self) -> int:  # append-only history: every history token is final
        return 0 if self._cat is None else self._cat.shape[0]

    def _history(self):
        hist = self._empty() if self._cat is None else self._cat
        n = len(self.blocks)
        return hist, [], n * self.strategy.history_pool**2, n if self.strategy.use_context else 0


# ---------------------------------------------------------------------------------------------------------
class UniNaVidMemory(MemoryStrategy):
    name = "uninavid"
    default_context = False

    def __init__(self, config):
        super().__init__(config)
        self.window = int(config.uninavid_window)
        self.tau = float(config.merge_threshold)
        if self.window < 1:
            raise VidNavError(f"uninavid_window must be >= 1, got {self.window}")
        self.shared_history_frames = self.window  # no frame has left the window yet: nothing merged

    def budget(self, num_frames: int) -> Budget:
        hist = num_frames - 1
        short = min(hist, self.window)
        long = max(0, hist - self.window)
        ctx = (short + 1) if self.use_context else 0
        return Budget(self.current_pool**2, self.history_pool**2 * short, long, ctx, long_term_is_upper_bound=long > 1)

    def build(self, enc, feats, black=None):
        t = _check_frames(feats)
        n_old = max(0, t - 1 - self.window)
        win = feats[n_old : t - 1]
        short = self.history_blocks(enc, win).flatten(0, 1)
        old = enc.content(feats[:n_old], self.history_pool).mean(dim=1)  # one token per old frame
        long, counts = merge_sequence(old, self.tau)
        budget = Budget(
            self.current_pool**2,
            self.history_pool**2 * win.shape[0],
            len(counts),
            (win.shape[0] + 1) if self.use_context else 0,
        )
        return Visual(torch.cat([long, short], dim=0), self._current(enc, feats), budget, counts)

    def stream(self, black=None):
        return _UniNaVidStream(self)


class _UniNaVidStream(StreamingMemory):
    def __init__(self, strategy):
        super().__init__(strategy)
        self.window: deque[FrameTokens] = deque()
        self.long: list[torch.Tensor] = []
        self.counts: list[int] = []

    def _to_history(self, ft):
        self.window.append(ft)
        if len(self.window) > self.strategy.window:
            leaving = self.window.popleft()
            merge_step(self.long, self.counts, leaving.history.mean(dim=0), self.strategy.tau)

    def stable_tokens(self) -> int:  # long-term tokens come first; only the last one can still absorb merges
        return max(0, len(self.long) - 1)

    def _history(self):
        rows = [torch.stack(self.long)] if self.long else []
        rows += [_frame_block(ft, ft.history) for ft in self.window]
        hist = torch.cat(rows, dim=0) if rows else self._empty()
        n = len(self.window)
        return hist, list(self.counts), n * self.strategy.history_pool**2, n if self.strategy.use_context else 0


# ---------------------------------------------------------------------------------------------------------
def navila_indices(num_history: int, num_samples: int) -> list[int]:
    """NaVILA's history sampling: all frames while there are fewer than ``num_samples`` (black frames pad the
    front), else ``num_samples`` indices spread uniformly over 0..num_history-1 (first and last included)."""
    if num_history <= num_samples:
        return list(range(num_history))
    return torch.linspace(0, num_history - 1, num_samples).round().long().tolist()


class NaVILAMemory(MemoryStrategy):
    name = "navila"
    default_context = False

    def __init__(self, config):
        super().__init__(config)
        self.samples = int(config.navila_frames) - 1
        if self.samples < 1:
            raise VidNavError(f"navila_frames must be >= 2, got {config.navila_frames}")
        self.current_pool = config.navila_pool or config.current_pool
        self.history_pool = self.current_pool  # every frame at the same resolution

    def budget(self, num_frames: int) -> Budget:
        per = self.current_pool**2
        ctx = (self.samples + 1) if self.use_context else 0
        return Budget(per, per * self.samples, 0, ctx)

    def build(self, enc, feats, black=None):
        t = _check_frames(feats)
        if black is None:
            raise VidNavError("navila memory needs the black-frame features to pad the front")
        idx = navila_indices(t - 1, self.samples)
        pad = self.samples - len(idx)
        frames = torch.cat([black.to(feats.device, feats.dtype).expand(pad, -1, -1), feats[idx]], dim=0)
        hist = self.history_blocks(enc, frames).flatten(0, 1)
        return Visual(hist, self._current(enc, feats), self.budget(t))

    def stream(self, black=None):
        if black is None:
            raise VidNavError("navila memory needs the black frame's tokens to pad the front")
        return _NaVILAStream(self, black)


class _NaVILAStream(StreamingMemory):
    def __init__(self, strategy, black: FrameTokens):
        super().__init__(strategy)
        self.black = black
        self.frames: list[FrameTokens] = []

    def _to_history(self, ft):
        self.frames.append(ft)

    def _history(self):
        s = self.strategy
        idx = navila_indices(len(self.frames), s.samples)
        chosen = [self.black] * (s.samples - len(idx)) + [self.frames[i] for i in idx]
        hist = torch.cat([_frame_block(ft, ft.history) for ft in chosen], dim=0)
        return hist, [], s.samples * s.history_pool**2, s.samples if s.use_context else 0


# ---------------------------------------------------------------------------------------------------------
class LLaMAVIDMemory(MemoryStrategy):
    name = "llamavid"
    default_context = True

    def __init__(self, config):
        super().__init__(config)
        self.use_context = True  # the context token is half of LLaMA-VID's two tokens per frame
        self.current_pool = 1
        self.history_pool = 1
        self.shared_history_frames = float("inf")

    def budget(self, num_frames: int) -> Budget:
        return Budget(1, num_frames - 1, 0, num_frames)

    def build(self, enc, feats, black=None):
        t = _check_frames(feats)
        hist = self.history_blocks(enc, feats[:-1]).flatten(0, 1)
        return Visual(hist, self._current(enc, feats), self.budget(t))

    def stream(self, black=None):
        return _NaVidStream(self)  # append-only history of [context, content] blocks, like NaVid


_STRATEGIES = {c.name: c for c in (NaVidMemory, UniNaVidMemory, NaVILAMemory, LLaMAVIDMemory, StreamingWindowMemory)}


def build_memory(config) -> MemoryStrategy:
    try:
        cls = _STRATEGIES[config.memory]
    except KeyError:
        raise VidNavError(
            f"unknown memory strategy {config.memory!r}; choose one of {', '.join(MEMORY_STRATEGIES)}"
        ) from None
    return cls(config)
