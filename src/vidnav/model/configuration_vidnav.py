"""VidNavConfig: everything that shapes a vidnav model, as an HF ``PretrainedConfig`` (config.json).

Frozen pretrained parts are *referenced*, not stored: ``vision_tower``/``vision_path``, ``text_encoder``/
``text_path``, ``lm``/``lm_path`` and ``lm_embeddings`` name a weight package (``efficientnet-lite0``,
``minilm-l6``, ``smollm2-135m-instruct``) or a local folder. The ``*_config`` dicts hold the shapes, so a
model can be built without weights (meta device, random-weight benchmarks).
"""

from __future__ import annotations

import inspect
from pathlib import Path

from transformers import PretrainedConfig

from vidnav.errors import VidNavError
from vidnav.model.lm import MINILM
from vidnav.model.memory import MEMORY_STRATEGIES
from vidnav.model.projector import PROJECTORS

DEFAULT_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class VidNavConfig(PretrainedConfig):
    r"""
    Args:
        preset: the preset this config started from (informational).
        vision_tower: ``"efficientnet-lite0"`` (package weights), ``"clip"`` or ``"siglip"`` (local folder).
        vision_path: local folder of a CLIP / SigLIP model (HF format) for ``clip``/``siglip``.
        vision_config: CLIPVisionConfig / SiglipVisionConfig kwargs (shape when no weights are loaded).
        vision_image_size: input size of EfficientNet-Lite (frames are resized to it); HF towers use their own.
        vision_feature: EfficientNet-Lite feature map, ``"blocks"`` (last MBConv, 320 ch) or ``"head"`` (1280 ch).
        vision_feature_layer: hidden layer of HF towers whose patch tokens are used (LLaVA's select_layer).
        text_encoder: ``"minilm-l6"`` (package) or ``"bert"`` (local folder ``text_path``); frozen.
        text_config: BertConfig kwargs of the text encoder (shape).
        max_instruction_tokens: instructions are truncated to this many tokens (text encoder and LM).
        lm: ``"scratch"`` (a LLaMA decoder trained from scratch), ``"smollm2-135m-instruct"`` (package GGUF,
            converted once into the cache) or ``"llama"`` (a local HF folder ``lm_path`` of a LLaMA- or
            Qwen2-architecture LM; other architectures are refused, see ``vidnav.model.lm.LM_ARCHITECTURES``).
        lm_config: LlamaConfig kwargs (shape of the LM when it is built without weights).
        lm_tokenizer: ``"minilm-l6"``, ``"smollm2-135m-instruct"``, a local folder, or None (= ``lm_path``).
        lm_embeddings: ``"minilm-l6"``: the LM's input embeddings are MiniLM's word embeddings, frozen and tied
            to the output head, loaded from the package (not saved in checkpoints); None: the LM's own.
        lm_train: ``"full"`` (all LM weights except frozen embeddings), ``"lora"`` (PEFT LoRA) or ``"frozen"``.
        lora_r, lora_alpha, lora_dropout, lora_target_modules: LoRA settings for ``lm_train="lora"``.
        projector: ``"mlp2x_gelu"`` or ``"mlp_downsample"`` (NaVILA).
        memory: ``"navid"``, ``"uninavid"``, ``"navila"``, ``"llamavid"`` or ``"streaming"`` (see vidnav.model.memory).
        use_context_token: add the LLaMA-VID context token per frame; None = the strategy's default.
        instruction_states: add the frozen text encoder's contextual states of the instruction, through a
            trainable linear map that starts at zero, to the LM's instruction token embeddings (needs the LM to
            read the text encoder's tokens, as ``tiny`` does). A checkpoint trained without it loads unchanged.
        current_pool, history_pool: g of the g×g pooling for the current frame (64 tokens at 8) and for
            short-term history frames (4 tokens at 2).
        uninavid_window: B, the number of history frames kept at ``history_pool`` by ``uninavid``.
        merge_threshold: τ, cosine similarity above which ``uninavid`` merges long-term tokens (paper: 0.95;
            the released code used 0.985).
        streaming_window: W, the history frames whose blocks ``streaming`` keeps in the LM's KV cache.
        streaming_group: G, the evicted frames ``streaming`` merges (mean) into one long-term token.
        navila_frames: frames seen by ``navila`` (history samples + the current frame).
        navila_pool: g for every ``navila`` frame (None = ``current_pool``).
        num_actions: k, the number of action words the model answers with.
    """

    model_type = "vidnav"

    def __init__(
        self,
        preset: str = "tiny",
        vision_tower: str = "efficientnet-lite0",
        vision_path: str | None = None,
        vision_config: dict | None = None,
        vision_image_size: int = 256,
        vision_feature: str = "blocks",
        vision_feature_layer: int = -2,
        text_encoder: str = "minilm-l6",
        text_path: str | None = None,
        text_config: dict | None = None,
        max_instruction_tokens: int = 128,
        lm: str = "scratch",
        lm_path: str | None = None,
        lm_config: dict | None = None,
        lm_tokenizer: str | None = "minilm-l6",
        lm_embeddings: str | None = "minilm-l6",
        lm_train: str = "full",
        lora_r: int = 16,
        lora_alpha: int = 32,
        lora_dropout: float = 0.05,
        lora_target_modules: list[str] | None = None,
        projector: str = "mlp2x_gelu",
        memory: str = "uninavid",
        use_context_token: bool | None = None,
        instruction_states: bool = False,
        current_pool: int = 8,
        history_pool: int = 2,
        uninavid_window: int = 64,
        merge_threshold: float = 0.95,
        streaming_window: int = 64,
        streaming_group: int = 8,
        navila_frames: int = 8,
        navila_pool: int | None = None,
        num_actions: int = 4,
        initializer_range: float = 0.02,
        **kwargs,
    ):
        self.preset = preset
        self.vision_tower = vision_tower
        self.vision_path = vision_path
        self.vision_config = vision_config
        self.vision_image_size = vision_image_size
        self.vision_feature = vision_feature
        self.vision_feature_layer = vision_feature_layer
        self.text_encoder = text_encoder
        self.text_path = text_path
        self.text_config = text_config
        self.max_instruction_tokens = max_instruction_tokens
        self.lm = lm
        self.lm_path = lm_path
        self.lm_config = lm_config
        self.lm_tokenizer = lm_tokenizer
        self.lm_embeddings = lm_embeddings
        self.lm_train = lm_train
        self.lora_r = lora_r
        self.lora_alpha = lora_alpha
        self.lora_dropout = lora_dropout
        self.lora_target_modules = list(lora_target_modules or DEFAULT_LORA_TARGETS)
        self.projector = projector
        self.memory = memory
        self.use_context_token = use_context_token
        self.instruction_states = instruction_states
        self.current_pool = current_pool
        self.history_pool = history_pool
        self.uninavid_window = uninavid_window
        self.merge_threshold = merge_threshold
        self.streaming_window = streaming_window
        self.streaming_group = streaming_group
        self.navila_frames = navila_frames
        self.navila_pool = navila_pool
        self.num_actions = num_actions
        self.initializer_range = initializer_range
        super().__init__(**kwargs)

    def validate(self) -> None:
        """Raise :class:`VidNavError` for settings no model can be built from (after transformers' own checks).

        Runs when a model is built and when the config is saved with ``save_pretrained``.
        """
        super().validate()
        if self.memory not in MEMORY_STRATEGIES:
            raise VidNavError(f"unknown memory strategy {self.memory!r}; choose one of {', '.join(MEMORY_STRATEGIES)}")
        if self.projector not in PROJECTORS:
            raise VidNavError(f"unknown projector {self.projector!r}; choose one of {', '.join(PROJECTORS)}")
        if self.lm_train not in ("full", "lora", "frozen"):
            raise VidNavError(f"lm_train must be full, lora or frozen, got {self.lm_train!r}")
        if self.instruction_states and not (self.text_encoder == MINILM and self.lm_tokenizer == MINILM):
            raise VidNavError(
                "instruction_states needs the LM to read the text encoder's tokens (text_encoder and "
                f"lm_tokenizer both {MINILM!r}, as in the tiny preset); got text_encoder="
                f"{self.text_encoder!r}, lm_tokenizer={self.lm_tokenizer!r}"
            )
        if self.lm == "scratch" and self.lm_train != "full":
            raise VidNavError("an LM trained from scratch (lm='scratch') needs lm_train='full'")
        if int(self.num_actions) < 1:
            raise VidNavError(f"num_actions must be >= 1, got {self.num_actions}")
        for name in ("current_pool", "history_pool"):
            if int(getattr(self, name)) < 1:
                raise VidNavError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= float(self.merge_threshold) <= 1.0 and self.memory == "uninavid":
            raise VidNavError(f"merge_threshold must lie in [0, 1], got {self.merge_threshold}")

    def check_local_weights(self) -> None:
        """Fail before building anything big when a preset needs local weight folders that are not given."""
        needs = []
        if self.vision_tower in ("clip", "siglip") and not (self.vision_path and Path(self.vision_path).is_dir()):
            needs.append(f"vision_path (a local {self.vision_tower} folder)")
        if self.text_encoder == "bert" and not (self.text_path and Path(self.text_path).is_dir()):
            needs.append("text_path (a local BERT folder)")
        if self.lm == "llama" and not (self.lm_path and Path(self.lm_path).is_dir()):
            needs.append("lm_path (a local LLaMA- or Qwen2-architecture folder with its tokenizer)")
        if needs:
            raise VidNavError(
                f"preset {self.preset!r} loads weights from local folders; set {', '.join(needs)}, "
                "or build with pretrained=False for random weights / device='meta' for shapes only"
            )


def _register_auto_config() -> None:
    """Let AutoConfig read vidnav config.json files (a convenience; never blocks importing vidnav)."""
    try:
        from transformers import AutoConfig

        AutoConfig.register("vidnav", VidNavConfig, exist_ok=True)
    except Exception:
        pass


_register_auto_config()


# the settings VidNavConfig takes (presets' keyword overrides, `--set NAME=VALUE`, from_pretrained overrides)
CONFIG_FIELDS = tuple(p for p in inspect.signature(VidNavConfig.__init__).parameters if p not in ("self", "kwargs"))
