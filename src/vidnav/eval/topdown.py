"""Top-down maps of a house drawn with numpy (no OpenGL): rooms, walls, doorways, landmarks, the
reference path, the agent's path and the goal circle. Used for episode videos and the README."""

from __future__ import annotations

import math

import numpy as np

from vidnav.metrics import SUCCESS_DISTANCE
from vidnav.sim.house import House
from vidnav.sim.navmap import wall_segments

# Floor colours by texture: light tints so paths stay readable.
FLOOR_RGB = {
    "wood": (222, 196, 160),
    "wood_planks": (190, 160, 130),
    "floor_tiles_bw": (205, 205, 205),
    "marble": (225, 225, 232),
    "concrete": (200, 200, 196),
    "concrete_tiles": (212, 212, 220),
    "cardboard": (230, 214, 180),
    "white": (245, 245, 245),
    "rock": (180, 180, 172),
}
LANDMARK_RGB = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "purple": (150, 60, 190),
    "yellow": (230, 200, 30),
    "grey": (130, 130, 130),
}
KIND_RGB = {
    "barrel": (40, 90, 200),
    "office_chair": (90, 70, 90),
    "office_desk": (100, 80, 50),
    "potion": (200, 30, 60),
    "duckie": (240, 210, 20),
    "cone": (250, 130, 20),
    "medkit": (190, 30, 30),
}
REF_RGB, PATH_RGB, GOAL_RGB, AGENT_RGB, WALL_RGB = (
    (30, 160, 60),
    (30, 90, 230),
    (230, 60, 40),
    (20, 20, 20),
    (60, 60, 60),
)


class TopDownMap:
    """A map image of ``house`` at ``scale`` pixels per metre, and (x, z) → pixel conversion."""

    def __init__(self, house: House, height: int = 448, margin: float = 1.0):
        self.house = house
        x0, z0, x1, z1 = house.bounds()
        self.x0, self.z0 = x0 - margin, z0 - margin
        w, h = (x1 - x0) + 2 * margin, (z1 - z0) + 2 * margin
        self.scale = height / h
        self.H, self.W = height, max(32, int(round(w * self.scale)))
        self.base = self._draw_base()

    def px(self, x: float, z: float) -> tuple[float, float]:
        return ((x - self.x0) * self.scale, (z - self.z0) * self.scale)  # (col, row)

    def _draw_base(self) -> np.ndarray:
        img = np.full((self.H, self.W, 3), 255, np.uint8)
        for r in self.house.rooms:
            self._rect(img, r.x0, r.z0, r.x1, r.z1, FLOOR_RGB.get(r.floor, (220, 220, 220)))
        for d in self.house.doors:
            a, b, c, e = d.rect
            self._rect(img, a, b, c, e, FLOOR_RGB.get(self.house.rooms[d.a].floor, (220, 220, 220)))
        width = max(1.5, self.scale * 0.08)
        for (ax, az), (bx, bz) in wall_segments(self.house):
            line(img, self.px(ax, az), self.px(bx, bz), WALL_RGB, width)
        for o in self.house.landmarks:
            color = LANDMARK_RGB.get(o.color) if o.color else KIND_RGB.get(o.kind, (0, 0, 0))
            disc(img, self.px(o.x, o.z), max(2.0, o.radius * self.scale), color)
        return img

    def _rect(self, img, x0, z0, x1, z1, color):
        c0, r0 = self.px(x0, z0)
        c1, r1 = self.px(x1, z1)
        img[max(0, int(r0)) : int(math.ceil(r1)), max(0, int(c0)) : int(math.ceil(c1))] = color

    def draw(
        self,
        reference=None,
        path=None,
        goal=None,
        goal_radius: float = SUCCESS_DISTANCE,
        pose: tuple[float, float, float] | None = None,
    ) -> np.ndarray:
        """The map with the reference path (green), the agent's path (blue), the goal and its success
        circle (red) and the agent's pose (black arrow). Points are (x, z) pairs."""
        img = self.base.copy()
        if goal is not None:
            circle(img, self.px(*goal), goal_radius * self.scale, GOAL_RGB, 1.5)
            disc(img, self.px(*goal), max(3.0, 0.15 * self.scale), GOAL_RGB)
        for pts, color in ((reference, REF_RGB), (path, PATH_RGB)):
            if pts is not None and len(pts) > 1:
                for a, b in zip(pts, pts[1:]):
                    line(img, self.px(*a), self.px(*b), color, max(1.5, 0.06 * self.scale))
        if pose is not None:
            x, z, h = pose
            tip = self.px(x + 0.5 * math.cos(h), z - 0.5 * math.sin(h))
            disc(img, self.px(x, z), max(3.0, 0.18 * self.scale), AGENT_RGB)
            line(img, self.px(x, z), tip, AGENT_RGB, max(1.5, 0.07 * self.scale))
        return img


def disc(img: np.ndarray, center: tuple[float, float], radius: float, color) -> None:
    c, r = center
    r0, r1 = int(max(0, r - radius - 1)), int(min(img.shape[0], r + radius + 2))
    c0, c1 = int(max(0, c - radius - 1)), int(min(img.shape[1], c + radius + 2))
    if r0 >= r1 or c0 >= c1:
        return
    rr, cc = np.mgrid[r0:r1, c0:c1]
    mask = (rr + 0.5 - r) ** 2 + (cc + 0.5 - c) ** 2 <= radius**2
    img[r0:r1, c0:c1][mask] = color


def circle(img: np.ndarray, center: tuple[float, float], radius: float, color, width: float = 1.0) -> None:
    c, r = center
    r0, r1 = int(max(0, r - radius - width - 1)), int(min(img.shape[0], r + radius + width + 2))
    c0, c1 = int(max(0, c - radius - width - 1)), int(min(img.shape[1], c + radius + width + 2))
    if r0 >= r1 or c0 >= c1:
        return
    rr, cc = np.mgrid[r0:r1, c0:c1]
    d = np.sqrt((rr + 0.5 - r) ** 2 + (cc + 0.5 - c) ** 2)
    img[r0:r1, c0:c1][np.abs(d - radius) <= width / 2] = color


def line(img: np.ndarray, p0: tuple[float, float], p1: tuple[float, float], color, width: float = 1.0) -> None:
    """A thick line segment between pixel points (col, row)."""
    (c0, r0), (c1, r1) = p0, p1
    rmin, rmax = int(max(0, min(r0, r1) - width - 1)), int(min(img.shape[0], max(r0, r1) + width + 2))
    cmin, cmax = int(max(0, min(c0, c1) - width - 1)), int(min(img.shape[1], max(c0, c1) + width + 2))
    if rmin >= rmax or cmin >= cmax:
        return
    rr, cc = np.mgrid[rmin:rmax, cmin:cmax]
    pr, pc = rr + 0.5, cc + 0.5
    dr, dc = r1 - r0, c1 - c0
    L2 = dr * dr + dc * dc
    t = np.clip(((pr - r0) * dr + (pc - c0) * dc) / L2, 0, 1) if L2 > 0 else np.zeros_like(pr)
    d = np.hypot(pr - (r0 + t * dr), pc - (c0 + t * dc))
    img[rmin:rmax, cmin:cmax][d <= width / 2] = color
