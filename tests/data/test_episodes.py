import copy
import gzip
import json
import math
import shutil

import pytest
from typer.testing import CliRunner

from vidnav.data.episodes import (
    Episode,
    Goal,
    GtPath,
    Instruction,
    InstructionVocab,
    episode_task_fields,
    episode_to_task,
    load_episodes,
    load_gt,
    load_split,
    split_words,
    summarize_file,
    write_split,
)
from vidnav.errors import VidNavError

EP_FILE = "R2R_VLNCE_v1-3_preprocessed_val_unseen_first50.json.gz"
GT_FILE = "R2R_VLNCE_v1-3_preprocessed_val_unseen_gt_first50.json.gz"


def raw(path):
    return json.loads(gzip.decompress(path.read_bytes()))


def make_episode(i=1, text="Walk past the sofa, then stop at the door."):
    return Episode(
        episode_id=i,
        trajectory_id=10 + i,
        scene_id="vidnav/house_0001.json",
        start_position=[1.0, 0.0, 2.0],
        start_rotation=[0.0, 0.0, 0.0, 1.0],
        info={"geodesic_distance": 4.5},
        goals=[Goal([4.0, 0.0, 5.0], 3.0)],
        reference_path=[[1.0, 0.0, 2.0], [4.0, 0.0, 5.0]],
        instruction=Instruction(text, None),
    )


@pytest.fixture
def split_dir(tmp_path, r2r_sample_dir):
    """The real sample laid out as a VLN-CE split folder: {dir}/val_unseen/val_unseen{,_gt}.json.gz."""
    d = tmp_path / "r2r" / "val_unseen"
    d.mkdir(parents=True)
    shutil.copy(r2r_sample_dir / EP_FILE, d / "val_unseen.json.gz")
    shutil.copy(r2r_sample_dir / GT_FILE, d / "val_unseen_gt.json.gz")
    return tmp_path / "r2r"


# ---------------------------------------------------------------- real files


def test_load_real_sample(r2r_sample_dir):
    episodes, vocab = load_episodes(r2r_sample_dir / EP_FILE)
    assert len(episodes) == 50
    assert [e.episode_id for e in episodes] == list(range(1, 51))
    assert len({e.scene_id for e in episodes}) == 7
    ep = episodes[0]
    assert ep.scene_id.startswith("mp3d/") and len(ep.start_position) == 3 and len(ep.start_rotation) == 4
    assert ep.geodesic_distance > 0 and ep.goals[0].radius == 3.0
    assert ep.reference_path[0] == ep.start_position and ep.reference_path[-1] == ep.goals[0].position
    assert all(len(e.instruction.instruction_tokens) == 200 for e in episodes)
    assert vocab is not None and vocab.num_vocab == 2504 and vocab.PAD_INDEX == 0 and vocab.UNK_INDEX == 1
    assert vocab.itos[:2] == ["<pad>", "<unk>"] and vocab.itos[2:] == sorted(vocab.itos[2:])


def test_real_episode_objects_round_trip_exactly(r2r_sample_dir):
    data = raw(r2r_sample_dir / EP_FILE)
    episodes, vocab = load_episodes(r2r_sample_dir / EP_FILE)
    again = {"episodes": [e.to_dict() for e in episodes], "instruction_vocab": vocab.to_dict()}
    assert json.dumps(again) == json.dumps(data)  # same values and the same key order


def test_write_load_round_trip_real(split_dir, tmp_path):
    s = load_split(split_dir, "val_unseen")
    assert len(s) == 50 and s.gt is not None and len(s.gt) == 50
    assert (
        s.gt_for(s.episodes[0]).forward_steps
        == raw(split_dir / "val_unseen" / "val_unseen_gt.json.gz")["1"]["forward_steps"]
    )
    out = tmp_path / "out"
    ep_path, gt_path = write_split(out, "val_unseen", s.episodes, s.vocab, s.gt)
    assert raw(ep_path) == raw(split_dir / "val_unseen" / "val_unseen.json.gz")
    assert raw(gt_path) == raw(split_dir / "val_unseen" / "val_unseen_gt.json.gz")
    t = load_split(out, "val_unseen")
    assert t.episodes == s.episodes and t.vocab == s.vocab and t.gt == s.gt
    # deterministic bytes
    b1 = ep_path.read_bytes()
    write_split(out, "val_unseen", t.episodes, t.vocab, t.gt)
    assert ep_path.read_bytes() == b1


