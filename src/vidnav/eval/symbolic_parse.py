"""Reading a navigation instruction into what it says about the route, for the `symbolic` agent.

    parsed = parse_instruction("Leave the bedroom, walk down the hall and stop next to the red box.")
    parsed.mentions   # [Mention(room bedroom, passed), Mention(room hallway, passed)]
    parsed.goal       # GoalSpec(kind "landmark", landmark LandmarkRef("box", "red"))

The parser works on vocabulary, not on sentence templates: room words and their synonyms, floor and wall
looks (as sets of descriptive words), landmark head nouns with their colour, a few prepositions that say a
room is left behind (``out of``, ``through``, ``from`` ...), and the stop clause (the sentence part from a
stop verb on: a landmark, the middle of a room, or a doorway). So a person's wording ("head to the lounge,
then wait by the yellow crate") is read the same way as the benchmark generator's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from vidnav.data.instructions import ROOM_WORDS
from vidnav.sim.house import COLORS, FLOOR_WORDS, WALL_WORDS

# -- vocabulary ---------------------------------------------------------------------------------

# Room phrases (tuples of tokens) -> room type: the generator's words plus the usual synonyms.
_EXTRA_ROOM_WORDS = {
    "bedroom": ["bed room", "guest room", "guestroom", "master bedroom", "sleeping room"],
    "bathroom": ["bath room", "restroom", "washroom", "toilet", "lavatory", "wc", "powder room", "shower room"],
    "kitchen": ["kitchenette"],
    "living room": ["sitting room", "family room", "living area", "lounge room", "front room"],
    "dining room": ["dining area", "dinning room"],
    "office": ["home office", "workroom", "work room", "studio"],
    "hallway": ["passage", "passageway", "entryway", "hall way", "foyer"],
    "laundry room": ["laundry", "utility room", "laundry area"],
    "storage room": ["storeroom", "store room", "storage", "storage area", "junk room", "box room"],
}
ROOM_PHRASES: dict[tuple[str, ...], str] = {}
for _type, _words in ROOM_WORDS.items():
    for _w in [*_words, *_EXTRA_ROOM_WORDS.get(_type, [])]:
        ROOM_PHRASES[tuple(_w.split())] = _type
GENERIC_ROOM = "room"

# Landmark head nouns -> landmark kind (vidnav.sim.house.LANDMARKS).
LANDMARK_HEADS = {
    "box": "box",
    "crate": "box",
    "carton": "box",
    "cube": "box",
    "ball": "ball",
    "barrel": "barrel",
    "drum": "barrel",
    "keg": "barrel",
    "chair": "office_chair",
    "armchair": "office_chair",
    "seat": "office_chair",
    "stool": "office_chair",
    "desk": "office_desk",
    "table": "office_desk",
    "workbench": "office_desk",
    "bottle": "potion",
    "potion": "potion",
    "flask": "potion",
    "vial": "potion",
    "duck": "duckie",
    "duckie": "duckie",
    "ducky": "duckie",
    "duckling": "duckie",
    "cone": "cone",
    "pylon": "cone",
    "kit": "medkit",
    "medkit": "medkit",
    "firstaid": "medkit",
}
COLORED_KINDS = {"box", "ball"}
COLOR_WORDS = {c: c for c in COLORS} | {"gray": "grey"}

# Looks: every word of a texture description, reduced to a stem, so "wooden panels" meets "wood panelled walls".
_STEMS = {
    "wooden": "wood",
    "panelled": "panel",
    "paneled": "panel",
    "panels": "panel",
    "panelling": "panel",
    "paneling": "panel",
    "walls": "wall",
    "floors": "floor",
    "flooring": "floor",
    "floored": "floor",
    "tiles": "tile",
    "tiled": "tile",
    "tiling": "tile",
    "bricks": "brick",
    "checkered": "checker",
    "chequered": "checker",
    "checkerboard": "checker",
    "checked": "checker",
    "blocks": "block",
    "gray": "grey",
    "carpeted": "carpet",
    "carpets": "carpet",
    "cinderblock": "cinder",
    "stoned": "stone",
    "planks": "plank",
    "boards": "plank",
    "floorboards": "plank",
}
FLOOR_SURFACES = {"floor", "carpet"}
WALL_SURFACES = {"wall"}
ANY_SURFACES = {"tile", "panel"}  # "grey tiles" (a floor), "wooden panels" (walls)


def stem(word: str) -> str:
    return _STEMS.get(word, word)


def _look_words(words: str, surface: str) -> frozenset[str]:
    return frozenset(stem(w) for w in words.split() if w != "and") | {surface}


FLOOR_LOOKS = {tex: _look_words(w, "floor") for tex, w in FLOOR_WORDS.items()}
WALL_LOOKS = {tex: _look_words(w, "wall") for tex, w in WALL_WORDS.items()}
FLOOR_LOOKS["wood_planks"] |= {"plank"}
LOOK_WORDS = set().union(*FLOOR_LOOKS.values(), *WALL_LOOKS.values()) | {"plank"}

STOP_VERBS = {"stop", "wait", "halt", "stand", "destination", "goal", "park"}
ENTERED_BEFORE = {"into", "enter", "enters", "entering", "reach", "reaching", "to", "onto"}
PASSED_BEFORE = {
    "exit",
    "exits",
    "exiting",
    "leave",
    "leaves",
    "leaving",
    "from",
    "through",
    "across",
    "cross",
    "crosses",
    "crossing",
    "traverse",
    "down",
    "along",
    "thru",
    "via",
}
DETERMINERS = {"the", "a", "an", "your", "this", "that", "its", "big", "small", "large", "little"}
NEXT_WORDS = {"next", "another", "other", "second", "adjacent", "following"}
CENTER_WORDS = {"middle", "center", "centre", "midpoint"}
DOOR_WORDS = {"doorway", "door", "entrance", "threshold", "entry", "doorframe", "opening", "archway"}
SIDE_WORDS = {"left", "right"}


# -- what an instruction says -------------------------------------------------------------------------


@dataclass(frozen=True)
class LandmarkRef:
    kind: str
    color: str | None = None  # only for kinds that come in colours (boxes, balls)


@dataclass
class Mention:
    """One thing the instruction names along the route, in order.

    A room mention: ``room_type`` (None for "the room with ..."), ``floors`` / ``walls``: the textures its look
    words allow (None: no look said), ``next_room``: said to be another room than the one before ("the next
    bathroom"), ``passed``: said to be left or crossed ("out of", "through"), so the route goes on after it;
    ``entered``: said to be gone into ("into", "enter", "reach"), so it is another room than the one before.
    A landmark mention (``landmark`` set): something passed on the way, in the room the route is in then.
    A door mention (``door``): "then go through the doorway" after everything else named on the way, so the
    route leaves the room it was in then.
    """

    pos: int
    room_type: str | None = None
    floors: frozenset[str] | None = None
    walls: frozenset[str] | None = None
    next_room: bool = False
    passed: bool = False
    entered: bool = False
    landmark: LandmarkRef | None = None
    either: tuple[frozenset[str], frozenset[str]] | None = None  # a look of the floor or of the walls ("tiles")
    door: bool = False  # a doorway the route goes through, said after the last room or landmark named

    @property
    def is_room(self) -> bool:
        return self.landmark is None and not self.door


@dataclass
class GoalSpec:
    """The stop clause: ``kind`` landmark | center | doorway | room (just a room named) | none.

    ``room``: the room the stop is in, when named (a room mention); ``door_to``: the room beyond a goal doorway.
    """

    kind: str = "none"
    landmark: LandmarkRef | None = None
    room: Mention | None = None
    door_to: Mention | None = None


@dataclass
class ParsedInstruction:
    text: str
    mentions: list[Mention] = field(default_factory=list)
    goal: GoalSpec = field(default_factory=GoalSpec)
    start_turn: str | None = None  # left | right | around | straight, said before anything else


# -- parsing ------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"[a-z]+|[.;!?]|,")


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens, with '.' ending a sentence and ',' a clause; 'first aid' becomes one word."""
    s = text.lower().replace("u-turn", "uturn").replace("first aid", "firstaid").replace("first-aid", "firstaid")
    s = s.replace("-", " ")
    return ["." if t in ";!?" else t for t in _TOKEN.findall(s)]


def _landmark_at(tokens: list[str], i: int) -> tuple[LandmarkRef, int] | None:
    """A landmark whose head noun is tokens[i]: (reference, index of its first word)."""
    kind = LANDMARK_HEADS.get(tokens[i])
    if kind is None:
        return None
    if tokens[i] == "kit" and not (i > 0 and tokens[i - 1] in ("medical", "firstaid", "med", "aid", "emergency")):
        return None
    first, color = i, None
    for j in (i - 1, i - 2, i - 3):  # "red box", "small blue ball", "red potion bottle"
        if j < 0 or tokens[j] in ",.":
            break
        if tokens[j] in COLOR_WORDS:
            color = color or COLOR_WORDS[tokens[j]]
            first = j
        elif tokens[j] in (
            "office",
            "medical",
            "rubber",
            "traffic",
            "potion",
            "med",
            "first",
            "small",
            "big",
            "large",
            "little",
            "wooden",
            "plastic",
            "metal",
            "orange",
        ):
            first = j
        else:
            break
    return LandmarkRef(kind, color if kind in COLORED_KINDS else None), first


def _look_at(tokens: list[str], i: int, used: set[int]) -> tuple[str, frozenset[str], int] | None:
    """A look phrase ending at tokens[i] (a surface noun): (surface floor|wall|any, stemmed words, first index)."""
    w = stem(tokens[i])
    if w in FLOOR_SURFACES:
        surface = "floor"
    elif w in WALL_SURFACES:
        surface = "wall"
    elif w in ANY_SURFACES:
        surface = "any"
    else:
        return None
    words = {w}
    j = i - 1
    while j >= 0 and j not in used:
        t = stem(tokens[j])
        if t in LOOK_WORDS and t not in ("floor", "wall"):
            words.add(t)
        elif t == "and" and j > 0 and stem(tokens[j - 1]) in LOOK_WORDS - {"floor", "wall"}:
            pass  # "black and white checkered floor"
        else:
            break
        j -= 1
    if (
        surface == "any"
        and len(words) == 1
        and w == "tile"
        and i + 1 < len(tokens)
        and stem(tokens[i + 1]) in ("floor", "wall")
    ):
        return None  # "tile floor": the surface noun follows
    return surface, frozenset(words), j + 1


def _textures(words: frozenset[str], looks: dict[str, frozenset[str]], surface_word: str) -> frozenset[str]:
    want = (words - {"floor", "wall"}) | {surface_word}
    return frozenset(t for t, ws in looks.items() if want <= ws)


def _room_at(tokens: list[str], i: int) -> tuple[str | None, int] | None:
    """The room phrase starting at tokens[i]: (type or None for a plain 'room', its length in tokens)."""
    for n in (3, 2, 1):
        phrase = tuple(tokens[i : i + n])
        if len(phrase) == n and phrase in ROOM_PHRASES:
            end = i + n
            if end < len(tokens) and tokens[end] in LANDMARK_HEADS:  # "office chair", "storage box"
                return None
            return ROOM_PHRASES[phrase], n
    if tokens[i] in (GENERIC_ROOM, "rooms", "area", "space"):
        return None, 1
    return None


def _preceding(tokens: list[str], i: int) -> tuple[list[str], bool]:
    """The words before a phrase at i, skipping determiners (and look words): (previous two words, 'next' said)."""
    j, nxt = i - 1, False
    while j >= 0 and (tokens[j] in DETERMINERS or tokens[j] in NEXT_WORDS or stem(tokens[j]) in LOOK_WORDS):
        nxt |= tokens[j] in NEXT_WORDS
        j -= 1
    prev = [tokens[j] if j >= 0 else "", tokens[j - 1] if j >= 1 else ""]
    return prev, nxt


def _is_passed(prev: list[str]) -> bool:
    return prev[0] in PASSED_BEFORE or (prev[0] == "of" and prev[1] in ("out", "outside"))


def _scan(tokens: list[str], lo: int, hi: int) -> list[Mention]:
    """Room, look and landmark mentions in tokens[lo:hi], in order."""
    out: list[Mention] = []
    used: set[int] = set()
    i = lo
    while i < hi:
        lm = _landmark_at(tokens, i)
        if lm is not None and i + 1 < hi and tokens[i + 1] in LANDMARK_HEADS:
            lm = None  # "potion bottle", "crate box": the name ends at the next head noun
        if lm is not None:
            ref, first = lm
            out.append(Mention(first, landmark=ref))
            used.update(range(first, i + 1))
            i += 1
            continue
        look = _look_at(tokens, i, used)
        if look is not None:
            surface, words, first = look
            used.update(range(first, i + 1))
            floors = _textures(words, FLOOR_LOOKS, "floor") if surface in ("floor", "any") else frozenset()
            walls = _textures(words, WALL_LOOKS, "wall") if surface in ("wall", "any") else frozenset()
            if surface == "floor":
                walls = None
            elif surface == "wall":
                floors = None
            target = _look_owner(tokens, out, first, i)
            if target is None:
                prev, nxt = _preceding(tokens, first)
                target = Mention(first, None, next_room=nxt, passed=_is_passed(prev), entered=prev[0] in ENTERED_BEFORE)
                out.append(target)
            _add_look(target, floors, walls, surface)
            i += 1
            continue
        if tokens[i] in DOOR_WORDS:
            out.append(Mention(i, door=True))
            i += 1
            continue
        room = _room_at(tokens, i)
        if room is not None and i not in used:
            rtype, n = room
            prev, nxt = _preceding(tokens, i)
            out.append(Mention(i, rtype, next_room=nxt, passed=_is_passed(prev), entered=prev[0] in ENTERED_BEFORE))
            used.update(range(i, i + n))
            i += n
            continue
        i += 1
    return out


def _look_owner(tokens: list[str], out: list[Mention], first: int, last: int) -> Mention | None:
    """The room mention a look phrase describes: the room just before it ("kitchen with the marble floor",
    "room that has ...") or right after it ("the marble-floored kitchen")."""
    if out and out[-1].is_room:
        between = tokens[out[-1].pos + 1 : first]
        linking = {
            "with",
            "the",
            "a",
            "that",
            "which",
            "has",
            "have",
            "and",
            "its",
            "of",
            "room",
            "hall",
            "where",
            "is",
            "are",
            "there",
            "some",
            "floor",
            "wall",
            "walls",
            "floors",
            "carpet",
            "tiles",
            "lounge",
            "corridor",
            "hallway",
            "study",
            "kitchen",
            "bedroom",
            "bathroom",
            "office",
            "dining",
            "living",
            "laundry",
            "storage",
            "shows",
            "got",
            "covered",
            "in",
        }
        if len(between) <= 12 and all(t in linking or stem(t) in LOOK_WORDS for t in between):
            return out[-1]
    return None


def _add_look(m: Mention, floors, walls, surface: str) -> None:
    if surface == "any":  # "grey tiles": a floor or walls look; keep whichever the words can be
        if walls and not floors:
            floors, walls = None, walls
        elif floors and not walls:
            floors, walls = floors, None
        else:  # either (or none: words no texture has): the room's floor or its walls must fit
            m.either = (floors, walls)
            return
    if floors is not None:
        m.floors = floors if m.floors is None else m.floors & floors
    if walls is not None:
        m.walls = walls if m.walls is None else m.walls & walls


def _start_turn(tokens: list[str], first_thing: int) -> str | None:
    """The turn said before any room or landmark, not of a doorway ("turn around", "bear left", "go straight")."""
    for i, t in enumerate(tokens[:first_thing]):
        if any(w in DOOR_WORDS for w in tokens[max(0, i - 4) : i]):
            continue  # "the doorway on your left" says where a door is, not how to turn
        if t in SIDE_WORDS:
            return t
        if t == "uturn" or (t == "around" and i > 0 and tokens[i - 1] in ("turn", "turning", "back", "way")):
            return "around"
        if t in ("straight", "ahead", "forward"):
            return "straight"
    return None


def _goal_clause(tokens: list[str]) -> tuple[int, int]:
    """Token span of the stop clause: from the last stop verb to the end of its sentence (else the last sentence)."""
    stops = [i for i, t in enumerate(tokens) if t in STOP_VERBS]
    if stops:
        lo = stops[-1]
        while lo > 0 and tokens[lo - 1] not in ".,":  # "... and then stop": the clause starts at the verb
            if tokens[lo - 1] in ("and", "then", "finally", "there", "now", "to", "should", "will", "you"):
                lo -= 1
                continue
            break
    else:
        ends = [i for i, t in enumerate(tokens[:-1]) if t == "."]
        lo = ends[-1] + 1 if ends else 0
    hi = next((i for i in range(lo, len(tokens)) if tokens[i] == "."), len(tokens))
    return lo, hi


def parse_instruction(text: str) -> ParsedInstruction:
    """What ``text`` says about the route (rooms and landmarks in order) and where it stops."""
    tokens = tokenize(text)
    lo, hi = _goal_clause(tokens)
    route = _scan(tokens, 0, lo)
    rest = [m for m in _scan(tokens, hi, len(tokens)) if not m.door]  # said after the stop sentence
    in_goal = [m for m in _scan(tokens, lo, hi) if not m.door]
    trailing = bool(route) and route[-1].door  # "..., then go through the doorway. Stop ..."
    route = [m for m in route if not m.door] + ([Mention(route[-1].pos, door=True)] if trailing else [])
    goal = GoalSpec()
    clause = tokens[lo:hi]
    rooms = [m for m in in_goal if m.is_room]
    marks = [m for m in in_goal if not m.is_room]
    door_i = next((i for i, t in enumerate(clause) if t in DOOR_WORDS), None)
    if marks:
        goal.kind, goal.landmark = "landmark", marks[0].landmark
        goal.room = rooms[-1] if rooms else None
        route += marks[1:]  # "stop past the box next to the chair": the first is where to stop
    elif any(t in CENTER_WORDS for t in clause):
        goal.kind, goal.room = "center", (rooms[-1] if rooms else None)
    elif door_i is not None:
        goal.kind = "doorway"
        after = [m for m in rooms if m.pos > lo + door_i]
        before = [m for m in rooms if m.pos <= lo + door_i]
        if len(after) >= 2:  # "the doorway between the kitchen and the hall" / "from the kitchen to the hall"
            goal.room, goal.door_to = after[0], after[1]
        elif after:
            goal.door_to = after[0]
            goal.room = before[-1] if before else None
        elif before:  # "stop at the kitchen door"
            goal.door_to = before[-1]
    elif rooms:
        goal.kind, goal.room = "room", rooms[-1]
    elif trailing and not rest:  # "walk to the doorway and stop"
        goal.kind = "doorway"
        route.pop()
    if goal.room is not None:
        goal.room.passed = False
    first_thing = min((m.pos for m in route + in_goal if not m.door), default=len(tokens))
    return ParsedInstruction(text, route + rest, goal, _start_turn(tokens, first_thing))
