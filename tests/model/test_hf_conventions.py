"""The model as transformers users expect it: Auto classes, a processor, config checks in the config, one weight
loader, and LMs from local folders loaded as what they are (or refused)."""

import json
import shutil
import subprocess
import sys

import pytest
import torch

from vidnav import assets
from vidnav.errors import VidNavError
from vidnav.model import VidNavConfig, VidNavForCausalLM, build_model


@pytest.fixture(scope="module")
def feats(tiny_model, real_frames):
    return tiny_model.encode_frames(real_frames[:6])


@pytest.fixture(scope="module")
def tiny_ckpt(tiny_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("hf") / "ckpt"
    tiny_model.save_pretrained(path)
    return path


def _batch(model, feats):
    return model.prepare_batch(
        ["walk past the bikes and stop at the door", "turn left"],
        [feats[:4], feats[4:6]],
        [["forward", "left"], ["stop"]],
    )


# -- Auto classes ----------------------------------------------------------------------------------------------
def test_auto_classes_load_a_vidnav_checkpoint(tiny_ckpt, feats):
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    assert type(AutoConfig.from_pretrained(tiny_ckpt)) is VidNavConfig
    direct = VidNavForCausalLM.from_pretrained(tiny_ckpt)
    b = _batch(direct, feats)
    with torch.no_grad():
        expected = direct(**b).logits
        for auto in (AutoModelForCausalLM, AutoModel):
            model = auto.from_pretrained(tiny_ckpt)
            assert type(model) is VidNavForCausalLM and not model.training
            torch.testing.assert_close(model(**b).logits, expected, rtol=0, atol=0)
            assert model.plan(b) == direct.plan(b)
    # settings that do not change weights pass through, as with VidNavForCausalLM.from_pretrained
    assert AutoModelForCausalLM.from_pretrained(tiny_ckpt, memory="navid").config.memory == "navid"


def test_importing_vidnav_model_registers_the_auto_classes_in_any_order():
    """``import vidnav.model`` stays free of torch (the CLI imports it), yet the Auto classes know vidnav as soon
    as transformers' are imported, before or after it."""
    check = (
        "from transformers import AutoConfig, AutoModel, AutoModelForCausalLM\n"
        "c = AutoConfig.for_model('vidnav')\n"
        "assert type(c).__name__ == 'VidNavConfig', type(c)\n"
        "for auto in (AutoModel, AutoModelForCausalLM):\n"
        "    assert auto._model_mapping[type(c)].__name__ == 'VidNavForCausalLM'\n"
    )
    after = "import sys, vidnav.model\nassert 'torch' not in sys.modules\n" + check
    before = "import transformers.models.auto.modeling_auto\nimport vidnav.model\n" + check
    for code in (after, before):
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]


# -- processing, config, loading -------------------------------------------------------------------------------
def test_the_processor_collates_without_a_model(tiny_model, feats):
    from vidnav.model.processing_vidnav import VidNavProcessor

    proc = VidNavProcessor(tiny_model.config, feature_shape=(tiny_model.num_patches, tiny_model.vision.hidden_size))
    args = (["walk past the bikes", "turn left"], [feats[:4], feats[4:6]], [["forward", "left"], ["stop"]])
    got, want = proc(*args), tiny_model.prepare_batch(*args)
    assert got.keys() == want.keys()
    for key in want:
        assert torch.equal(got[key], want[key]), key
    with pytest.raises(VidNavError, match="empty"):
        proc(["  "], [feats[:1]])


def test_the_config_checks_its_own_settings():
    VidNavConfig().validate()
    for bad, match in [
        (dict(memory="nope"), "unknown memory strategy"),
        (dict(projector="x"), "unknown projector"),
        (dict(lm_train="half"), "lm_train"),
        (dict(num_actions=0), "num_actions"),
        (dict(lm="scratch", lm_train="lora"), "lm_train='full'"),
    ]:
        with pytest.raises(VidNavError, match=match):
            VidNavConfig(**bad).validate()


def test_the_trainer_loads_weights_as_from_pretrained_does(tiny_ckpt, feats):
    """One loader: a checkpoint trained without instruction_states resumes into a model with it (the map starts at
    zero), in the trainer as in from_pretrained."""
    from vidnav.train.trainer import load_checkpoint_weights

    torch.manual_seed(1)
    model = build_model("tiny", use_context_token=True, instruction_states=True).eval()
    load_checkpoint_weights(model, tiny_ckpt)
    ref = VidNavForCausalLM.from_pretrained(tiny_ckpt, instruction_states=True)
    b = _batch(ref, feats)
    with torch.no_grad():
        torch.testing.assert_close(model(**b).logits, ref(**b).logits, rtol=0, atol=0)


# -- the LM from a local folder --------------------------------------------------------------------------------
def _lm_folder(model, path):
    model.save_pretrained(path)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(assets.minilm_dir() / name, path / name)
    return path


def test_a_qwen2_lm_folder_loads_as_qwen2_with_its_biases(tmp_path, feats):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    qwen = Qwen2ForCausalLM(
        Qwen2Config(
            vocab_size=30522,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            tie_word_embeddings=False,
        )
    )
    with torch.no_grad():  # transformers starts biases at zero; dropping zeros would change nothing
        for name, p in qwen.named_parameters():
            if name.endswith("_proj.bias"):
                p.normal_(0, 0.5)
    folder = _lm_folder(qwen.eval(), tmp_path / "qwen2")
    model = build_model(
        "tiny", lm="llama", lm_path=str(folder), lm_tokenizer=None, lm_embeddings=None, lm_train="lora"
    ).eval()
    lm = model._base_lm()
    assert type(lm).__name__ == "Qwen2ForCausalLM"
    ids = torch.randint(0, 30522, (1, 12))
    with torch.no_grad():
        torch.testing.assert_close(lm(ids).logits, qwen(ids).logits)
    b = _batch(model, feats)
    plans = model.plan(b)
    model.save_pretrained(tmp_path / "ckpt")
    loaded = VidNavForCausalLM.from_pretrained(tmp_path / "ckpt")
    assert type(loaded._base_lm()).__name__ == "Qwen2ForCausalLM" and loaded.plan(b) == plans


def test_an_lm_folder_of_another_architecture_is_refused(tmp_path):
    """Phi-3 fuses q/k/v into one projection: read as a LLaMA, its attention would be random weights."""
    from transformers import Phi3Config, Phi3ForCausalLM

    folder = _lm_folder(
        Phi3ForCausalLM(
            Phi3Config(
                vocab_size=30522,
                hidden_size=64,
                intermediate_size=128,
                num_hidden_layers=2,
                num_attention_heads=4,
                num_key_value_heads=2,
                pad_token_id=0,
                bos_token_id=1,
                eos_token_id=2,
            )
        ),
        tmp_path / "phi3",
    )
    assert json.loads((folder / "config.json").read_text())["model_type"] == "phi3"
    with pytest.raises(VidNavError) as err:
        build_model("tiny", lm="llama", lm_path=str(folder), lm_tokenizer=None, lm_embeddings=None, lm_train="lora")
    msg = str(err.value)
    assert str(folder) in msg and "Phi3ForCausalLM" in msg and "phi3" in msg
    assert "LlamaForCausalLM" in msg and "Qwen2ForCausalLM" in msg
