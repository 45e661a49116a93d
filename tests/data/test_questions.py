"""Embodied questions: the facts the simulator knows per frame, question items over rollouts, and a model that
learns to answer them (batch decoding and the streaming Agent give the same answers)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from vidnav.data.dataset import CoSamples, NavCollator, NavSamples, QASamples
from vidnav.data.questions import QUESTIONS, route_rooms, trajectory_facts
from vidnav.data.rollouts import collect_rollouts
from vidnav.errors import VidNavError
from vidnav.geometry import to_habitat
from vidnav.sim.housegen import generate_house
from vidnav.sim.navmap import heading_of


def _two_room_route(house):
    d = house.doors[0]
    return [d.a, d.b], d


def test_facts_name_the_room_the_next_room_the_door_side_and_the_rooms_left():
    house = generate_house(5)
    route, door = _two_room_route(house)
    rooms = {r.id: r for r in house.rooms}
    cx, cz = rooms[route[0]].center
    face = heading_of(door.center[0] - cx, door.center[1] - cz)
    ex, ez = rooms[route[1]].center
    poses = [
        (cx, cz, face),
        (cx, cz, face + math.pi),
        (cx, cz, face + math.pi / 2),
        (cx, cz, face - math.pi / 2),
        (ex, ez, 0.0),
        (cx, cz, face),
    ]  # the last: back in the first room after the route moved on
    facts = trajectory_facts(house, route, poses)
    assert [f.room for f in facts[:4]] == [rooms[route[0]].type] * 4
    assert facts[0].next == rooms[route[1]].type and facts[0].left == "one"
    # heading grows turning left (Miniworld): turned left by 90 degrees, the door is on the right
    assert [f.door for f in facts[:4]] == ["ahead", "behind", "right", "left"]
    assert (facts[4].room, facts[4].next, facts[4].door, facts[4].left) == (
        rooms[route[1]].type,
        "none",
        "none",
        "zero",
    )
    # off the route's current room only the room is known
    assert facts[5].room == rooms[route[0]].type and (facts[5].next, facts[5].door, facts[5].left) == (None,) * 3


def test_route_rooms_follow_the_reference_path_in_order():
    house = generate_house(5)
    route, door = _two_room_route(house)
    rooms = {r.id: r for r in house.rooms}
    path = [to_habitat(*rooms[route[0]].center), to_habitat(*door.center), to_habitat(*rooms[route[1]].center)]
    assert route_rooms(house, path) == route


@pytest.fixture(scope="module")
def rollout(tiny_benchmark, tmp_path_factory):
    out = tmp_path_factory.mktemp("qa") / "R"
    collect_rollouts(tiny_benchmark, "train", out, episodes=3, progress=False)
    return out


def test_question_items_cover_the_frames_and_answer_what_the_house_says(tiny_benchmark, rollout):
    from vidnav.sim.house import House

    nav = NavSamples([rollout])
    qa = QASamples(nav, tiny_benchmark, ratio=1.0, seed=0)
    in_room = 0
    for traj in nav.trajectories:
        house = House.load(tiny_benchmark / traj.scene_id)
        in_room += sum(house.room_at(x, z) is not None for x, z, _ in traj.extra["poses"])
    assert len(nav) * 0.8 < len(qa) == in_room  # every frame asked once, but for those in a doorway
    again = QASamples(nav, tiny_benchmark, ratio=1.0, seed=0)
    assert qa.items == again.items
    assert {q for _, _, q, _ in qa.items} <= set(QUESTIONS.values())
    assert len({q for _, _, q, _ in qa.items}) == len(QUESTIONS)
    line = json.loads((rollout / "trajectories.jsonl").read_text().splitlines()[0])
    house = House.load(tiny_benchmark / line["scene_id"])
    for j, t, q, a in qa.items:
        if q == QUESTIONS["room"] and nav.trajectories[j].key == line["key"]:
            x, z, _ = line["poses"][t]
            assert a == house.room_at(x, z).type
    last = [a for j, t, q, a in qa.items if t == nav.trajectories[j].length - 1 and q == QUESTIONS["left"]]
    assert all(a == "zero" for a in last)  # the expert ends in the route's last room
    half = QASamples(nav, tiny_benchmark, ratio=0.5, seed=0)
    assert 0.3 * len(nav) < len(half) < 0.7 * len(nav)
    co = CoSamples(nav, half)
    assert len(co) == len(nav) + len(half) and co[len(nav)]["question"] is not None and "question" not in co[0]
    assert co.trajectories is nav.trajectories


def test_question_items_refuse_rollouts_they_cannot_place(tiny_benchmark, rollout, tmp_path):
    nav = NavSamples([rollout])
    with pytest.raises(VidNavError, match="not a benchmark|not in the benchmark"):
        QASamples(nav, tmp_path)
    with pytest.raises(VidNavError, match="family"):
        QASamples(nav, tiny_benchmark, families=["colour"])
    for t in nav.trajectories:
        t.extra.pop("poses")
    with pytest.raises(VidNavError, match="poses"):
        QASamples(nav, tiny_benchmark)


def test_a_model_learns_answers_to_questions_and_the_agent_asks_them_like_the_batch(tiny_benchmark, rollout):
    """Two questions over the same frames with different answers: only a model that reads the question (placed
    after the current frame) answers both; the streaming Agent's ask() and model.answer() agree."""
    from vidnav.agent import Agent
    from vidnav.model import build_model

    torch.manual_seed(0)
    model = build_model("tiny", current_pool=2, lm_config={"num_hidden_layers": 1})
    nav = NavSamples([rollout], max_history=4)
    feats = nav.features(0, 3)
    instr = nav.trajectories[0].instruction
    qs = [QUESTIONS["room"], QUESTIONS["door"], None]
    answers = ["laundry room", "behind", ["forward", "left", "left", "stop"]]
    batch = model.prepare_batch([instr] * 3, [feats] * 3, answers, questions=qs)
    assert batch["question_mask"][2].sum() == 0 and batch["question_mask"][0].sum() > 0
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    model.train()
    first = None
    for _ in range(60):
        loss = model(**batch).loss
        first = first if first is not None else float(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    assert float(model(**batch).loss) < 0.05 * first
    asked = model.prepare_batch([instr] * 2, [feats] * 2, questions=qs[:2])
    assert model.answer(asked) == answers[:2]
    assert model.plan(model.prepare_batch([instr], [feats]))[0] == answers[2]
    agent = Agent(model)
    agent.reset(instr)
    for t in range(feats.shape[0]):
        agent.observe_features(feats[t : t + 1])
    assert [agent.ask(q) for q in qs[:2]] == answers[:2]
    assert agent.plan() == answers[2]  # asking left the memory and the cache as they were
    with pytest.raises(VidNavError, match="question"):
        agent.ask("  ")


def test_the_collator_builds_mixed_batches(tiny_benchmark, rollout):
    from vidnav.model import build_model

    model = build_model("tiny", current_pool=2, lm_config={"num_hidden_layers": 1})
    nav = NavSamples([rollout], max_history=4)
    co = CoSamples(nav, QASamples(nav, tiny_benchmark, ratio=1.0))
    batch = NavCollator(model, co)([co[0], co[len(nav)]])
    assert batch["labels"].shape[0] == 2 and batch["question_mask"][1].sum() > 0
    assert np.isfinite(float(model(**{k: v for k, v in batch.items() if k != "sample_index"}).loss))


def test_question_accuracy_counts_exact_answers_per_family_beside_the_majority(tiny_benchmark, rollout):
    from vidnav.model import build_model
    from vidnav.train.validate import question_accuracy

    model = build_model("tiny", current_pool=2, lm_config={"num_hidden_layers": 1})
    nav = NavSamples([rollout], max_history=2)
    qa = QASamples(nav, tiny_benchmark, ratio=1.0)
    truth = {(it["trajectory"], it["t"]): it for it in (qa[i] for i in range(len(qa)))}
    batches = []

    def answer(batch):  # right on 'room' questions, a fixed wrong word elsewhere
        items = batches.pop(0)
        return [it["targets"] if it["question"] == QUESTIONS["room"] else "banana" for it in items]

    collate = NavCollator(model, qa, with_index=False)
    model.answer = answer
    import vidnav.train.validate as v

    class Spy(NavCollator):
        def __call__(self, items):
            batches.append(items)
            return collate(items)

    orig, v.NavCollator = v.NavCollator, Spy
    try:
        m = question_accuracy(model, qa, max_samples=None, batch_size=8)
    finally:
        v.NavCollator = orig
    assert m["samples"] == len(qa) and len(truth) == len(qa)
    fams = m["families"]
    assert fams["room"]["accuracy"] == 1.0 and fams["next"]["accuracy"] == 0.0
    assert sum(f["n"] for f in fams.values()) == len(qa)
    assert 0 < fams["door"]["majority_accuracy"] <= 1 and fams["door"]["majority"] in (
        "left",
        "right",
        "ahead",
        "behind",
        "none",
    )


def test_chat_replays_an_episode_and_answers_each_question(tiny_benchmark, capsys):
    from vidnav.cli import main
    from vidnav.data.episodes import load_split

    eid = str(load_split(tiny_benchmark, "val_unseen").episodes[0].episode_id)
    args = [
        "chat",
        "--data",
        str(tiny_benchmark),
        "--episode",
        eid,
        "--steps",
        "6",
        "-q",
        "which room are you in?",
        "-q",
        "which way is the door you should take?",
    ]
    main(args)
    first = capsys.readouterr().out
    assert first.count("Q: ") == 2 and first.count("A: ") == 2 and first.startswith("instruction: ")
    main(args)
    assert capsys.readouterr().out == first  # greedy and deterministic
    with pytest.raises(SystemExit) as e:
        main(["chat", "--data", str(tiny_benchmark), "--episode", "no-such-episode", "-q", "x?"])
    assert e.value.code == 2 and "no-such-episode" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["chat", "-q", "x?"])
    assert "either --data" in capsys.readouterr().err


def test_chat_watches_a_video_file(tmp_path, capsys):
    import imageio.v3 as iio

    from vidnav.cli import main

    frames = np.random.default_rng(0).integers(0, 255, size=(5, 64, 64, 3), dtype=np.uint8)
    video = tmp_path / "walk.mp4"
    iio.imwrite(video, frames, fps=5)
    main(["chat", "--video", str(video), "--instruction", "go to the kitchen", "-q", "which room are you in?"])
    out = capsys.readouterr().out
    assert "Q: which room are you in?" in out and "\nA: " in out
    with pytest.raises(SystemExit):
        main(["chat", "--video", str(tmp_path / "none.mp4"), "--instruction", "x", "-q", "y?"])
    assert "not found" in capsys.readouterr().err
