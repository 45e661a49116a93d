"""The failure report behind `vidnav report`: rooms along a path, how a failure ended, the breakdown tables."""

import json
from types import SimpleNamespace

import pytest

from vidnav.cli import main
from vidnav.errors import VidNavError
from vidnav.eval.report import MODES, breakdown, failure_mode, report_run, rooms_along
from vidnav.eval.runner import evaluate
from vidnav.sim.house import Door, House, Room


def corridor() -> House:
    """Three 4 m rooms in a row along x (ids 0, 1, 2) with 0.2 m door gaps between them."""
    rooms = [
        Room(i, "bedroom", 4.2 * i, 0.0, 4.2 * i + 4.0, 4.0, "cardboard", "stucco", "concrete_tiles") for i in range(3)
    ]
    doors = [Door(i, i, i + 1, "x", 4.2 * i + 4.0, 4.2 * i + 4.2, 1.5, 2.5) for i in range(2)]
    return House(seed=0, rooms=rooms, doors=doors)


def P(x, z):
    return [x, 0.0, z]


def test_rooms_along_follows_the_polyline_and_skips_door_gaps():
    h = corridor()
    assert rooms_along(h, [P(2, 2), P(10.4, 2)]) == [0, 1, 2]
    assert rooms_along(h, [P(2, 2), P(6, 2), P(2, 3)]) == [0, 1, 0]
    assert rooms_along(h, [P(2, 2)]) == [0]
    assert rooms_along(h, [P(4.1, 2)]) == []  # in the door gap only


@pytest.mark.parametrize(
    "stopped, walked, mode",
    [
        (False, [0, 1], "step cap"),
        (True, [0], "never left start room"),
        (True, [0, 1, 0], "back in start room"),
        (True, [0, 1, 2], "in goal room"),
        (True, [0, 1], "on route"),
        (True, [0, 3], "off route"),
    ],
)
def test_failure_mode(stopped, walked, mode):
    assert failure_mode({"stopped": stopped}, [0, 1, 2], walked, goal_room=2) == mode
    assert mode in MODES


def _episode(i, scene="h.json"):
    return SimpleNamespace(
        episode_id=i, scene_id=scene, reference_path=[P(2, 2), P(10.4, 2)], goals=[SimpleNamespace(position=P(10.4, 2))]
    )


def _result(i, d, success, positions, stopped=True, oracle=0.0):
    return {
        "episode_id": str(i),
        "scene_id": "h.json",
        "start_distance": d,
        "success": success,
        "spl": 0.5 * success,
        "oracle_success": max(success, oracle),
        "stopped": stopped,
        "steps": 10 * i,
        "trajectory_length": float(i),
        "positions": positions,
    }


def test_breakdown_counts_every_episode_once():
    walk = [P(2, 2), P(10.4, 2)]
    results = [
        _result(1, 3.0, 1.0, walk),
        _result(2, 7.0, 0.0, [P(2, 2), P(3.5, 2.2)]),
        _result(3, 8.5, 0.0, [P(2, 2), P(6, 2)], oracle=1.0),
        _result(4, 20.0, 0.0, walk, stopped=False),
        _result(5, 12.0, 0.0, [P(2, 2), P(6, 2), P(2, 2)]),
        _result(6, 9.5, 0.0, [P(2, 2), P(2, 6)]),
        _result(7, 9.6, 0.0, [P(2, 2), P(1, 1)]),
    ]
    episodes = {str(i): _episode(i) for i in range(1, 8)}
    house = corridor()
    house.rooms.append(Room(3, "kitchen", 0.0, 4.2, 4.0, 8.0, "cardboard", "stucco", "concrete_tiles"))
    house.doors.append(Door(2, 0, 3, "z", 4.0, 4.2, 1.5, 2.5))
    rep = breakdown(results, episodes, {"h.json": house})
    assert rep["episodes"] == 7 and rep["success"] == pytest.approx(1 / 7)
    dist = {r["bin"]: r for r in rep["by_start_distance"]}
    assert [dist[b]["n"] for b in ("0-6 m", "6-9 m", "9-12 m", "12-16 m", ">=16 m")] == [1, 2, 2, 1, 1]
    assert dist["0-6 m"]["success"] == 1.0 and dist["6-9 m"]["oracle_success"] == 0.5
    assert dist[">=16 m"]["success"] == 0.0 and rep["by_route_rooms"][0]["success"] is None  # an empty bin
    rooms = {r["bin"]: r["n"] for r in rep["by_route_rooms"]}
    assert rooms == {"1": 0, "2": 0, "3": 7, "4": 0, ">=5": 0}
    f = rep["failures"]
    modes = {m["mode"]: m["n"] for m in f["modes"]}
    assert f["n"] == 6 and sum(modes.values()) == 6 and f["passed_goal"] == 1
    assert modes == {
        "step cap": 1,
        "never left start room": 2,
        "back in start room": 1,
        "in goal room": 0,
        "on route": 1,
        "off route": 1,
    }
    assert f["by_episode"] == {
        "2": "never left start room",
        "3": "on route",
        "4": "step cap",
        "5": "back in start room",
        "6": "off route",
        "7": "never left start room",
    }
    # episode 6 left into the kitchen instead of room 1; episode 2 (not 7) reached the route's exit door
    assert f["wrong_exit"] == 1 and f["near_exit"] == 1
    assert {m["mode"]: m["median_steps"] for m in f["modes"]}["on route"] == 30
    assert {m["mode"]: m["median_steps"] for m in f["modes"]}["never left start room"] == 45


