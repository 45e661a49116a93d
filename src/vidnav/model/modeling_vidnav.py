"""VidNavForCausalLM: a video-language model that reads an instruction and a frame stream and writes actions.

Per frame a frozen vision tower gives a feature grid X [N, C]; a memory strategy turns the frames seen so
far into visual tokens (pooled content tokens through a projector, optional LLaMA-VID context tokens); a
causal LM reads

    [prompt] <nav> instruction <hist> history-tokens <obs> current-tokens <act>  →  k action words
    [prompt] <nav> instruction <hist> history-tokens <obs> current-tokens question <act>  →  answer [SEP]

where <nav>, <hist>, <obs>, <act> are learned marker embeddings. Visual tokens are scattered into
``inputs_embeds`` (as in llava_next_video); the loss covers the answer tokens only, and decoding is
constrained to action words (greedy, deterministic).

Training never needs pixels: :meth:`encode_frames` is the only place the tower runs, and everything after
it (:meth:`prepare_batch`, :meth:`forward`, :meth:`plan`) takes the [T, N, C] features, so a training
pipeline can cache them. Checkpoints hold the config and the trainable / non-package weights only.
"""

from __future__ import annotations

import functools
import json
import os
import warnings
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from vidnav.errors import VidNavError
from vidnav.io import atomic_write_bytes, atomic_write_text
from vidnav.model.actions import ACTIONS, ActionCodec, canonical_actions
from vidnav.model.answers import answer_ids, greedy_answer
from vidnav.model.answers import question_ids as encode_questions
from vidnav.model.configuration_vidnav import VidNavConfig
from vidnav.model.frame_tokens import FrameEncoder
from vidnav.model.lm import MINILM, build_lm, build_text_model, load_tokenizer, minilm_word_embeddings, tokenizer_path
from vidnav.model.memory import MEMORY_STRATEGIES, build_memory
from vidnav.model.projector import PROJECTORS, build_projector
from vidnav.model.text_query import ContextAttention, FrozenTextEncoder
from vidnav.model.vision import build_vision_tower
from vidnav.run_options import PlanOptions, read_run_options, write_run_options

MARKERS = ("<nav>", "<hist>", "<obs>", "<act>")
NAV, HIST, OBS, ACT = range(4)
PROMPT = ("navigate a house by video. follow the request, watch the history and the current view, "
          "then answer the next {k} actions, each forward, left, right or stop.")
WEIGHTS_NAME = "model.safetensors"
ADAPTER_DIR = "adapter"


def as_frames(frames: Any, what: str = "frames") -> torch.Tensor:
    """Validate RGB frames and return uint8 [T, H, W, 3] (a single [H, W, 3] frame becomes T=1)."""
    if isinstance(frames, np.ndarray):
        if frames.dtype.kind == "f" and np.isnan(frames).any():
            raise VidNavError(f"{what} contain NaN; pass uint8 RGB frames (0..255)")
        if frames.dtype != np.uint8:
            raise VidNavError(f"{what} must be uint8 RGB (0..255), got dtype {frames.dtype}; "
                              "convert with np.clip(x * 255, 0, 255).astype(np.uint8) if they are floats in 0..1")
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
        raise VidNavError(f"{what} must have shape [T, H, W, 3] or [H, W, 3] (RGB, channels last), "
                          f"got {tuple(frames.shape)}")
    if frames.shape[0] == 0 or frames.shape[1] < 8 or frames.shape[2] < 8:
        raise VidNavError(f"{what} must hold at least one frame of at least 8x8 pixels, got {tuple(frames.shape)}")
    return frames


class VidNavPreTrainedModel(PreTrainedModel):
    config_class = VidNavConfig
    base_model_prefix = "vidnav"
    supports_gradient_checkpointing = True
    _no_split_modules = ["LlamaDecoderLayer"]
    _supports_sdpa = True


