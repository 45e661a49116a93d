"""The big presets' code path for users with local weight folders, exercised with tiny random folders."""

import shutil

import pytest
import torch

from vidnav import assets
from vidnav.model import ACTIONS, VidNavForCausalLM, build_model


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    from transformers import (
        BertConfig,
        BertModel,
        CLIPVisionConfig,
        CLIPVisionModel,
        LlamaConfig,
        LlamaForCausalLM,
        SiglipVisionConfig,
        SiglipVisionModel,
    )

    root = tmp_path_factory.mktemp("local_weights")
    torch.manual_seed(0)
    CLIPVisionModel(
        CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=64,
            patch_size=8,
        )
    ).save_pretrained(root / "clip")
    SiglipVisionModel(
        SiglipVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=56,
            patch_size=8,
            vision_use_head=False,
        )
    ).save_pretrained(root / "siglip")
    BertModel(
        BertConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
    ).save_pretrained(root / "bert")
    LlamaForCausalLM(
        LlamaConfig(
            vocab_size=30522,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
        )
    ).save_pretrained(root / "llama")
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        for dest in ("bert", "llama"):
            shutil.copy(assets.minilm_dir() / name, root / dest / name)
    return root


@pytest.mark.parametrize("preset", ["navid-7b", "uninavid-7b", "navila-8b"])
def test_big_preset_from_local_folders(folders, preset, tmp_path):
    vision = folders / ("siglip" if preset == "navila-8b" else "clip")
    pools = dict(current_pool=4, navila_pool=4) if preset == "navila-8b" else dict(current_pool=8)
    torch.manual_seed(0)
    model = build_model(
        preset, vision_path=str(vision), text_path=str(folders / "bert"), lm_path=str(folders / "llama"), **pools
    ).eval()
    assert model.vision.grid == (7 if preset == "navila-8b" else 8)  # 56/8 and 64/8
    frames = torch.randint(0, 256, (5, 224, 224, 3), dtype=torch.uint8)
    feats = model.encode_frames(frames)
    assert feats.shape == (5, model.vision.num_patches, 32)
    batch = model.prepare_batch(["go to the door"], [feats], [["forward", "left"]])
    model(**batch).loss.backward()
    with torch.no_grad():  # give LoRA a non-zero update so the adapter round trip is meaningful
        for name, p in model.lm.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    model.eval()
    plans = model.plan(batch)
    assert len(plans[0]) == 4 and set(plans[0]) <= set(ACTIONS)
    model.save_pretrained(tmp_path / "ckpt")
    # the checkpoint refers to the folders; none of their weights is inside
    from safetensors import safe_open

    with safe_open(str(tmp_path / "ckpt" / "model.safetensors"), "pt") as f:
        assert not [k for k in f.keys() if k.startswith(("vision.", "text_encoder.", "lm."))]
    loaded = VidNavForCausalLM.from_pretrained(tmp_path / "ckpt")
    assert loaded.plan(batch) == plans
    torch.testing.assert_close(loaded(**batch).logits, model(**batch).logits)
