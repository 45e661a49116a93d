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

import copy
import json
import os
import warnings
from collections.abc import Collection
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from vidnav.errors import VidNavError
from vidnav.io import atomic_write_bytes, atomic_write_text
from vidnav.model.actions import ActionCodec, decode_actions
from vidnav.model.answers import greedy_answer
from vidnav.model.configuration_vidnav import CONFIG_FIELDS, VidNavConfig
from vidnav.model.frame_tokens import FrameEncoder
from vidnav.model.lm import MINILM, build_lm, build_text_model, minilm_word_embeddings
from vidnav.model.memory import build_memory
from vidnav.model.processing_vidnav import ACT, HIST, MARKERS, NAV, OBS, VidNavProcessor, as_frames
from vidnav.model.projector import build_projector
from vidnav.model.text_query import ContextAttention, FrozenTextEncoder
from vidnav.model.vision import build_vision_tower
from vidnav.run_options import PlanOptions, read_run_options, write_run_options

WEIGHTS_NAME = "model.safetensors"
ADAPTER_DIR = "adapter"
# options transformers' from_pretrained passes along for the hub (AutoModel*.from_pretrained); a local folder needs none
_HUB_OPTIONS = (
    "cache_dir",
    "force_download",
    "local_files_only",
    "proxies",
    "revision",
    "token",
    "trust_remote_code",
    "adapter_kwargs",
    "code_revision",
    "_from_auto",
    "_commit_hash",
)


class VidNavPreTrainedModel(PreTrainedModel):
    config_class = VidNavConfig
    base_model_prefix = "vidnav"
    supports_gradient_checkpointing = True
    _no_split_modules = ["LlamaDecoderLayer", "Qwen2DecoderLayer"]
    _supports_sdpa = True


