"""Action words: the model's answer vocabulary, the text parser, the constrained-decoding trie and the decoder.

The model answers with exactly ``k`` words from :data:`vidnav.actions.ACTIONS`. An executor runs them in order
and stops at the first ``stop`` (anything after it is ignored). Each word maps to one simulator action:
``forward`` = 0.25 m, ``left``/``right`` = 15° turns, ``stop`` = end of episode.

:func:`parse_actions` also reads NaVid / NaVILA style answers ("move forward 75 cm", "turn left 30
degrees") by converting distances and angles into that many unit steps. It never raises.

Fallback (documented contract): text with no recognisable action gives ``["stop"] * k``. Stopping is the
safe default for a robot that received garbage; partially recognised text keeps what was recognised and is
padded with ``stop`` up to ``k``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable, Sequence

import torch
from torch.nn import functional as F

from vidnav.actions import ACTIONS  # noqa: F401 (the one definition of the words; re-exported for the model)
from vidnav.errors import VidNavError

FORWARD_STEP_CM = 25.0
TURN_STEP_DEG = 15.0
FALLBACK_ACTION = "stop"

_SYNONYMS = {
    "forward": "forward",
    "forwards": "forward",
    "ahead": "forward",
    "straight": "forward",
    "left": "left",
    "right": "right",
    "stop": "stop",
    "halt": "stop",
}
# a number with an optional unit, or a word
_TOKEN = re.compile(
    r"(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>centimet(?:er|re)s?|cm|met(?:er|re)s?|m\b|degrees?|degs?\b|°|steps?\b)?"
    r"|(?P<word>[a-z]+)"
)


def canonical_actions(actions: Sequence[str], k: int | None = None) -> list[str]:
    """Everything after the first ``stop`` becomes ``stop`` (what an executor does); optionally fit to ``k`` words."""
    out: list[str] = []
    stopped = False
    for a in actions:
        stopped = stopped or a == "stop"
        out.append("stop" if stopped else a)
    if k is not None:
        out = (out + ["stop"] * k)[:k]
    return out


def _repeats(action: str, value: float, unit: str | None, k: int) -> int:
    """How many unit steps a 'forward 75 cm' / 'left 30 degrees' / 'forward 2 steps' phrase stands for."""
    if unit and unit.startswith("step"):
        steps = value
    elif action == "forward":
        cm = value * 100.0 if unit and unit.startswith("m") and not unit.startswith("cm") else value
        steps = cm / FORWARD_STEP_CM
    elif action in ("left", "right"):
        steps = value / TURN_STEP_DEG
    else:  # "stop 5" means stop
        return 1
    if not math.isfinite(steps) or steps >= k:
        return k
    return max(1, int(round(steps)))


def parse_actions(text: object, k: int = 4) -> list[str]:
    """Read ``k`` action words out of model text; never raises (see the module doc for the fallback).

    >>> parse_actions("forward left left stop")
    ['forward', 'left', 'left', 'stop']
    >>> parse_actions("The next action is move forward 75 cm.")
    ['forward', 'forward', 'forward', 'stop']
    >>> parse_actions("turn left 30 degrees")
    ['left', 'left', 'stop', 'stop']
    >>> parse_actions("no idea")
    ['stop', 'stop', 'stop', 'stop']
    """
    try:
        k = max(1, int(k))
        s = text if isinstance(text, str) else ("" if text is None else str(text))
        s = s.lower()
        found: list[list] = []  # [action, repeats]; a number right after an action word sets its repeats
        last_was_action = False
        for m in _TOKEN.finditer(s):
            if m.group("word") is not None:
                action = _SYNONYMS.get(m.group("word"))
                if action is not None:
                    found.append([action, 1])
                    last_was_action = True
                elif m.group("word") not in ("move", "turn", "go", "by", "about", "for", "and", "then"):
                    last_was_action = False
            else:
                if last_was_action and found:
                    try:
                        value = float(m.group("num"))
                    except (OverflowError, ValueError):
                        value = float("inf")
                    found[-1][1] = _repeats(found[-1][0], value, m.group("unit"), k)
                last_was_action = False
            if sum(n for _, n in found) >= k:
                break
        words = [a for a, n in found for _ in range(n)]
        if not words:
            return [FALLBACK_ACTION] * k
        return canonical_actions(words, k)
    except Exception:  # the contract is "never raises"; a parser bug must not crash a robot
        return [FALLBACK_ACTION] * max(1, int(k) if isinstance(k, int) else 4)


class ActionCodec:
    """Token sequences of the action words for one tokenizer, and a trie for constrained decoding.

    Each word is encoded as ``tokenizer.encode(" " + word)`` (the leading space gives the in-sentence form
    for BPE tokenizers and is dropped by WordPiece). Answers are the concatenation of those sequences, so
    training targets and decoding agree token for token. The sequences must be prefix-free.
    """

    def __init__(self, tokenizer, words: Iterable[str] = ACTIONS):
        self.words = tuple(words)
        self.seqs = {w: tuple(tokenizer.encode(" " + w, add_special_tokens=False)) for w in self.words}
        for w, seq in self.seqs.items():
            if not seq:
                raise ValueError(f"the tokenizer encodes the action word {w!r} as nothing")
        for a in self.words:
            for b in self.words:
                if a != b and self.seqs[b][: len(self.seqs[a])] == self.seqs[a]:
                    raise ValueError(f"action words {a!r} and {b!r} are not prefix-free for this tokenizer")
        # union of the tokens any word uses; decoding scores only these columns of the LM head
        self.token_ids = sorted({t for s in self.seqs.values() for t in s})
        col = {t: i for i, t in enumerate(self.token_ids)}
        # trie as tables: node 0 is the root; next_node[node, col] = child (or -1); word_at[node] = word index or -1
        children: list[dict[int, int]] = [{}]
        word_at = [-1]
        for wi, w in enumerate(self.words):
            node = 0
            for t in self.seqs[w]:
                if t not in children[node]:
                    children.append({})
                    word_at.append(-1)
                    children[node][t] = len(children) - 1
                node = children[node][t]
            word_at[node] = wi
        n = len(children)
        self.next_node = torch.full((n, len(self.token_ids)), -1, dtype=torch.long)
        for node, ch in enumerate(children):
            for t, child in ch.items():
                self.next_node[node, col[t]] = child
        self.word_at = torch.tensor(word_at, dtype=torch.long)
        self.single_token = all(len(s) == 1 for s in self.seqs.values())

    def first_token_column(self, word: str) -> int:
        """Column (in ``token_ids``) of ``word``'s first token; masking it at the root bans exactly that word."""
        if word not in self.seqs:
            raise ValueError(f"unknown action word {word!r}; use one of {', '.join(self.words)}")
        first = self.seqs[word][0]
        shared = [w for w in self.words if w != word and self.seqs[w][0] == first]
        if shared:
            raise ValueError(f"{word!r} shares its first token with {shared}: it cannot be banned alone")
        return self.token_ids.index(first)

    def encode(self, actions: Sequence[str]) -> list[int]:
        return [t for a in actions for t in self.seqs[a]]

    @property
    def max_answer_tokens_per_word(self) -> int:
        return max(len(s) for s in self.seqs.values())


