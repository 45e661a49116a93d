"""The model as transformers users expect it: Auto classes, a processor, config checks in the config, one weight
loader, and LMs from local folders loaded as what they are (or refused)."""

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
