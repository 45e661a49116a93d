"""The ``streaming`` memory: every frame enters the LM's KV cache once, at a fixed position, and leaves it by eviction.

Defined as a sequence of cache events, so that training (one sequence with a 4-D mask) and the Agent (a KV
cache it edits) see exactly the same attention pattern and positions:

* the instruction prefix enters first and is never evicted (the attention sink);
* at step s (frame s arrives; frame s-1 stops being the current frame), in this order:

  1. when s-1 >= W, frame s-1-W leaves the window of the last W history frames: its block is **evicted** (its
     KV entries are removed from every layer) and its pooled token (the mean of its history tokens) joins the
     open long-term group; when that group reaches G frames, their mean **enters** as one long-term token;
  2. frame s-1's history block (its context token, if any, then ``history_pool``² tokens) **enters**.

An entry takes the next free positions (positions = order of entry, absolute, never reassigned; evicted
entries keep theirs, so later positions leave gaps) and attends to the prefix, to the entries in the cache
when it enters, and causally to itself. The per-step suffix

    [open long-term token] <obs> current-frame tokens <act> answer

comes after the last entry's positions and sees the prefix and the entries alive at that step; it is
recomputed every step and cropped afterwards (the open token is the mean of the frames of the group not yet
complete: at most 1 token). So one step runs O(1) new tokens through the LM and attends over prefix + W
blocks + the long-term tokens, whatever the episode's length.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import torch

from vidnav.errors import VidNavError
from vidnav.model.frame_tokens import FrameTokens
from vidnav.model.memory_base import Budget, MemoryStrategy, StreamingMemory, Visual, _check_frames, _frame_block


@dataclass(frozen=True)
class Entry:
    """One thing that enters the cache: a frame's history block, or a long-term token of G merged frames."""

    kind: str  # "block" or "long"
    frames: tuple[int, ...]  # the block's frame, or the frames merged into the long-term token
    step: int  # it enters at this step (when frame ``step`` arrives)
    evicted: float  # it is evicted at this step, before that step's entries (inf: never)


def schedule(num_frames: int, window: int, group: int) -> list[Entry]:
    """The entries of an episode of ``num_frames`` frames, in the order (and so at the positions) they enter."""
    entries = []
    for s in range(1, num_frames):
        old = s - 1 - window  # the frame leaving the window at this step
        if old >= 0 and (old + 1) % group == 0:
            entries.append(Entry("long", tuple(range(old + 1 - group, old + 1)), s, math.inf))
        entries.append(Entry("block", (s - 1,), s, s + window))
    return entries


def evicted_frames(step: int, window: int) -> int:
    """How many frames have left the window once frame ``step`` is the current one."""
    return max(0, step - window)


@dataclass
class Layout:
    """The history entries of one trajectory as one sequence, for training (see :meth:`StreamingWindowMemory.layout`)."""

    tokens: torch.Tensor  # [H, D] every entry's tokens, in order of entry
    mask: torch.Tensor  # [H, H] bool: entry token i may attend to entry token j (the prefix is always visible)
    ends: list[int]  # per step asked: how many of the tokens have entered by then (the suffix's positions follow)
    visible: list[torch.Tensor]  # per step: [H] bool, the tokens alive in the cache at that step
    open: list[torch.Tensor]  # per step: [0 or 1, D] the open long-term token (leads the suffix)


