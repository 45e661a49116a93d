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
    assert reader.keys() == ["a"]  # it ignores the unindexed rows and the torn line, and cuts nothing
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


def _store_with(tmp_path, *lengths):
    s = FeatureStore(tmp_path / "f", shape=(2, 2), encoder="enc")
    for i, n in enumerate(lengths):
        s.add(f"k{i}", np.full((n, 2, 2), float(i + 1)))
    return tmp_path / "f"


@pytest.mark.parametrize("writer", [False, True])
def test_a_bad_index_line_before_the_last_is_refused_not_cut(tmp_path, writer):
    """Defect 1 of issue #33: a corrupt line in the middle of index.jsonl made the writer drop that line and every
    line after it and cut the shard, losing trajectories another file still lists as collected."""
    root = _store_with(tmp_path, 3, 2, 4)
    lines = (root / "index.jsonl").read_bytes().split(b"\n")
    lines[1] = b'{"key": "k1", "sha'  # damaged in the middle, not torn by a kill at the end
    (root / "index.jsonl").write_bytes(b"\n".join(lines))
    index, shard = (root / "index.jsonl").read_bytes(), (root / "shard-00000.f16").read_bytes()
    with pytest.raises(VidNavError, match=r"index\.jsonl.*line 2"):
        FeatureStore(root, shape=(2, 2)) if writer else FeatureStore(root)
    assert (root / "index.jsonl").read_bytes() == index  # nothing repaired by deleting indexed data
    assert (root / "shard-00000.f16").read_bytes() == shard


@pytest.mark.parametrize("writer", [False, True])
def test_a_shard_shorter_than_its_index_is_refused(tmp_path, writer):
    """Defect 2 of issue #33: a truncated shard read as fewer rows, and every later frame was trained and scored
    with the last row's features."""
    root = _store_with(tmp_path, 3, 5)
    shard = root / "shard-00000.f16"
    shard.write_bytes(shard.read_bytes()[: 4 * 8])  # 4 rows of 8 bytes, the index says 8
    with pytest.raises(VidNavError, match=r"shard-00000\.f16.*k1"):
        FeatureStore(root, shape=(2, 2)) if writer else FeatureStore(root)
    assert shard.stat().st_size == 4 * 8


@pytest.mark.parametrize("damage", ["missing", "ragged"])
def test_a_missing_or_ragged_shard_is_refused(tmp_path, damage):
    root = _store_with(tmp_path, 3)
    shard = root / "shard-00000.f16"
    if damage == "missing":
        shard.unlink()
    else:
        shard.write_bytes(shard.read_bytes()[:-3])
    with pytest.raises(VidNavError, match=r"shard-00000\.f16"):
        FeatureStore(root)


def test_an_index_line_without_its_fields_is_refused(tmp_path):
    root = _store_with(tmp_path, 3)
    with open(root / "index.jsonl", "ab") as f:
        f.write(b'{"key": "x", "shard": 0, "offset": -2, "length": 1}\n{"key": "y"}\n')
    with pytest.raises(VidNavError, match=r"index\.jsonl.*line 2"):
        FeatureStore(root)


def test_a_reader_maps_only_indexed_rows_while_a_writer_appends_part_of_one(tmp_path):
    root = _store_with(tmp_path, 3)
    with open(root / "shard-00000.f16", "ab") as f:  # a writer mid-way through a row
        f.write(b"\x00" * 5)
    np.testing.assert_allclose(FeatureStore(root).get("k0"), 1.0)


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_a_shard_holding_inf_or_nan_is_refused_naming_folder_and_key(tmp_path, value):
    """Issue #33 defect 8: a shard of inf was read as features; training failed at its first batch, after the model
    was built, with "features[2] must be finite" (neither folder nor key). Now the store's check names both (and
    the frame), and a writer refuses to store such features (an encoder output past fp16's range becomes inf)."""
    root = _store_with(tmp_path, 3, 5, 2)
    rows = np.fromfile(root / "shard-00000.f16", dtype=np.float16).reshape(-1, 2, 2)
    rows[3 + 4, 1, 0] = value  # key k1, frame 4
    rows.tofile(root / "shard-00000.f16")
    store = FeatureStore(root)
    with pytest.raises(VidNavError, match=rf"{root}: key 'k1' frame 4 .*inf or NaN.*collect again"):
        store.check_finite()
    _store_with(tmp_path / "ok", 3, 5)
    FeatureStore(tmp_path / "ok" / "f").check_finite()
    w = FeatureStore(tmp_path / "ok" / "f", shape=(2, 2))
    for bad in (np.full((2, 2, 2), value), np.full((2, 2, 2), 1e6)):  # 1e6 is inf in fp16
        with pytest.raises(VidNavError, match=r"features for 'k9' hold inf or NaN"):
            w.add("k9", bad)
    assert "k9" not in FeatureStore(tmp_path / "ok" / "f")