def test_breakdown_without_houses_gives_distances_only_and_rejects_foreign_results():
    results = [_result(1, 3.0, 1.0, [P(0, 0)])]
    rep = breakdown(results, {"1": _episode(1)}, None)
    assert "by_route_rooms" not in rep and "failures" not in rep and rep["by_start_distance"][0]["n"] == 1
    with pytest.raises(VidNavError, match="not in the episode file"):
        breakdown([_result(9, 3.0, 1.0, [P(0, 0)])], {"1": _episode(1)}, None)
    with pytest.raises(VidNavError, match="another scene"):
        breakdown(results, {"1": _episode(1, scene="other.json")}, None)


def test_report_of_a_real_run_and_the_cli(tiny_benchmark, tmp_path, capsys):
    out = tmp_path / "fwd"
    summary = evaluate(tiny_benchmark, "val_unseen", "forward", out, episodes=6, progress=False)
    rep = report_run(out)
    assert json.loads((out / "report.json").read_text()) == rep
    assert rep["split"] == "val_unseen" and rep["episodes"] == 6
    assert rep["success"] == pytest.approx(summary["success"])
    assert sum(r["n"] for r in rep["by_route_rooms"]) == 6 and sum(r["n"] for r in rep["by_start_distance"]) == 6
    failures = round(6 * (1 - summary["success"]))
    assert rep["failures"]["n"] == failures == sum(m["n"] for m in rep["failures"]["modes"])
    main(["report", str(out)])
    text = capsys.readouterr().out
    assert "by rooms on the reference route" in text and f"how the {failures} failures ended" in text
    assert report_run(out, episodes=2, write=False)["episodes"] == 2
    with pytest.raises(VidNavError, match="--episodes"):
        report_run(out, episodes=0)
    with pytest.raises(VidNavError, match="results.jsonl not found"):
        report_run(tmp_path / "nothing")
    with pytest.raises(VidNavError, match="not in the episode file"):
        report_run(out, split="train", write=False)


def test_report_refuses_data_whose_episodes_are_not_the_runs(tiny_benchmark, tmp_path):
    """`report --data` of a rebuilt benchmark (same ids, other content) would break the run down by another
    rooms table: refused by the episodes' fingerprint; a byte-identical copy at another path is the same data."""
    import gzip
    import shutil

    out = tmp_path / "fwd"
    evaluate(tiny_benchmark, "val_unseen", "forward", out, episodes=2, progress=False)
    copy = tmp_path / "copy"
    shutil.copytree(tiny_benchmark, copy)
    assert report_run(out, data=copy, write=False)["episodes"] == 2
    path = copy / "val_unseen" / "val_unseen.json.gz"
    d = json.loads(gzip.decompress(path.read_bytes()))
    d["episodes"][0]["instruction"]["instruction_text"] += " then wait"
    path.write_bytes(gzip.compress(json.dumps(d).encode()))
    with pytest.raises(VidNavError, match="evaluated on other val_unseen episodes than those in"):
        report_run(out, data=copy, write=False)
