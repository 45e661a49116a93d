"""Instructions are true of their path: every clause is checked against the semantics it came from."""

import re

import numpy as np
import pytest

from vidnav.data.instructions import MAX_WORDS, MIN_WORDS, ROOM_WORDS, landmark_names, look_forms, write_instructions
from vidnav.data.paths import sample_paths
from vidnav.sim.house import FLOOR_WORDS, LANDMARKS, WALL_WORDS
from vidnav.sim.housegen import generate_house

HOUSES = (3, 5, 7, 11, 13, 17, 19, 23)
PATHS_PER_HOUSE = 5
ALLOWED_CHARS = re.compile(r"^[A-Za-z0-9 .,;:!?'\"()/-]+$")

# room words, longest first, so "living room" is found before anything shorter
_ROOM_RE = re.compile(
    r"\b(" + "|".join(sorted({w for ws in ROOM_WORDS.values() for w in ws}, key=len, reverse=True)) + r")\b"
)
_WORD_TYPE = {w: t for t, ws in ROOM_WORDS.items() for w in ws}
_LOOKS = sorted(
    {f for w in list(FLOOR_WORDS.values()) + list(WALL_WORDS.values()) for f in look_forms(w)}, key=len, reverse=True
)
_LM_NOUNS = re.compile(
    r"\b(" + "|".join(sorted({w.split()[-1] for s in LANDMARKS.values() for w in s["words"]})) + r")\b"
)


@pytest.fixture(scope="module")
def paths():
    out = []
    for seed in HOUSES:
        out += [p.semantics for p in sample_paths(generate_house(seed), PATHS_PER_HOUSE, np.random.default_rng(seed))]
    assert len(out) >= 35
    return out


@pytest.fixture(scope="module")
def written(paths):
    rng = np.random.default_rng(0)
    return [(sem, write_instructions(sem, rng, n=3, return_plan=True)) for sem in paths]


def _room_types(text: str) -> list[str]:
    return [_WORD_TYPE[m] for m in _ROOM_RE.findall(text)]


def _check_clause(sem, text: str, f: dict) -> list[int]:
    """Check one clause against the semantics; returns the visit indices it names."""
    words = re.findall(r"[a-z]+(?:-[a-z]+)?", text)
    visits, goal = sem.visits, sem.goal
    said = set()  # directions the fact allows
    if f["turn"] is not None:
        k, d = f["turn"]
        assert d == (sem.start_turn if k == -1 else visits[k].turn), (text, f)
        said.add(d.split()[-1])
        if d == "straight":
            assert "straight" in words, text
        if d == "around":
            assert "around" in words or "u-turn" in words, text
        if d in ("left", "right"):
            assert d in words, text
    if f["bearing"] is not None:
        k, b = f["bearing"]
        assert visits[k].exit_bearing == b and not visits[k].passed, (text, f)
        said.add(b)
    rest = text
    if f["landmark"] is not None:
        k, j, side = f["landmark"]
        if k == -1:
            assert f["kind"] == "goal" and goal.kind == "landmark"
            assert side in (None, goal.side)
            names = [goal.landmark]
        else:
            p = visits[k].passed[j]
            assert side in (None, p.side), (text, f)
            names = landmark_names(p.name, p.kind)
        hit = [n for n in sorted(names, key=len, reverse=True) if n in rest]
        assert hit, (text, names)
        rest = rest.replace(hit[0], " ")
        if side is not None:
            said.add(side)
            assert side in words or side in ("ahead", "behind"), text
    # no landmark is named but the fact's own
    assert not _LM_NOUNS.search(rest), (text, f)
    # left/right/straight/around only as the fact says
    for w in ("left", "right"):
        if w in words:
            assert w in said, (text, f)
    if "straight" in words:
        assert f["turn"] is not None and f["turn"][1] == "straight", (text, f)
    if "around" in words or "u-turn" in words:
        assert f["turn"] is not None and f["turn"][1] == "around", (text, f)
    # looks: each one used is the named room's own, and no other look is mentioned
    for k, phrase in f["looks"]:
        assert k in f["rooms"] and phrase in look_forms(visits[k].floor) + look_forms(visits[k].walls), (text, f)
        assert phrase in rest, (text, phrase)
    for phrase in sorted({p for _, p in f["looks"]}, key=len, reverse=True):
        rest = rest.replace(phrase, " ")
    assert not [p for p in _LOOKS if re.search(r"\b" + p + r"\b", rest)], (text, f)
    # room words: only the rooms of the fact (or the room beyond a goal doorway)
    allowed = {visits[k].room_type for k in f["rooms"]} | set(f["other_rooms"])
    assert set(_room_types(rest)) <= allowed, (text, f)
    if f["other_rooms"]:
        assert f["kind"] == "goal" and goal.kind == "doorway"
        assert set(f["other_rooms"]) <= {goal.room_type, goal.doorway_to}
    for k in f["rooms"]:
        assert 0 <= k < len(visits)
    return f["rooms"]