def test_tokenizer_reproduces_real_tokens(r2r_sample_dir):
    episodes, vocab = load_episodes(r2r_sample_dir / EP_FILE)
    same = sum(vocab.tokenize(e.instruction.instruction_text) == e.instruction.instruction_tokens for e in episodes)
    # Measured: all 50 sample instructions tokenise to exactly the stored padded ids (out-of-vocabulary
    # typos such as "poast" map to <unk> = 1 as in the file).
    assert same == len(episodes)


def test_gt_real(r2r_sample_dir):
    gt = load_gt(r2r_sample_dir / GT_FILE)
    g = gt["1"]
    assert g.forward_steps == sum(a == 1 for a in g.actions)
    assert g.actions[-1] == 0
    assert len(g.locations) == g.forward_steps + 1  # start + one location per forward step


def test_episode_task_fields_real(r2r_sample_dir):
    episodes, _ = load_episodes(r2r_sample_dir / EP_FILE)
    gt = load_gt(r2r_sample_dir / GT_FILE)
    ep = episodes[0]
    f = episode_task_fields(ep, gt[str(ep.episode_id)])
    x, z, h = f["start"]
    assert (x, z) == (ep.start_position[0], ep.start_position[2])
    # rotation [0, 0.5, 0, 0.866] is a 60 degree yaw; miniworld heading = yaw + 90 degrees
    assert h == pytest.approx(math.radians(150))
    assert f["goal"] == (ep.goals[0].position[0], ep.goals[0].position[2])
    assert len(f["reference"]) == len(ep.reference_path) and f["gt_locations"][0] == (x, z)
    assert f["episode_id"] == "1" and f["goal_radius"] == 3.0


# ---------------------------------------------------------------- vocabulary


def test_split_words():
    assert split_words("Exit the bedroom, turn left.  Stop!") == [
        "exit",
        "the",
        "bedroom",
        "turn",
        "left",
        ".",
        "stop",
        "!",
    ]
    assert split_words("Walk to the T-intersection?") == ["walk", "to", "the", "t-intersection"]
    assert split_words("you're in\r\nGo") == ["you", "'", "re", "in", "go"]


def test_vocab_build_tokenize():
    v = InstructionVocab.build(["Turn left.", "Walk past the sofa, stop."])
    assert v.itos == ["<pad>", "<unk>", ".", "left", "past", "sofa", "stop", "the", "turn", "walk"]
    ids = v.tokenize("Turn left at the piano.")
    assert len(ids) == 200 and ids[:6] == [8, 3, 1, 7, 1, 2] and set(ids[6:]) == {0}
    assert v.tokenize("turn " * 300, max_len=5) == [8] * 5
    assert v.decode(ids) == ["turn", "left", "<unk>", "the", "<unk>", "."]
    d = v.to_dict()
    assert list(d) == ["word_list", "word2idx_dict", "stoi", "itos", "num_vocab", "UNK_INDEX", "PAD_INDEX"]
    assert InstructionVocab.from_dict(d) == v
    bad = dict(d, num_vocab=3)
    with pytest.raises(VidNavError, match="num_vocab"):
        InstructionVocab.from_dict(bad)


# ---------------------------------------------------------------- synthetic round trip and errors


