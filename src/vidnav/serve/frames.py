"""Camera frames over HTTP: PNG or JPEG bytes in, a checked uint8 RGB array [H, W, 3] out.

Everything a client can get wrong raises :class:`FrameError` with the HTTP status and a message that says what
to send instead; the dimensions are checked from the header, before any pixel is decoded, so a small file that
declares a huge image costs nothing.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np

FORMATS = ("PNG", "JPEG")


class FrameError(Exception):
    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.message, self.status = message, status


@dataclass(frozen=True)
class FrameLimits:
    min_side: int = 8  # the model's smallest frame
    max_side: int = 2048  # per side; the model resizes every frame to its tower's input size (224 by default)


def decode_frame(data: bytes, limits: FrameLimits = FrameLimits(), field: str = "image") -> np.ndarray:
    """An 8-bit RGB PNG or JPEG → uint8 [H, W, 3]; anything else raises :class:`FrameError`."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise FrameError(f"field {field!r} is empty; send one RGB camera frame as a PNG or JPEG file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data), formats=FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise FrameError(
            f"field {field!r} declares an image too large to decode ({_short(e)}); frames must be "
            f"{limits.min_side} to {limits.max_side} pixels per side: resize it before sending"
        ) from None
    except UnidentifiedImageError:
        raise FrameError(
            f"field {field!r} is not a PNG or JPEG image; send one RGB camera frame encoded as PNG (lossless) or JPEG"
        ) from None
    except Exception as e:  # Pillow raises assorted errors (SyntaxError, ValueError, struct.error) on garbage
        raise FrameError(
            f"field {field!r} could not be read as PNG or JPEG ({_short(e)}); send a whole PNG or JPEG file"
        ) from None
    w, h = im.size
    if not (limits.min_side <= w <= limits.max_side and limits.min_side <= h <= limits.max_side):
        raise FrameError(
            f"field {field!r} is {w}x{h} pixels; frames must be {limits.min_side} to "
            f"{limits.max_side} pixels per side (the model resizes them to its input size): resize "
            "the frame before sending it"
        )
    if im.mode != "RGB":
        raise FrameError(
            f"field {field!r} is a {im.mode} image ({_MODES.get(im.mode, 'not 8-bit RGB')}); send "
            "8-bit RGB (3 channels): convert it first, e.g. PIL's image.convert('RGB')"
        )
    try:
        im.load()
        rgb = np.array(im, dtype=np.uint8)  # a writable copy (torch warns on read-only arrays)
    except Exception as e:  # truncated or corrupt pixel data
        raise FrameError(
            f"field {field!r}: the {im.format} data is truncated or corrupt ({_short(e)}); send the whole file"
        ) from None
    if rgb.shape != (h, w, 3):
        raise FrameError(f"field {field!r} decoded to shape {rgb.shape}, not [H, W, 3] RGB; send 8-bit RGB")
    return rgb


def encode_png(rgb: np.ndarray) -> bytes:
    """uint8 [H, W, 3] → PNG bytes (lossless, fast compression): what RemoteAgent sends."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb), "RGB").save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


_MODES = {
    "L": "greyscale",
    "LA": "greyscale with alpha",
    "RGBA": "RGB with an alpha channel",
    "P": "palette",
    "1": "1-bit",
    "I": "32-bit integer",
    "I;16": "16-bit greyscale",
    "F": "32-bit float",
    "CMYK": "CMYK",
    "YCbCr": "YCbCr",
    "LAB": "Lab",
    "HSV": "HSV",
    "PA": "palette with alpha",
    "RGBX": "RGB with padding",
}


def _short(e: Exception) -> str:
    text = str(e) or type(e).__name__
    return text if len(text) <= 160 else text[:157] + "..."
