"""RxR-CE episode files (VLN-CE's RxR port) read beside R2R-CE ones: schema told by fields, language and role
filters, gt files with RxR's action ids, `vidnav data inspect`, and refusals that name file, episode, field."""

import gzip
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vidnav.data.episodes import (
    RXR_CE,
    Episode,
    filter_episodes,
    language_matches,
    load_episodes,
    load_gt,
    load_split,
    summarize_file,
)
from vidnav.errors import VidNavError

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "rxr_ce"
EP = FIXTURE / "val_unseen_guide.json"
GT = FIXTURE / "val_unseen_guide_gt.json"
R2R_EP_FILE = "R2R_VLNCE_v1-3_preprocessed_val_unseen_first50.json.gz"


def fixture_doc() -> dict:
    return json.loads(EP.read_text(encoding="utf-8"))


def write_doc(path: Path, doc: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(json.dumps(doc, ensure_ascii=False).encode("utf-8")))
    return path


def esc(s: str) -> str:
    return re.escape(s)


# ---------------------------------------------------------------- reading


def test_reads_the_fixture_as_rxr():
    episodes, vocab = load_episodes(EP)
    assert vocab is None  # RxR-CE has no instruction_vocab
    assert [e.episode_id for e in episodes] == [101, 102, 103, 104, 105]
    assert [e.language for e in episodes] == ["en-US", "en-IN", "hi-IN", "te-IN", "en-US"]
    assert {e.role for e in episodes} == {"guide"}
    assert all(e.geodesic_distance is None for e in episodes)  # unavailable, not made up
    hi = episodes[2]
    assert hi.instruction.instruction_text.startswith("सीधे")
    assert hi.instruction.extra["instruction_id"] == "9103"
    assert hi.instruction.extra["timed_instruction"][0]["word"] == "सीधे"
    assert hi.goals[0].radius == 3.0 and len(hi.reference_path) == 5
    # every key is kept: episode -> dict gives back the file's objects
    assert [e.to_dict() for e in episodes] == fixture_doc()["episodes"]


def test_real_layout_gz_split_and_gt(tmp_path):
    """RxR-CE's layout: `{split}/{split}_{role}.json.gz` + `{split}_{role}_gt.json.gz`; gt entries with LOOK_UP/DOWN
    ids or no actions."""
    folder = tmp_path / "RxR_VLNCE_v0" / "val_unseen"
    write_doc(folder / "val_unseen_guide.json.gz", fixture_doc())
    write_doc(folder / "val_unseen_guide_gt.json.gz", json.loads(GT.read_text()))
    eps = load_split(tmp_path / "RxR_VLNCE_v0", "val_unseen")  # the only role present
    assert eps.path == folder / "val_unseen_guide.json.gz" and eps.gt is not None
    assert len(load_split(tmp_path / "RxR_VLNCE_v0", "val_unseen", roles="guide")) == 5
    write_doc(folder / "val_unseen_follower.json.gz", fixture_doc())
    with pytest.raises(VidNavError, match="one RxR-CE episode file per role"):
        load_split(tmp_path / "RxR_VLNCE_v0", "val_unseen")  # which one? the user says
    assert load_split(tmp_path / "RxR_VLNCE_v0", "val_unseen", roles=["guide"]).path.name == "val_unseen_guide.json.gz"
    assert [e.episode_id for e in load_episodes(folder / "val_unseen_guide.json.gz", languages="en")[0]] == [
        101,
        102,
        105,
    ]
    assert eps.schema == RXR_CE and len(eps) == 5 and eps.vocab is None
    assert eps.gt_for(eps.episodes[2]).actions == [2, 1, 1, 3, 1, 4, 5, 1, 0]
    assert eps.gt_for(eps.episodes[4]).actions is None  # optional in RxR-CE gt files
    assert "actions" not in eps.gt_for(eps.episodes[4]).to_dict()
    en = load_split(tmp_path / "RxR_VLNCE_v0", "val_unseen", roles=["guide"], languages=["en"])
    assert [e.episode_id for e in en] == [101, 102, 105]
    s = summarize_file(folder / "val_unseen_guide.json.gz")
    assert s["gt_file"].endswith("val_unseen_guide_gt.json.gz") and s["gt_covers"] == 5


def test_rxr_is_told_by_fields_not_the_file_name(tmp_path):
    p = write_doc(tmp_path / "val_unseen" / "val_unseen.json.gz", fixture_doc())  # an R2R-style name
    assert load_split(tmp_path, "val_unseen").schema == RXR_CE
    assert Episode.from_dict(fixture_doc()["episodes"][0], p, 0).language == "en-US"


