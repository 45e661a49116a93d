"""Packed training sequences give what one sequence per sample gives: loss, logits, gradients, weights."""

import pytest
import torch

from vidnav.data.dataset import NavSamples, synthetic_rollout
from vidnav.data.packing import PackedCollator, PackedSamples
from vidnav.errors import VidNavError
from vidnav.model import build_model

INSTRUCTION = "walk out of the bedroom, past the desk and stop at the red barrel in the kitchen"
FRAMES = [0, 2, 3, 6, 9]  # with uninavid_window=4, frames 6 and 9 have merged history: rows of their own
TARGETS = [["forward", "left"], ["stop"], ["right", "right", "forward"], ["left"], ["forward"] * 4]


@pytest.fixture(scope="module")
def feats():
    g = torch.Generator().manual_seed(1)
    return torch.randn(10, 64, 320, generator=g).abs()


def _model(memory: str, **extra):
    torch.manual_seed(0)
    return build_model(
        "tiny",
        memory=memory,
        use_context_token=True,
        current_pool=2,
        history_pool=1,
        lm_config={"num_hidden_layers": 2},
        **extra,
    ).eval()


MODELS = {
    "navid": dict(memory="navid"),
    "uninavid": dict(memory="uninavid", uninavid_window=4, merge_threshold=0.0),  # merges every old frame
    "navila": dict(memory="navila"),
    "llamavid": dict(memory="llamavid"),
    "instruction_states": dict(memory="uninavid", instruction_states=True),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_packed_loss_and_logits_equal_per_sample(name, feats):
    model = _model(**MODELS[name])
    if name == "uninavid":  # frames 6 and 9 run in rows of their own, after a merge
        assert model.memory.shared_history_frames == 4
    if name == "instruction_states":  # the map starts at zero; make it matter
        torch.nn.init.normal_(model.instruction_adapter.weight, std=0.05)
    with torch.no_grad():
        per = model(**model.prepare_batch([INSTRUCTION] * len(FRAMES), [feats[: t + 1] for t in FRAMES], TARGETS))
        packed = model(**model.prepare_packed_batch([INSTRUCTION], [feats], [FRAMES], [TARGETS]))
    torch.testing.assert_close(packed.logits, per.logits, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(packed.loss, per.loss, rtol=1e-5, atol=1e-5)


def test_gradients_equal_per_sample(feats):
    model = _model(**MODELS["uninavid"]).train()
    grads = []
    for batch in (
        model.prepare_batch([INSTRUCTION] * len(FRAMES), [feats[: t + 1] for t in FRAMES], TARGETS),
        model.prepare_packed_batch([INSTRUCTION], [feats], [FRAMES], [TARGETS]),
    ):
        model.zero_grad(set_to_none=True)
        model(**batch).loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and "projector.fc1.weight" in grads[0]
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=1e-3, atol=1e-5, msg=name)


def test_weights_count_blocks_like_listed_copies_and_sequences_batch(feats):
    model = _model(**MODELS["navid"])
    weights = [1.0, 3.0, 1.0, 2.0, 1.0]
    listed = [i for i, w in enumerate(weights) for _ in range(int(w))]
    with torch.no_grad():
        per = model(
            **model.prepare_batch(
                [INSTRUCTION] * len(listed), [feats[: FRAMES[i] + 1] for i in listed], [TARGETS[i] for i in listed]
            )
        ).loss
        # two sequences of different lengths and instructions in one batch, the weights split between them
        packed = model(
            **model.prepare_packed_batch(
                [INSTRUCTION, INSTRUCTION],
                [feats[:4], feats],
                [FRAMES[:3], FRAMES[3:]],
                [TARGETS[:3], TARGETS[3:]],
                [weights[:3], weights[3:]],
            )
        ).loss
    torch.testing.assert_close(packed, per, rtol=1e-5, atol=1e-5)


def test_bad_packed_batches_raise(feats):
    model = _model(**MODELS["navid"])
    with pytest.raises(VidNavError, match="ascending"):
        model.prepare_packed_batch([INSTRUCTION], [feats], [[3, 2]], [[["stop"], ["stop"]]])
    with pytest.raises(VidNavError, match=r"0\.\.9"):
        model.prepare_packed_batch([INSTRUCTION], [feats], [[10]], [[["stop"]]])
    with pytest.raises(VidNavError, match="one of each"):
        model.prepare_packed_batch([INSTRUCTION], [feats], [[1, 2]], [[["stop"]]])
    with pytest.raises(VidNavError, match="> 0"):
        model.prepare_packed_batch([INSTRUCTION], [feats], [[1]], [[["stop"]]], [[0.0]])


def test_packed_samples_turn_the_listing_into_weights(tmp_path):
    data = synthetic_rollout(tmp_path / "R", n_trajectories=3, n_frames=9, seed=2)
    listing = NavSamples([data], stride=2, start_frames=3, start_repeat=1, end_frames=2, end_repeat=2)
    packed = PackedSamples(listing, frames=4)
    want: dict = {}
    for j, t in listing.samples:
        want[(j, t)] = want.get((j, t), 0) + 1
    got = {
        (it["trajectory"], t): w
        for i in range(len(packed))
        for it in [packed[i]]
        for t, w in zip(it["frames"], it["weights"])
    }
    assert got == want and packed.supervised_frames == len(want)
    assert all(len(packed[i]["frames"]) <= 4 for i in range(len(packed)))
    # frame 8 (the stop) is listed by the stride, the end and twice more; frame 0 by the stride and the start
    assert got[(0, 8)] == 3 and got[(0, 0)] == 2 and got[(0, 1)] == 1 and (0, 3) not in got
    first = packed[0]
    assert first["targets"] == [listing.trajectories[0].targets[t] for t in first["frames"]]

    model = _model(**MODELS["navid"])
    batch = PackedCollator(model, packed)([packed[0], packed[1]])
    assert batch["num_blocks"].tolist() == [len(packed[0]["frames"]), len(packed[1]["frames"])]
    assert batch["visual_features"].shape[0] == packed[0]["frames"][-1] + packed[1]["frames"][-1] + 2
    assert batch["sample_index"].tolist() == [0, 1]
    with pytest.raises(VidNavError, match="max_history"):
        PackedSamples(NavSamples([data], max_history=4), frames=4)
    with pytest.raises(VidNavError, match="pack_frames"):
        PackedSamples(listing, frames=0)
