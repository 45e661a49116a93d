"""VidNavForCausalLM: loss, constrained decoding, batching, checkpoints, presets, and a tiny overfit."""

import json

import pytest
import torch
import torch.nn.functional as F

from vidnav.errors import VidNavError
from vidnav.model import ACTIONS, MEMORY_STRATEGIES, PRESETS, VidNavForCausalLM, build_model


@pytest.fixture(scope="module")
def feats(tiny_model, real_frames):
    return tiny_model.encode_frames(real_frames[:12])


def _batch(model, feats, targets=True):
    instructions = ["walk past the bikes and stop at the door", "turn left"]
    tg = [["forward", "left"], ["stop"]] if targets else None
    return model.prepare_batch(instructions, [feats[:7], feats[7:10]], tg)


def test_prepare_batch_layout(tiny_model, feats):
    b = _batch(tiny_model, feats)
    assert b["visual_features"].shape == (10, 64, 320)
    assert b["num_frames"].tolist() == [7, 3]
    codec = tiny_model.codec
    # targets padded with stop to k=4 words, one token each for the WordPiece tokenizer
    assert b["labels"].tolist() == [codec.encode(["forward", "left", "stop", "stop"]), codec.encode(["stop"] * 4)]
    assert b["attention_mask"].sum(1).tolist()[1] == 2  # "turn left", no [CLS]/[SEP] for the LM
    assert b["query_mask"].sum(1).tolist()[1] == 4  # the text encoder sees [CLS] turn left [SEP]


def test_loss_covers_the_answer_tokens_only(tiny_model, feats):
    b = _batch(tiny_model, feats)
    out = tiny_model(**b)
    assert out.logits.shape == (2, 4, 30522)
    # recompute: full-sequence logits, cross-entropy at the positions that predict the answer
    embeds, mask, pos, n_ctx = tiny_model._assemble(**{k: v for k, v in b.items()})
    base = tiny_model._base_lm()
    with torch.no_grad():
        hidden = base.model(inputs_embeds=embeds, attention_mask=mask, position_ids=pos).last_hidden_state
        logits = base.lm_head(hidden)
    answer_logits = logits[:, n_ctx - 1 : n_ctx - 1 + 4]
    expected = F.cross_entropy(answer_logits.flatten(0, 1), b["labels"].flatten())
    torch.testing.assert_close(out.loss.detach(), expected, rtol=1e-5, atol=1e-5)
    # the answer embeddings come right after the <act> marker at the end of each (left-padded) context
    assert torch.all(mask[:, n_ctx - 1] == 1) and mask.shape[1] == n_ctx + 4


def test_gradients_reach_trainable_parts_only(tiny_model, feats):
    b = _batch(tiny_model, feats)
    tiny_model.zero_grad(set_to_none=True)
    tiny_model(**b).loss.backward()
    named = dict(tiny_model.named_parameters())
    for name in (
        "projector.fc1.weight",
        "context.query_proj.weight",
        "context.key_proj.weight",
        "context.value_proj.weight",
        "markers",
        "lm.model.layers.0.self_attn.q_proj.weight",
    ):
        assert named[name].grad is not None and named[name].grad.abs().sum() > 0, name
    for name, p in named.items():
        if name.startswith(("vision.", "text_encoder.", "lm.model.embed_tokens", "lm.lm_head")):
            assert p.grad is None, name
    tiny_model.zero_grad(set_to_none=True)


def test_constrained_decoding_is_valid_and_deterministic_on_random_weights(feats):
    for seed in range(3):
        torch.manual_seed(seed)
        model = build_model("tiny", memory="navid").eval()
        b = _batch(model, feats, targets=False)
        plans = model.plan(b)
        assert len(plans) == 2
        assert all(len(p) == 4 and set(p) <= set(ACTIONS) for p in plans)
        assert model.plan(b) == plans


def test_batched_planning_equals_one_by_one(tiny_model, feats):
    """Left padding and position ids must not change a sample's answer."""
    b = _batch(tiny_model, feats, targets=False)
    both = tiny_model.plan(b)
    first = tiny_model.plan(tiny_model.prepare_batch(["walk past the bikes and stop at the door"], [feats[:7]]))
    second = tiny_model.plan(tiny_model.prepare_batch(["turn left"], [feats[7:10]]))
    assert both == first + second
    # and the logits agree numerically
    out_b = tiny_model(**b).logits[:, -1]
    out_1 = tiny_model(**tiny_model.prepare_batch(["turn left"], [feats[7:10]])).logits[:, -1]
    torch.testing.assert_close(out_b[1:], out_1, rtol=1e-4, atol=1e-4)