def test_geodesic_distance_given_null_or_absent():
    doc = fixture_doc()
    d = doc["episodes"][0]
    assert Episode.from_dict(d, "x.json", 0).geodesic_distance is None
    d["info"]["geodesic_distance"] = None
    assert Episode.from_dict(d, "x.json", 0).geodesic_distance is None
    d["info"]["geodesic_distance"] = 6.25
    assert Episode.from_dict(d, "x.json", 0).geodesic_distance == 6.25
    d["info"]["geodesic_distance"] = -1
    with pytest.raises(VidNavError, match=r"x\.json: episode #0 \(episode_id 101\): field 'info\.geodesic_distance'"):
        Episode.from_dict(d, "x.json", 0)


def test_trajectory_id_may_be_absent():
    d = fixture_doc()["episodes"][1]
    del d["trajectory_id"]
    ep = Episode.from_dict(d, "x.json", 1)
    assert ep.trajectory_id is None and ep.to_dict() == d


# ---------------------------------------------------------------- language and role filters


@pytest.mark.parametrize(
    "wanted, ids",
    [
        (["en"], [101, 102, 105]),
        (["en-US"], [101, 105]),
        (["EN-us"], [101, 105]),
        (["en-IN", "te"], [102, 104]),
        (["hi-IN"], [103]),
    ],
)
def test_language_filter(wanted, ids):
    assert [e.episode_id for e in load_episodes(EP, languages=wanted)[0]] == ids


def test_language_matches_whole_subtags_only():
    assert language_matches("en-US", ["en"]) and not language_matches("eng-US", ["en"])
    assert not language_matches("en-US", ["en-U"]) and not language_matches(None, ["en"])


def test_language_filter_that_keeps_nothing_or_is_not_a_tag():
    with pytest.raises(VidNavError) as e:
        load_episodes(EP, languages=["fr"])
    msg = str(e.value)
    assert str(EP) in msg and "'instruction.language'" in msg and "en-US (2)" in msg and "te-IN (1)" in msg
    with pytest.raises(VidNavError, match="'english!' is not a language tag"):
        load_episodes(EP, languages=["english!"])


def test_language_filter_on_an_r2r_file_is_refused(r2r_sample_dir):
    path = r2r_sample_dir / R2R_EP_FILE
    with pytest.raises(VidNavError) as e:
        load_episodes(path, languages=["en"])
    assert str(path) in str(e.value) and "'instruction.language'" in str(e.value) and "R2R-CE" in str(e.value)
    with pytest.raises(VidNavError, match="'info.role'"):
        summarize_file(path, roles=["guide"])
    assert len(load_episodes(path)[0]) == 50  # no filter: read as before


def test_role_filter_where_a_file_mixes_roles(tmp_path):
    doc = fixture_doc()
    for d in doc["episodes"][3:]:
        d["info"]["role"] = "follower"
    p = write_doc(tmp_path / "val_unseen_mixed.json.gz", doc)
    assert [e.episode_id for e in load_episodes(p, roles=["follower"])[0]] == [104, 105]
    assert [e.episode_id for e in load_episodes(p, roles=["guide"], languages=["en"])[0]] == [101, 102]
    assert [e.episode_id for e in load_episodes(p, roles=["guide", "follower"])[0]] == [101, 102, 103, 104, 105]
    s = summarize_file(p, roles=["follower"])
    assert s["episodes"] == 2 and s["episodes_in_file"] == 5 and s["roles"] == {"follower": 2}
    with pytest.raises(VidNavError, match="'leader' is not a role"):
        load_episodes(p, roles=["leader"])
    with pytest.raises(VidNavError, match=r"no episode's 'info\.role' matches follower; this file has: guide \(5\)"):
        load_episodes(EP, roles=["follower"])


def test_filter_episodes_none_is_everything():
    episodes, _ = load_episodes(EP)
    assert filter_episodes(episodes) == episodes and filter_episodes(episodes, [], []) == episodes


# ---------------------------------------------------------------- refusals name file, episode and field


@pytest.mark.parametrize(
    "field, mutate",
    [
        ("instruction.language", lambda d: d["instruction"].pop("language")),
        ("instruction.language", lambda d: d["instruction"].update(language=5)),
        ("instruction.language", lambda d: d["instruction"].update(language="Hindi please")),
        ("instruction.instruction_text", lambda d: d["instruction"].update(instruction_text=" ")),
        ("instruction.edit_distance", lambda d: d["instruction"].update(edit_distance="far")),
        ("instruction.instruction_id", lambda d: d["instruction"].update(instruction_id=[1])),
        ("instruction.timed_instruction", lambda d: d["instruction"].update(timed_instruction="words")),
        ("instruction.timed_instruction[1].word", lambda d: d["instruction"]["timed_instruction"][1].pop("word")),
        (
            "instruction.timed_instruction[0].start_time",
            lambda d: d["instruction"]["timed_instruction"][0].update(start_time="soon"),
        ),
        ("info.role", lambda d: d["info"].update(role="leader")),
        ("goals[0].position", lambda d: d["goals"][0].update(position=[1, 2])),
        ("start_rotation", lambda d: d.pop("start_rotation")),
        ("reference_path[0]", lambda d: d["reference_path"].__setitem__(0, "here")),
    ],
)
def test_broken_field_names_file_episode_and_field(tmp_path, field, mutate):
    doc = fixture_doc()
    mutate(doc["episodes"][2])
    p = write_doc(tmp_path / "val_unseen_guide.json.gz", doc)
    with pytest.raises(VidNavError) as e:
        load_episodes(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}: episode #2 (episode_id 103): field '{field}'"), msg


