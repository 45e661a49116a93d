"""The model as transformers users expect it: Auto classes, a processor, config checks in the config, one weight
loader, and LMs from local folders loaded as what they are (or refused)."""

import subprocess
import sys

import pytest
import torch

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
    return model.prepare_batch(["walk past the bikes and stop at the door", "turn left"], [feats[:4], feats[4:6]],
                               [["forward", "left"], ["stop"]])


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
    check = ("from transformers import AutoConfig, AutoModel, AutoModelForCausalLM\n"
             "c = AutoConfig.for_model('vidnav')\n"
             "assert type(c).__name__ == 'VidNavConfig', type(c)\n"
             "for auto in (AutoModel, AutoModelForCausalLM):\n"
             "    assert auto._model_mapping[type(c)].__name__ == 'VidNavForCausalLM'\n")
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
    for bad, match in [(dict(memory="nope"), "unknown memory strategy"), (dict(projector="x"), "unknown projector"),
                       (dict(lm_train="half"), "lm_train"), (dict(num_actions=0), "num_actions"),
                       (dict(lm="scratch", lm_train="lora"), "lm_train='full'")]:
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
