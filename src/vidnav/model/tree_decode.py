"""k action words from one LM call: every continuation the greedy decoder could take, scored in one batched pass.

Greedy constrained decoding (:func:`vidnav.model.actions.decode_actions`) runs one LM call per decoded token
after the context: k−1 sequential calls for k single-token words, each a tiny launch-bound step on a GPU.
When every action word is one token, the words the decoder can have written before word d are any of the
V^(d−1) sequences, so all of them (Σ_{d=1}^{k−1} V^d nodes: 84 for V = k = 4) fit one call as a token tree:
each node attends to the context (the KV cache) and to its ancestors, at position last + depth, exactly what
it would see in the sequential decoder. The greedy walk then reads the node hidden states it needs: the same
words, from one LM call instead of k−1.

It falls back to the sequential decoder when a word is several tokens or the tree would exceed ``max_nodes``.
"""

from __future__ import annotations

from collections.abc import Collection

import torch
from torch.nn import functional as F

from vidnav.errors import VidNavError

MAX_NODES = 1024


def tree_size(num_words: int, k: int) -> int:
    return sum(num_words**d for d in range(1, k))


def usable(codec, k: int, max_nodes: int = MAX_NODES) -> bool:
    """Whether the tree applies: single-token action words, k >= 2, at most ``max_nodes`` nodes."""
    return codec.single_token and k >= 2 and tree_size(len(codec.words), k) <= max_nodes


