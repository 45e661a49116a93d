"""R2R-style English instructions written from a path's semantics (`PathSemantics`).

An instruction is planned as a list of clauses, each realising one *fact* of the path (the start
turn, leaving a room, entering one, a turn inside a room, a landmark passed, the stop place). Every
fact points back into the semantics (visit indices, landmark indices, directions), so what a clause
says can be checked against the path: `compose_instruction` returns the clauses with their facts.
Clauses are then joined into sentences with varied connectives.

Truth rules the grammar keeps:

* a turn word is the semantic turn (``visits[k].turn`` or ``start_turn``); "straight" never becomes
  left/right; a doorway's side is ``visits[k].exit_bearing`` and is only used while it still holds
  (no landmark passed in that room before leaving);
* rooms are named in visiting order, by their type and/or their own floor and wall words;
* a landmark is named with one of its own names, and with the side it was actually passed on;
* the stop clause names the goal landmark (exact name), the goal room, or the doorway's rooms.

Only plain words and ``.,`` (plus ``-`` in "u-turn") are produced.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vidnav.data.semantics import PathSemantics, RoomVisit
from vidnav.sim.house import LANDMARKS

MIN_WORDS, MAX_WORDS = 8, 80

# Words a room type may be called by (the first is the type itself).
ROOM_WORDS: dict[str, list[str]] = {
    "bedroom": ["bedroom"],
    "bathroom": ["bathroom"],
    "kitchen": ["kitchen"],
    "living room": ["living room", "lounge"],
    "dining room": ["dining room"],
    "office": ["office", "study"],
    "hallway": ["hallway", "hall", "corridor"],
    "laundry room": ["laundry room"],
    "storage room": ["storage room"],
}

# Shorter (still true) words for a look: "light wooden floor" -> "wooden floor".
SHORT_LOOKS: dict[str, list[str]] = {
    "light wooden floor": ["wooden floor", "light wood floor"],
    "dark wooden floor": ["dark floor", "dark wood floor"],
    "black and white checkered floor": ["checkered floor", "black and white floor"],
    "marble floor": [],
    "concrete floor": [],
    "grey tiled floor": ["tiled floor", "grey tiles"],
    "beige carpet": ["carpet"],
    "white floor": [],
    "stone floor": [],
    "red brick walls": ["brick walls"],
    "pale grey walls": ["grey walls"],
    "stucco walls": [],
    "white walls": [],
    "wood panelled walls": ["wooden panels", "panelled walls"],
    "dark wooden walls": ["wooden walls"],
    "cinder block walls": ["block walls"],
    "concrete walls": [],
    "tiled walls": [],
    "marble walls": [],
}

DIRECTIONS = ("left", "right")


def look_forms(words: str) -> list[str]:
    """All phrases the grammar may use for one floor or wall description."""
    return [words] + SHORT_LOOKS.get(words, [])


def landmark_names(name: str, kind: str) -> list[str]:
    """The names a landmark may be called by: its own name first, then its other words."""
    spec = LANDMARKS.get(kind)
    if spec is None:
        return [name]
    color = name.split()[0] if spec.get("colored") else None
    out = [name]
    for w in spec["words"]:
        w = w.format(color=color) if color else w
        if w not in out:
            out.append(w)
    return out


@dataclass
class Clause:
    """One clause of an instruction and the fact it states.

    rooms: visit indices named in the clause (by type or look); other_rooms: room types named that
    are not visits (the room beyond a goal doorway); turn: (visit index, or -1 for the start turn,
    direction word); bearing: (visit index, side of its exit door); landmark: (visit index, index in
    ``visits[k].passed``, side or None), or (-1, -1, goal side or None) for the goal landmark;
    looks: (visit index, floor/wall phrase) used.
    """

    text: str
    kind: str  # start | exit | enter | in | turn | transition | through | pass | goal
    template: str
    rooms: list[int] = field(default_factory=list)
    other_rooms: list[str] = field(default_factory=list)
    turn: tuple[int, str] | None = None
    bearing: tuple[int, str] | None = None
    landmark: tuple[int, int, str | None] | None = None
    looks: list[tuple[int, str]] = field(default_factory=list)
    lead: bool = False  # a subordinate clause ("once you are in the kitchen") that needs a main clause after it

    @property
    def fact(self) -> dict:
        return {
            "kind": self.kind,
            "template": self.template,
            "rooms": list(self.rooms),
            "other_rooms": list(self.other_rooms),
            "turn": self.turn,
            "bearing": self.bearing,
            "landmark": self.landmark,
            "looks": list(self.looks),
            "lead": self.lead,
        }


# ---------------------------------------------------------------------------------------------
# Words
# ---------------------------------------------------------------------------------------------

MOVE = ["walk", "go", "head", "move", "proceed"]
EXITV = ["exit", "leave", "walk out of", "go out of", "step out of", "head out of"]
ENTERV = ["enter", "go into", "walk into", "step into", "head into", "move into", "proceed into", "continue into"]
TURN_LR = ["turn {d}", "make a {d}", "take a {d}", "make a {d} turn", "turn to the {d}", "turn to your {d}"]
TURNING_LR = ["turning {d}", "making a {d}", "taking a {d}", "turning to your {d}"]
STRAIGHT = [
    "go straight",
    "continue straight",
    "keep going straight",
    "walk straight",
    "carry on straight",
    "head straight",
]
AROUND = ["turn around", "turn all the way around", "make a u-turn", "turn back around"]
SLIGHT = [
    "turn slightly {d}",
    "bear {d}",
    "veer slightly to the {d}",
    "turn a little to your {d}",
    "turn a bit to the {d}",
]


def _pick(rng: np.random.Generator, xs):
    return xs[int(rng.integers(len(xs)))]


def _chance(rng: np.random.Generator, p: float) -> bool:
    return bool(rng.random() < p)


def _article(phrase: str) -> str:
    return ("an " if phrase[:1] in "aeiou" else "a ") + phrase


def _turn_words(rng: np.random.Generator, d: str) -> str:
    """Words for a turn: d in left | right | straight | around | slightly left | slightly right."""
    if d in DIRECTIONS:
        return _pick(rng, TURN_LR).format(d=d)
    if d == "straight":
        return _pick(rng, STRAIGHT)
    if d == "around":
        return _pick(rng, AROUND)
    if d.startswith("slightly "):
        return _pick(rng, SLIGHT).format(d=d.split()[1])
    raise ValueError(f"unknown turn {d!r}")


# ---------------------------------------------------------------------------------------------
# Clause templates. Slots: {R} the room of the fact, {R2} the next room, {MOVE} {EXITV} {ENTERV}
# verbs, {TURN} the turn of the fact, {TURNING} its -ing form, {d} its direction, {b} the exit
# door's side, {L} a landmark name, {aL} with an article, {s} its side, {N} the goal landmark,
# {g} the goal landmark's side, {D} the room beyond a goal doorway, {Rg} the goal room.
# ---------------------------------------------------------------------------------------------

T_START = {
    "lr": [
        "{TURN}",
        "begin by turning {d}",
        "first, {TURN}",
        "start by turning to your {d}",
        "{TURN} to start",
        "{TURN} where you stand",
    ],
    "around": [
        "{TURN}",
        "start by turning around",
        "first, turn around",
        "turn around to face the other way",
        "turn around where you stand",
    ],
    "slight": ["{TURN}", "first, {TURN}", "start by turning slightly {d}"],
}
T_EXIT = {
    "none": [
        "{EXITV} the {R}",
        "{MOVE} out of the {R}",
        "{MOVE} out of the {R} through the doorway",
        "go through the doorway to leave the {R}",
        "make your way out of the {R}",
        "{EXITV} the {R} through the door",
    ],
    "bear_lr": [
        "{EXITV} the {R} through the doorway on your {b}",
        "take the doorway on your {b} out of the {R}",
        "{EXITV} the {R} using the door to your {b}",
        "{MOVE} to the doorway on your {b}",
        "go through the door on your {b}",
        "{EXITV} the {R} on your {b}",
        "{MOVE} out through the doorway on your {b}",
    ],
    "bear_ahead": [
        "{MOVE} through the doorway in front of you",
        "{EXITV} the {R} through the doorway ahead",
        "{MOVE} toward the doorway ahead of you and {EXITV} the {R}",
    ],
    "bear_behind": ["{EXITV} the {R} through the doorway behind you", "{MOVE} to the doorway behind you"],
    "turn_lr": [
        "{TURN} and {EXITV} the {R}",
        "{TURN} and go through the doorway",
        "{TURN} and {MOVE} out of the {R}",
        "{TURN} to {EXITV} the {R}",
        "{EXITV} the {R} after {TURNING}",
        "{TURN} and take the doorway",
    ],
    "turn_straight": ["{TURN} and {EXITV} the {R}", "{TURN} out of the {R}", "{TURN} through the doorway"],
    "turn_around": ["{TURN} and {EXITV} the {R}", "{TURN} and {MOVE} out of the {R}"],
}
T_ENTER = {
    "main": [
        "{ENTERV} the {R}",
        "{MOVE} into the {R}",
        "go through the doorway into the {R}",
        "{MOVE} through the door into the {R}",
        "step through the doorway and into the {R}",
    ],
    "lead": [
        "once you are in the {R}",
        "once inside the {R}",
        "when you reach the {R}",
        "after entering the {R}",
        "as soon as you enter the {R}",
        "when you get to the {R}",
        "after you {ENTERV} the {R}",
    ],
}
T_IN = ["in the {R}", "inside the {R}", "once in the {R}"]
T_TURN = {
    "lr": ["{TURN}", "{TURN} in the {R}", "{TURN} inside the {R}", "{TURN} once you are in the {R}"],
    "straight": ["{TURN}", "{TURN} through the {R}", "{TURN} across the {R}"],
    "around": ["{TURN}", "{TURN} in the {R}"],
}
T_TRANSITION = {
    "none": [
        "{MOVE} from the {R} into the {R2}",
        "{MOVE} out of the {R} and into the {R2}",
        "leave the {R} and {ENTERV} the {R2}",
        "{EXITV} the {R} into the {R2}",
        "{MOVE} through the doorway from the {R} to the {R2}",
    ],
    "turn_lr": [
        "{TURN} into the {R2}",
        "{TURN} and {ENTERV} the {R2}",
        "{TURN} through the doorway into the {R2}",
        "{TURN} out of the {R} into the {R2}",
        "{TURN} and {MOVE} into the {R2}",
    ],
    "turn_straight": [
        "{TURN} into the {R2}",
        "{TURN} through the doorway into the {R2}",
        "{TURN} from the {R} into the {R2}",
    ],
    "turn_around": ["{TURN} and {ENTERV} the {R2}"],
    "bear_lr": [
        "take the doorway on your {b} into the {R2}",
        "{MOVE} through the door on your {b} into the {R2}",
        "{ENTERV} the {R2} through the doorway on your {b}",
    ],
    "bear_ahead": ["{MOVE} through the doorway ahead into the {R2}", "{MOVE} ahead into the {R2}"],
}
T_THROUGH = {
    "any": [
        "{MOVE} through the {R}",
        "pass through the {R}",
        "cross the {R}",
        "continue through the {R}",
        "{MOVE} across the {R}",
    ],
    "hall": ["{MOVE} down the {R}", "follow the {R}", "{MOVE} along the {R}"],
    "turn_lr": ["{MOVE} through the {R} and {TURN}", "{MOVE} into the {R} and {TURN}"],
    "turn_straight": ["{MOVE} straight through the {R}", "{TURN} through the {R}"],
    "to": [
        "{MOVE} through the {R} into the {R2}",
        "{MOVE} through the {R} to the {R2}",
        "cross the {R} to get to the {R2}",
        "{MOVE} through the {R} and into the {R2}",
    ],
    "hall_to": ["{MOVE} down the {R} to the {R2}", "follow the {R} to the {R2}"],
}
T_PASS = {
    "side": [
        "{MOVE} past the {L} on your {s}",
        "pass the {L} on your {s}",
        "{MOVE} past the {L}, keeping it on your {s}",
        "keep the {L} on your {s}",
        "pass by the {L} on your {s}",
        "{MOVE} by the {L} on your {s}",
        "{MOVE} forward with the {L} on your {s}",
        "pass {aL} on your {s}",
        "you will pass {aL} on your {s}",
        "{MOVE} past {aL} on your {s}",
    ],
    "plain": ["{MOVE} past the {L}", "pass the {L}", "{MOVE} past the {L} in the {R}", "pass by {aL}"],
}
T_GOAL = {
    "lm": [
        "stop next to the {N}",
        "stop beside the {N}",
        "wait by the {N}",
        "stop near the {N}",
        "stop when you reach the {N}",
        "stop close to the {N}",
        "stop next to the {N} in the {R}",
        "wait beside the {N} in the {R}",
        "stop in the {R} next to the {N}",
        "wait near the {N}",
        "come to a stop by the {N}",
    ],
    "lm_lr": [
        "stop with the {N} on your {g}",
        "stop when the {N} is on your {g}",
        "stop once the {N} is to your {g}",
        "wait with the {N} to your {g}",
        "stop next to the {N}, which will be on your {g}",
    ],
    "lm_ahead": [
        "stop in front of the {N}",
        "stop facing the {N}",
        "stop just before the {N}",
        "wait when the {N} is in front of you",
    ],
    "lm_behind": ["stop with the {N} behind you", "stop just after the {N}"],
    "center": [
        "stop in the middle of the {R}",
        "wait in the center of the {R}",
        "stop in the center of the {R}",
        "stop once you reach the middle of the {R}",
        "wait in the middle of the {R}",
        "come to a stop in the middle of the {R}",
        "stop when you are in the middle of the {R}",
        "stop in the middle of the room",
        "wait in the center of the room",
    ],
    "door": [
        "stop in the doorway to the {D}",
        "wait in the doorway leading to the {D}",
        "stop in the doorway of the {D}",
        "stop at the entrance to the {D}",
        "stop when you reach the doorway to the {D}",
        "wait at the threshold of the {D}",
        "stop in the doorway into the {D}",
    ],
    "door_between": [
        "stop in the doorway between the {Rg} and the {D}",
        "wait in the doorway from the {Rg} to the {D}",
    ],
}


# ---------------------------------------------------------------------------------------------
# Realisation
# ---------------------------------------------------------------------------------------------

_TURN_GROUP = {"left": "turn_lr", "right": "turn_lr", "straight": "turn_straight", "around": "turn_around"}


class _Writer:
    def __init__(self, sem: PathSemantics, rng: np.random.Generator, detail: float):
        self.sem, self.rng, self.detail = sem, rng, detail
        self.clauses: list[Clause] = []
        self.named: set[int] = set()
        self.described: set[int] = set()  # visits already described by their look (said once is enough)
        self.must_enter = False  # the way into the next room was left unsaid, so its entry must be said

    # -- noun phrases ----------------------------------------------------------------------------
    def room_np(self, k: int, looks: list[tuple[int, str]], plain: bool = False) -> str:
        """Words for visit k (without the article): type, type with a look, or only its look."""
        v: RoomVisit = self.sem.visits[k]
        rng = self.rng
        name = _pick(rng, ROOM_WORDS.get(v.room_type, [v.room_type])) if _chance(rng, 0.25) else v.room_type
        if k > 0 and self.sem.visits[k - 1].room_type == v.room_type and k not in self.named:
            name = "next " + name  # two rooms of one type in a row
        self.named.add(k)
        if plain or k in self.described:
            return name
        if not _chance(rng, 0.1 + 0.35 * self.detail):
            return name
        self.described.add(k)
        floor, walls = _pick(rng, look_forms(v.floor)), _pick(rng, look_forms(v.walls))
        style = int(rng.integers(7))
        if style == 0:
            looks.append((k, floor))
            return f"{name} with the {floor}"
        if style == 1:
            looks.append((k, walls))
            return f"{name} with {walls}"
        if style == 2:
            looks.append((k, walls))
            return f"{name} with the {walls}"
        if style == 3:
            looks += [(k, floor), (k, walls)]
            return f"{name} with the {floor} and {walls}"
        if style == 4:
            looks.append((k, floor))
            return f"room with the {floor}"
        if style == 5:
            looks.append((k, walls))
            return f"room with {walls}"
        looks.append((k, floor))
        return f"{name} that has the {floor}"

    # -- templates -------------------------------------------------------------------------------
    def emit(
        self,
        kind: str,
        template: str,
        *,
        k: int | None = None,
        k2: int | None = None,
        turn: tuple[int, str] | None = None,
        bearing: tuple[int, str] | None = None,
        landmark: tuple[int, int, str | None] | None = None,
        lm_name: str | None = None,
        goal_room: str | None = None,
        door_to: str | None = None,
        lead: bool = False,
    ) -> Clause:
        rng = self.rng
        c = Clause("", kind, template, turn=turn, bearing=bearing, landmark=landmark, lead=lead)
        out = []
        rest = template
        while "{" in rest:
            i = rest.index("{")
            j = rest.index("}", i)
            out.append(rest[:i])
            slot = rest[i + 1 : j]
            rest = rest[j + 1 :]
            if slot == "R":
                c.rooms.append(k)
                out.append(self.room_np(k, c.looks))
            elif slot == "R2":
                c.rooms.append(k2)
                out.append(self.room_np(k2, c.looks))
            elif slot == "Rg":
                last = len(self.sem.visits) - 1
                if self.sem.visits[last].room_type == goal_room:
                    c.rooms.append(last)
                    out.append(self.room_np(last, c.looks))
                else:
                    c.other_rooms.append(goal_room)
                    out.append(goal_room)
            elif slot == "D":
                c.other_rooms.append(door_to)
                out.append(_pick(rng, ROOM_WORDS.get(door_to, [door_to])) if _chance(rng, 0.25) else door_to)
            elif slot == "MOVE":
                out.append(_pick(rng, MOVE))
            elif slot == "EXITV":
                out.append(_pick(rng, EXITV))
            elif slot == "ENTERV":
                out.append(_pick(rng, ENTERV))
            elif slot == "TURN":
                out.append(_turn_words(rng, turn[1]))
            elif slot == "TURNING":
                out.append(_pick(rng, TURNING_LR).format(d=turn[1]))
            elif slot == "d":
                out.append(turn[1].split()[-1])
            elif slot == "b":
                out.append(bearing[1])
            elif slot in ("L", "aL"):
                out.append(lm_name if slot == "L" else _article(lm_name))
            elif slot == "s":
                out.append(landmark[2])
            elif slot == "N":
                out.append(lm_name)
            elif slot == "g":
                out.append(landmark[2])
            else:
                raise KeyError(slot)
        out.append(rest)
        c.text = "".join(out)
        self.clauses.append(c)
        return c

    # -- facts -----------------------------------------------------------------------------------
    def start(self) -> None:
        d = self.sem.start_turn
        if d is None:
            return
        if d.startswith("slightly") and not _chance(self.rng, 0.5 + 0.4 * self.detail):
            return
        group = "lr" if d in DIRECTIONS else "around" if d == "around" else "slight"
        self.emit("start", _pick(self.rng, T_START[group]), turn=(-1, d))

    def passes(self, k: int) -> None:
        v = self.sem.visits[k]
        for j, p in enumerate(v.passed):
            if not _chance(self.rng, 0.2 + 0.65 * self.detail):
                continue
            name = _pick(self.rng, landmark_names(p.name, p.kind)) if _chance(self.rng, 0.3) else p.name
            if _chance(self.rng, 0.85):
                self.emit("pass", _pick(self.rng, T_PASS["side"]), landmark=(k, j, p.side), lm_name=name, k=k)
            else:
                self.emit("pass", _pick(self.rng, T_PASS["plain"]), landmark=(k, j, None), lm_name=name, k=k)

    def leave(self, k: int, announce_turn: bool, bearing_ok: bool = True) -> None:
        """Leave visit k (not the last) and enter visit k+1; may merge or skip k+1 when it is a hallway."""
        rng, sem = self.rng, self.sem
        v = sem.visits[k]
        turn = v.turn if announce_turn else None
        bearing = v.exit_bearing if (bearing_ok and not v.passed) else None
        k2 = k + 1
        mode = 0 if _chance(rng, 0.45) else 1
        # How to describe the way out of room k.
        use_turn = turn is not None and (bearing is None or _chance(rng, 0.6))
        use_bearing = not use_turn and bearing is not None and _chance(rng, 0.7)
        if mode == 0:  # one clause for the doorway: leaving k into k2
            if use_turn:
                group = _TURN_GROUP[turn]
                self.emit("transition", _pick(rng, T_TRANSITION[group]), k=k, k2=k2, turn=(k, turn))
            elif use_bearing and bearing in ("left", "right", "ahead"):
                group = "bear_ahead" if bearing == "ahead" else "bear_lr"
                self.emit("transition", _pick(rng, T_TRANSITION[group]), k=k, k2=k2, bearing=(k, bearing))
            else:
                self.emit("transition", _pick(rng, T_TRANSITION["none"]), k=k, k2=k2)
            return
        # Separate exit (and maybe enter) clauses.
        if use_turn:
            group = _TURN_GROUP[turn]
            self.emit("exit", _pick(rng, T_EXIT[group]), k=k, turn=(k, turn))
        elif use_bearing:
            group = {"left": "bear_lr", "right": "bear_lr", "ahead": "bear_ahead", "behind": "bear_behind"}[bearing]
            self.emit("exit", _pick(rng, T_EXIT[group]), k=k, bearing=(k, bearing))
        elif (not self.clauses or not self.clauses[-1].lead) and _chance(rng, 0.7 - 0.3 * self.detail):
            self.must_enter = True  # "walk into the kitchen" says enough
        else:
            self.emit("exit", _pick(rng, T_EXIT["none"]), k=k)

    def enter(self, k: int, followed: bool) -> None:
        """Enter visit k (after an exit clause). A lead form needs a following clause."""
        if followed and _chance(self.rng, 0.3):
            self.emit("enter", _pick(self.rng, T_ENTER["lead"]), k=k, lead=True)
        else:
            self.emit("enter", _pick(self.rng, T_ENTER["main"]), k=k)

    def write(self) -> list[Clause]:
        rng, sem = self.rng, self.sem
        visits = sem.visits
        last = len(visits) - 1
        self.start()
        entered_by_transition = False  # whether room k was entered by the previous clause already
        k = 0
        while k <= last:
            v = visits[k]
            is_last = k == last
            if k > 0 and not entered_by_transition:
                must, self.must_enter = self.must_enter, False
                hall = v.room_type == "hallway"
                followed = bool(v.passed) or (not is_last)
                if is_last and not must and _chance(rng, 0.35):
                    pass  # the stop clause names the room
                elif (
                    not is_last
                    and not v.passed
                    and not must
                    and _chance(rng, (0.4 if hall else 0.1) + 0.4 * (1 - self.detail))
                ):
                    k += 1  # skip the room (mostly hallways): the clauses before and after name the rooms around it
                    self.must_enter = True
                    continue
                elif not is_last and not v.passed and _chance(rng, 0.4):
                    # cross the room in one clause, maybe straight on into the next
                    if v.turn in DIRECTIONS and _chance(rng, 0.5):
                        self.emit("through", _pick(rng, T_THROUGH["turn_lr"]), k=k, turn=(k, v.turn))
                        if k + 1 <= last and _chance(rng, 0.6):
                            self.enter(k + 1, followed=bool(visits[k + 1].passed) or k + 1 < last)
                            entered_by_transition = True
                            k += 1
                            continue
                        self.emit("exit", _pick(rng, T_EXIT["none"]), k=k)
                        entered_by_transition = False
                        k += 1
                        continue
                    if v.turn == "straight" and _chance(rng, 0.5):
                        self.emit("through", _pick(rng, T_THROUGH["turn_straight"]), k=k, turn=(k, "straight"))
                    else:
                        groups = ["to", "any"] + (["hall_to", "hall"] if hall else [])
                        g = _pick(rng, groups)
                        if g in ("to", "hall_to"):
                            self.emit("through", _pick(rng, T_THROUGH[g]), k=k, k2=k + 1)
                            entered_by_transition = True
                            k += 1
                            continue
                        self.emit("through", _pick(rng, T_THROUGH[g]), k=k)
                    self.enter(k + 1, followed=bool(visits[k + 1].passed) or k + 1 < last)
                    entered_by_transition = True
                    k += 1
                    continue
                else:
                    self.enter(k, followed=followed)
            elif k > 0 and v.passed and self.clauses and not self.clauses[-1].lead and _chance(rng, 0.2):
                self.emit("in", _pick(rng, T_IN), k=k, lead=True)
            self.passes(k)
            if is_last:
                break
            # The turn inside room k, said on its own or inside the leaving clause.
            announce = v.turn is not None and _chance(rng, 0.55 + 0.4 * self.detail)
            turned = False  # once a turn is said on its own, the exit door's side (seen on entering) is stale
            if announce and _chance(rng, 0.3) and (k > 0 or sem.start_turn is None):
                group = "lr" if v.turn in DIRECTIONS else v.turn
                self.emit("turn", _pick(rng, T_TURN[group]), k=k, turn=(k, v.turn))
                announce, turned = False, True
            before = len(self.clauses)
            self.leave(k, announce, bearing_ok=not turned)
            entered_by_transition = len(self.clauses) > before and self.clauses[-1].kind == "transition"
            k += 1
        self.goal()
        return self.clauses

    def goal(self) -> None:
        rng, g = self.rng, self.sem.goal
        last = len(self.sem.visits) - 1
        if g.kind == "landmark":
            side = g.side
            groups = ["lm", "lm"]
            if side in DIRECTIONS:
                groups.append("lm_lr")
            elif side == "ahead":
                groups.append("lm_ahead")
            elif side == "behind":
                groups.append("lm_behind")
            grp = _pick(rng, groups)
            self.emit(
                "goal",
                _pick(rng, T_GOAL[grp]),
                k=last,
                landmark=(-1, -1, side if grp != "lm" else None),
                lm_name=g.landmark,
            )
        elif g.kind == "center":
            self.emit("goal", _pick(rng, T_GOAL["center"]), k=last)
        else:
            groups = ["door", "door"] + (["door_between"] if g.room_type and g.room_type != g.doorway_to else [])
            self.emit(
                "goal", _pick(rng, T_GOAL[_pick(rng, groups)]), k=last, goal_room=g.room_type, door_to=g.doorway_to
            )


# ---------------------------------------------------------------------------------------------
# Sentences
# ---------------------------------------------------------------------------------------------

JOIN = [" and ", ", then ", " then ", ", and ", ", and then ", ", "]
OPENERS = ["", "", "", "", "then ", "after that, ", "next, ", "now "]
FINAL_OPENERS = ["", "", "", "finally, ", "then ", "there, "]


def _join(clauses: list[Clause], rng: np.random.Generator) -> str:
    sentences: list[tuple[str, Clause]] = []  # text, first clause
    i, n = 0, len(clauses)
    while i < n:
        size = int(rng.choice([1, 2, 2, 3]))
        parts: list[str] = []
        first = clauses[i]
        while i < n:
            c = clauses[i]
            if parts:
                if clauses[i - 1].lead:
                    parts.append(", ")
                elif len(parts) >= 3 and i + 1 < n and not c.lead and _chance(rng, 0.5):
                    parts.append(_pick(rng, [", and ", " and "]))
                else:
                    parts.append(_pick(rng, JOIN))
            parts.append(c.text)
            size -= 1
            i += 1
            if size <= 0 and not c.lead:
                break
        sentences.append(("".join(parts), first))
    out = []
    for si, (s, first) in enumerate(sentences):
        if si > 0 and not first.lead and first.kind != "start":
            s = _pick(rng, FINAL_OPENERS if first.kind == "goal" else OPENERS) + s
        out.append(s[0].upper() + s[1:] + ".")
    return " ".join(out)


def compose_instruction(
    sem: PathSemantics, rng: np.random.Generator, detail: float | None = None
) -> tuple[str, list[Clause]]:
    """One instruction and its clauses (each with the fact it states). Deterministic given rng."""
    budget = int(rng.integers(14, 44))  # R2R: about 29 words on average, most 15-50
    for attempt in range(24):
        d = float(rng.uniform(0.0, 1.0)) if detail is None else detail
        if attempt >= 6:  # long paths: say less (and from attempt 12 on, allow up to MAX_WORDS)
            d = min(d, 0.1)
        clauses = _Writer(sem, rng, d).write()
        text = _join(clauses, rng)
        words = len(text.split())
        if MIN_WORDS <= words <= (budget if attempt < 12 else MAX_WORDS):
            return text, clauses
    return text, clauses


def write_instructions(sem: PathSemantics, rng: np.random.Generator, n: int = 3, return_plan: bool = False):
    """``n`` different instructions for one path.

    With ``return_plan=True`` returns ``[(text, [(clause_text, fact), ...]), ...]`` so each clause
    can be checked against ``sem`` (see `Clause`).
    """
    texts: list[str] = []
    plans: list[list[tuple[str, dict]]] = []
    tries = 0
    while len(texts) < n:
        tries += 1
        text, clauses = compose_instruction(sem, rng)
        if text in texts and tries < 200 * n:
            continue
        texts.append(text)
        plans.append([(c.text, c.fact) for c in clauses])
    if return_plan:
        return list(zip(texts, plans))
    return texts
