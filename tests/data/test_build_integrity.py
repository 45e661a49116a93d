"""`vidnav data build` writes only into an empty folder or an earlier build of the same config (issue #33
defects 3, 8, 10): it overwrote foreign files without a word, left stale houses of a bigger build behind,
built empty benchmarks and rounded episode counts up silently."""

import json

import pytest

from vidnav.data.build import BuildConfig, build_benchmark
from vidnav.errors import VidNavError

SMALL = dict(train_houses=0, unseen_houses=2, unseen_per_house=3)


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_folder_of_other_files_is_refused_untouched(tmp_path):
    out = tmp_path / "mine"
    (out / "houses").mkdir(parents=True)
    (out / "benchmark.json").write_text('{"my": "notes"}')
    (out / "houses" / "unseen_0000.json").write_text("{}")
    before = _files(out)
    with pytest.raises(VidNavError, match=r"mine is not empty and not a vidnav build.*--force"):
        build_benchmark(out, BuildConfig(**SMALL, seed=1), progress=False)
    assert _files(out) == before


def test_a_rerun_of_the_same_config_is_byte_identical_and_another_config_needs_force(tmp_path):
    out = tmp_path / "data"
    build_benchmark(out, BuildConfig(**SMALL, seed=1), progress=False)
    first = {k: v for k, v in _files(out).items() if k != "benchmark.json"}  # benchmark.json holds the seconds
    (out / "val_unseen" / "val_unseen.json.gz").unlink()  # as if killed before the end
    build_benchmark(out, BuildConfig(**SMALL, seed=1), progress=False)
    assert {k: v for k, v in _files(out).items() if k != "benchmark.json"} == first
    (out / "notes.txt").write_text("mine")
    other = BuildConfig(train_houses=0, unseen_houses=1, unseen_per_house=3, seed=2)
    with pytest.raises(VidNavError, match=r"earlier build of another config \(unseen_houses 2 -> 1, seed 1 -> 2\)"):
        build_benchmark(out, other, progress=False)
    assert {k: v for k, v in _files(out).items() if k != "benchmark.json"} == first | {"notes.txt": b"mine"}
    build_benchmark(out, other, progress=False, force=True)
    files = _files(out)
    assert "houses/unseen_0001.json" not in files  # no stale house of the bigger build
    assert files["notes.txt"] == b"mine"  # --force deletes only what vidnav wrote
    assert json.loads(files["benchmark.json"])["config"]["seed"] == 2


def test_out_that_is_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(VidNavError, match=r"--out .*f is a file"):
        build_benchmark(tmp_path / "f", BuildConfig(**SMALL), progress=False)


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("episodes_per_house", 1, "multiple of 3"),
        ("unseen_per_house", 4, "multiple of 3"),
        ("val_seen_per_house", 2, "multiple of 3"),
    ],
)
def test_episode_counts_that_cannot_be_built_exactly_are_refused(field, value, match):
    with pytest.raises(VidNavError, match=f"--{field.replace('_', '-')} {value}.*{match}"):
        BuildConfig(**{field: value}).check()


def test_an_empty_benchmark_is_refused(tmp_path):
    with pytest.raises(VidNavError, match="no houses"):
        build_benchmark(tmp_path / "x", BuildConfig(train_houses=0, unseen_houses=0), progress=False)
    assert not (tmp_path / "x").exists()


def _read_only(folder):
    """Make ``folder`` unwritable even for root (chattr +i where chmod is not enough); None if impossible here."""
    import os
    import shutil
    import subprocess

    folder.chmod(0o555)
    if not os.access(folder, os.W_OK):
        return lambda: folder.chmod(0o755)
    if shutil.which("chattr") and subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0:
        return lambda: (subprocess.run(["chattr", "-i", str(folder)]), folder.chmod(0o755))
    folder.chmod(0o755)
    return None


@pytest.mark.parametrize("sub", ["", "sub"])
def test_a_read_only_out_is_a_clear_error_and_leaves_nothing(tmp_path, sub):
    """Issue #33 defect 8: a read-only output folder was a traceback and left a partial build."""
    ro = tmp_path / "ro"
    ro.mkdir()
    undo = _read_only(ro)
    if undo is None:
        pytest.skip("cannot make a folder read-only here (root without chattr)")
    try:
        with pytest.raises(VidNavError, match=rf"--out {ro / sub if sub else ro}: .*give a writable folder"):
            build_benchmark(ro / sub if sub else ro, BuildConfig(**SMALL), progress=False)
        assert list(ro.iterdir()) == []
    finally:
        undo()
