"""Free-text answers (embodied questions): label encoding and greedy decoding over the whole vocabulary.

A question goes between the current frame's tokens and ``<act>``; its answer is the LM's own words followed by
an end token (the tokenizer's [SEP] / EOS), so the same model that writes actions writes "kitchen" or "left".
"""

from __future__ import annotations

import torch

from vidnav.errors import VidNavError

MAX_ANSWER_TOKENS = 12


def end_token_id(tokenizer) -> int:
    """The token that ends an answer: [SEP] for WordPiece tokenizers, else EOS."""
    for tid in (tokenizer.sep_token_id, tokenizer.eos_token_id):
        if tid is not None:
            return int(tid)
    raise VidNavError("the LM tokenizer has neither a [SEP] nor an EOS token to end answers with")


def check_question(text, what: str = "question") -> str:
    if not isinstance(text, str) or not text.strip():
        raise VidNavError(f"{what} must be a non-empty string, got {text!r}")
    if len(text) > 1000:
        raise VidNavError(f"{what} is {len(text)} characters long; ask in at most 1,000")
    return text.strip()


def answer_ids(tokenizer, answer: str) -> list[int]:
    """Label ids of one answer: its tokens, then the end token."""
    ids = tokenizer(check_question(answer, "answer"), add_special_tokens=False)["input_ids"]
    return list(ids[: MAX_ANSWER_TOKENS - 1]) + [end_token_id(tokenizer)]


def question_ids(tokenizer, questions: list[str | None]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded LM token ids [B, Lq] and mask of the questions (a None question: an all-zero mask row)."""
    rows = [
        tokenizer(check_question(q, f"questions[{i}]"), add_special_tokens=False)["input_ids"][:64]
        if q is not None
        else []
        for i, q in enumerate(questions)
    ]
    width = max(1, max(len(r) for r in rows))
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    return ids, mask


@torch.no_grad()
def greedy_answer(model, last_hidden, cache, mask, last_pos, max_tokens: int = MAX_ANSWER_TOKENS) -> list[str]:
    """Greedy decoding over the whole vocabulary from a filled KV cache until the end token (deterministic)."""
    base = model._base_lm()
    head = base.get_output_embeddings()
    end = end_token_id(model.tokenizer)
    b = last_hidden.shape[0]
    out: list[list[int]] = [[] for _ in range(b)]
    done = [False] * b
    h = last_hidden
    for _ in range(max_tokens):
        tok = head(h).float().argmax(dim=-1)
        for i, t in enumerate(tok.tolist()):
            if not done[i]:
                if t == end:
                    done[i] = True
                else:
                    out[i].append(t)
        if all(done):
            break
        if mask is not None:
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        last_pos = last_pos + 1
        res = base.model(
            inputs_embeds=base.get_input_embeddings()(tok)[:, None],
            attention_mask=mask,
            position_ids=last_pos[:, None],
            cache=cache,
            use_cache=True,
        )
        h = res.last_hidden_state[:, -1]
        cache = res.cache
    return [model.tokenizer.decode(ids, skip_special_tokens=True).strip() for ids in out]