class StreamingWindowMemory(MemoryStrategy):
    name = "streaming"
    default_context = False

    def __init__(self, config):
        super().__init__(config)
        for key in ("streaming_window", "streaming_group"):
            value = getattr(config, key, None)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise VidNavError(f"{key} must be an integer >= 1, got {value!r}")
        self.window = config.streaming_window
        self.group = config.streaming_group

    def budget(self, num_frames: int) -> Budget:
        hist = num_frames - 1
        short = min(hist, self.window)
        long = math.ceil(evicted_frames(hist, self.window) / self.group)  # closed groups + the open one
        ctx = (short + 1) if self.use_context else 0
        return Budget(self.current_pool**2, self.history_pool**2 * short, long, ctx)

    def pooled(self, enc, feats: torch.Tensor) -> torch.Tensor:
        """[T, N, C] → [T, D]: each frame's long-term contribution, the mean of its history content tokens."""
        return enc.content(feats, self.history_pool).mean(dim=1)

    def layout(self, enc, feats: torch.Tensor, steps: list[int]) -> Layout:
        """The entries of frames 0..max(steps) as one sequence with its attention mask, and for each step t in
        ``steps`` what frame t's suffix sees (training: :func:`streaming_row` per sample, or
        :func:`assemble_streaming_packed`)."""
        last = max(steps)
        entries = schedule(last + 1, self.window, self.group)
        blocks = self.history_blocks(enc, feats[:last])  # [last, r, D]
        pooled = self.pooled(enc, feats[:last])
        parts = [
            blocks[e.frames[0]] if e.kind == "block" else pooled[list(e.frames)].mean(dim=0)[None] for e in entries
        ]
        dev = feats.device if blocks.numel() == 0 else blocks.device
        sizes = torch.tensor([p.shape[0] for p in parts], dtype=torch.long, device=dev)
        owner = torch.repeat_interleave(torch.arange(len(parts), device=dev), sizes)  # entry of each token
        never = last + 1  # past every step asked (integers: float64 is not on every device)
        entered = torch.tensor([e.step for e in entries], dtype=torch.long, device=dev)[owner]
        evicted = torch.tensor([int(min(e.evicted, never)) for e in entries], dtype=torch.long, device=dev)[owner]
        idx = torch.arange(owner.shape[0], device=dev)
        earlier_alive = (owner[None, :] < owner[:, None]) & (evicted[None, :] > entered[:, None])
        own_causal = (owner[None, :] == owner[:, None]) & (idx[None, :] <= idx[:, None])
        tokens = torch.cat(parts) if parts else blocks.new_zeros((0, enc.dim))
        ends, visible, opens = [], [], []
        for t in steps:
            ends.append(int((entered <= t).sum()))
            visible.append((entered <= t) & (evicted > t))
            n_ev = evicted_frames(t, self.window)
            k = n_ev % self.group
            opens.append(pooled[n_ev - k : n_ev].mean(dim=0)[None] if k else tokens[:0])
        return Layout(tokens, earlier_alive | own_causal, ends, visible, opens)

    def build(self, enc, feats, black=None) -> Visual:
        """The visual tokens at the last frame (introspection: what the cache holds, in order, then the open
        long-term token). Training does not use it: the LM must see :meth:`layout`'s masks and positions."""
        t = _check_frames(feats) - 1
        lay = self.layout(enc, feats, [t])
        hist = torch.cat([lay.tokens[: lay.ends[0]][lay.visible[0][: lay.ends[0]]], lay.open[0]])
        n_ev = evicted_frames(t, self.window)
        counts = [self.group] * (n_ev // self.group) + ([n_ev % self.group] if n_ev % self.group else [])
        return Visual(hist, self._current(enc, feats), self.budget(t + 1), counts)

    def stream(self, black=None) -> "_WindowStream":
        return _WindowStream(self)


class _WindowStream(StreamingMemory):
    """The Agent's side: the same events, one frame at a time. :meth:`take_events` hands the cache edits
    (``("enter", key, tokens [n, D])`` / ``("evict", key)``) to the consumer that holds the KV cache."""

    def __init__(self, strategy: StreamingWindowMemory):
        super().__init__(strategy)
        self.alive: OrderedDict[tuple, torch.Tensor] = OrderedDict()  # in the cache, in order of entry
        self.window: list[tuple[int, torch.Tensor]] = []  # (frame, pooled token) of the blocks in the window
        self.open: list[torch.Tensor] = []  # pooled tokens of the evicted frames of the open group
        self.closed = 0
        self.pending: list[tuple] = []

    def _to_history(self, ft: FrameTokens) -> None:
        s = self.strategy
        frame = self.num_frames - 1  # push() counts the new frame after this
        if len(self.window) == s.window:
            old, pooled = self.window.pop(0)
            self._event(("evict", ("block", old)))
            self.open.append(pooled)
            if len(self.open) == s.group:
                self._event(("enter", ("long", self.closed), torch.stack(self.open).mean(dim=0)[None]))
                self.closed += 1
                self.open = []
        self.window.append((frame, ft.history.mean(dim=0)))
        self._event(("enter", ("block", frame), _frame_block(ft, ft.history)))

    def _event(self, event: tuple) -> None:
        if event[0] == "enter":
            self.alive[event[1]] = event[2]
        else:
            del self.alive[event[1]]
        self.pending.append(event)

    def take_events(self) -> list[tuple]:
        """The cache edits since the last call, in order (each entry attends to the cache as it is then)."""
        events, self.pending = self.pending, []
        return events

    def open_token(self) -> torch.Tensor:
        """[0 or 1, D]: the open long-term group's mean, recomputed every step (it leads the suffix)."""
        return torch.stack(self.open).mean(dim=0)[None] if self.open else self._empty()[:0]

    def _history(self):
        s = self.strategy
        hist = torch.cat([*self.alive.values(), self.open_token()]) if self.alive else self._empty()
        counts = [s.group] * self.closed + ([len(self.open)] if self.open else [])
        n = len(self.window)
        return hist, counts, n * s.history_pool**2, n if s.use_context else 0


def evict(cache, start: int, length: int) -> None:
    """Remove cache rows start..start+length-1 from every layer of a transformers DynamicCache (in place)."""
    for layer in cache.layers:
        layer.keys = torch.cat([layer.keys[..., :start, :], layer.keys[..., start + length :, :]], dim=-2)
        layer.values = torch.cat([layer.values[..., :start, :], layer.values[..., start + length :, :]], dim=-2)


def streaming_row(layout: Layout, prefix: torch.Tensor, suffix: torch.Tensor, step: int = 0):
    """One training sequence: prefix, the entries up to the step's (index ``step`` in the layout), the suffix.

    Returns (embeds [L, D], mask [L, L] bool, positions [L]); the suffix sees the prefix, the entries alive at
    that step and itself, causally. Positions are the indices in the sequence (evicted entries keep theirs)."""
    end = layout.ends[step]
    p, h, n = prefix.shape[0], end, suffix.shape[0]
    dev = prefix.device
    size = p + h + n
    mask = torch.zeros(size, size, dtype=torch.bool, device=dev)
    mask[:, :p] = True
    mask[:p, :p] = torch.ones(p, p, dtype=torch.bool, device=dev).tril()
    mask[p : p + h, p : p + h] = layout.mask[:h, :h]
    mask[p + h :, p : p + h] = layout.visible[step][:h]
    mask[p + h :, p + h :] = torch.ones(n, n, dtype=torch.bool, device=dev).tril()
    embeds = torch.cat([prefix, layout.tokens[:h].to(prefix.dtype), suffix])
    return embeds, mask, torch.arange(size, device=dev)


def stack_rows(rows: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], answers: torch.Tensor | None = None):
    """Rows of :func:`streaming_row`, left-padded to one context length, then the answer tokens [B, La, D].

    Returns (embeds [B, Lc + La, D], mask [B, 1, L, L] bool, positions [B, L], Lc). An answer token sees what
    its row's last context token sees, and the answer tokens before it. Padding sees only itself."""
    n_ctx = max(r[0].shape[0] for r in rows)
    la = 0 if answers is None else answers.shape[1]
    size = n_ctx + la
    dev = rows[0][0].device
    embeds, masks, positions = [], [], []
    for i, (emb, mask, pos) in enumerate(rows):
        pad = n_ctx - emb.shape[0]
        full = torch.eye(size, dtype=torch.bool, device=dev)
        full[pad:n_ctx, pad:n_ctx] = mask
        if la:
            full[n_ctx:, pad:n_ctx] = mask[-1]
            full[n_ctx:, n_ctx:] = torch.ones(la, la, dtype=torch.bool, device=dev).tril()
        parts = [emb.new_zeros((pad, emb.shape[1])), emb] + ([answers[i].to(emb.dtype)] if la else [])
        embeds.append(torch.cat(parts))
        masks.append(full)
        positions.append(torch.cat([pos.new_zeros(pad), pos, pos[-1] + 1 + torch.arange(la, device=dev)]))
    return torch.stack(embeds), torch.stack(masks)[:, None], torch.stack(positions), n_ctx