def test_score_and_plan_equals_forward_loss_and_plan(tiny_model, feats):
    """One prefill for both: the loss of model(**batch) and the plans of model.plan, padding included."""
    b = tiny_model.prepare_batch(
        ["walk past the bikes and stop at the door", "turn left"],
        [feats[:7], feats[7:10]],
        [["forward", "left", "right"], ["stop"]],
    )
    loss, plans = tiny_model.score_and_plan(b)
    with torch.no_grad():
        torch.testing.assert_close(loss, tiny_model(**b).loss, rtol=1e-4, atol=1e-5)
    assert plans == tiny_model.plan(b)
    # the labels, not the plan, are scored: other labels give another loss and the same plans
    other = dict(
        b, labels=tiny_model.prepare_batch(["x", "y"], [feats[:1], feats[:1]], [["right"] * 4, ["left"]])["labels"]
    )
    loss2, plans2 = tiny_model.score_and_plan(other)
    assert plans2 == plans and abs(float(loss2) - float(loss)) > 1e-3
    with torch.no_grad():
        torch.testing.assert_close(loss2, tiny_model(**other).loss, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("memory", MEMORY_STRATEGIES)
def test_every_memory_strategy_trains_and_plans(feats, memory):
    torch.manual_seed(0)
    model = build_model("tiny", memory=memory, uninavid_window=3)
    b = _batch(model, feats)
    out = model(**b)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    plans = model.eval().plan(b)
    assert all(len(p) == 4 and set(p) <= set(ACTIONS) for p in plans)


def test_save_load_roundtrip_gives_identical_actions(tiny_model, feats, tmp_path):
    b = _batch(tiny_model, feats, targets=False)
    before = tiny_model.plan(b)
    logits = tiny_model(**b).logits
    tiny_model.save_pretrained(tmp_path / "ckpt")
    files = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert files == ["config.json", "model.safetensors", "run_options.json"]
    assert json.loads((tmp_path / "ckpt" / "run_options.json").read_text())["break_loops"] is False  # a preset's
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert config["model_type"] == "vidnav" and config["preset"] == "tiny" and config["lm_embeddings"] == "minilm-l6"
    from safetensors import safe_open

    with safe_open(str(tmp_path / "ckpt" / "model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert not [k for k in keys if k.startswith(("vision.", "text_encoder.", "lm.model.embed_tokens", "lm.lm_head"))]
    assert "markers" in keys and "projector.fc1.weight" in keys
    size = (tmp_path / "ckpt" / "model.safetensors").stat().st_size
    assert size <= 50e6, f"trainable weights take {size / 1e6:.1f} MB"
    loaded = VidNavForCausalLM.from_pretrained(tmp_path / "ckpt")
    assert loaded.plan(b) == before
    torch.testing.assert_close(loaded(**b).logits, logits)
    # weight-free overrides apply on load
    assert VidNavForCausalLM.from_pretrained(tmp_path / "ckpt", memory="navid").config.memory == "navid"


def test_loading_a_broken_checkpoint_says_what_is_wrong(tiny_model, tmp_path):
    with pytest.raises(VidNavError, match="not a vidnav checkpoint"):
        VidNavForCausalLM.from_pretrained(tmp_path)
    tiny_model.save_pretrained(tmp_path / "c")
    from safetensors.torch import load_file, save_file

    state = load_file(str(tmp_path / "c" / "model.safetensors"))
    state.pop("markers")
    save_file(state, str(tmp_path / "c" / "model.safetensors"))
    with pytest.raises(VidNavError, match="missing.*markers"):
        VidNavForCausalLM.from_pretrained(tmp_path / "c")


def test_instruction_states_start_as_the_checkpoint_and_put_context_on_each_word(tiny_model, feats, tmp_path):
    """A checkpoint trained without instruction_states loads with it as the same model (the map starts at zero);
    once trained, each instruction word carries the text encoder's state of it in its sentence."""
    b = _batch(tiny_model, feats)
    tiny_model.save_pretrained(tmp_path / "plain")
    model = VidNavForCausalLM.from_pretrained(tmp_path / "plain", instruction_states=True)
    torch.testing.assert_close(model(**b).logits, tiny_model(**b).logits)
    model.train()
    model(**b).loss.backward()
    assert model.instruction_adapter.weight.grad.abs().sum() > 0  # it learns from the action loss
    model.eval()
    torch.manual_seed(3)
    with torch.no_grad():
        model.instruction_adapter.weight.normal_(std=0.05)

    def door_embedding(text):
        q = model.query_tokenizer([text], return_tensors="pt")
        ids = torch.tensor(model.tokenizer(text, add_special_tokens=False)["input_ids"])
        prefix = model.prefix_embeds(
            ids, model.encode_queries(q["input_ids"], q["attention_mask"])[0], q["attention_mask"][0]
        )
        start = len(model.processor.prompt_ids()) + 1  # after the prompt and <nav>
        return prefix[start + ids.tolist().index(model.tokenizer.convert_tokens_to_ids("door"))]

    plain = tiny_model.prefix_embeds(
        torch.tensor(tiny_model.tokenizer("the door", add_special_tokens=False)["input_ids"])
    )
    a, c = door_embedding("leave the kitchen by the door on the left"), door_embedding("stop at the door")
    assert not torch.allclose(a, c, atol=1e-3)  # the same word, two sentences: two inputs
    assert not torch.allclose(a, plain[len(tiny_model.processor.prompt_ids()) + 2], atol=1e-3)
    logits = model(**b).logits
    model.save_pretrained(tmp_path / "states")
    loaded = VidNavForCausalLM.from_pretrained(tmp_path / "states")
    assert loaded.config.instruction_states
    torch.testing.assert_close(loaded(**b).logits, logits)
    with pytest.raises(VidNavError, match="query_hidden"):
        model.prefix_embeds(torch.tensor([2000]))
    with pytest.raises(VidNavError, match="instruction_states needs the LM to read the text encoder's tokens"):
        build_model("small", device="meta", instruction_states=True)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(instructions=["go"], features=[torch.zeros(2, 64, 100)]), r"shape \[T>=1, 64, 320\]"),
        (dict(instructions=["go"], features=[torch.zeros(0, 64, 320)]), r"T>=1"),
        (dict(instructions=["go"], features=[torch.full((1, 64, 320), float("nan"))]), "finite"),
        (dict(instructions=["  "], features=[torch.zeros(1, 64, 320)]), "empty"),
        (dict(instructions="go", features=[torch.zeros(1, 64, 320)]), "list of strings"),
        (dict(instructions=["go", "stop"], features=[torch.zeros(1, 64, 320)]), "one feature tensor per instruction"),
        (dict(instructions=["go"], features=[torch.zeros(1, 64, 320)], targets=[["jump"]]), "need action words from"),
        (dict(instructions=["go"], features=[torch.zeros(1, 64, 320)], targets=[[]]), "need action words from"),
    ],
)
def test_prepare_batch_errors(tiny_model, kwargs, match):
    with pytest.raises(VidNavError, match=match):
        tiny_model.prepare_batch(**kwargs)


