"""Named presets and :func:`build_model`.

``tiny``         EfficientNet-Lite0 (256 px, 320 ch on 8×8) + MiniLM-L6 queries + a 4-layer LLaMA decoder
                 (hidden 384, 6 heads, MLP 1024) trained from scratch, with MiniLM's WordPiece tokenizer and
                 its word embeddings as frozen input embeddings tied to the output head.
``small``        same vision and queries; SmolLM2-135M-Instruct as the LM, adapted with LoRA.
``navid-7b``     EVA-CLIP-g-shaped ViT (CLIP architecture, 1408 wide, 39 layers, 224 px / patch 14 → 16×16)
                 + BERT-base queries + a Vicuna-7B-shaped LM; NaVid memory.
``uninavid-7b``  as navid-7b with Uni-NaVid memory.
``navila-8b``    SigLIP-so400m (384 px / patch 14 → 27×27) + LLaMA-3-8B-shaped LM + mlp_downsample
                 (27×27 padded to 28×28 → 14×14 = 196 tokens per frame); NaVILA memory.

The big presets load weights from local folders named by ``vision_path``, ``text_path`` and ``lm_path``
(and the tokenizer from ``lm_path``); without them, build with ``pretrained=False`` (random weights) or
``device="meta"`` (shapes only).
"""

from __future__ import annotations

import contextlib
import copy

import torch

from vidnav.errors import VidNavError
from vidnav.model.configuration_vidnav import CONFIG_FIELDS, VidNavConfig

MINILM_L6_SHAPE = dict(
    vocab_size=30522,
    hidden_size=384,
    num_hidden_layers=6,
    num_attention_heads=12,
    intermediate_size=1536,
    max_position_embeddings=512,
)
BERT_BASE_SHAPE = dict(
    vocab_size=30522,
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    max_position_embeddings=512,
)
TINY_LM_SHAPE = dict(
    vocab_size=30522,
    hidden_size=384,
    num_hidden_layers=4,
    num_attention_heads=6,
    num_key_value_heads=6,
    intermediate_size=1024,
    max_position_embeddings=8192,
    rms_norm_eps=1e-6,
    tie_word_embeddings=True,
    pad_token_id=0,
    bos_token_id=None,
    eos_token_id=None,
)
SMOLLM2_135M_SHAPE = dict(
    vocab_size=49152,
    hidden_size=576,
    num_hidden_layers=30,
    num_attention_heads=9,
    num_key_value_heads=3,
    intermediate_size=1536,
    max_position_embeddings=8192,
    rms_norm_eps=1e-5,
    rope_theta=100000.0,
    tie_word_embeddings=True,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=2,
)
VICUNA_7B_SHAPE = dict(
    vocab_size=32000,
    hidden_size=4096,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=32,
    intermediate_size=11008,
    max_position_embeddings=4096,
    rms_norm_eps=1e-5,
    tie_word_embeddings=False,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=0,
)
LLAMA3_8B_SHAPE = dict(
    vocab_size=128256,
    hidden_size=4096,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=8,
    intermediate_size=14336,
    max_position_embeddings=8192,
    rms_norm_eps=1e-5,
    rope_theta=500000.0,
    tie_word_embeddings=False,
    bos_token_id=128000,
    eos_token_id=128001,
    pad_token_id=128001,
)
# EVA-CLIP-g as used by BLIP-2 / LLaMA-VID / NaVid (width 1408, MLP 6144, 16 heads, 40 blocks of which
# BLIP-2 keeps 39), expressed as a CLIP vision transformer of that size.
EVA_CLIP_G_SHAPE = dict(
    hidden_size=1408,
    intermediate_size=6144,
    num_hidden_layers=39,
    num_attention_heads=16,
    image_size=224,
    patch_size=14,
    hidden_act="gelu",
    projection_dim=1408,
)
SIGLIP_SO400M_SHAPE = dict(
    hidden_size=1152,
    intermediate_size=4304,
    num_hidden_layers=27,
    num_attention_heads=16,
    image_size=384,
    patch_size=14,
    vision_use_head=False,
)

_BIG = dict(
    lm="llama", lm_tokenizer=None, lm_embeddings=None, lm_train="lora", text_encoder="bert", text_config=BERT_BASE_SHAPE
)