def test_instructions_are_true_of_their_paths(written):
    for sem, items in written:
        visited = set(sem.rooms) | ({sem.goal.doorway_to} if sem.goal.kind == "doorway" else set())
        texts = [t for t, _ in items]
        assert len(set(texts)) == len(texts) == 3
        for text, plan in items:
            assert ALLOWED_CHARS.match(text), text
            assert MIN_WORDS <= len(text.split()) <= MAX_WORDS, text
            assert text[0].isupper() and text.endswith(".")
            low = text.lower()
            order: list[int] = []
            names = [n for v in sem.visits for p in v.passed for n in landmark_names(p.name, p.kind)]
            stripped = low
            for n in sorted(names + [sem.goal.landmark or ""], key=len, reverse=True):
                stripped = stripped.replace(n, " ") if n else stripped
            for clause, fact in plan:
                assert clause in low, (clause, text)
                order += _check_clause(sem, clause, fact)
            # rooms are named in visiting order
            assert order == sorted(order), (text, order)
            # no room type in the whole instruction that the path does not visit (or stop at the door of)
            assert set(_room_types(stripped)) <= visited, text
            # every left/right in the text sits in a clause whose fact carries it
            for w in ("left", "right", "straight", "around"):
                n_text = len(re.findall(r"\b" + w + r"\b", low))
                n_clauses = sum(len(re.findall(r"\b" + w + r"\b", c)) for c, _ in plan)
                assert n_text == n_clauses, (w, text)
            # a subordinate clause ("once you are in the kitchen") is always followed by a main clause
            assert not plan[-1][1]["lead"]
            assert not any(f1["lead"] and f2["lead"] for (_, f1), (_, f2) in zip(plan, plan[1:])), text
            # the stop comes last
            last_text, last = plan[-1]
            assert last["kind"] == "goal"
            assert sum(f["kind"] == "goal" for _, f in plan) == 1
            if sem.goal.kind == "landmark":
                assert sem.goal.landmark in last_text
            elif sem.goal.kind == "doorway":
                assert "doorway" in last_text or "entrance" in last_text or "threshold" in last_text
                assert set(_room_types(last_text)) & {sem.goal.doorway_to}
            else:
                assert "middle" in last_text or "center" in last_text


def test_diversity_and_length(written, capsys):
    texts = [t for _, items in written for t, _ in items]
    assert len(texts) >= 105
    assert len(set(texts)) == len(texts), "duplicate instructions"
    templates = {f["template"] for _, items in written for _, plan in items for _, f in plan}
    assert len(templates) >= 30, len(templates)
    lengths = [len(t.split()) for t in texts]
    assert MIN_WORDS <= min(lengths) and max(lengths) <= MAX_WORDS
    assert 18 <= float(np.mean(lengths)) <= 45
    with capsys.disabled():
        print(
            f"\n{len(texts)} instructions: {np.mean(lengths):.1f} words on average "
            f"(min {min(lengths)}, max {max(lengths)}), {len(templates)} clause templates"
        )


def test_same_seed_same_text(paths):
    for sem in paths[:8]:
        a = write_instructions(sem, np.random.default_rng(42))
        b = write_instructions(sem, np.random.default_rng(42))
        c = write_instructions(sem, np.random.default_rng(43))
        assert a == b
        assert a != c
        assert write_instructions(sem, np.random.default_rng(42), n=5)[:3] == a


def test_n_and_plan_shape(paths):
    sem = paths[0]
    out = write_instructions(sem, np.random.default_rng(1), n=5, return_plan=True)
    assert len(out) == 5 and len({t for t, _ in out}) == 5
    for text, plan in out:
        assert all(isinstance(c, str) and isinstance(f, dict) for c, f in plan)