def test_unknown_preset_and_setting_are_clear_errors():
    with pytest.raises(VidNavError, match="tiny, small, navid-7b, uninavid-7b, navila-8b"):
        build_model("huge")
    with pytest.raises(VidNavError, match="memroy"):
        build_model("tiny", device="meta", memroy="navid")
    with pytest.raises(VidNavError, match="lm_path"):
        build_model("navid-7b")  # needs local weights


# -- presets on the meta device: shapes and parameter counts ------------------------------------------------
def _count(module):
    return sum(p.numel() for n, p in module.named_parameters() if "lora_" not in n)


@pytest.mark.parametrize(
    "preset, lm_params, vision_params, text_params, patches, width",
    [
        ("tiny", 18_801_792, 2_958_848, 22_565_376, 64, 320),
        ("small", 134_515_008, 2_958_848, 22_565_376, 64, 320),
        (
            "navid-7b",
            6_738_415_616,
            985_953_664,
            108_891_648,
            256,
            1408,
        ),  # Vicuna-7B, EVA-CLIP-g (39 blocks), BERT-base
        ("uninavid-7b", 6_738_415_616, 985_953_664, 108_891_648, 256, 1408),
        ("navila-8b", 8_030_261_248, 412_987_248, 108_891_648, 729, 1152),  # LLaMA-3-8B, SigLIP-so400m w/o head
    ],
)
def test_preset_shapes_on_meta(preset, lm_params, vision_params, text_params, patches, width):
    model = build_model(preset, device="meta")
    assert _count(model._base_lm()) == lm_params
    assert _count(model.vision) == vision_params
    assert _count(model.text_encoder) == text_params
    assert model.vision.num_patches == patches and model.vision.hidden_size == width
    total, trainable = model.num_parameters_split()
    assert 0 < trainable < total
    if PRESETS[preset].get("lm_train") == "lora":
        assert all(("lora_" in n) for n, p in model.lm.named_parameters() if p.requires_grad)