def test_write_load_synthetic(tmp_path):
    eps = [make_episode(1), make_episode(2, "Go up the stairs.")]
    eps[0].extra["note"] = {"k": 1}
    vocab = InstructionVocab.build(e.instruction.instruction_text for e in eps)
    for e in eps:
        e.instruction.instruction_tokens = vocab.tokenize(e.instruction.instruction_text)
    gt = {1: GtPath([[1, 0, 2], [1.25, 0, 2]], [1, 0], 1)}
    write_split(tmp_path, "train", eps, vocab, gt, extra={"version": 1})
    s = load_split(tmp_path, "train")
    assert s.episodes == eps and s.vocab == vocab and s.extra == {"version": 1}
    assert s.gt_for(eps[0]) == gt[1] and s.gt_for(eps[1]) is None
    # no gt -> no gt file, and load_split reports none
    write_split(tmp_path, "val", eps, None, None)
    v = load_split(tmp_path, "val")
    assert v.gt is None and v.vocab is None


def test_unknown_split_lists_available(tmp_path):
    write_split(tmp_path, "train", [make_episode()], None, None)
    write_split(tmp_path, "val_seen", [make_episode()], None, None)
    with pytest.raises(VidNavError, match="val_unseen.*train, val_seen"):
        load_split(tmp_path, "val_unseen")


def test_truncated_gz(tmp_path):
    p, _ = write_split(tmp_path, "train", [make_episode(i) for i in range(1, 30)], None, None)
    p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])
    with pytest.raises(VidNavError, match="truncated") as e:
        load_split(tmp_path, "train")
    assert str(p) in str(e.value)


def test_malformed_json(tmp_path):
    p = tmp_path / "train" / "train.json.gz"
    p.parent.mkdir()
    p.write_bytes(gzip.compress(b'{"episodes": [ {"episode_id": 1,'))
    with pytest.raises(VidNavError, match="not valid JSON"):
        load_split(tmp_path, "train")
    p.write_bytes(gzip.compress(b"[1, 2]"))
    with pytest.raises(VidNavError, match="'episodes' list"):
        load_split(tmp_path, "train")


@pytest.mark.parametrize(
    "field, path",
    [
        ("goals", ["goals"]),
        ("info.geodesic_distance", ["info", "geodesic_distance"]),
        ("instruction.instruction_text", ["instruction", "instruction_text"]),
        ("start_rotation", ["start_rotation"]),
    ],
)
def test_missing_field_names_file_episode_field(tmp_path, field, path):
    p, _ = write_split(tmp_path, "train", [make_episode(1), make_episode(7)], None, None)
    data = raw(p)
    d = data["episodes"][1]
    for k in path[:-1]:
        d = d[k]
    del d[path[-1]]
    p.write_bytes(gzip.compress(json.dumps(data).encode()))
    with pytest.raises(VidNavError) as e:
        load_split(tmp_path, "train")
    msg = str(e.value)
    assert str(p) in msg and "episode #1" in msg and "episode_id 7" in msg and f"'{field}'" in msg
    assert "missing" in msg and "rebuild" in msg


def test_bad_values(tmp_path):
    good = make_episode().to_dict()
    for mutate, field in [
        (lambda d: d.update(start_position=[1, 2]), "start_position"),
        (lambda d: d.update(start_rotation=[0, 0, 0, 0]), "start_rotation"),
        (lambda d: d.update(goals=[]), "goals"),
        (lambda d: d["goals"][0].update(radius=-1), "goals[0].radius"),
        (lambda d: d["instruction"].update(instruction_tokens=["a"]), "instruction.instruction_tokens"),
        (lambda d: d.update(reference_path=[[0, 0, 0], [1, float("nan"), 2]]), "reference_path[1]"),
    ]:
        d = copy.deepcopy(good)
        mutate(d)
        with pytest.raises(VidNavError, match=f"'{field}'".replace("[", r"\[").replace("]", r"\]")):
            Episode.from_dict(d, "x.json", 0)


def test_duplicate_ids(tmp_path):
    p, _ = write_split(tmp_path, "train", [make_episode(3), make_episode(3)], None, None)
    with pytest.raises(VidNavError, match="repeats episode_id 3"):
        load_episodes(p)