def assemble_streaming_packed(
    model,
    input_ids,
    attention_mask,
    query_ids,
    query_mask,
    visual_features,
    num_frames,
    block_frames,
    num_blocks,
    labels,
):
    """Packed training (:mod:`vidnav.model.packing`'s two LM calls) for the streaming memory: per sequence the
    shared part is the prefix and every entry up to its last supervised frame, with the entries' own 4-D mask;
    each supervised frame t is a row ``[open token] <obs> current <act> answer`` on that cache that sees the
    prefix and the entries alive at step t, at the positions after the entries of step t."""
    from vidnav.model.packing import BlockRows, PackedInputs
    from vidnav.model.processing_vidnav import ACT, OBS

    dev = model.markers.device
    memory, markers = model.memory, model.markers
    embed = model._base_lm().get_input_embeddings()
    q_hidden = model.encode_queries(query_ids, query_mask)
    feats = visual_features.to(dev).split(num_frames.tolist())
    frames = block_frames.split(num_blocks.tolist())
    answers = embed(labels.to(dev).clamp(min=0)).to(markers.dtype).split(num_blocks.tolist())
    shared, shared_masks, rows = [], [], []  # rows: (embeds, visible [Ls_i], start position, sequence, <act> index)
    for i in range(len(feats)):
        qh = q_hidden[i] if q_hidden is not None else None
        enc = model.frame_encoder(qh, query_mask[i].to(dev) if q_hidden is not None else None)
        prefix = model.prefix_embeds(input_ids[i][attention_mask[i].bool()], qh, query_mask[i])
        ts = frames[i].tolist()
        lay = memory.layout(enc, feats[i], ts)
        p, h = prefix.shape[0], lay.tokens.shape[0]
        mask = torch.zeros(p + h, p + h, dtype=torch.bool, device=dev)
        mask[:, :p] = True
        mask[:p, :p] = torch.ones(p, p, dtype=torch.bool, device=dev).tril()
        mask[p:, p:] = lay.mask
        shared.append(torch.cat([prefix, lay.tokens.to(markers.dtype)]))
        shared_masks.append(mask)
        current = memory.current_blocks(enc, feats[i][ts]).to(markers.dtype)
        for b in range(len(ts)):
            row = torch.cat(
                [
                    lay.open[b].to(markers.dtype),
                    markers[OBS : OBS + 1],
                    current[b],
                    markers[ACT : ACT + 1],
                    answers[i][b],
                ]
            )
            visible = torch.cat([torch.ones(p, dtype=torch.bool, device=dev), lay.visible[b]])
            rows.append((row, visible, p + lay.ends[b], i, lay.open[b].shape[0] + 1 + current.shape[1]))
    ls = max(x.shape[0] for x in shared)
    lb = max(r[0].shape[0] for r in rows)
    shared_mask = torch.eye(ls, dtype=torch.bool, device=dev).repeat(len(shared), 1, 1)  # padding sees itself
    for i, m in enumerate(shared_masks):
        shared_mask[i, : m.shape[0], : m.shape[0]] = m
    block_mask = torch.zeros(len(rows), lb, ls + lb, dtype=torch.bool, device=dev)
    causal = torch.ones(lb, lb, dtype=torch.bool, device=dev).tril()
    for r, (row, visible, _, _, _) in enumerate(rows):
        n = row.shape[0]
        block_mask[r, :, : visible.shape[0]] = visible
        block_mask[r, :n, ls : ls + n] = causal[:n, :n]
        block_mask[r, n:, ls:] = causal[n:]  # padding rows: causal over the row, never read
    la = labels.shape[1]
    group = BlockRows(
        embeds=torch.stack([torch.nn.functional.pad(r[0], (0, 0, 0, lb - r[0].shape[0])) for r in rows]),
        mask=block_mask[:, None],
        positions=torch.tensor([r[2] for r in rows], device=dev)[:, None] + torch.arange(lb, device=dev)[None],
        sequence=torch.tensor([r[3] for r in rows], device=dev),
        answer_index=torch.tensor([r[4] for r in rows], device=dev)[:, None] + torch.arange(la, device=dev)[None],
        order=torch.arange(len(rows), device=dev),
    )
    return PackedInputs(
        shared=torch.stack([torch.nn.functional.pad(x, (0, 0, 0, ls - x.shape[0])) for x in shared]),
        shared_mask=shared_mask[:, None],
        groups=[group],
    )
