"""Packed training sequences: many supervised frames of one trajectory in one LM sequence, with the same result.

Per-sample training builds, for every supervised frame t of a trajectory, its own sequence

    [prompt] <nav> instruction <hist> history(frames 0..t-1) <obs> current(t) <act> answer(t)

and runs the prompt, the instruction and the history through the LM again for every t. While a memory's history
is the concatenation of per-frame blocks (``navid``, ``llamavid``, and ``uninavid`` until a frame leaves its
window: ``MemoryStrategy.shared_history_frames``), frame t's history is a prefix of frame t+1's, so one sequence

    [prompt] <nav> instruction <hist> H(0) H(1) ... H(n-1) | <obs> cur(t1) <act> ans(t1) | <obs> cur(t2) <act> ...

holds all of them. It runs in two LM calls: the shared part (prefix and history, causal) once per sequence,
with its KV cache kept; then all blocks of the batch as one batch of short rows on that cache, each row seeing
the shared tokens before its frame (the prefix and H(j) for j < t) and itself, causally, with the positions it
has in its own per-sample sequence. So the LM computes for every block what it computes for that block's
per-sample sequence (same inputs, same positions, same visible keys), the prompt, the instruction and the
history run once per sequence instead of once per frame, and no block attends over the others (a single
sequence with a 4-D mask would spend most of its attention on masked pairs). A frame whose history is not such
a prefix (Uni-NaVid after merging, NaVILA's sampled frames) carries its own history at the front of its row
and sees only the prefix besides; such rows are longer, so they run as a second batch of rows instead of
padding every short row to their length. Gradients flow through the cache into the shared part.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F


@dataclass
class BlockRows:
    """One batch of block rows on the shared cache (rows of similar length run together)."""

    embeds: torch.Tensor  # [R, Lb, D] (private history) <obs> current <act> answer, right-padded
    mask: torch.Tensor  # [R, 1, Lb, Ls + Lb] bool, True = may attend (cache columns first)
    positions: torch.Tensor  # [R, Lb] each token's position in its per-sample sequence
    sequence: torch.Tensor  # [R] the shared row whose cache each block reads
    answer_index: torch.Tensor  # [R, La] index in the row of the hidden state that predicts each label token
    order: torch.Tensor  # [R] the blocks' indices in the batch's flat order (rows of labels)


@dataclass
class PackedInputs:
    """The LM calls of a packed batch: S shared rows, then the block rows on their cache."""

    shared: torch.Tensor  # [S, Ls, D] prefix + history per sequence, right-padded
    shared_mask: torch.Tensor  # [S, Ls] 1 = real token
    groups: list[BlockRows]


def _rows(blocks, seen, seq_of, answer_at, order, ls: int, la: int, dev) -> BlockRows:
    lb = max(x.shape[0] for x in blocks)
    lengths = torch.tensor([x.shape[0] for x in blocks], device=dev)
    rows, cols = torch.arange(lb, device=dev), torch.arange(ls, device=dev)
    real = rows[None, :] < lengths[:, None]  # [R, Lb]
    own = (rows[None, None, :] <= rows[None, :, None]) & real[:, None, :]  # causal within the real block
    visible = (cols[None, :] < torch.tensor(seen, device=dev)[:, None])[:, None, :].expand(-1, lb, -1)
    mask = torch.cat([visible, own], dim=-1)
    mask[..., 0] |= ~real  # padding rows see one token (an all-masked row would give NaN)
    return BlockRows(
        embeds=torch.stack([F.pad(x, (0, 0, 0, lb - x.shape[0])) for x in blocks]),
        mask=mask[:, None],
        positions=torch.tensor(seen, device=dev)[:, None] + rows[None, :],  # right after what the block sees
        sequence=torch.tensor(seq_of, device=dev),
        answer_index=torch.tensor(answer_at, device=dev)[:, None] + torch.arange(la, device=dev)[None, :],
        order=torch.tensor(order, device=dev),
    )


def assemble_packed(
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
) -> PackedInputs:
    """Sequence i holds the features of frames 0..num_frames[i]-1 and supervises its ``num_blocks[i]`` frames
    ``block_frames`` (ascending), whose answers are the rows of ``labels``."""
    from vidnav.model.processing_vidnav import ACT, OBS

    dev = model.markers.device
    memory = model.memory
    markers = model.markers
    embed = model._base_lm().get_input_embeddings()
    q_hidden = model.encode_queries(query_ids, query_mask)
    black = model._black_features() if model.config.memory == "navila" else None
    feats = visual_features.to(dev).split(num_frames.tolist())
    frames = block_frames.split(num_blocks.tolist())
    answers = embed(labels.to(dev).clamp(min=0)).to(markers.dtype).split(num_blocks.tolist())
    shared = []
    kinds: dict[bool, tuple[list, ...]] = {False: ([], [], [], [], []), True: ([], [], [], [], [])}
    flat = 0
    for i in range(len(feats)):
        qh = q_hidden[i] if q_hidden is not None else None
        qm = query_mask[i].to(dev) if q_hidden is not None else None
        enc = model.frame_encoder(qh, qm)
        prefix = model.prefix_embeds(input_ids[i][attention_mask[i].bool()], qh, query_mask[i])
        ts = frames[i].tolist()
        n_hist = max((t for t in ts if t <= memory.shared_history_frames), default=0)
        hist = memory.history_blocks(enc, feats[i][:n_hist])  # [n_hist, r, D]
        current = memory.current_blocks(enc, feats[i][ts])  # [nb, c, D]
        shared.append(torch.cat([prefix, hist.flatten(0, 1).to(markers.dtype)]))
        for b, t in enumerate(ts):
            is_private = t > memory.shared_history_frames
            if is_private:
                private, seen = memory.build(enc, feats[i][: t + 1], black).history, prefix.shape[0]
            else:
                private, seen = current[b][:0], prefix.shape[0] + t * hist.shape[1]
            rows = kinds[is_private]
            rows[0].append(
                torch.cat(
                    [
                        private.to(markers.dtype),
                        markers[OBS : OBS + 1],
                        current[b].to(markers.dtype),
                        markers[ACT : ACT + 1],
                        answers[i][b],
                    ]
                )
            )
            rows[1].append(seen)
            rows[2].append(i)
            rows[3].append(private.shape[0] + 1 + current.shape[1])  # <act> predicts the first answer token
            rows[4].append(flat)
            flat += 1
    ls = max(x.shape[0] for x in shared)
    return PackedInputs(
        shared=torch.stack([F.pad(x, (0, 0, 0, ls - x.shape[0])) for x in shared]),
        shared_mask=torch.stack([torch.arange(ls, device=dev) < x.shape[0] for x in shared]).long(),
        groups=[_rows(*rows, ls=ls, la=labels.shape[1], dev=dev) for rows in kinds.values() if rows[0]],
    )


def packed_loss(model, inputs: PackedInputs, labels, block_weights):
    """Weighted mean cross-entropy of the answer tokens (each block's tokens count ``block_weights`` times) and
    the answer logits [ΣB, La, V]."""
    from transformers import DynamicCache

    base = model._base_lm()
    s, ls = inputs.shared.shape[:2]
    out = base.model(
        inputs_embeds=inputs.shared,
        attention_mask=inputs.shared_mask,
        position_ids=torch.arange(ls, device=inputs.shared.device)[None].expand(s, -1),
        use_cache=True,
    )
    picked = []
    for g in inputs.groups:
        cache = DynamicCache(
            ddp_cache_data=[(layer.keys[g.sequence], layer.values[g.sequence]) for layer in out.cache.layers]
        )
        hidden = base.model(
            inputs_embeds=g.embeds, attention_mask=g.mask, position_ids=g.positions, cache=cache, use_cache=True
        ).last_hidden_state
        picked.append(hidden.gather(1, g.answer_index[..., None].expand(-1, -1, hidden.shape[-1])))  # [R, La, D]
    order = torch.cat([g.order for g in inputs.groups])
    hidden = torch.cat(picked)[torch.argsort(order)]  # back to the batch's flat order
    logits = base.get_output_embeddings()(hidden)
    labels = labels.to(logits.device)
    ce = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100, reduction="none")
    weight = (labels != -100).float() * block_weights.to(logits.device, torch.float32)[:, None]
    return (ce.view_as(weight) * weight).sum() / weight.sum().clamp(min=1e-12), logits
