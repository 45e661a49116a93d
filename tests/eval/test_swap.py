"""`vidnav eval --instructions swapped`: another path's instruction from the same house, seeded, recorded."""

import json

import pytest

from vidnav.data.episodes import Episode, Goal, Instruction, load_split
from vidnav.errors import VidNavError
from vidnav.eval.runner import evaluate
from vidnav.eval.swap import swap_instructions


def _episodes():
    """3 houses x 5 paths x 3 instructions; in house 0, path 1's goal is 2 m from path 0's (too close to swap)."""
    eps, ep_id = [], 0
    for h in range(3):
        for t in range(5):
            goal = [2.0, 0.0, 0.0] if (h == 0 and t == 1) else [6.0 * t, 0.0, 0.0]
            for k in range(3):
                ep_id += 1
                eps.append(
                    Episode(
                        ep_id,
                        h * 10 + t,
                        f"houses/h{h}.json",
                        [0.0, 0.0, 0.0],
                        [0.0, 0.0, 0.0, 1.0],
                        {"geodesic_distance": 5.0},
                        [Goal(goal, 3.0)],
                        [[0.0, 0.0, 0.0], goal],
                        Instruction(f"house {h} path {t} words {k}"),
                    )
                )
    return eps


def test_the_donor_is_another_path_of_the_same_house_with_another_goal():
    eps = _episodes()
    donors = swap_instructions(eps, eps, seed=0)
    assert set(donors) == {str(e.episode_id) for e in eps}
    for ep in eps:
        d = donors[str(ep.episode_id)]
        assert d.scene_id == ep.scene_id and d.trajectory_id != ep.trajectory_id
        assert abs(d.goals[0].position[0] - ep.goals[0].position[0]) > 3.0


def test_the_draw_is_seeded_and_does_not_depend_on_the_episodes_evaluated():
    eps = _episodes()
    a, b = swap_instructions(eps, eps, seed=0), swap_instructions(eps, eps, seed=0)
    assert {k: v.episode_id for k, v in a.items()} == {k: v.episode_id for k, v in b.items()}
    other = swap_instructions(eps, eps, seed=1)
    assert any(other[k].episode_id != a[k].episode_id for k in a)
    part = swap_instructions(eps, eps[20:26], seed=0)  # a resume, or --episodes, or one worker's share
    assert {k: v.episode_id for k, v in part.items()} == {k: a[k].episode_id for k in part}


def test_a_house_with_one_path_is_a_clear_error():
    eps = [e for e in _episodes() if e.scene_id != "houses/h2.json" or e.trajectory_id == 20]
    with pytest.raises(VidNavError, match=r"episode \d+ \(houses/h2.json\) has no other path"):
        swap_instructions(eps, eps, seed=0)
    with pytest.raises(VidNavError, match="--seed must be >= 0"):
        swap_instructions(eps, eps[:3], seed=-1)


def test_swapped_run_records_the_instruction_and_a_reader_collapses(tiny_benchmark, tmp_path):
    """The symbolic agent reads: with its own instruction it reaches the goals, with another path's it does not.
    Result lines say which instruction was given; resuming with another setting or seed is refused."""
    split = load_split(tiny_benchmark, "val_unseen")
    text = {str(e.episode_id): e for e in split.episodes}
    own = evaluate(tiny_benchmark, "val_unseen", "symbolic", tmp_path / "own", episodes=6, progress=False)
    out = tmp_path / "swapped"
    swapped = evaluate(
        tiny_benchmark, "val_unseen", "symbolic", out, episodes=6, progress=False, instructions="swapped"
    )
    assert own["success"] >= 5 / 6 and swapped["success"] <= 1 / 6
    recs = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    for r in recs:
        ep, donor = text[r["episode_id"]], text[r["instruction_from"]]
        assert donor.scene_id == ep.scene_id and donor.trajectory_id != ep.trajectory_id
        assert r["instruction"] == donor.instruction.instruction_text != ep.instruction.instruction_text
    own_recs = [json.loads(x) for x in (tmp_path / "own" / "results.jsonl").read_text().splitlines()]
    assert all(
        "instruction_from" not in r and r["instruction"] == text[r["episode_id"]].instruction.instruction_text
        for r in own_recs
    )
    run = json.loads((out / "run.json").read_text())
    assert run["instructions"] == "swapped" and run["instructions_seed"] == 0
    with pytest.raises(VidNavError, match="instructions='swapped'.*now instructions='own'"):
        evaluate(tiny_benchmark, "val_unseen", "symbolic", out, episodes=6, progress=False)
    with pytest.raises(VidNavError, match="instructions_seed=0; now instructions_seed=1"):
        evaluate(
            tiny_benchmark, "val_unseen", "symbolic", out, episodes=6, seed=1, progress=False, instructions="swapped"
        )
    with pytest.raises(VidNavError, match="--instructions shuffled: no such file; give own, swapped"):
        evaluate(
            tiny_benchmark,
            "val_unseen",
            "symbolic",
            tmp_path / "x",
            episodes=1,
            progress=False,
            instructions="shuffled",
        )
    # two workers give every episode the same instruction, and the same results
    evaluate(
        tiny_benchmark,
        "val_unseen",
        "symbolic",
        tmp_path / "w2",
        episodes=6,
        workers=2,
        progress=False,
        instructions="swapped",
    )
    by_id = {
        json.loads(x)["episode_id"]: json.loads(x) for x in (tmp_path / "w2" / "results.jsonl").read_text().splitlines()
    }
    assert [by_id[r["episode_id"]] for r in recs] == recs


def test_a_run_json_from_before_the_key_counts_as_own(tiny_benchmark, tmp_path):
    out = tmp_path / "old"
    evaluate(tiny_benchmark, "val_unseen", "oracle", out, episodes=1, progress=False)
    run = json.loads((out / "run.json").read_text())
    del run["instructions"], run["instructions_seed"]
    (out / "run.json").write_text(json.dumps(run))
    evaluate(tiny_benchmark, "val_unseen", "oracle", out, episodes=2, progress=False)  # resumes: same run
    with pytest.raises(VidNavError, match="now instructions='swapped'"):
        evaluate(tiny_benchmark, "val_unseen", "oracle", out, episodes=2, progress=False, instructions="swapped")
