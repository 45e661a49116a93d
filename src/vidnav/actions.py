"""The four navigation actions: VLN-CE's (habitat's) action ids, which the simulator takes, and the words the
model answers with. The simulator, the data, the evaluation and the server take them from here (no torch
import); :mod:`vidnav.model.actions` (the model's parser and decoder) imports ``ACTIONS`` from here.

``forward`` = MOVE_FORWARD (0.25 m), ``left``/``right`` = TURN_LEFT/TURN_RIGHT (15°), ``stop`` = STOP.
"""

STOP, FORWARD, LEFT, RIGHT = 0, 1, 2, 3  # numbered as VLN-CE's action space (the env's Discrete(4))
ACTIONS: tuple[str, ...] = ("forward", "left", "right", "stop")  # the model's words, in its vocabulary order
ACTION_WORDS = {STOP: "stop", FORWARD: "forward", LEFT: "left", RIGHT: "right"}  # action id -> word
WORD_ACTIONS = {w: a for a, w in ACTION_WORDS.items()}  # word -> action id