@torch.no_grad()
def decode_actions(
    lm, codec: ActionCodec, k: int, last_hidden, cache, mask, last_pos, ban_first: str | Collection[str] | None = None
) -> list[list[str]]:
    """Greedy decoding of ``k`` action words per row, continuing from a filled KV cache of the causal LM ``lm``
    (the base model, LoRA layers in place): at each step only tokens that go on spelling an action word may be
    chosen (the argmax over ``codec``'s columns of the LM head, masked by its trie).

    ``last_hidden`` [B, D] is the LM's last hidden state of each row, ``mask`` the attention mask so far (None: no
    padding, causal attention suffices), ``last_pos`` [B] the position of each row's last token. ``ban_first``: an
    action word, or several, the first planned action may not be (the best other word is taken); at least one word
    must stay allowed.
    """
    dev = last_hidden.device
    head = lm.get_output_embeddings()
    ids = torch.tensor(codec.token_ids, device=dev)
    w = head.weight[ids]
    bias = head.bias[ids] if getattr(head, "bias", None) is not None else None
    next_node, word_at = codec.next_node.to(dev), codec.word_at.to(dev)
    b = last_hidden.shape[0]
    node = torch.zeros(b, dtype=torch.long, device=dev)
    words: list[list[str]] = [[] for _ in range(b)]
    banned = None
    if ban_first is not None:
        words_banned = {ban_first} if isinstance(ban_first, str) else set(ban_first)
        if words_banned >= set(codec.words):
            raise VidNavError(f"ban_first={sorted(words_banned)} bans every action word; leave at least one")
        banned = [codec.first_token_column(x) for x in sorted(words_banned)]
    h = last_hidden
    for step in range(k * codec.max_answer_tokens_per_word):
        logits = F.linear(h.to(w.dtype), w, bias).float()
        allowed = next_node[node] >= 0
        if banned is not None:
            first = torch.tensor([not x for x in words], device=dev) & (node == 0)
            allowed[:, banned] &= ~first[:, None]
        choice = logits.masked_fill(~allowed, float("-inf")).argmax(dim=-1)
        node = next_node[node, choice]
        finished = word_at[node]
        for i in torch.nonzero(finished >= 0).flatten().tolist():
            if len(words[i]) < k:
                words[i].append(codec.words[finished[i]])
        node = torch.where(finished >= 0, torch.zeros_like(node), node)
        if all(len(x) >= k for x in words):
            break
        tok = ids[choice]
        if mask is not None:
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        last_pos = last_pos + 1
        out = lm.model(
            inputs_embeds=lm.get_input_embeddings()(tok)[:, None],
            attention_mask=mask,
            position_ids=last_pos[:, None],
            cache=cache,
            use_cache=True,
        )
        h = out.last_hidden_state[:, -1]
        cache = out.cache
    return words
