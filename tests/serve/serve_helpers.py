"""Stand-in agents and frames for the serve tests."""

import io
import threading

import numpy as np


class StandInAgent:
    """Deterministic and instant: its plan encodes the instruction and the frames it has seen, in order, so a
    test can tell whether frames arrived, and in which order. Counts concurrent use of one agent."""

    num_actions = 4
    instances = 0

    def __init__(self):
        StandInAgent.instances += 1
        self.instruction = None
        self.seen: list[int] = []
        self.inside = 0
        self.overlaps = 0
        self._count = threading.Lock()

    def reset(self, instruction):
        self.instruction = instruction
        self.seen = []

    def _enter(self):
        with self._count:
            self.inside += 1
            self.overlaps += self.inside > 1

    def _leave(self):
        with self._count:
            self.inside -= 1

    def observe(self, rgb):
        self._enter()
        try:
            self.seen.append(int(rgb[0, 0, 0]))
        finally:
            self._leave()

    def act(self, rgb, ban_first=None):
        self.observe(rgb)
        first = "left" if ban_first and "forward" in ban_first else "forward"
        return [first] + ["right"] * (self.num_actions - 1)


class AskingAgent(StandInAgent):
    def ask(self, question):
        return f"{len(self.seen)} frames; you asked {question!r}"


def png(rgb: np.ndarray, mode: str | None = None) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb, mode).save(buf, format="PNG")
    return buf.getvalue()


def frame(value: int = 0, h: int = 32, w: int = 32) -> np.ndarray:
    rgb = np.full((h, w, 3), 40, np.uint8)
    rgb[0, 0, 0] = value
    return rgb