def test_navila_preset_gives_196_tokens_per_frame():
    model = build_model("navila-8b", device="meta")
    b = model.memory.budget(5)
    assert (b.current, b.short_term) == (196, 7 * 196)
    # and the projector really produces them from a 27x27 SigLIP grid
    from vidnav.model.frame_tokens import FrameEncoder
    from vidnav.model.projector import build_projector

    enc = FrameEncoder(build_projector("mlp_downsample", 1152, 64), 27)
    assert enc.content(torch.randn(2, 729, 1152), 14).shape == (2, 196, 64)


# -- learning ------------------------------------------------------------------------------------------------
def test_tiny_overfits_two_instructions_times_two_videos(real_frames):
    """A shrunken tiny model must learn four different answers from instruction × frames in a few hundred steps."""
    torch.manual_seed(0)
    model = build_model("tiny", memory="navid", lm_config={"num_hidden_layers": 1, "intermediate_size": 256})
    feats_a = model.encode_frames(real_frames[:3])
    feats_b = model.encode_frames(real_frames[-3:])
    instructions = ["go to the kitchen", "go to the kitchen", "walk into the bedroom", "walk into the bedroom"]
    features = [feats_a, feats_b, feats_a, feats_b]
    targets = [
        ["forward", "forward", "left", "stop"],
        ["right", "right", "forward", "forward"],
        ["left", "forward", "forward", "stop"],
        ["stop"],
    ]
    batch = model.prepare_batch(instructions, features, targets)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=2e-3)
    model.train()
    for step in range(300):
        loss = model(**batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        if loss.item() < 0.01:
            break
    model.eval()
    assert model.plan(batch) == [t + ["stop"] * (4 - len(t)) for t in targets], f"loss {loss.item():.3f} at {step}"


@pytest.mark.slow
def test_small_preset_with_lora(feats, tmp_path):
    """SmolLM2-135M (converted once from the package's GGUF) with LoRA: trains, saves an adapter, reloads."""
    torch.manual_seed(0)
    model = build_model("small", memory="navid")
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert names and all(("lora_" in n) or not n.startswith("lm.") for n in names)
    b = model.prepare_batch(["walk past the bikes", "turn left"], [feats[:4], feats[4:6]], [["forward"], ["left"]])
    model(**b).loss.backward()
    model.eval()
    plans = model.plan(b)
    assert all(len(p) == 4 and set(p) <= set(ACTIONS) for p in plans)
    with torch.no_grad():  # make the adapter non-trivial (LoRA B starts at zero)
        for n, p in model.lm.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.02)
    plans = model.plan(b)
    model.save_pretrained(tmp_path / "s")
    assert (tmp_path / "s" / "adapter" / "adapter_model.safetensors").is_file()
    assert (tmp_path / "s" / "model.safetensors").stat().st_size < 10e6  # no base LM inside
    loaded = VidNavForCausalLM.from_pretrained(tmp_path / "s")
    assert loaded.plan(b) == plans
    torch.testing.assert_close(loaded(**b).logits, model(**b).logits)


def test_frozen_parts_hold_the_package_weights(tiny_model):
    """post_init must not re-initialise what was loaded from the weight packages."""
    from safetensors.torch import load_file

    from vidnav import assets

    minilm = load_file(str(assets.minilm_dir() / "model.safetensors"))
    key = next(k for k in minilm if k.endswith("encoder.layer.0.attention.self.query.weight"))
    torch.testing.assert_close(tiny_model.text_encoder.bert.encoder.layer[0].attention.self.query.weight, minilm[key])
    words = next(v for k, v in minilm.items() if k.endswith("word_embeddings.weight"))
    emb = tiny_model._base_lm().get_input_embeddings().weight
    torch.testing.assert_close(emb, words)
    assert tiny_model._base_lm().get_output_embeddings().weight.data_ptr() == emb.data_ptr()  # tied
    lite = torch.load(assets.efficientnet_lite0_weights(), weights_only=True)
    torch.testing.assert_close(tiny_model.vision.net._bn0.running_mean, lite["_bn0.running_mean"])
    torch.testing.assert_close(
        tiny_model.vision.net._blocks[5]._project_conv.weight, lite["_blocks.5._project_conv.weight"]
    )