PRESETS: dict[str, dict] = {
    "tiny": dict(
        vision_tower="efficientnet-lite0",
        vision_image_size=256,
        vision_feature="blocks",
        text_encoder="minilm-l6",
        text_config=MINILM_L6_SHAPE,
        lm="scratch",
        lm_config=TINY_LM_SHAPE,
        lm_tokenizer="minilm-l6",
        lm_embeddings="minilm-l6",
        lm_train="full",
        memory="uninavid",
    ),
    "small": dict(
        vision_tower="efficientnet-lite0",
        vision_image_size=256,
        vision_feature="blocks",
        text_encoder="minilm-l6",
        text_config=MINILM_L6_SHAPE,
        lm="smollm2-135m-instruct",
        lm_config=SMOLLM2_135M_SHAPE,
        lm_tokenizer="smollm2-135m-instruct",
        lm_embeddings=None,
        lm_train="lora",
        memory="uninavid",
    ),
    "navid-7b": dict(
        _BIG,
        vision_tower="clip",
        vision_config=EVA_CLIP_G_SHAPE,
        vision_feature_layer=-2,
        lm_config=VICUNA_7B_SHAPE,
        memory="navid",
    ),
    "uninavid-7b": dict(
        _BIG,
        vision_tower="clip",
        vision_config=EVA_CLIP_G_SHAPE,
        vision_feature_layer=-2,
        lm_config=VICUNA_7B_SHAPE,
        memory="uninavid",
    ),
    "navila-8b": dict(
        _BIG,
        vision_tower="siglip",
        vision_config=SIGLIP_SO400M_SHAPE,
        vision_feature_layer=-2,
        lm_config=LLAMA3_8B_SHAPE,
        projector="mlp_downsample",
        current_pool=14,
        navila_pool=14,
        memory="navila",
    ),
}


def preset_config(preset: str, **overrides) -> VidNavConfig:
    """The VidNavConfig of a preset with ``overrides`` applied (unknown names raise VidNavError)."""
    if preset not in PRESETS:
        raise VidNavError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    unknown = sorted(set(overrides) - set(CONFIG_FIELDS))
    if unknown:
        raise VidNavError(f"unknown model setting(s) {', '.join(unknown)}; valid settings: {', '.join(CONFIG_FIELDS)}")
    fields = copy.deepcopy(PRESETS[preset])
    for key in ("lm_config", "vision_config", "text_config"):  # dict overrides merge into the preset's shape
        if isinstance(overrides.get(key), dict) and isinstance(fields.get(key), dict):
            overrides = {**overrides, key: {**fields[key], **overrides[key]}}
    fields.update(overrides)
    fields["preset"] = preset
    return VidNavConfig(**fields)


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype | None):
    if dtype is None:
        yield
        return
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def build_model(
    preset: str,
    *,
    pretrained: bool = True,
    device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
    **overrides,
):
    """A fresh :class:`VidNavForCausalLM` from a preset name.

    Trainable parts get fresh weights; frozen parts are loaded from their packages / local folders
    (``pretrained=False``: random frozen parts too). ``device="meta"`` builds shapes only (no memory, no
    files), e.g. to count parameters of the 7B presets. Other keyword arguments override config fields,
    e.g. ``build_model("tiny", memory="navid", merge_threshold=0.9)``.
    """
    from vidnav.model.modeling_vidnav import VidNavForCausalLM

    config = preset_config(preset, **overrides)
    if isinstance(dtype, str):
        dtype = _parse_dtype(dtype)
    meta = device is not None and torch.device(device).type == "meta"
    # build directly on the target device and dtype: a random 7B model must not pass through CPU fp32
    place = torch.device(device) if device is not None else contextlib.nullcontext()
    with place, _default_dtype(dtype if not meta else None):
        model = VidNavForCausalLM(config, pretrained=pretrained and not meta)
    if not meta and (device is not None or dtype is not None):
        model.to(device=device, dtype=dtype)
    return model


def _parse_dtype(name: str) -> torch.dtype:
    table = {
        "float32": torch.float32,
        "fp32": torch.float32,
        "float16": torch.float16,
        "fp16": torch.float16,
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
    }
    if name not in table:
        raise VidNavError(f"unknown dtype {name!r}; choose one of {', '.join(table)}")
    return table[name]