def test_an_episode_without_language_in_an_rxr_file_is_refused(tmp_path):
    """One RxR-CE episode makes the file RxR-CE: an episode lacking the language is not read as R2R-CE."""
    doc = fixture_doc()
    del doc["episodes"][0]["instruction"]["language"]
    del doc["episodes"][0]["info"]["role"]
    p = write_doc(tmp_path / "x.json.gz", doc)
    with pytest.raises(
        VidNavError, match=esc(f"{p}: episode #0 (episode_id 101): field 'instruction.language' is missing")
    ):
        load_episodes(p)


def test_broken_gt_names_file_episode_and_field(tmp_path):
    gt = json.loads(GT.read_text())
    gt["103"]["actions"] = [1, 7]
    p = tmp_path / "val_unseen_guide_gt.json"
    p.write_text(json.dumps(gt))
    with pytest.raises(VidNavError, match=esc(f"{p}: episode_id '103': field 'actions'")):
        load_gt(p, RXR_CE)
    del gt["103"]["forward_steps"]
    gt["103"]["actions"] = [1]
    p.write_text(json.dumps(gt))
    with pytest.raises(VidNavError, match=esc(f"{p}: episode_id '103': field 'forward_steps' is missing")):
        load_gt(p, RXR_CE)
    # the R2R-CE reading is unchanged: actions required, ids 0..3
    with pytest.raises(VidNavError, match="'actions'"):
        load_gt(GT)


# ---------------------------------------------------------------- vidnav data inspect


def test_cli_inspect_rxr_with_languages(tmp_path):
    from vidnav.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["data", "inspect", str(EP)])
    assert r.exit_code == 0, r.output
    assert "RxR-CE" in r.output and "en-IN 1, en-US 2, hi-IN 1, te-IN 1" in r.output and "guide 5" in r.output
    r = runner.invoke(app, ["data", "inspect", "--json", "--language", "en", "--language", "hi-IN", str(EP)])
    assert r.exit_code == 0, r.output
    s = json.loads(r.output)
    assert s["format"] == RXR_CE and s["episodes"] == 4 and s["episodes_in_file"] == 5
    assert s["languages"] == {"en-IN": 1, "en-US": 2, "hi-IN": 1} and s["language_filter"] == ["en", "hi-IN"]
    assert s["mean_geodesic_distance"] is None and s["episodes_with_geodesic_distance"] == 0
    assert s["has_gt"] and s["gt_covers"] == 4 and s["vocab_size"] is None


def test_cli_inspect_refusals_are_one_line(tmp_path):
    from vidnav.data.cli import app

    r = CliRunner().invoke(app, ["inspect", str(EP), "--language", "fr"])
    assert r.exit_code == 2 and "'instruction.language'" in r.output and "Traceback" not in r.output
    doc = fixture_doc()
    doc["episodes"][1]["info"]["role"] = "leader"
    p = write_doc(tmp_path / "bad_guide.json.gz", doc)
    r = CliRunner().invoke(app, ["inspect", str(p)])
    assert r.exit_code == 2 and "episode #1 (episode_id 102): field 'info.role'" in r.output


def test_cli_inspect_r2r_output_has_no_rxr_rows(r2r_sample_dir, tmp_path):
    from vidnav.cli import app

    r = CliRunner().invoke(app, ["data", "inspect", "--json", str(r2r_sample_dir / R2R_EP_FILE)])
    s = json.loads(r.output)
    assert list(s) == [
        "file",
        "episodes",
        "scenes",
        "trajectories",
        "mean_geodesic_distance",
        "mean_instruction_words",
        "vocab_size",
        "has_gt",
        "gt_file",
        "gt_covers",
        "mean_gt_forward_steps",
    ]
    r = CliRunner().invoke(app, ["data", "inspect", str(r2r_sample_dir / R2R_EP_FILE), "--language", "en"])
    assert r.exit_code == 2 and "R2R-CE files have none" in r.output


def test_fixture_is_not_copied_real_data():
    """The fixture is hand-made: invented scenes, and its README says so."""
    doc = fixture_doc()
    assert all(e["scene_id"].startswith("mp3d/FakeHouse") for e in doc["episodes"])
    assert "nothing is copied from RxR" in (FIXTURE / "README.md").read_text()