class VidNavForCausalLM(VidNavPreTrainedModel):
    # how the model is meant to be run (re-planning, loop breaking, ...): run_options.json beside config.json,
    # read by from_pretrained and written by save_pretrained, as transformers keeps generation_config.json
    run_options: PlanOptions = PlanOptions()
    # how decode_actions writes the k words (the same words either way): "tree" scores every continuation in one LM
    # call when each action word is one token (vidnav.model.tree_decode; else it falls back), "sequential" runs one
    # LM call per token; "auto": tree on a GPU (launch-bound: one call instead of k-1), sequential on a CPU, where
    # the 84-token tree costs what the 3 one-token calls cost (bench/agent_step.py --compare-decoding: 1.03-1.05x)
    decoding: str = "auto"

    def __init__(self, config: VidNavConfig, pretrained: bool = True):
        super().__init__(config)
        config.validate()
        if pretrained:
            config.check_local_weights()
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
        self.processor = VidNavProcessor(config, (self.vision.num_patches, self.vision.hidden_size))
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
                raise VidNavError(
                    f"lm_embeddings=minilm-l6 needs an LM with vocab 30522 and hidden 384, "
                    f"got embeddings {tuple(emb.weight.shape)}"
                )
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
            lora = LoraConfig(
                r=cfg.lora_r,
                lora_alpha=cfg.lora_alpha,
                lora_dropout=cfg.lora_dropout,
                target_modules=list(cfg.lora_target_modules),
                bias="none",
            )
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
        """The causal LM itself (LoRA layers, if any, are injected in place)."""
        return self.lm.get_base_model() if hasattr(self.lm, "get_base_model") else self.lm

    def train(self, mode: bool = True):
        super().train(mode)
        self.vision.eval()
        self.text_encoder.eval()
        return self

    # -- tokenizers (the processor's) ---------------------------------------------------------------------------
    @property
    def tokenizer(self):
        """The LM's tokenizer (loaded on first use)."""
        return self.processor.tokenizer

    @property
    def query_tokenizer(self):
        """The text encoder's tokenizer (MiniLM's WordPiece by default)."""
        return self.processor.query_tokenizer

    @property
    def codec(self) -> ActionCodec:
        return self.processor.codec

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

    # -- batch building (the processor's) -----------------------------------------------------------------------
    def prepare_batch(
        self,
        instructions: list[str],
        features: list[torch.Tensor],
        targets: list[list[str]] | None = None,
        questions: list[str | None] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Collate samples into the inputs of ``model(**batch)`` / ``model.plan(batch)``: see
        :meth:`vidnav.model.processing_vidnav.VidNavProcessor.prepare_batch`."""
        return self.processor.prepare_batch(instructions, features, targets, questions)

    def prepare_packed_batch(
        self,
        instructions: list[str],
        features: list[torch.Tensor],
        frames: list[list[int]],
        targets: list[list[list[str]]],
        weights: list[list[float]] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Collate packed sequences (:mod:`vidnav.model.packing`): see
        :meth:`vidnav.model.processing_vidnav.VidNavProcessor.prepare_packed_batch`."""
        return self.processor.prepare_packed_batch(instructions, features, frames, targets, weights)

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

    def prefix_embeds(
        self,
        instruction_ids: torch.Tensor,
        query_hidden: torch.Tensor | None = None,
        query_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """[prompt] <nav> instruction <hist> for one sample (instruction_ids without padding) → [L, D].

        With ``instruction_states``, ``query_hidden`` [M, Ct] / ``query_mask`` [M] are the text encoder's states
        of the same instruction ([CLS] words [SEP], padded): word i's state goes onto instruction token i.
        """
        emb = self._base_lm().get_input_embeddings()
        dev = self.markers.device
        prompt = emb(torch.tensor(self.processor.prompt_ids(), device=dev))
        instr = emb(instruction_ids.to(dev))
        if self.instruction_adapter is not None:
            if query_hidden is None or query_mask is None:
                raise VidNavError(
                    "this model reads the instruction's text-encoder states (instruction_states); "
                    "pass query_hidden and query_mask from encode_queries"
                )
            words = query_hidden[query_mask.to(query_hidden.device).bool()][1:-1]  # drop [CLS] and [SEP]
            n = min(words.shape[0], instr.shape[0])  # truncation keeps 2 fewer words on the encoder's side
            added = self.instruction_adapter(words[:n].to(self.markers.dtype))
            instr = torch.cat([instr[:n] + added.to(instr.dtype), instr[n:]], dim=0)
        m = self.markers
        return torch.cat([prompt, m[NAV : NAV + 1], instr, m[HIST : HIST + 1]], dim=0)

    def suffix_embeds(
        self, history: torch.Tensor, current: torch.Tensor, question_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """history-tokens <obs> current-tokens [question] <act> → [L, D] (question_ids: its LM tokens, unpadded)."""
        m = self.markers
        parts = [history.to(m.dtype), m[OBS : OBS + 1], current.to(m.dtype)]
        if question_ids is not None and question_ids.numel():
            parts.append(self._base_lm().get_input_embeddings()(question_ids.to(m.device)).to(m.dtype))
        return torch.cat(parts + [m[ACT : ACT + 1]], dim=0)

    def _assemble(
        self,
        input_ids,
        attention_mask,
        query_ids,
        query_mask,
        visual_features,
        num_frames,
        labels=None,
        question_ids=None,
        question_mask=None,
    ):
        """Left-padded contexts [B, Lc, D] followed by the answer tokens, with masks and position ids."""
        dev = self.markers.device
        q_hidden = self.encode_queries(query_ids, query_mask)
        black = self._black_features() if self.config.memory == "navila" else None
        feats = visual_features.to(dev).split(num_frames.tolist())
        rows = []
        streaming = hasattr(self.memory, "layout")  # entries with their own masks and positions (model.streaming)
        for i in range(len(feats)):
            enc = self.frame_encoder(
                q_hidden[i] if q_hidden is not None else None, query_mask[i].to(dev) if q_hidden is not None else None
            )
            ids = input_ids[i][attention_mask[i].bool()]
            prefix = self.prefix_embeds(ids, q_hidden[i] if q_hidden is not None else None, query_mask[i])
            question = question_ids[i][question_mask[i].bool()] if question_ids is not None else None
            if streaming:
                from vidnav.model.streaming import streaming_row

                layout = self.memory.layout(enc, feats[i], [feats[i].shape[0] - 1])
                current = self.memory._current(enc, feats[i])
                rows.append(streaming_row(layout, prefix, self.suffix_embeds(layout.open[0], current, question)))
                continue
            vis = self.memory.build(enc, feats[i], black)
            rows.append(torch.cat([prefix, self.suffix_embeds(vis.history, vis.current, question)]))
        if streaming:
            from vidnav.model.streaming import stack_rows

            answer = None
            if labels is not None:
                answer = self._base_lm().get_input_embeddings()(labels.to(dev).clamp(min=0)).to(self.markers.dtype)
            return stack_rows(rows, answer)
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
    def forward(
        self,
        input_ids,
        attention_mask,
        query_ids,
        query_mask,
        visual_features,
        num_frames,
        labels=None,
        block_frames=None,
        num_blocks=None,
        block_weights=None,
        question_ids=None,
        question_mask=None,
        **kwargs,
    ) -> CausalLMOutputWithPast:
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
            if hasattr(self.memory, "layout"):  # the streaming memory: its entries' own masks and positions
                from vidnav.model.streaming import assemble_streaming_packed as assemble_packed
            packed = assemble_packed(
                self,
                input_ids,
                attention_mask,
                query_ids,
                query_mask,
                visual_features,
                num_frames,
                block_frames,
                num_blocks,
                labels,
            )
            loss, logits = packed_loss(self, packed, labels, block_weights)
            return CausalLMOutputWithPast(loss=loss, logits=logits)
        embeds, mask, pos, n_ctx = self._assemble(
            input_ids,
            attention_mask,
            query_ids,
            query_mask,
            visual_features,
            num_frames,
            labels,
            question_ids,
            question_mask,
        )
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
        embeds, mask, pos, _ = self._assemble(
            *(batch[k] for k in keys), None, batch.get("question_ids"), batch.get("question_mask")
        )
        out = self._base_lm().model(inputs_embeds=embeds, attention_mask=mask, position_ids=pos, use_cache=True)
        if mask.dim() == 4:  # what the last context token sees is what every decoded token sees (and themselves)
            mask = mask[:, 0, -1].long()
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
        answer_pos = pos[:, -1:] + torch.arange(1, labels.shape[1] + 1, device=pos.device)  # after the context
        answer = base.get_input_embeddings()(labels.clamp(min=0)).to(last.dtype)
        scored = base.model(
            inputs_embeds=answer, attention_mask=full_mask, position_ids=answer_pos, cache=cache, use_cache=True
        ).last_hidden_state
        hidden = torch.cat([last[:, None], scored[:, :-1]], dim=1)
        logits = base.get_output_embeddings()(hidden)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100)
        cache.crop(-labels.shape[1])  # drop the answer tokens (negative: the count to remove)
        return loss, self.decode_actions(last, cache, mask, pos[:, -1])

    def decoding_on(self, device) -> str:
        """``decoding`` with ``auto`` resolved for a device: ``tree`` or ``sequential``."""
        if self.decoding == "auto":
            return "sequential" if torch.device(device).type == "cpu" else "tree"
        if self.decoding not in ("tree", "sequential"):
            raise VidNavError(f"decoding must be 'auto', 'tree' or 'sequential', got {self.decoding!r}")
        return self.decoding

    def decode_actions(
        self, last_hidden, cache, mask, last_pos, ban_first: str | Collection[str] | None = None
    ) -> list[list[str]]:
        """Continue from a filled KV cache with k action words per row (:func:`vidnav.model.actions.decode_actions`).

        ``ban_first``: an action word, or several, the first planned action may not be (the best other word is
        taken); at least one word must stay allowed.
        """
        decoding = self.decoding_on(last_hidden.device)
        if decoding == "tree":
            from vidnav.model.tree_decode import tree_decode_actions

            return tree_decode_actions(
                self._base_lm(), self.codec, self.config.num_actions, last_hidden, cache, mask, last_pos, ban_first
            )
        if decoding != "sequential":
            raise VidNavError(f"decoding must be 'auto', 'tree' or 'sequential', got {self.decoding!r}")
        return decode_actions(
            self._base_lm(), self.codec, self.config.num_actions, last_hidden, cache, mask, last_pos, ban_first
        )

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
            atomic_write_bytes(
                out / ADAPTER_DIR / "adapter_model.safetensors", save(adapter, metadata={"format": "pt"})
            )
            lora_cfg = self.lm.peft_config["default"].to_dict()
            lora_cfg["base_model_name_or_path"] = self.config.lm_path or self.config.lm
            lora_cfg = {k: (sorted(v) if isinstance(v, set) else v) for k, v in lora_cfg.items()}
            atomic_write_text(out / ADAPTER_DIR / "adapter_config.json", json.dumps(lora_cfg, indent=2, default=str))
        self.config.architectures = [type(self).__name__]
        atomic_write_text(out / "config.json", self.config.to_json_string())
        write_run_options(out, self.run_options)

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        *args,
        config: VidNavConfig | None = None,
        device=None,
        dtype=None,
        **overrides,
    ) -> "VidNavForCausalLM":
        """Load a checkpoint folder written by :meth:`save_pretrained`; frozen parts come from their packages.

        ``overrides`` change config fields that do not change weights (e.g. ``memory``, ``merge_threshold``).
        ``config`` (what ``AutoModel*.from_pretrained`` passes: the folder's config, overrides applied) replaces
        config.json; the hub options transformers passes along are ignored (a local folder needs none).
        """
        for key in _HUB_OPTIONS:
            overrides.pop(key, None)
        path = Path(pretrained_model_name_or_path) / (overrides.pop("subfolder", None) or "")
        if not (path / "config.json").is_file() or not (path / WEIGHTS_NAME).is_file():
            raise VidNavError(
                f"{path} is not a vidnav checkpoint (needs config.json and {WEIGHTS_NAME}); "
                "write one with model.save_pretrained(folder)"
            )
        if config is None:
            config = VidNavConfig.from_json_file(str(path / "config.json"))
        elif isinstance(config, VidNavConfig):
            config = copy.deepcopy(config)
        else:
            raise VidNavError(f"config must be a VidNavConfig, got {type(config).__name__}")
        run_options = read_run_options(path)  # a bad run_options.json fails before the weights load
        for key, value in overrides.items():
            if key not in CONFIG_FIELDS:
                raise VidNavError(f"unknown model setting {key!r}; valid settings: {', '.join(CONFIG_FIELDS)}")
            setattr(config, key, value)
        model = cls(config)
        model.load_checkpoint_weights(path)
        model.run_options = run_options
        model.eval()
        if device is not None or dtype is not None:
            model.to(device=device, dtype=dtype)
        return model

    def load_checkpoint_weights(
        self, folder: str | os.PathLike, mismatch_hint: str = "was it written by another vidnav version?"
    ) -> None:
        """Load what :meth:`save_pretrained` wrote (model.safetensors [+ adapter/]) into this model, in place.

        The one weight loader: :meth:`from_pretrained` and the trainer (resuming) both call it. The checkpoint must
        hold exactly :meth:`checkpoint_state_dict`'s keys, except that a model with ``instruction_states`` loads a
        checkpoint trained without them (the map starts at zero: the same model). ``mismatch_hint`` ends the error
        when the keys do not match.
        """
        from safetensors.torch import load_file

        path = Path(folder)
        state = load_file(str(path / WEIGHTS_NAME))
        expected = set(self.checkpoint_state_dict())
        missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
        if self.config.instruction_states:  # added to a checkpoint trained without it: starts at zero, same model
            missing = [k for k in missing if not k.startswith("instruction_adapter.")]
        if missing and all(k.startswith("context.") for k in missing) and not unexpected:
            raise VidNavError(
                f"checkpoint {path} was trained without context tokens; load it with "
                "use_context_token=False (or a memory strategy that does not use them)"
            )
        if missing or unexpected:
            raise VidNavError(
                f"checkpoint {path} does not match its config: missing {missing[:5]}, "
                f"unexpected {unexpected[:5]}; {mismatch_hint}"
            )
        self.load_state_dict(state, strict=False)
        if self.config.lm_train == "lora":
            from peft import set_peft_model_state_dict

            adapter = path / ADAPTER_DIR / "adapter_model.safetensors"
            if not adapter.is_file():
                raise VidNavError(f"checkpoint {path} uses LoRA but has no {ADAPTER_DIR}/adapter_model.safetensors")
            result = set_peft_model_state_dict(self.lm, load_file(str(adapter)))
            if getattr(result, "unexpected_keys", None):
                raise VidNavError(f"LoRA adapter in {path} does not fit the model: {result.unexpected_keys[:5]}")

    # -- introspection --------------------------------------------------------------------------------------
    def num_parameters_split(self) -> tuple[int, int]:
        """(total, trainable) parameter counts; tied weights counted once."""
        params = list(self.parameters())
        return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def register_auto_classes() -> None:
    """Let ``AutoConfig`` / ``AutoModel`` / ``AutoModelForCausalLM`` load vidnav checkpoint folders (done on import)."""
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    AutoConfig.register(VidNavConfig.model_type, VidNavConfig, exist_ok=True)
    AutoModel.register(VidNavConfig, VidNavForCausalLM, exist_ok=True)
    AutoModelForCausalLM.register(VidNavConfig, VidNavForCausalLM, exist_ok=True)


register_auto_classes()
