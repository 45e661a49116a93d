"""Frames over HTTP: what decode_frame takes and how it refuses everything else."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from vidnav.serve.frames import FrameError, FrameLimits, decode_frame, encode_png


def _png_declaring(w: int, h: int) -> bytes:
    """A PNG whose header declares w x h RGB pixels, with no pixel data."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def _encode(rgb, fmt="PNG", mode=None):
    buf = io.BytesIO()
    Image.fromarray(rgb, mode).save(buf, format=fmt)
    return buf.getvalue()


def test_png_round_trip_is_exact_and_jpeg_is_accepted():
    rgb = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    out = decode_frame(encode_png(rgb))
    assert out.dtype == np.uint8 and out.shape == (37, 53, 3) and out.flags.writeable
    np.testing.assert_array_equal(out, rgb)
    jpeg = decode_frame(_encode(rgb, "JPEG"))
    assert jpeg.shape == (37, 53, 3)


@pytest.mark.parametrize(
    "data, says",
    [
        (b"", "is empty"),
        (b"hello, this is not an image", "not a PNG or JPEG"),
        (_encode(np.zeros((16, 16, 3), np.uint8), "BMP"), "not a PNG or JPEG"),  # a real image, another format
        (encode_png(np.full((64, 64, 3), 7, np.uint8))[:60], "truncated or corrupt"),
        (_png_declaring(0, 0), "PNG"),  # Pillow refuses a zero-size header itself
        (_png_declaring(4, 4), "4x4 pixels; frames must be 8 to 2048"),
        (_png_declaring(3000, 16), "3000x16 pixels"),
        (_png_declaring(200_000, 200_000), "too large to decode"),
        (_encode(np.zeros((16, 16), np.uint8)), r"L image \(greyscale\)"),
        (_encode(np.zeros((16, 16, 4), np.uint8)), "RGBA image"),
        (_encode(np.zeros((16, 16, 3), np.uint8)).replace(b"IHDR", b"IHDX"), "PNG"),
    ],
    ids=["empty", "text", "bmp", "truncated", "0x0", "4x4", "too-wide", "bomb", "grey", "rgba", "bad-chunk"],
)
def test_bad_frames_are_refused_with_what_to_fix(data, says):
    with pytest.raises(FrameError, match=says) as e:
        decode_frame(data)
    assert e.value.status == 422


def test_limits_are_the_servers():
    rgb = np.zeros((40, 20, 3), np.uint8)
    assert decode_frame(encode_png(rgb), FrameLimits(max_side=40)).shape == (40, 20, 3)
    with pytest.raises(FrameError, match="20x40 pixels; frames must be 8 to 39"):
        decode_frame(encode_png(rgb), FrameLimits(max_side=39))
