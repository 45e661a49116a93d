"""VidNavProcessor: input checking and batch assembly, the processor half of the model (as transformers splits them).

It turns instructions, frame features and target actions into the tensors ``model(**batch)`` / ``model.plan(batch)``
read: the LM's and the text encoder's tokens of the instruction, the features of each sample's frames in one
tensor, and the answer labels. It needs only the config and the shape of the vision tower's features, so a data
pipeline can collate without the model; ``model.prepare_batch`` and ``model.prepare_packed_batch`` call it.
:func:`as_frames` checks RGB frames before the tower sees them.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch

from vidnav.errors import VidNavError
from vidnav.model.actions import ACTIONS, ActionCodec, canonical_actions
from vidnav.model.answers import answer_ids
from vidnav.model.answers import question_ids as encode_questions
from vidnav.model.lm import load_tokenizer, tokenizer_path

MARKERS = ("<nav>", "<hist>", "<obs>", "<act>")  # the model's learned marker embeddings, in their rows' order
NAV, HIST, OBS, ACT = range(4)

PROMPT = (
    "navigate a house by video. follow the request, watch the history and the current view, "
    "then answer the next {k} actions, each forward, left, right or stop."
)


def as_frames(frames: Any, what: str = "frames") -> torch.Tensor:
    """Validate RGB frames and return uint8 [T, H, W, 3] (a single [H, W, 3] frame becomes T=1)."""
    if isinstance(frames, np.ndarray):
        if frames.dtype.kind == "f" and np.isnan(frames).any():
            raise VidNavError(f"{what} contain NaN; pass uint8 RGB frames (0..255)")
        if frames.dtype != np.uint8:
            raise VidNavError(
                f"{what} must be uint8 RGB (0..255), got dtype {frames.dtype}; "
                "convert with np.clip(x * 255, 0, 255).astype(np.uint8) if they are floats in 0..1"
            )
        frames = torch.from_numpy(np.ascontiguousarray(frames))
    elif isinstance(frames, torch.Tensor):
        if frames.is_floating_point() and torch.isnan(frames).any():
            raise VidNavError(f"{what} contain NaN; pass uint8 RGB frames (0..255)")
        if frames.dtype != torch.uint8:
            raise VidNavError(f"{what} must be uint8 RGB (0..255), got dtype {frames.dtype}")
    else:
        raise VidNavError(f"{what} must be a numpy array or torch tensor of uint8 RGB, got {type(frames).__name__}")
    if frames.dim() == 3:
        frames = frames[None]
    if frames.dim() != 4 or frames.shape[-1] != 3:
        raise VidNavError(
            f"{what} must have shape [T, H, W, 3] or [H, W, 3] (RGB, channels last), got {tuple(frames.shape)}"
        )
    if frames.shape[0] == 0 or frames.shape[1] < 8 or frames.shape[2] < 8:
        raise VidNavError(f"{what} must hold at least one frame of at least 8x8 pixels, got {tuple(frames.shape)}")
    return frames


def check_instruction(text: Any, what: str = "instruction") -> str:
    if not isinstance(text, str):
        raise VidNavError(f"{what} must be a string, got {type(text).__name__}")
    if not text.strip():
        raise VidNavError(f"{what} is empty; give the navigation instruction text")
    return text


class VidNavProcessor:
    """The tokenizers and the action codec of a config, and the batch collation that uses them.

    ``feature_shape`` is (N, C), the shape of one frame's tower features (``model.encode_frames``). Tokenizers
    load on first use.
    """

    def __init__(self, config, feature_shape: tuple[int, int]):
        self.config = config
        self.feature_shape = (int(feature_shape[0]), int(feature_shape[1]))
        self._tokenizer = None
        self._query_tokenizer = None
        self._codec = None

    @property
    def tokenizer(self):
        """The LM's tokenizer."""
        if self._tokenizer is None:
            cfg = self.config
            self._tokenizer = load_tokenizer(tokenizer_path(cfg.lm_tokenizer, cfg.lm_path))
        return self._tokenizer

    @property
    def query_tokenizer(self):
        """The text encoder's tokenizer (MiniLM's WordPiece by default)."""
        if self._query_tokenizer is None:
            cfg = self.config
            path = cfg.text_path if cfg.text_encoder == "bert" and cfg.text_path else None
            self._query_tokenizer = load_tokenizer(tokenizer_path(path))
        return self._query_tokenizer

    @property
    def codec(self) -> ActionCodec:
        """The action words' token sequences in the LM's tokenizer (targets and constrained decoding)."""
        if self._codec is None:
            self._codec = ActionCodec(self.tokenizer, ACTIONS)
        return self._codec

    def prompt_ids(self) -> list[int]:
        """The LM tokens of the prompt that starts every sequence (BOS first, if the tokenizer has one)."""
        tok = self.tokenizer
        ids = tok.encode(PROMPT.format(k=self.config.num_actions), add_special_tokens=False)
        return ([tok.bos_token_id] if tok.bos_token_id is not None else []) + ids

    def __call__(self, *args, **kwargs) -> dict[str, torch.Tensor]:
        return self.prepare_batch(*args, **kwargs)

    def prepare_batch(
        self,
        instructions: list[str],
        features: list[torch.Tensor],
        targets: list[list[str]] | None = None,
        questions: list[str | None] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Collate samples into the inputs of ``model(**batch)`` / ``model.plan(batch)``.

        ``features[i]`` holds the tower features [T_i, N, C] of frames 0..t of sample i (the last row is the
        current frame); ``targets[i]`` the next actions (at most k words; shorter lists are padded with
        ``stop``, words after the first ``stop`` become ``stop``). Returns CPU tensors:
        input_ids / attention_mask (instruction in the LM's tokens), query_ids / query_mask (instruction
        in the text encoder's tokens), visual_features [ΣT, N, C], num_frames [B] and, with targets,
        labels [B, answer tokens] (-100 = padding). ``questions[i]`` (optional, None for a navigation sample)
        makes sample i an embodied question: its text goes after the current frame's tokens
        (question_ids / question_mask) and ``targets[i]`` is then the answer text.
        """
        if isinstance(instructions, str):
            raise VidNavError("instructions must be a list of strings (one per sample), got a single string")
        if len(instructions) != len(features) or not instructions:
            raise VidNavError(
                f"need one feature tensor per instruction and at least one sample, "
                f"got {len(instructions)} instructions and {len(features)} feature tensors"
            )
        for i, text in enumerate(instructions):
            check_instruction(text, f"instructions[{i}]")
        n, c = self.feature_shape
        feats = []
        for i, f in enumerate(features):
            f = torch.as_tensor(f)
            if f.dim() != 3 or f.shape[0] < 1 or tuple(f.shape[1:]) != (n, c):
                raise VidNavError(
                    f"features[{i}] must have shape [T>=1, {n}, {c}] (from model.encode_frames), got {tuple(f.shape)}"
                )
            if not f.is_floating_point() or not torch.isfinite(f).all():
                raise VidNavError(f"features[{i}] must be finite floats (NaN/inf or integer dtype found)")
            feats.append(f)
        cfg = self.config
        enc = self.tokenizer(
            list(instructions),
            add_special_tokens=False,
            truncation=True,
            max_length=cfg.max_instruction_tokens,
            padding=True,
            return_tensors="pt",
        )
        qenc = self.query_tokenizer(
            list(instructions),
            truncation=True,
            max_length=cfg.max_instruction_tokens,
            padding=True,
            return_tensors="pt",
        )
        dtype = functools.reduce(torch.promote_types, (f.dtype for f in feats))
        batch = {
            "input_ids": enc["input_ids"],
            "attention_mask": enc["attention_mask"],
            "query_ids": qenc["input_ids"],
            "query_mask": qenc["attention_mask"],
            "visual_features": torch.cat([f.to(dtype) for f in feats], dim=0),
            "num_frames": torch.tensor([f.shape[0] for f in feats], dtype=torch.long),
        }
        if questions is not None:
            if len(questions) != len(instructions):
                raise VidNavError(
                    f"need one question (or None) per sample: {len(instructions)} samples, {len(questions)} questions"
                )
            if any(q is not None for q in questions):
                batch["question_ids"], batch["question_mask"] = encode_questions(self.tokenizer, list(questions))
        if targets is not None:
            batch["labels"] = self.labels(targets, len(instructions), questions)
        return batch

    def prepare_packed_batch(
        self,
        instructions: list[str],
        features: list[torch.Tensor],
        frames: list[list[int]],
        targets: list[list[list[str]]],
        weights: list[list[float]] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Collate packed sequences (:mod:`vidnav.model.packing`): sequence i holds the features [T_i, N, C] of
        frames 0..T_i-1 and supervises the frames ``frames[i]`` (ascending, each < T_i) with ``targets[i][b]``,
        the next actions at ``frames[i][b]``, each counted ``weights[i][b]`` times in the loss (default 1).

        Returns :meth:`prepare_batch`'s inputs plus block_frames [ΣB], num_blocks [S], block_weights [ΣB] and
        labels [ΣB, answer tokens].
        """
        batch = self.prepare_batch(instructions, features)
        if len(frames) != len(features) or len(targets) != len(features):
            raise VidNavError(
                f"need frames and targets for each of the {len(features)} sequences, got "
                f"{len(frames)} frame lists and {len(targets)} target lists"
            )
        weights = [[1.0] * len(f) for f in frames] if weights is None else weights
        flat_t, flat_targets, flat_w = [], [], []
        for i, (ts, tg, ws) in enumerate(zip(frames, targets, weights)):
            n = int(batch["num_frames"][i])
            ts = [int(t) for t in ts]
            if not ts or any(b <= a for a, b in zip(ts, ts[1:])) or ts[0] < 0 or ts[-1] >= n:
                raise VidNavError(
                    f"frames[{i}] = {ts}: need ascending frame indices in 0..{n - 1} (the sequence holds {n} frames)"
                )
            if len(tg) != len(ts) or len(ws) != len(ts):
                raise VidNavError(
                    f"sequence {i} supervises {len(ts)} frames but has {len(tg)} targets and "
                    f"{len(ws)} weights; give one of each per frame"
                )
            if any(not float(w) > 0 for w in ws):
                raise VidNavError(f"weights[{i}] = {list(ws)}: every weight must be > 0")
            flat_t += ts
            flat_targets += list(tg)
            flat_w += [float(w) for w in ws]
        batch["labels"] = self.labels(flat_targets, len(flat_targets))
        batch["block_frames"] = torch.tensor(flat_t, dtype=torch.long)
        batch["num_blocks"] = torch.tensor([len(ts) for ts in frames], dtype=torch.long)
        batch["block_weights"] = torch.tensor(flat_w, dtype=torch.float32)
        return batch

    def labels(self, targets, batch_size: int, questions: list[str | None] | None = None) -> torch.Tensor:
        """Answer token ids [B, La] (-100 = padding): k action words per navigation sample, the answer text (and
        its end token) per question."""
        if len(targets) != batch_size:
            raise VidNavError(f"need one target list per sample: {batch_size} samples, {len(targets)} targets")
        k = self.config.num_actions
        rows = []
        for i, t in enumerate(targets):
            if questions is not None and questions[i] is not None:
                rows.append(answer_ids(self.tokenizer, t))
                continue
            if isinstance(t, str):
                t = t.split()
            words = [str(w).strip().lower() for w in t]
            if not words or any(w not in ACTIONS for w in words):
                raise VidNavError(f"targets[{i}] = {list(t)!r}: need action words from {', '.join(ACTIONS)}")
            # the first k of the expert's next actions (rollouts collected with more words train a model of fewer;
            # `vidnav train` refuses rollouts of fewer words, NavSamples.check_num_actions); short lists end in stop
            rows.append(self.codec.encode(canonical_actions(words[:k], k)))
        width = max(len(r) for r in rows)
        return torch.tensor([r + [-100] * (width - len(r)) for r in rows], dtype=torch.long)