class VidNavForCausalLM(VidNavPreTrainedModel):
    # how the model is meant to be run (re-planning, loop breaking, ...): run_options.json beside config.json,
    # read by from_pretrained and written by save_pretrained, as transformers keeps generation_config.json
    run_options: PlanOptions = PlanOptions()

    def __init__(self, config: VidNavConfig, pretrained: bool = True):
        super().__init__(config)
        _validate_config(config)
        if pretrained:
            _check_local_weights(config)
        self.memory = build_memory(config)
        # HF parts load here: transformers marks loaded modules as initialised, so post_init leaves them be
        self.vision = build_vision_tower(config, pretrained=pretrained and config.vision_tower != "efficientnet-lite0")
        self.text_encoder = FrozenTextEncoder(build_text_model(config, pretrained=pretrained))
        self.lm = build_lm(config, pretrained=pretrained and config.lm != "scratch")
        d = self.lm.config.hidden_size
        c = self.vision.hidden_size
        self.projector = build_projector(config.projector, c, d)
        self.context = ContextAttention(self.text_encoder.hidden_size, c, d) if self.memory.use_context else None
        # contextual instruction states added to the LM's instruction embeddings; zero at the start, so a model
        # fine-tuned with it begins as the checkpoint it was loaded from
        self.instruction_adapter = nn.Linear(self.text_encoder.hidden_size, d) if config.instruction_states else None
        self.markers = nn.Parameter(torch.zeros(len(MARKERS), d))
        self.post_init()
        if pretrained:  # after post_init, which would re-initialise plain nn.Modules (BatchNorm statistics...)
            self._load_package_parts()
        self._set_trainable()
        self._tokenizer = None
        self._query_tokenizer = None
        self._codec = None
        self._black: dict = {}

    # -- construction ---------------------------------------------------------------------------------------
    def _init_weights(self, module):
        if module is self:
            nn.init.normal_(self.markers, std=self.config.initializer_range)
        elif module is self.instruction_adapter:
            nn.init.zeros_(module.weight)
            nn.init.zeros_(module.bias)
        else:
            super()._init_weights(module)

    def _load_package_parts(self) -> None:
        """Weights of plain-torch parts: EfficientNet-Lite0 and the MiniLM word embeddings of the tiny LM."""
        cfg = self.config
        if cfg.vision_tower == "efficientnet-lite0":
            self.vision.load_package_weights()
        if cfg.lm_embeddings == MINILM:
            emb = self.lm.get_input_embeddings()
            w = minilm_word_embeddings()
            if tuple(w.shape) != tuple(emb.weight.shape):
                raise VidNavError(f"lm_embeddings=minilm-l6 needs an LM with vocab 30522 and hidden 384, "
                                  f"got embeddings {tuple(emb.weight.shape)}")
            with torch.no_grad():
                emb.weight.copy_(w.to(emb.weight.dtype))
            self.lm.tie_weights()

    def _set_trainable(self) -> None:
        cfg = self.config
        self.vision.requires_grad_(False)
        self.text_encoder.requires_grad_(False)
        if cfg.lm_train == "lora":
            from peft import LoraConfig, get_peft_model

            self.lm.requires_grad_(False)
            lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                              target_modules=list(cfg.lora_target_modules), bias="none")
            with warnings.catch_warnings():  # peft calls a transformers API deprecated in v5
                warnings.simplefilter("ignore", FutureWarning)
                self.lm = get_peft_model(self.lm, lora)
        elif cfg.lm_train == "frozen":
            self.lm.requires_grad_(False)
        else:
            self.lm.requires_grad_(True)
        if cfg.lm_embeddings:
            self._base_lm().get_input_embeddings().requires_grad_(False)
            self._base_lm().get_output_embeddings().requires_grad_(False)

    def _base_lm(self):
        """The LlamaForCausalLM (LoRA layers, if any, are injected in place)."""
        return self.lm.get_base_model() if hasattr(self.lm, "get_base_model") else self.lm

    def train(self, mode: bool = True):
        super().train(mode)
        self.vision.eval()
        self.text_encoder.eval()
        return self

    # -- tokenizers -----------------------------------------------------------------------------------------
    @property
    def tokenizer(self):
        """The LM's tokenizer (loaded on first use)."""
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
        if self._codec is None:
            self._codec = ActionCodec(self.tokenizer, ACTIONS)
        return self._codec

    def _prompt_ids(self) -> list[int]:
        tok = self.tokenizer
        ids = tok.encode(PROMPT.format(k=self.config.num_actions), add_special_tokens=False)
        return ([tok.bos_token_id] if tok.bos_token_id is not None else []) + ids

    # -- vision ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_frames(self, frames, batch_size: int | None = None) -> torch.Tensor:
        """uint8 RGB frames [T, H, W, 3] (numpy or torch) → frozen tower features [T, N, C] (no grad).

        This is what a training pipeline caches (e.g. as fp16); every later step accepts these features.
        ``batch_size`` defaults to 8 frames per tower call on CPU (bigger batches are slower there: the
        activations of a 256x256 batch leave the caches) and 64 on GPU.
        """
        x = as_frames(frames)
        if batch_size is None:
            batch_size = 8 if self.vision.pixel_mean.device.type == "cpu" else 64
        out = [self.vision(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)]
        return torch.cat(out, dim=0)

    def _black_features(self) -> torch.Tensor:
        """Features of an all-black frame (NaVILA pads the front of short histories with it)."""
        key = (self.vision.pixel_mean.device, next(self.vision.parameters()).dtype)
        if key not in self._black:
            self._black[key] = self.encode_frames(np.zeros((224, 224, 3), dtype=np.uint8))
        return self._black[key]

    @property
    def num_patches(self) -> int:
        return self.vision.num_patches

    # -- batch building -------------------------------------------------------------------------------------
    def prepare_batch(self, instructions: list[str], features: list[torch.Tensor],
                      targets: list[list[str]] | None = None,
                      questions: list[str | None] | None = None) -> dict[str, torch.Tensor]:
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
            raise VidNavError(f"need one feature tensor per instruction and at least one sample, "
                              f"got {len(instructions)} instructions and {len(features)} feature tensors")
        for i, text in enumerate(instructions):
            _check_instruction(text, f"instructions[{i}]")
        n, c = self.num_patches, self.vision.hidden_size
        feats = []
        for i, f in enumerate(features):
            f = torch.as_tensor(f)
            if f.dim() != 3 or f.shape[0] < 1 or tuple(f.shape[1:]) != (n, c):
                raise VidNavError(f"features[{i}] must have shape [T>=1, {n}, {c}] (from model.encode_frames), "
                                  f"got {tuple(f.shape)}")
            if not f.is_floating_point() or not torch.isfinite(f).all():
                raise VidNavError(f"features[{i}] must be finite floats (NaN/inf or integer dtype found)")
            feats.append(f)
        cfg = self.config
        enc = self.tokenizer(list(instructions), add_special_tokens=False, truncation=True,
                             max_length=cfg.max_instruction_tokens, padding=True, return_tensors="pt")
        qenc = self.query_tokenizer(list(instructions), truncation=True, max_length=cfg.max_instruction_tokens,
                                    padding=True, return_tensors="pt")
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
                raise VidNavError(f"need one question (or None) per sample: {len(instructions)} samples, "
                                  f"{len(questions)} questions")
            if any(q is not None for q in questions):
                batch["question_ids"], batch["question_mask"] = encode_questions(self.tokenizer, list(questions))
        if targets is not None:
            batch["labels"] = self._labels(targets, len(instructions), questions)
        return batch

    def prepare_packed_batch(self, instructions: list[str], features: list[torch.Tensor], frames: list[list[int]],
                             targets: list[list[list[str]]], weights: list[list[float]] | None = None
                             ) -> dict[str, torch.Tensor]:
        """Collate packed sequences (:mod:`vidnav.model.packing`): sequence i holds the features [T_i, N, C] of
        frames 0..T_i-1 and supervises the frames ``frames[i]`` (ascending, each < T_i) with ``targets[i][b]``,
        the next actions at ``frames[i][b]``, each counted ``weights[i][b]`` times in the loss (default 1).

        Returns :meth:`prepare_batch`'s inputs plus block_frames [ΣB], num_blocks [S], block_weights [ΣB] and
        labels [ΣB, answer tokens].
        """
        batch = self.prepare_batch(instructions, features)
        if len(frames) != len(features) or len(targets) != len(features):
            raise VidNavError(f"need frames and targets for each of the {len(features)} sequences, got "
                              f"{len(frames)} frame lists and {len(targets)} target lists")
        weights = [[1.0] * len(f) for f in frames] if weights is None else weights
        flat_t, flat_targets, flat_w = [], [], []
        for i, (ts, tg, ws) in enumerate(zip(frames, targets, weights)):
            n = int(batch["num_frames"][i])
            ts = [int(t) for t in ts]
            if not ts or any(b <= a for a, b in zip(ts, ts[1:])) or ts[0] < 0 or ts[-1] >= n:
                raise VidNavError(f"frames[{i}] = {ts}: need ascending frame indices in 0..{n - 1} "
                                  f"(the sequence holds {n} frames)")
            if len(tg) != len(ts) or len(ws) != len(ts):
                raise VidNavError(f"sequence {i} supervises {len(ts)} frames but has {len(tg)} targets and "
                                  f"{len(ws)} weights; give one of each per frame")
            if any(not float(w) > 0 for w in ws):
                raise VidNavError(f"weights[{i}] = {list(ws)}: every weight must be > 0")
            flat_t += ts
            flat_targets += list(tg)
            flat_w += [float(w) for w in ws]
        batch["labels"] = self._labels(flat_targets, len(flat_targets))
        batch["block_frames"] = torch.tensor(flat_t, dtype=torch.long)
        batch["num_blocks"] = torch.tensor([len(ts) for ts in frames], dtype=torch.long)
        batch["block_weights"] = torch.tensor(flat_w, dtype=torch.float32)
        return batch

    def _labels(self, targets, batch_size: int, questions: list[str | None] | None = None) -> torch.Tensor:
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
            bad = [w for w in words if w not in ACTIONS]
            if bad or len(words) > k:
                raise VidNavError(f"targets[{i}] = {list(t)!r}: need at most {k} words from {', '.join(ACTIONS)}")
            rows.append(self.codec.encode(canonical_actions(words, k)))
        width = max(len(r) for r in rows)
        return torch.tensor([r + [-100] * (width - len(r)) for r in rows], dtype=torch.long)

    # -- sequence assembly ----------------------------------------------------------------------------------
    def frame_encoder(self, query_hidden: torch.Tensor | None, query_mask: torch.Tensor | None) -> FrameEncoder:
        """A FrameEncoder bound to one instruction (text-encoder states [M, Ct] and mask [M])."""
        queries = None
        if self.context is not None and query_hidden is not None:
            queries = self.context.queries(query_hidden.to(self.markers.dtype))
        return FrameEncoder(self.projector, self.vision.grid, self.context, queries, query_mask)

    def encode_queries(self, query_ids: torch.Tensor, query_mask: torch.Tensor) -> torch.Tensor | None:
        """Text-encoder states [B, M, Ct] of the instruction, or None when nothing reads them."""
        if self.context is None and self.instruction_adapter is None:
            return None
        dev = self.markers.device
        return self.text_encoder(query_ids.to(dev), query_mask.to(dev))

    def prefix_embeds(self, instruction_ids: torch.Tensor, query_hidden: torch.Tensor | None = None,
                      query_mask: torch.Tensor | None = None) -> torch.Tensor:
        """[prompt] <nav> instruction <hist> for one sample (instruction_ids without padding) → [L, D].

        With ``instruction_states``, ``query_hidden`` [M, Ct] / ``query_mask`` [M] are the text encoder's states
        of the same instruction ([CLS] words [SEP], padded): word i's state goes onto instruction token i.
        """
        emb = self._base_lm().get_input_embeddings()
        dev = self.markers.device
        prompt = emb(torch.tensor(self._prompt_ids(), device=dev))
        instr = emb(instruction_ids.to(dev))
        if self.instruction_adapter is not None:
            if query_hidden is None or query_mask is None:
                raise VidNavError("this model reads the instruction's text-encoder states (instruction_states); "
                                  "pass query_hidden and query_mask from encode_queries")
            words = query_hidden[query_mask.to(query_hidden.device).bool()][1:-1]  # drop [CLS] and [SEP]
            n = min(words.shape[0], instr.shape[0])  # truncation keeps 2 fewer words on the encoder's side
            added = self.instruction_adapter(words[:n].to(self.markers.dtype))
            instr = torch.cat([instr[:n] + added.to(instr.dtype), instr[n:]], dim=0)
        m = self.markers
        return torch.cat([prompt, m[NAV : NAV + 1], instr, m[HIST : HIST + 1]], dim=0)

    def suffix_embeds(self, history: torch.Tensor, current: torch.Tensor,
                      question_ids: torch.Tensor | None = None) -> torch.Tensor:
        """history-tokens <obs> current-tokens [question] <act> → [L, D] (question_ids: its LM tokens, unpadded)."""
        m = self.markers
        parts = [history.to(m.dtype), m[OBS : OBS + 1], current.to(m.dtype)]
        if question_ids is not None and question_ids.numel():
            parts.append(self._base_lm().get_input_embeddings()(question_ids.to(m.device)).to(m.dtype))
        return torch.cat(parts + [m[ACT : ACT + 1]], dim=0)

    def _assemble(self, input_ids, attention_mask, query_ids, query_mask, visual_features, num_frames, labels=None,
                  question_ids=None, question_mask=None):
        """Left-padded contexts [B, Lc, D] followed by the answer tokens, with masks and position ids."""
        dev = self.markers.device
        q_hidden = self.encode_queries(query_ids, query_mask)
        black = self._black_features() if self.config.memory == "navila" else None
        feats = visual_features.to(dev).split(num_frames.tolist())
        rows = []
        for i in range(len(feats)):
            enc = self.frame_encoder(q_hidden[i] if q_hidden is not None else None,
                                     query_mask[i].to(dev) if q_hidden is not None else None)
            vis = self.memory.build(enc, feats[i], black)
            ids = input_ids[i][attention_mask[i].bool()]
            prefix = self.prefix_embeds(ids, q_hidden[i] if q_hidden is not None else None, query_mask[i])
            question = question_ids[i][question_mask[i].bool()] if question_ids is not None else None
            rows.append(torch.cat([prefix, self.suffix_embeds(vis.history, vis.current, question)]))
        n_ctx = max(r.shape[0] for r in rows)
        embeds = torch.stack([F.pad(r, (0, 0, n_ctx - r.shape[0], 0)) for r in rows])
        mask = torch.stack([torch.arange(n_ctx, device=dev) >= n_ctx - r.shape[0] for r in rows]).long()
        if labels is not None:
            labels = labels.to(dev)
            answer = self._base_lm().get_input_embeddings()(labels.clamp(min=0)).to(embeds.dtype)
            embeds = torch.cat([embeds, answer], dim=1)
            mask = torch.cat([mask, (labels != -100).long()], dim=1)
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        return embeds, mask, position_ids, n_ctx

    # -- training forward -----------------------------------------------------------------------------------
    def forward(self, input_ids, attention_mask, query_ids, query_mask, visual_features, num_frames,
                labels=None, block_frames=None, num_blocks=None, block_weights=None, question_ids=None,
                question_mask=None, **kwargs) -> CausalLMOutputWithPast:
        """Loss on the answer tokens (``labels``); logits only at the answer positions ([B, La, V]), or at the
        last context position without labels (the LM head runs nowhere else).

        A packed batch (:meth:`prepare_packed_batch`: ``block_frames``, ``num_blocks``, ``block_weights``) gives the
        weighted loss over all its blocks and their logits [ΣB, La, V] (:mod:`vidnav.model.packing`).
        """
        if block_frames is not None:
            from vidnav.model.packing import assemble_packed, packed_loss

            if question_ids is not None:
                raise VidNavError("packed batches carry no questions; train embodied questions without pack_frames")
            if labels is None or num_blocks is None or block_weights is None:
                raise VidNavError("a packed batch needs labels, num_blocks and block_weights (prepare_packed_batch)")
            packed = assemble_packed(self, input_ids, attention_mask, query_ids, query_mask, visual_features,
                                     num_frames, block_frames, num_blocks, labels)
            loss, logits = packed_loss(self, packed, labels, block_weights)
            return CausalLMOutputWithPast(loss=loss, logits=logits)
        embeds, mask, pos, n_ctx = self._assemble(input_ids, attention_mask, query_ids, query_mask,
                                                  visual_features, num_frames, labels, question_ids, question_mask)
        base = self._base_lm()
        hidden = base.model(inputs_embeds=embeds, attention_mask=mask, position_ids=pos, use_cache=False)
        hidden = hidden.last_hidden_state
        head = base.get_output_embeddings()
        if labels is None:
            return CausalLMOutputWithPast(logits=head(hidden[:, n_ctx - 1 : n_ctx]))
        la = labels.shape[1]
        logits = head(hidden[:, n_ctx - 1 : n_ctx - 1 + la])
        loss = F.cross_entropy(logits.flatten(0, 1).float(), labels.to(logits.device).flatten(), ignore_index=-100)
        return CausalLMOutputWithPast(loss=loss, logits=logits)

    # -- constrained decoding -------------------------------------------------------------------------------
    def _prefill(self, batch: dict):
        """Run the context of a batch (labels ignored) through the LM: (output with KV cache, mask, positions)."""
        keys = ("input_ids", "attention_mask", "query_ids", "query_mask", "visual_features", "num_frames")
        embeds, mask, pos, _ = self._assemble(*(batch[k] for k in keys), None, batch.get("question_ids"),
                                              batch.get("question_mask"))
        out = self._base_lm().model(inputs_embeds=embeds, attention_mask=mask, position_ids=pos, use_cache=True)
        return out, mask, pos

    @torch.no_grad()
    def plan(self, batch: dict) -> list[list[str]]:
        """Greedy constrained decoding of k action words per sample (labels in ``batch`` are ignored)."""
        out, mask, pos = self._prefill(batch)
        return self.decode_actions(out.last_hidden_state[:, -1], out.cache, mask, pos[:, -1])

    @torch.no_grad()
    def answer(self, batch: dict) -> list[str]:
        """Greedy free-text answers to the batch's questions (``prepare_batch(..., questions=...)``)."""
        if "question_ids" not in batch:
            raise VidNavError("the batch has no questions; build it with prepare_batch(..., questions=[...])")
        out, mask, pos = self._prefill(batch)
        return greedy_answer(self, out.last_hidden_state[:, -1], out.cache, mask, pos[:, -1])

    @torch.no_grad()
    def score_and_plan(self, batch: dict) -> tuple[torch.Tensor, list[list[str]]]:
        """The teacher-forced loss on ``batch["labels"]`` and the greedy plan, from one prefill of the context.

        Gives what ``model(**batch).loss`` and ``model.plan(batch)`` give, at about half the cost: the context
        (instruction and visual tokens, most of the sequence) runs through the LM once; the answer tokens are
        scored on its KV cache, which is then cut back to the context for decoding.
        """
        out, mask, pos = self._prefill(batch)
        base = self._base_lm()
        last = out.last_hidden_state[:, -1]
        cache = out.cache
        labels = batch["labels"].to(last.device)
        full_mask = torch.cat([mask, (labels != -100).long()], dim=1)
        answer_pos = (full_mask.cumsum(-1) - 1).clamp(min=0)[:, mask.shape[1]:]
        answer = base.get_input_embeddings()(labels.clamp(min=0)).to(last.dtype)
        scored = base.model(inputs_embeds=answer, attention_mask=full_mask, position_ids=answer_pos,
                            cache=cache, use_cache=True).last_hidden_state
        hidden = torch.cat([last[:, None], scored[:, :-1]], dim=1)
        logits = base.get_output_embeddings()(hidden)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100)
        cache.crop(-labels.shape[1])  # drop the answer tokens (negative: the count to remove)
        return loss, self.decode_actions(last, cache, mask, pos[:, -1])

    @torch.no_grad()
    def decode_actions(self, last_hidden, cache, mask, last_pos,
                       ban_first: str | Collection[str] | None = None) -> list[list[str]]:
        """Continue from a filled KV cache, choosing only tokens that spell action words (trie-masked argmax).

        ``ban_first``: an action word, or several, the first planned action may not be (the best other word is
        taken); at least one word must stay allowed.
        """
        codec = self.codec
        base = self._base_lm()
        dev = last_hidden.device
        head = base.get_output_embeddings()
        ids = torch.tensor(codec.token_ids, device=dev)
        w = head.weight[ids]
        bias = head.bias[ids] if getattr(head, "bias", None) is not None else None
        next_node, word_at = codec.next_node.to(dev), codec.word_at.to(dev)
        b, k = last_hidden.shape[0], self.config.num_actions
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
            if mask is not None:  # None: a batch without padding (the Agent), causal attention suffices
                mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            last_pos = last_pos + 1
            out = base.model(inputs_embeds=base.get_input_embeddings()(tok)[:, None], attention_mask=mask,
                             position_ids=last_pos[:, None], cache=cache, use_cache=True)
            h = out.last_hidden_state[:, -1]
            cache = out.cache
        return words

    # -- checkpoints ----------------------------------------------------------------------------------------
    def _package_prefixes(self) -> tuple[str, ...]:
        """State-dict prefixes of weights that come from packages / local folders, never from checkpoints."""
        cfg = self.config
        prefixes = ["vision.", "text_encoder."]
        if cfg.lm != "scratch" and cfg.lm_train in ("lora", "frozen"):
            prefixes.append("lm.")
        if cfg.lm_embeddings:
            base = "lm.base_model.model." if cfg.lm_train == "lora" else "lm."
            prefixes += [base + "model.embed_tokens.", base + "lm_head."]
        return tuple(prefixes)

    def checkpoint_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights a checkpoint stores: everything trainable or not from a package (LoRA excluded)."""
        skip = self._package_prefixes()
        return {k: v for k, v in self.state_dict().items() if not k.startswith(skip) and "lora_" not in k}

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs) -> None:
        """config.json + model.safetensors (+ adapter/ for LoRA) + run_options.json, each written atomically.

        HF keyword arguments (``state_dict``, ``safe_serialization``, ...) are accepted and ignored: the
        weights written are always :meth:`checkpoint_state_dict` as safetensors.
        """
        from safetensors.torch import save

        out = Path(save_directory)
        out.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().contiguous().cpu() for k, v in self.checkpoint_state_dict().items()}
        atomic_write_bytes(out / WEIGHTS_NAME, save(tensors, metadata={"format": "pt"}))
        if self.config.lm_train == "lora":
            from peft import get_peft_model_state_dict

            adapter = {k: v.detach().contiguous().cpu() for k, v in get_peft_model_state_dict(self.lm).items()}
            atomic_write_bytes(out / ADAPTER_DIR / "adapter_model.safetensors", save(adapter, metadata={"format": "pt"}))
            lora_cfg = self.lm.peft_config["default"].to_dict()
            lora_cfg["base_model_name_or_path"] = self.config.lm_path or self.config.lm
            lora_cfg = {k: (sorted(v) if isinstance(v, set) else v) for k, v in lora_cfg.items()}
            atomic_write_text(out / ADAPTER_DIR / "adapter_config.json", json.dumps(lora_cfg, indent=2, default=str))
        self.config.architectures = [type(self).__name__]
        atomic_write_text(out / "config.json", self.config.to_json_string())
        write_run_options(out, self.run_options)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *args, device=None, dtype=None,
                        **overrides) -> "VidNavForCausalLM":
        """Load a checkpoint folder written by :meth:`save_pretrained`; frozen parts come from their packages.

        ``overrides`` change config fields that do not change weights (e.g. ``memory``, ``merge_threshold``).
        """
        from safetensors.torch import load_file

        path = Path(pretrained_model_name_or_path)
        if not (path / "config.json").is_file() or not (path / WEIGHTS_NAME).is_file():
            raise VidNavError(f"{path} is not a vidnav checkpoint (needs config.json and {WEIGHTS_NAME}); "
                              "write one with model.save_pretrained(folder)")
        config = VidNavConfig.from_json_file(str(path / "config.json"))
        run_options = read_run_options(path)  # a bad run_options.json fails before the weights load
        for key, value in overrides.items():
            from vidnav.model.presets import CONFIG_FIELDS

            if key not in CONFIG_FIELDS:
                raise VidNavError(f"unknown model setting {key!r}; valid settings: {', '.join(CONFIG_FIELDS)}")
            setattr(config, key, value)
        model = cls(config)
        state = load_file(str(path / WEIGHTS_NAME))
        expected = set(model.checkpoint_state_dict())
        missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
        if config.instruction_states:  # added to a checkpoint trained without it: starts at zero, same model
            missing = [k for k in missing if not k.startswith("instruction_adapter.")]
        if missing and all(k.startswith("context.") for k in missing) and not unexpected:
            raise VidNavError(f"checkpoint {path} was trained without context tokens; load it with "
                              "use_context_token=False (or a memory strategy that does not use them)")
        if missing or unexpected:
            raise VidNavError(f"checkpoint {path} does not match its config: missing {missing[:5]}, "
                              f"unexpected {unexpected[:5]}; was it written by another vidnav version?")
        model.load_state_dict(state, strict=False)
        if config.lm_train == "lora":
            from peft import set_peft_model_state_dict

            adapter = path / ADAPTER_DIR / "adapter_model.safetensors"
            if not adapter.is_file():
                raise VidNavError(f"checkpoint {path} uses LoRA but has no {ADAPTER_DIR}/adapter_model.safetensors")
            result = set_peft_model_state_dict(model.lm, load_file(str(adapter)))
            if getattr(result, "unexpected_keys", None):
                raise VidNavError(f"LoRA adapter in {path} does not fit the model: {result.unexpected_keys[:5]}")
        model.run_options = run_options
        model.eval()
        if device is not None or dtype is not None:
            model.to(device=device, dtype=dtype)
        return model

    # -- introspection --------------------------------------------------------------------------------------
    def num_parameters_split(self) -> tuple[int, int]:
        """(total, trainable) parameter counts; tied weights counted once."""
        params = list(self.parameters())
        return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def _check_instruction(text: Any, what: str = "instruction") -> str:
    if not isinstance(text, str):
        raise VidNavError(f"{what} must be a string, got {type(text).__name__}")
    if not text.strip():
        raise VidNavError(f"{what} is empty; give the navigation instruction text")
    return text


def _check_local_weights(config: VidNavConfig) -> None:
    """Fail before building anything big when a preset needs local weight folders that are not given."""
    needs = []
    if config.vision_tower in ("clip", "siglip") and not (config.vision_path and Path(config.vision_path).is_dir()):
        needs.append(f"vision_path (a local {config.vision_tower} folder)")
    if config.text_encoder == "bert" and not (config.text_path and Path(config.text_path).is_dir()):
        needs.append("text_path (a local BERT folder)")
    if config.lm == "llama" and not (config.lm_path and Path(config.lm_path).is_dir()):
        needs.append("lm_path (a local LLaMA-architecture folder with its tokenizer)")
    if needs:
        raise VidNavError(f"preset {config.preset!r} loads weights from local folders; set {', '.join(needs)}, "
                          "or build with pretrained=False for random weights / device='meta' for shapes only")


def _validate_config(config: VidNavConfig) -> None:
    if config.memory not in MEMORY_STRATEGIES:
        raise VidNavError(f"unknown memory strategy {config.memory!r}; choose one of {', '.join(MEMORY_STRATEGIES)}")
    if config.projector not in PROJECTORS:
        raise VidNavError(f"unknown projector {config.projector!r}; choose one of {', '.join(PROJECTORS)}")
    if config.lm_train not in ("full", "lora", "frozen"):
        raise VidNavError(f"lm_train must be full, lora or frozen, got {config.lm_train!r}")
    if config.instruction_states and not (config.text_encoder == MINILM and config.lm_tokenizer == MINILM):
        raise VidNavError("instruction_states needs the LM to read the text encoder's tokens (text_encoder and "
                          f"lm_tokenizer both {MINILM!r}, as in the tiny preset); got text_encoder="
                          f"{config.text_encoder!r}, lm_tokenizer={config.lm_tokenizer!r}")
    if config.lm == "scratch" and config.lm_train != "full":
        raise VidNavError("an LM trained from scratch (lm='scratch') needs lm_train='full'")
    if int(config.num_actions) < 1:
        raise VidNavError(f"num_actions must be >= 1, got {config.num_actions}")
    for name in ("current_pool", "history_pool"):
        if int(getattr(config, name)) < 1:
            raise VidNavError(f"{name} must be >= 1, got {getattr(config, name)}")
    if not 0.0 <= float(config.merge_threshold) <= 1.0 and config.memory == "uninavid":
        raise VidNavError(f"merge_threshold must lie in [0, 1], got {config.merge_threshold}")
