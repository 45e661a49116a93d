"""Options and inputs that cannot mean what they say are refused with the file, episode or option named
(issue #33 defects 8 and 10)."""

import pytest

from vidnav.data.episodes import Episode
from vidnav.errors import VidNavError
from vidnav.eval.runner import evaluate


def test_negative_video_episodes_is_refused(tiny_benchmark, tmp_path):
    with pytest.raises(VidNavError, match="--video-episodes must be >= 0, got -3"):
        evaluate(tiny_benchmark, "val_unseen", "oracle", tmp_path / "o", episodes=1, video=-3, progress=False)


def test_a_killed_video_writer_leaves_no_hidden_file_after_a_rerun(tiny_benchmark, tmp_path):
    out = tmp_path / "o"
    (out / "videos").mkdir(parents=True)
    stale = out / "videos" / ".1.tmp4242.mp4"  # what a run killed while writing 1.mp4 leaves
    stale.write_bytes(b"\0" * 10)
    mine = [out / "videos" / n for n in (".notes.tmpkeep.mp4", ".tmp1.mp4", "x.tmp1.mp4")]  # not vidnav's
    for p in mine:
        p.write_bytes(b"mine")
    evaluate(tiny_benchmark, "val_unseen", "oracle", out, episodes=1, progress=False)
    assert not stale.exists()
    assert all(p.read_bytes() == b"mine" for p in mine)  # only the temporaries vidnav writes are removed


@pytest.mark.parametrize("text", ["", "   "])
def test_an_empty_instruction_is_refused_on_load_naming_file_and_episode(text):
    from tests.data.test_episodes import make_episode

    d = make_episode(5).to_dict()
    d["instruction"]["instruction_text"] = text
    with pytest.raises(VidNavError, match=r"x\.json.*episode_id 5.*instruction_text.*empty"):
        Episode.from_dict(d, "x.json", 0)


def test_out_that_is_a_file_is_a_one_line_error(tiny_benchmark, tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(VidNavError, match=r"--out .*f: .*f is a file"):
        evaluate(tiny_benchmark, "val_unseen", "oracle", tmp_path / "f", episodes=1, progress=False)


@pytest.mark.parametrize("n", ["-3", "2"])
def test_video_episodes_without_video_is_refused_not_ignored(tiny_benchmark, tmp_path, capsys, n):
    """Issue #33 defect 10: `--video-episodes -3` (or 2) without `--video` was silently ignored: no video, exit 0."""
    from vidnav.cli import main

    with pytest.raises(SystemExit) as e:
        main(
            [
                "eval",
                "--data",
                str(tiny_benchmark),
                "--split",
                "val_unseen",
                "--agent",
                "oracle",
                "--episodes",
                "1",
                "--video-episodes",
                n,
                "--out",
                str(tmp_path / "o"),
            ]
        )
    err = capsys.readouterr().err
    assert e.value.code == 2 and "--video-episodes" in err and "add --video" in err, err
    assert not (tmp_path / "o").exists()
