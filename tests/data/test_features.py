import numpy as np
import pytest

from vidnav.data.features import FeatureStore
from vidnav.errors import VidNavError


def test_roundtrip_and_reopen(tmp_path):
    s = FeatureStore(tmp_path / "f", shape=(4, 3), encoder="enc")
    a = np.random.default_rng(0).normal(size=(5, 4, 3)).astype(np.float32)
    b = np.random.default_rng(1).normal(size=(2, 4, 3)).astype(np.float32)
    s.add("a", a)
    s.add("b", b)
    np.testing.assert_allclose(s.get("a"), a.astype(np.float16))
    np.testing.assert_allclose(s.get("b", stop=1), b[:1].astype(np.float16))
    s2 = FeatureStore(tmp_path / "f")
    assert set(s2.keys()) == {"a", "b"} and s2.n_rows == 7
    np.testing.assert_allclose(s2.get("b"), b.astype(np.float16))
    with pytest.raises(VidNavError, match="opened to read"):
        s2.add("c", b)
    w = FeatureStore(tmp_path / "f", shape=(4, 3))
    with pytest.raises(VidNavError, match="already holds"):
        w.add("a", a)
    with pytest.raises(VidNavError, match="expected"):
        w.add("c", np.zeros((2, 5, 3)))
    with pytest.raises(VidNavError, match="not"):
        FeatureStore(tmp_path / "f", shape=(8, 3))
    with pytest.raises(VidNavError, match="encoder"):
        FeatureStore(tmp_path / "f", shape=(4, 3), encoder="other")


def test_interrupted_append_is_rolled_back(tmp_path):
    s = FeatureStore(tmp_path / "f", shape=(2, 2))
    s.add("a", np.ones((3, 2, 2)))
    # a crash after writing rows but before (or while) writing the index line
    with open(tmp_path / "f" / "shard-00000.f16", "ab") as f:
        f.write(np.zeros((4, 2, 2), np.float16).tobytes())
    with open(tmp_path / "f" / "index.jsonl", "ab") as f:
        f.write(b'{"key": "b", "sha')
    shard, index = (tmp_path / "f" / "shard-00000.f16").read_bytes(), (tmp_path / "f" / "index.jsonl").read_bytes()
    reader = FeatureStore(tmp_path / "f")  # a reader (training, validate) while the writer may be mid-append:
    assert reader.keys() == ["a"]          # it ignores the unindexed rows and the torn line, and cuts nothing
    np.testing.assert_allclose(reader.get("a"), 1.0)
    assert (tmp_path / "f" / "shard-00000.f16").read_bytes() == shard
    assert (tmp_path / "f" / "index.jsonl").read_bytes() == index
    s2 = FeatureStore(tmp_path / "f", shape=(2, 2))  # the writer, resuming after the crash, repairs
    assert s2.keys() == ["a"]
    assert (tmp_path / "f" / "shard-00000.f16").stat().st_size == 3 * 2 * 2 * 2
    s2.add("b", np.full((2, 2, 2), 7.0))
    s3 = FeatureStore(tmp_path / "f")
    np.testing.assert_allclose(s3.get("b"), 7.0)
    np.testing.assert_allclose(s3.get("a"), 1.0)