def _tree(v: int, k: int, dev):
    """Nodes in breadth-first order (depth d holds V^d nodes; node (d, i) has parent (d-1, i // V) and word
    i % V): (word [n], depth [n], ancestor-or-self mask [n, n], first node of each depth)."""
    n = tree_size(v, k)
    word = torch.cat([torch.arange(v**d, device=dev) % v for d in range(1, k)])
    depth = torch.cat([torch.full((v**d,), d, device=dev) for d in range(1, k)])
    start = [0]
    for d in range(1, k):
        start.append(start[-1] + v**d)  # start[d-1] = first node of depth d
    parent = torch.cat(
        [torch.full((v,), -1, device=dev)] + [start[d - 2] + torch.arange(v**d, device=dev) // v for d in range(2, k)]
    )
    seen = torch.eye(n, dtype=torch.bool, device=dev)
    node = torch.arange(n, device=dev)
    anc = parent.clone()
    while bool((anc >= 0).any()):
        ok = anc >= 0
        seen[node[ok], anc[ok]] = True
        anc = torch.where(ok, parent[anc.clamp(min=0)], anc)
    return word, depth, seen, start


def _first_tokens(codec, dev) -> torch.Tensor:
    return torch.tensor([codec.seqs[w][0] for w in codec.words], device=dev)


def _walk(lm, codec, k, last_hidden, hidden, start, ban_first):
    """The greedy walk over the scored tree: (words per row, logits read [B, k, V])."""
    dev = last_hidden.device
    b, v = last_hidden.shape[0], len(codec.words)
    first = _first_tokens(codec, dev)
    head = lm.get_output_embeddings()
    w = head.weight[first]
    bias = head.bias[first] if getattr(head, "bias", None) is not None else None
    banned = torch.zeros(v, dtype=torch.bool, device=dev)
    if ban_first is not None:
        words_banned = {ban_first} if isinstance(ban_first, str) else set(ban_first)
        if words_banned >= set(codec.words):
            raise VidNavError(f"ban_first={sorted(words_banned)} bans every action word; leave at least one")
        for x in words_banned:
            codec.first_token_column(x)  # unknown words raise as in the sequential decoder
            banned[codec.words.index(x)] = True
    h = last_hidden
    at = torch.full((b,), -1, dtype=torch.long, device=dev)  # the node whose word was just written (-1: root)
    out = [[] for _ in range(b)]
    read = []
    for d in range(k):
        logits = F.linear(h.to(w.dtype), w, bias).float()
        read.append(logits)
        if d == 0:
            logits = logits.masked_fill(banned[None], float("-inf"))
        choice = logits.argmax(dim=-1)
        for i, c in enumerate(choice.tolist()):
            out[i].append(codec.words[c])
        if d == k - 1:
            break
        at = choice if d == 0 else start[d] + (at - start[d - 1]) * v + choice
        h = hidden[torch.arange(b, device=dev), at]
    return out, torch.stack(read, dim=1)


@torch.no_grad()
def tree_decode_actions(
    lm,
    codec,
    k: int,
    last_hidden,
    cache,
    mask,
    last_pos,
    ban_first: str | Collection[str] | None = None,
    max_nodes: int = MAX_NODES,
    return_logits: bool = False,
):
    """What :func:`vidnav.model.actions.decode_actions` returns, with one LM call (arguments alike).

    ``return_logits``: also the logits the walk read, [B, k, V] over ``codec.words`` (None on the fallback)."""
    from vidnav.model.actions import decode_actions

    if not usable(codec, k, max_nodes):
        words = decode_actions(lm, codec, k, last_hidden, cache, mask, last_pos, ban_first)
        return (words, None) if return_logits else words
    dev = last_hidden.device
    b = last_hidden.shape[0]
    word, depth, seen, start = _tree(len(codec.words), k, dev)
    n = word.shape[0]
    cached = cache.get_seq_length()
    past = torch.ones(b, cached, dtype=torch.bool, device=dev) if mask is None else mask.to(dev).bool()
    if past.shape[1] != cached:
        raise VidNavError(f"attention mask covers {past.shape[1]} tokens, the cache holds {cached}")
    full = torch.cat([past[:, None, :].expand(-1, n, -1), seen[None].expand(b, -1, -1)], dim=-1)[:, None]
    embeds = lm.get_input_embeddings()(_first_tokens(codec, dev)[word])[None].expand(b, -1, -1)
    positions = last_pos.to(dev)[:, None] + depth[None, :]
    hidden = lm.model(
        inputs_embeds=embeds, attention_mask=full, position_ids=positions, cache=cache, use_cache=True
    ).last_hidden_state  # [B, n, D]
    words, logits = _walk(lm, codec, k, last_hidden, hidden, start, ban_first)
    return (words, logits) if return_logits else words


@torch.no_grad()
def suffix_and_tree(
    lm,
    codec,
    k: int,
    suffix,
    cache,
    first_pos: int,
    ban_first: str | Collection[str] | None = None,
    return_logits: bool = False,
):
    """The not-yet-cached tokens of one sequence (``suffix`` [1, L, D], positions from ``first_pos``, attending to
    the whole cache and causally to themselves) and the action tree after them, in ONE LM call; then the walk.

    The tree nodes see the cache, the whole suffix and their ancestors, at position last + depth: what
    :func:`tree_decode_actions` gives after a separate call for the suffix. Needs :func:`usable`."""
    dev = suffix.device
    ls = suffix.shape[1]
    word, depth, seen, start = _tree(len(codec.words), k, dev)
    n = word.shape[0]
    cached = cache.get_seq_length()
    mask = torch.zeros(ls + n, cached + ls + n, dtype=torch.bool, device=dev)
    mask[:, :cached] = True
    mask[:ls, cached : cached + ls] = torch.ones(ls, ls, dtype=torch.bool, device=dev).tril()
    mask[ls:, cached : cached + ls] = True
    mask[ls:, cached + ls :] = seen
    tree = lm.get_input_embeddings()(_first_tokens(codec, dev)[word])[None].to(suffix.dtype)
    positions = torch.cat([first_pos + torch.arange(ls, device=dev), first_pos + ls - 1 + depth])[None]
    hidden = lm.model(
        inputs_embeds=torch.cat([suffix, tree], dim=1),
        attention_mask=mask[None, None],
        position_ids=positions,
        cache=cache,
        use_cache=True,
    ).last_hidden_state
    words, logits = _walk(lm, codec, k, hidden[:, ls - 1], hidden[:, ls:], start, ban_first)
    return (words, logits) if return_logits else words
