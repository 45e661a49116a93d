"""The navigation map of a house: walls, collisions, an occupancy grid, geodesic distances, the expert.

Everything here is plain geometry (no OpenGL), so episodes, ground-truth paths and metrics can be
computed without rendering. Collisions use the same rule as Miniworld's ``move_agent`` (a circle of
the agent's radius against wall segments and landmark discs), and a test checks the two agree.

Geodesic distances: an occupancy grid (``resolution`` metres per cell, inflated by the agent radius
plus a safety margin) is turned into a graph with 16-neighbour moves, and Dijkstra from the goal gives
the distance field (within 3 % of the straight line where that is free, as tests/sim/test_navmap.py
checks; habitat uses a navmesh for the same).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

# The discrete actions (VLN-CE's ids) and their words are vidnav.actions'; imported from here too.
from vidnav.actions import ACTION_WORDS, FORWARD, LEFT, RIGHT, STOP, WORD_ACTIONS  # noqa: F401
from vidnav.errors import VidNavError
from vidnav.metrics import SUCCESS_DISTANCE
from vidnav.sim.house import House


def wrap_angle(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


def heading_of(dx: float, dz: float) -> float:
    """Miniworld heading of a ground-plane direction (its forward vector is (cos h, -sin h))."""
    return math.atan2(-dz, dx)


def wall_segments(house: House) -> np.ndarray:
    """All wall segments as an (S, 2, 2) array of (x, z) endpoints: room sides minus doorways, and
    the two side walls of each doorway passage."""
    segs: list[tuple[tuple[float, float], tuple[float, float]]] = []
    for r in house.rooms:
        sides = {  # side -> (fixed coordinate axis, fixed value, span lo, span hi)
            "+x": ("x", r.x1, r.z0, r.z1),
            "-x": ("x", r.x0, r.z0, r.z1),
            "+z": ("z", r.z1, r.x0, r.x1),
            "-z": ("z", r.z0, r.x0, r.x1),
        }
        for side, (axis, fixed, lo, hi) in sides.items():
            cuts = []
            for d in house.doors:
                if r.id not in (d.a, d.b) or d.axis != axis:
                    continue
                if abs(d.g0 - fixed) < 1e-6 or abs(d.g1 - fixed) < 1e-6:
                    cuts.append((d.s0, d.s1))
            pos = lo
            for c0, c1 in sorted(cuts):
                if c0 > pos:
                    segs.append(_seg(axis, fixed, pos, c0))
                pos = max(pos, c1)
            if hi > pos:
                segs.append(_seg(axis, fixed, pos, hi))
    for d in house.doors:
        for s in (d.s0, d.s1):  # passage side walls run along the crossing axis
            other = "z" if d.axis == "x" else "x"
            segs.append(_seg(other, s, d.g0, d.g1))
    return np.array(segs, dtype=np.float64)


def _seg(axis: str, fixed: float, a: float, b: float):
    return ((fixed, a), (fixed, b)) if axis == "x" else ((a, fixed), (b, fixed))


def _point_seg_dist(px: np.ndarray, pz: np.ndarray, segs: np.ndarray) -> np.ndarray:
    """Distance from points (any shape) to the nearest of the segments."""
    out = np.full(px.shape, np.inf)
    for (ax, az), (bx, bz) in segs:
        dx, dz = bx - ax, bz - az
        L2 = dx * dx + dz * dz
        t = np.clip(((px - ax) * dx + (pz - az) * dz) / L2, 0.0, 1.0) if L2 > 0 else 0.0
        np.minimum(out, np.hypot(px - (ax + t * dx), pz - (az + t * dz)), out=out)
    return out


@dataclass
class FollowerConfig:
    # Stop once the geodesic distance to the goal is below this. 0.25 m (one step) is the reference follower;
    # training labels may stop anywhere inside the 3 m success radius (`vidnav data relabel --stop-distance`).
    stop_distance: float = 0.25
    lookahead: float = 1.5  # metres of path ahead to aim along (the farthest visible point)
    # Heading error (in turns) within which the follower steps forward. 0.5, half a turn, is the benchmark's
    # reference follower: it tracks the path tightly and zig-zags (forward, left, forward, left). 1.0, a whole
    # turn, holds a course: ~40 % fewer action changes, for training labels (`vidnav data relabel`).
    forward_tolerance: float = 0.5

    def __post_init__(self) -> None:
        if not 0.5 <= self.forward_tolerance <= 3.0:
            raise VidNavError(f"follower forward_tolerance must be in [0.5, 3] turns, got {self.forward_tolerance}")
        if not 0.1 <= self.stop_distance <= SUCCESS_DISTANCE:
            raise VidNavError(
                f"follower stop_distance must be in [0.1, {SUCCESS_DISTANCE:g}] m (the success "
                f"radius), got {self.stop_distance}"
            )


def slide_target(x: float, z: float, dx: float, dz: float, collides) -> tuple[float, float] | None:
    """Where a blocked forward step (dx, dz) from (x, z) ends when sliding is allowed (habitat-sim's
    ``allow_sliding``, on in R2R-CE): the step's part along the wall it hit. Walls are axis-aligned, so that is
    the x or the z component of the step, the longer one tried first; None when neither is free (a step
    square into a wall, or a corner). ``collides(x, z)`` is the body-collision rule."""
    for cx, cz in sorted(((dx, 0.0), (0.0, dz)), key=lambda c: -abs(c[0] + c[1])):
        if abs(cx + cz) > 1e-3 and not collides(x + cx, z + cz):
            return x + cx, z + cz
    return None


class NavMap:
    """Occupancy grid + geodesic distance fields + collision checks for one house."""

    def __init__(
        self,
        house: House,
        agent_radius: float = 0.18,
        resolution: float = 0.05,
        margin: float = 0.05,
        object_margin: float = 0.15,
        forward_step: float = 0.25,
        turn_deg: float = 15.0,
        cache_size: int = 16,
        allow_sliding: bool = False,
    ):
        self.house = house
        self.agent_radius = agent_radius
        self.allow_sliding = allow_sliding
        self.res = resolution
        self.forward_step = forward_step
        self.turn = math.radians(turn_deg)
        self.segs = wall_segments(house)
        self.objects = np.array([[o.x, o.z, o.radius] for o in house.landmarks], dtype=np.float64).reshape(-1, 3)
        x0, z0, x1, z1 = house.bounds()
        self.origin = (x0 - 0.5, z0 - 0.5)
        self.W = int(math.ceil((x1 - x0 + 1.0) / resolution))
        self.H = int(math.ceil((z1 - z0 + 1.0) / resolution))
        self.free = self._free_mask(agent_radius + margin, agent_radius + object_margin)
        self._build_graph()
        self._fields: OrderedDict[tuple[int, int], list] = OrderedDict()
        self._cache_size = cache_size

    # -- grid ------------------------------------------------------------------------------------
    def cell_axes(self) -> tuple[np.ndarray, np.ndarray]:
        """Cell-centre x of every column and z of every row."""
        return (
            self.origin[0] + (np.arange(self.W) + 0.5) * self.res,
            self.origin[1] + (np.arange(self.H) + 0.5) * self.res,
        )

    def cell_centers(self) -> tuple[np.ndarray, np.ndarray]:
        return np.meshgrid(*self.cell_axes())  # each (H, W); row = z, column = x

    def to_cell(self, x: float, z: float) -> tuple[int, int]:
        return (int(math.floor((z - self.origin[1]) / self.res)), int(math.floor((x - self.origin[0]) / self.res)))

    def _grid_cell(self, x: float, z: float) -> tuple[int, int]:
        """``to_cell`` clamped to the grid."""
        r, c = self.to_cell(x, z)
        return min(max(r, 0), self.H - 1), min(max(c, 0), self.W - 1)

    def to_xz(self, row: int, col: int) -> tuple[float, float]:
        return (self.origin[0] + (col + 0.5) * self.res, self.origin[1] + (row + 0.5) * self.res)

    def _inside(self, X: np.ndarray, Z: np.ndarray) -> np.ndarray:
        inside = np.zeros(X.shape, bool)
        for r in self.house.rooms:
            inside |= (X >= r.x0) & (X <= r.x1) & (Z >= r.z0) & (Z <= r.z1)
        for d in self.house.doors:
            a, b, c, e = d.rect
            inside |= (X >= a) & (X <= c) & (Z >= b) & (Z <= e)
        return inside

    def _free_mask(self, wall_clearance: float, object_clearance: float) -> np.ndarray:
        X, Z = self.cell_centers()
        free = self._inside(X, Z) & ~self._near_walls(wall_clearance)
        for ox, oz, orad in self.objects:
            free &= np.hypot(X - ox, Z - oz) >= orad + object_clearance
        return free

    def _near_walls(self, clearance: float) -> np.ndarray:
        """Cells whose centre lies closer than ``clearance`` to a wall segment.

        The same test as ``_point_seg_dist(X, Z, segs) < clearance`` on the whole grid, computed only in each
        segment's bounding box grown by ``clearance`` (and a cell): an order of magnitude faster on a house.
        """
        xs, zs = self.cell_axes()
        near = np.zeros((self.H, self.W), bool)
        for seg in self.segs:
            (x0, z0), (x1, z1) = seg
            c0, c1 = np.searchsorted(xs, [min(x0, x1) - clearance - self.res, max(x0, x1) + clearance + self.res])
            r0, r1 = np.searchsorted(zs, [min(z0, z1) - clearance - self.res, max(z0, z1) + clearance + self.res])
            if c0 >= c1 or r0 >= r1:
                continue
            X, Z = np.meshgrid(xs[c0:c1], zs[r0:r1])
            near[r0:r1, c0:c1] |= _point_seg_dist(X, Z, seg[None]) < clearance
        return near

    def _build_graph(self) -> None:
        H, W, free = self.H, self.W, self.free
        self.node = -np.ones((H, W), dtype=np.int64)
        rows, cols = np.nonzero(free)
        self.node[rows, cols] = np.arange(len(rows))
        self.n_nodes = len(rows)
        src, dst, wts = [], [], []
        # 16-neighbourhood (forward half; the graph is undirected). A move may not cut a corner:
        # the cells the straight move passes next to must be free too.
        for dr, dc in [(0, 1), (1, 0), (1, 1), (1, -1), (1, 2), (2, 1), (1, -2), (2, -1)]:
            r2, c2 = rows + dr, cols + dc
            ok = (r2 >= 0) & (r2 < H) & (c2 >= 0) & (c2 < W)
            ok[ok] &= free[r2[ok], c2[ok]]
            for mr, mc in _passed_cells(dr, dc):
                rr, cc = rows + mr, cols + mc
                inb = (rr >= 0) & (rr < H) & (cc >= 0) & (cc < W)
                ok &= inb
                ok[ok] &= free[rr[ok], cc[ok]]
            src.append(self.node[rows[ok], cols[ok]])
            dst.append(self.node[r2[ok], c2[ok]])
            wts.append(np.full(int(ok.sum()), math.hypot(dr, dc) * self.res))
        s, d, w = np.concatenate(src), np.concatenate(dst), np.concatenate(wts)
        self.graph = csr_matrix(
            (np.concatenate([w, w]), (np.concatenate([s, d]), np.concatenate([d, s]))),
            shape=(self.n_nodes, self.n_nodes),
        )
        # For snapping any cell to its nearest free cell.
        _, idx = ndimage.distance_transform_edt(~free, return_indices=True)
        self._nearest = idx

    def snap(self, x: float, z: float) -> tuple[int, int]:
        """The free cell nearest to (x, z)."""
        r, c = self._grid_cell(x, z)
        return int(self._nearest[0, r, c]), int(self._nearest[1, r, c])

    def is_free(self, x: float, z: float) -> bool:
        r, c = self.to_cell(x, z)
        return 0 <= r < self.H and 0 <= c < self.W and bool(self.free[r, c])

    def components(self) -> np.ndarray:
        """Connected-component label per free cell (-1 elsewhere)."""
        from scipy.sparse.csgraph import connected_components

        _, labels = connected_components(self.graph, directed=False)
        out = -np.ones((self.H, self.W), dtype=np.int64)
        out[self.free] = labels
        return out

    def main_component(self) -> np.ndarray:
        """Boolean mask of the largest connected free region (where episodes start and end)."""
        labels = self.components()
        counts = np.bincount(labels[labels >= 0])
        return labels == int(np.argmax(counts))

    def unreachable_rooms(self) -> set[int]:
        """Rooms (or rooms beside a doorway) with no free cell in the main component."""
        main = self.main_component()
        X, Z = self.cell_centers()
        bad = set()
        for r in self.house.rooms:
            if not np.any(main & (X > r.x0) & (X < r.x1) & (Z > r.z0) & (Z < r.z1)):
                bad.add(r.id)
        for d in self.house.doors:
            a, b, c, e = d.rect
            if not np.any(main & (X >= a) & (X <= c) & (Z >= b) & (Z <= e)):
                bad.update((d.a, d.b))
        return bad

    # -- collisions (Miniworld's rule) ------------------------------------------------------------
    def collides(self, x: float, z: float) -> bool:
        """Would an agent body at (x, z) touch a wall or a landmark (as Miniworld's intersect())?"""
        p = np.array([x]), np.array([z])
        if _point_seg_dist(p[0], p[1], self.segs)[0] < self.agent_radius:
            return True
        if len(self.objects):
            d = np.hypot(self.objects[:, 0] - x, self.objects[:, 1] - z)
            if np.any(d < self.agent_radius + self.objects[:, 2]):
                return True
        return False

    def step(self, x: float, z: float, heading: float, action: int) -> tuple[float, float, float, bool]:
        """Apply one action without rendering: (x, z, heading, collided)."""
        if action == FORWARD:
            nx = x + self.forward_step * math.cos(heading)
            nz = z - self.forward_step * math.sin(heading)
            if self.collides(nx, nz):
                slid = slide_target(x, z, nx - x, nz - z, self.collides) if self.allow_sliding else None
                return (*(slid or (x, z)), heading, True)
            return nx, nz, heading, False
        if action == LEFT:
            return x, z, heading + self.turn, False
        if action == RIGHT:
            return x, z, heading - self.turn, False
        return x, z, heading, False

    # -- geodesic distances ---------------------------------------------------------------------
    def field(self, goal_x: float, goal_z: float) -> np.ndarray:
        """Geodesic distance (metres) from every cell to the goal; inf where unreachable or blocked."""
        return self._field_entry(goal_x, goal_z)[0]

    def _field_entry(self, goal_x: float, goal_z: float) -> list:
        """The cached ``[field, nearest-reachable-cell indices or None]`` of one goal cell."""
        key = self.snap(goal_x, goal_z)
        entry = self._fields.get(key)
        if entry is None:
            d = dijkstra(self.graph, directed=False, indices=int(self.node[key]))
            f = np.full((self.H, self.W), np.inf)
            f[self.free] = d
            gx, gz = self.to_xz(*key)
            f += math.hypot(goal_x - gx, goal_z - gz)  # the goal itself may sit off the cell centre
            entry = self._fields[key] = [f, None]
            if len(self._fields) > self._cache_size:
                self._fields.popitem(last=False)
        else:
            self._fields.move_to_end(key)
        return entry

    def reachable_cell(self, x: float, z: float, goal_x: float, goal_z: float) -> tuple[int, int]:
        """The cell nearest to (x, z) from which the goal can be reached.

        This is ``snap`` unless (x, z) lies in a pocket of free space cut off from the goal's region
        (the simulator's body can squeeze where the inflated grid is closed, e.g. between a landmark and a wall).
        """
        entry = self._field_entry(goal_x, goal_z)
        r, c = self.snap(x, z)
        if np.isfinite(entry[0][r, c]):
            return r, c
        if entry[1] is None:
            _, entry[1] = ndimage.distance_transform_edt(~np.isfinite(entry[0]), return_indices=True)
        r, c = self._grid_cell(x, z)
        return int(entry[1][0, r, c]), int(entry[1][1, r, c])

    def distance(self, x: float, z: float, goal_x: float, goal_z: float) -> float:
        """Geodesic distance from (x, z) to the goal (min over the free cells around the point of the
        cell's field value plus the straight hop to it).

        Off the free grid (brushing a wall) or in a pocket cut off from the goal, the distance runs
        through the nearest cell that reaches the goal, so it is finite wherever the agent can stand.
        """
        f = self.field(goal_x, goal_z)
        r0, c0 = self.to_cell(x, z)
        best = math.inf
        for r in range(r0 - 1, r0 + 2):
            for c in range(c0 - 1, c0 + 2):
                if 0 <= r < self.H and 0 <= c < self.W and self.free[r, c]:
                    cx, cz = self.to_xz(r, c)
                    best = min(best, f[r, c] + math.hypot(x - cx, z - cz))
        if best == math.inf:
            r, c = self.reachable_cell(x, z, goal_x, goal_z)
            cx, cz = self.to_xz(r, c)
            best = f[r, c] + math.hypot(x - cx, z - cz)
        return float(best)

    def shortest_path(
        self, x: float, z: float, goal_x: float, goal_z: float, max_len: float = math.inf
    ) -> list[tuple[float, float]]:
        """Cell-centre polyline of steepest descent on the distance field, from (x, z) towards the goal."""
        f = self.field(goal_x, goal_z)
        r, c = self.reachable_cell(x, z, goal_x, goal_z)
        pts = [self.to_xz(r, c)]
        length = 0.0
        offsets = [
            (dr, dc)
            for dr in (-2, -1, 0, 1, 2)
            for dc in (-2, -1, 0, 1, 2)
            if (dr, dc) != (0, 0) and math.gcd(abs(dr), abs(dc)) == 1
        ]
        while length < max_len:
            best, nxt = f[r, c], None
            for dr, dc in offsets:
                r2, c2 = r + dr, c + dc
                if 0 <= r2 < self.H and 0 <= c2 < self.W and f[r2, c2] < best - 1e-9:
                    if all(self.free[r + mr, c + mc] for mr, mc in _passed_cells(dr, dc)):
                        best, nxt = f[r2, c2], (r2, c2)
            if nxt is None:
                break
            length += math.hypot(nxt[0] - r, nxt[1] - c) * self.res
            r, c = nxt
            pts.append(self.to_xz(r, c))
        return pts

    def line_free(self, x0: float, z0: float, x1: float, z1: float) -> bool:
        """Is the straight segment inside the (inflated) free space?"""
        n = max(2, int(math.hypot(x1 - x0, z1 - z0) / (self.res * 0.5)) + 1)
        t = np.linspace(0.0, 1.0, n)
        r = np.floor((z0 + t * (z1 - z0) - self.origin[1]) / self.res).astype(np.int64)
        c = np.floor((x0 + t * (x1 - x0) - self.origin[0]) / self.res).astype(np.int64)
        if r.min() < 0 or c.min() < 0 or r.max() >= self.H or c.max() >= self.W:
            return False
        return bool(self.free[r, c].all())

    # -- the expert -------------------------------------------------------------------------------
    def expert_action(
        self, x: float, z: float, heading: float, goal_x: float, goal_z: float, cfg: FollowerConfig = FollowerConfig()
    ) -> int:
        """The shortest-path follower's next action: turn towards the farthest visible point of the
        shortest path within ``lookahead`` metres, step forward when within ``forward_tolerance`` turns
        of it, stop at the goal."""
        if self.distance(x, z, goal_x, goal_z) < cfg.stop_distance:
            return STOP
        path = self.shortest_path(x, z, goal_x, goal_z, max_len=cfg.lookahead)
        # Sight lines start at the agent, or at its nearest free cell when it brushes an obstacle.
        sx, sz = (x, z) if self.is_free(x, z) else path[0]
        path = path[1:]
        target = next((p for p in reversed(path) if self.line_free(sx, sz, *p)), None)
        if target is None:  # nothing visible in a straight line (we brushed a wall): take the next cell
            target = path[0] if path else (goal_x, goal_z)
        err = wrap_angle(heading_of(target[0] - x, target[1] - z) - heading)
        blocked = self.step(x, z, heading, FORWARD)[3]
        tolerance = cfg.forward_tolerance * self.turn
        if abs(err) > tolerance + 1e-6:
            turn = LEFT if err > 0 else RIGHT
            # Near a wall the turn towards the target can face a blocked step while the current
            # heading, within half a turn more than the tolerance, is free: step forward (else we would dither).
            h = heading + (self.turn if turn == LEFT else -self.turn)
            if abs(err) <= tolerance + self.turn / 2 + 1e-6 and not blocked and self.step(x, z, h, FORWARD)[3]:
                return FORWARD
            return turn
        if blocked:
            # Blocked while roughly on course (brushing a door frame): turn away from the obstacle,
            # towards the side from which a step forward is free, preferring the target's side.
            order = (LEFT, RIGHT) if err >= 0 else (RIGHT, LEFT)
            for a in order:
                h = heading + (self.turn if a == LEFT else -self.turn)
                if not self.step(x, z, h, FORWARD)[3]:
                    return a
            return order[0]
        return FORWARD

    def expert_rollout(
        self,
        x: float,
        z: float,
        heading: float,
        goal_x: float,
        goal_z: float,
        max_steps: int = 500,
        cfg: FollowerConfig = FollowerConfig(),
    ) -> "Rollout":
        """Run the follower from a pose without rendering; positions as the simulator would produce."""
        poses = [(x, z, heading)]
        actions, collisions = [], 0
        for _ in range(max_steps):
            a = self.expert_action(x, z, heading, goal_x, goal_z, cfg)
            actions.append(a)
            if a == STOP:
                break
            x, z, heading, hit = self.step(x, z, heading, a)
            collisions += hit
            poses.append((x, z, heading))
        return Rollout(poses=poses, actions=actions, collisions=collisions)


@dataclass
class Rollout:
    poses: list[tuple[float, float, float]]  # the start, then one pose after every non-STOP action
    actions: list[int]
    collisions: int

    @property
    def stopped(self) -> bool:
        return bool(self.actions) and self.actions[-1] == STOP

    @property
    def path_length(self) -> float:
        return float(sum(math.hypot(b[0] - a[0], b[1] - a[1]) for a, b in zip(self.poses, self.poses[1:])))


def _passed_cells(dr: int, dc: int) -> list[tuple[int, int]]:
    """Cells a straight move of (dr, dc) passes beside, which must be free so it cuts no corner."""
    if abs(dr) <= 1 and abs(dc) <= 1:
        return [(dr, 0), (0, dc)] if dr and dc else []
    sr, sc = int(math.copysign(1, dr)) if dr else 0, int(math.copysign(1, dc)) if dc else 0
    if abs(dr) == 2:
        return [(sr, 0), (sr, sc)]
    return [(0, sc), (sr, sc)]