def test_bad_gt(tmp_path):
    bad = {"1": {"locations": [[0, 0, 0]], "actions": [9], "forward_steps": 0}}
    with pytest.raises(VidNavError, match="episode_id '1'.*'actions'"):
        write_split(tmp_path, "train", [make_episode(1)], None, bad)
    _, gt_path = write_split(tmp_path, "train", [make_episode(1)], None, {"1": GtPath([[0, 0, 0]], [0], 0)})
    gt_path.write_bytes(gzip.compress(json.dumps(bad).encode()))
    with pytest.raises(VidNavError, match="episode_id '1'.*'actions'"):
        load_split(tmp_path, "train")


# ---------------------------------------------------------------- into the simulator


def test_episode_to_task():
    house = object()
    task = episode_to_task(make_episode(5), house, GtPath([[1, 0, 2], [1.25, 0, 2]], [1, 0], 1))
    assert task.house is house and task.episode_id == "5"
    assert task.start == pytest.approx((1.0, 2.0, math.pi / 2))  # identity rotation faces -z = heading pi/2
    assert task.goal == (4.0, 5.0) and task.reference == [(1.0, 2.0), (4.0, 5.0)]
    assert task.gt_locations == [(1.0, 2.0), (1.25, 2.0)]
    assert task.instruction.startswith("Walk past")


# ---------------------------------------------------------------- summary and CLI


def test_summarize_file_real(r2r_sample_dir):
    s = summarize_file(r2r_sample_dir / EP_FILE)
    assert s["episodes"] == 50 and s["scenes"] == 7 and s["trajectories"] == 17
    assert s["has_gt"] and s["gt_file"].endswith(GT_FILE) and s["gt_covers"] == 50
    assert 5 < s["mean_geodesic_distance"] < 20 and 10 < s["mean_instruction_words"] < 60


def test_summarize_split_layout(tmp_path):
    p, _ = write_split(tmp_path, "train", [make_episode(1)], None, {"1": GtPath([[1, 0, 2]], [0], 0)})
    s = summarize_file(p)
    assert s["has_gt"] and s["episodes"] == 1 and s["mean_geodesic_distance"] == 4.5
    p2, _ = write_split(tmp_path, "val", [make_episode(1)], None, None)
    assert summarize_file(p2)["has_gt"] is False


def test_cli_inspect_real(r2r_sample_dir):
    from vidnav.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["data", "inspect", str(r2r_sample_dir / EP_FILE)])
    assert r.exit_code == 0, r.output
    assert "episodes" in r.output and "50" in r.output and "10.13" in r.output
    r = runner.invoke(app, ["data", "inspect", "--json", str(r2r_sample_dir / EP_FILE)])
    assert r.exit_code == 0 and json.loads(r.output)["scenes"] == 7


def test_cli_inspect_error(tmp_path):
    from vidnav.data.cli import app

    bad = tmp_path / "bad.json.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00garbage")
    r = CliRunner().invoke(app, ["inspect", str(bad)])
    assert r.exit_code == 2
    assert "bad.json.gz" in r.output and "Traceback" not in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)


@pytest.mark.parametrize("bad", ["../../../escaped_video", "a/b", "", ".hidden", "x" * 200, "a\nb", "\\x"])
def test_episode_ids_must_be_safe_as_file_names(bad):
    """Defect 5 of issue #33: an episode id '../../../escaped_video' made `eval --video` write three folders above
    --out; ids name files (videos, keys), so a string id must be a plain file name."""
    d = make_episode().to_dict()
    d["episode_id"] = bad
    with pytest.raises(VidNavError, match=r"'episode_id'.*file name"):
        Episode.from_dict(d, "x.json", 0)


def test_usual_episode_ids_are_accepted():
    for ok in (7, "7", "ep-3_a.b", "val_unseen.12"):
        d = make_episode().to_dict()
        d["episode_id"] = ok
        assert Episode.from_dict(d, "x.json", 0).episode_id == ok
