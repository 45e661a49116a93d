"""HouseWorld: a Miniworld environment built from a :class:`House`, rendered headless (EGL).

Only this module touches OpenGL. One HouseWorld can be re-pointed at another house
(:meth:`HouseWorld.load_house`), so an evaluation process builds its GL context once.
"""

from __future__ import annotations

import ctypes
import math
import os

import numpy as np

from vidnav.sim.house import LANDMARKS, WALL_GAP, House

_HEADLESS_SET = False


def _headless_pyglet():
    """Import pyglet in headless (EGL) mode. Must run before miniworld is imported."""
    global _HEADLESS_SET
    import pyglet

    if not _HEADLESS_SET and os.environ.get("VIDNAV_WINDOWED") != "1":
        pyglet.options["headless"] = True
        # Mesa's llvmpipe renders these small frames faster on the calling thread than with its
        # worker threads, and then uses one core per process (so parallel workers scale).
        os.environ.setdefault("LP_NUM_THREADS", "0")
        _HEADLESS_SET = True
    return pyglet


def _miniworld():
    _headless_pyglet()
    from miniworld import entity, miniworld, opengl, params

    if opengl.Texture.load.__func__ is not _load_texture:
        opengl.Texture.load = classmethod(_load_texture)
    return miniworld, entity, params


def texture_rgba(image_data) -> np.ndarray:
    """The RGBA bytes that pyglet's ``get_data("RGBA", width * 4)`` returns (rows bottom-up, a channel the
    image lacks copied from its first one), computed with numpy instead of pyglet's per-pixel regex."""
    fmt, pitch = image_data.format, image_data.pitch
    if any(c not in "RGBAL" for c in fmt):
        raise ValueError(f"texture pixel format {fmt!r} is not one of pyglet's RGB/RGBA/L/LA formats")
    w, h, n = image_data.width, image_data.height, len(fmt)
    raw = np.frombuffer(image_data.get_data(fmt, pitch), np.uint8)
    rows = raw[: abs(pitch) * h].reshape(h, abs(pitch))[:, : w * n].reshape(h, w, n)
    if pitch < 0:  # top-down rows
        rows = rows[::-1]
    return np.ascontiguousarray(rows[:, :, [fmt.index(c) if c in fmt else 0 for c in "RGBA"]])


def _load_texture(cls, tex_path):
    """Miniworld's ``Texture.load`` with the same upload, mipmaps and filtering, but the RGBA conversion in
    numpy: pyglet converts RGB PNGs with a regex substitution per pixel, which made building a world take
    seconds per texture."""
    import pyglet
    from pyglet import gl

    img = pyglet.image.load(tex_path)
    tex = img.get_texture()
    rgba = texture_rgba(img.get_image_data())
    gl.glEnable(tex.target)
    gl.glBindTexture(tex.target, tex.id)
    gl.glTexImage2D(
        gl.GL_TEXTURE_2D,
        0,
        gl.GL_RGB,
        img.width,
        img.height,
        0,
        gl.GL_RGBA,
        gl.GL_UNSIGNED_BYTE,
        rgba.ctypes.data_as(ctypes.POINTER(gl.GLubyte)),
    )
    gl.glHint(gl.GL_GENERATE_MIPMAP_HINT, gl.GL_NICEST)
    gl.glGenerateMipmap(gl.GL_TEXTURE_2D)
    gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_MAG_FILTER, gl.GL_LINEAR)
    gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_MIN_FILTER, gl.GL_LINEAR_MIPMAP_LINEAR)
    gl.glBindTexture(gl.GL_TEXTURE_2D, 0)
    return tex


def make_params(cam_height: float, vfov_deg: float, agent_radius: float, forward_step: float, turn_deg: float):
    """Miniworld parameters without randomness: our camera, body and step sizes, no drift."""
    _, _, params = _miniworld()
    p = params.DEFAULT_PARAMS.no_random()
    p.set("cam_height", cam_height)
    p.set("cam_fov_y", vfov_deg)
    p.set("bot_radius", agent_radius)
    p.set("forward_step", forward_step)
    p.set("forward_drift", 0.0)
    p.set("turn_step", turn_deg)
    p.set("cam_pitch", 0.0)
    p.set("cam_fwd_disp", 0.0)
    return p


def vertical_fov(hfov_deg: float, width: int, height: int) -> float:
    """Miniworld takes a vertical field of view; convert from the horizontal one."""
    h = math.radians(hfov_deg)
    return math.degrees(2 * math.atan(math.tan(h / 2) * height / width))


def _make_world_class():
    miniworld, entity, _ = _miniworld()

    class _HouseWorld(miniworld.MiniWorldEnv):
        def __init__(
            self,
            house: House,
            width: int,
            height: int,
            hfov_deg: float,
            cam_height: float,
            agent_radius: float,
            forward_step: float,
            turn_deg: float,
            msaa: int,
        ):
            self.house = house
            self._spawn = (0.0, 0.0, 0.0)
            self.forward_step = forward_step
            self.turn_deg = turn_deg
            self.agent_radius = agent_radius
            params = make_params(
                cam_height, vertical_fov(hfov_deg, width, height), agent_radius, forward_step, turn_deg
            )
            import contextlib
            import io

            with contextlib.redirect_stdout(io.StringIO()):  # Miniworld prints its multisampling fallbacks
                super().__init__(
                    max_episode_steps=10**9,
                    obs_width=width,
                    obs_height=height,
                    window_width=64,
                    window_height=64,
                    params=params,
                )
            # Miniworld's frame buffers are 8x multisampled float RGBA; an 8-bit one renders
            # about 2.5x faster in software and looks the same at 224x224.
            self.obs_fb = _Framebuffer(width, height, msaa)

        # Miniworld calls this from reset()
        def _gen_world(self):
            h = self.house
            rooms = {}
            for r in h.rooms:
                rooms[r.id] = self.add_rect_room(
                    r.x0,
                    r.x1,
                    r.z0,
                    r.z1,
                    wall_height=h.wall_height,
                    floor_tex=r.floor,
                    wall_tex=r.wall,
                    ceil_tex=r.ceiling,
                )
            # Rect room edges: 0 = +x wall, 1 = -z wall, 2 = -x wall, 3 = +z wall.
            for d in h.doors:
                ra, rb = h.rooms[d.a], h.rooms[d.b]
                low, high = (
                    (ra, rb) if (d.axis == "x" and ra.x1 <= rb.x0) or (d.axis == "z" and ra.z1 <= rb.z0) else (rb, ra)
                )
                if d.axis == "x":
                    rooms[low.id].add_portal(0, min_z=d.s0, max_z=d.s1, max_y=h.door_height)
                    rooms[high.id].add_portal(2, min_z=d.s0, max_z=d.s1, max_y=h.door_height)
                    frame = self.add_rect_room(
                        d.g0,
                        d.g1,
                        d.s0,
                        d.s1,
                        wall_height=h.door_height,
                        floor_tex=low.floor,
                        wall_tex=low.wall,
                        ceil_tex=low.wall,
                    )
                    frame.add_portal(0, start_pos=0, end_pos=d.width)
                    frame.add_portal(2, start_pos=0, end_pos=d.width)
                else:
                    rooms[low.id].add_portal(3, min_x=d.s0, max_x=d.s1, max_y=h.door_height)
                    rooms[high.id].add_portal(1, min_x=d.s0, max_x=d.s1, max_y=h.door_height)
                    frame = self.add_rect_room(
                        d.s0,
                        d.s1,
                        d.g0,
                        d.g1,
                        wall_height=h.door_height,
                        floor_tex=low.floor,
                        wall_tex=low.wall,
                        ceil_tex=low.wall,
                    )
                    frame.add_portal(1, start_pos=0, end_pos=d.width)
                    frame.add_portal(3, start_pos=0, end_pos=d.width)
                assert abs((d.g1 - d.g0) - WALL_GAP) < 1e-3
            for o in h.landmarks:
                self.place_entity(_landmark_entity(entity, o), pos=np.array([o.x, 0.0, o.z]), dir=o.dir)
            x, z, heading = self._spawn
            self.agent.radius = self.agent_radius  # Miniworld ignores its bot_radius parameter
            self.place_agent(pos=np.array([x, 0.0, z]), dir=heading)

    return _HouseWorld


def _make_framebuffer_class():
    from ctypes import POINTER, byref

    from pyglet import gl

    class Framebuffer:
        """An RGBA8 + 24-bit depth render target, optionally multisampled (then resolved by a blit)."""

        def __init__(self, width: int, height: int, samples: int = 0):
            self.width, self.height, self.samples = width, height, samples
            self.fbo = self._target(samples)
            self.resolve_fbo = self._target(0) if samples else self.fbo
            self.img = np.zeros((height, width, 3), np.uint8)
            self.depth_buf = np.zeros((height, width), np.float32)

        def _target(self, samples):
            fbo = gl.GLuint(0)
            gl.glGenFramebuffers(1, byref(fbo))
            gl.glBindFramebuffer(gl.GL_FRAMEBUFFER, fbo)
            for fmt, attach in (
                (gl.GL_RGBA8, gl.GL_COLOR_ATTACHMENT0),
                (gl.GL_DEPTH_COMPONENT24, gl.GL_DEPTH_ATTACHMENT),
            ):
                rb = gl.GLuint(0)
                gl.glGenRenderbuffers(1, byref(rb))
                gl.glBindRenderbuffer(gl.GL_RENDERBUFFER, rb)
                if samples:
                    gl.glRenderbufferStorageMultisample(gl.GL_RENDERBUFFER, samples, fmt, self.width, self.height)
                else:
                    gl.glRenderbufferStorage(gl.GL_RENDERBUFFER, fmt, self.width, self.height)
                gl.glFramebufferRenderbuffer(gl.GL_FRAMEBUFFER, attach, gl.GL_RENDERBUFFER, rb)
            status = gl.glCheckFramebufferStatus(gl.GL_FRAMEBUFFER)
            gl.glBindFramebuffer(gl.GL_FRAMEBUFFER, 0)
            if status != gl.GL_FRAMEBUFFER_COMPLETE:
                raise RuntimeError(f"OpenGL framebuffer incomplete (status {status}); is EGL/Mesa installed?")
            return fbo

        def bind(self):
            gl.glBindFramebuffer(gl.GL_FRAMEBUFFER, self.fbo)
            gl.glViewport(0, 0, self.width, self.height)

        def _read_target(self):
            if self.samples:
                gl.glBindFramebuffer(gl.GL_READ_FRAMEBUFFER, self.fbo)
                gl.glBindFramebuffer(gl.GL_DRAW_FRAMEBUFFER, self.resolve_fbo)
                w, h = self.width, self.height
                gl.glBlitFramebuffer(0, 0, w, h, 0, 0, w, h, gl.GL_COLOR_BUFFER_BIT, gl.GL_NEAREST)
                gl.glBlitFramebuffer(0, 0, w, h, 0, 0, w, h, gl.GL_DEPTH_BUFFER_BIT, gl.GL_NEAREST)
            gl.glBindFramebuffer(gl.GL_FRAMEBUFFER, self.resolve_fbo)
            gl.glPixelStorei(gl.GL_PACK_ALIGNMENT, 1)

        def resolve(self) -> np.ndarray:
            self._read_target()
            gl.glReadPixels(
                0,
                0,
                self.width,
                self.height,
                gl.GL_RGB,
                gl.GL_UNSIGNED_BYTE,
                self.img.ctypes.data_as(POINTER(gl.GLubyte)),
            )
            gl.glBindFramebuffer(gl.GL_FRAMEBUFFER, 0)
            return np.ascontiguousarray(self.img[::-1])  # OpenGL rows run bottom-up

        def get_depth_map(self, z_near: float, z_far: float) -> np.ndarray:
            """Metric depth (distance along the view axis), HxWx1 float32, as Miniworld returns it."""
            self._read_target()
            gl.glReadPixels(
                0,
                0,
                self.width,
                self.height,
                gl.GL_DEPTH_COMPONENT,
                gl.GL_FLOAT,
                self.depth_buf.ctypes.data_as(POINTER(gl.GLfloat)),
            )
            gl.glBindFramebuffer(gl.GL_FRAMEBUFFER, 0)
            ndc = self.depth_buf[::-1] * 2.0 - 1.0
            depth = 2.0 * z_near * z_far / (z_far + z_near - ndc * (z_far - z_near))
            return np.ascontiguousarray(depth[:, :, None].astype(np.float32))

    return Framebuffer


_FB_CLASS = None


def _Framebuffer(width: int, height: int, samples: int):
    global _FB_CLASS
    if _FB_CLASS is None:
        _FB_CLASS = _make_framebuffer_class()
    return _FB_CLASS(width, height, samples)


def _landmark_entity(entity, o):
    spec = LANDMARKS[o.kind]
    if o.kind == "box":
        return entity.Box(color=o.color, size=o.height)
    return entity.MeshEnt(spec["mesh"].format(color=o.color), height=o.height, static=True)


_WORLD_CLASS = None


class HouseWorld:
    """A rendered house. Positions are Miniworld (x, z) in metres, headings in radians.

    ``rgb()`` renders the egocentric view; ``depth()`` the metric depth (metres, HxW float32).
    Movement follows VLN-CE: forward ``forward_step`` metres unless a wall or object blocks it, turns by
    ``turn_deg``. A blocked step is a collision; the agent then stays (RxR-CE, habitat's ``allow_sliding``
    off), or with ``allow_sliding`` moves by the step's part along the wall (R2R-CE's default; see
    :func:`vidnav.sim.navmap.slide_target`).
    """

    def __init__(
        self,
        house: House,
        width: int = 224,
        height: int = 224,
        hfov_deg: float = 90.0,
        cam_height: float = 1.25,
        agent_radius: float = 0.18,
        forward_step: float = 0.25,
        turn_deg: float = 15.0,
        msaa: int = 0,
        allow_sliding: bool = False,
    ):
        global _WORLD_CLASS
        if _WORLD_CLASS is None:
            _WORLD_CLASS = _make_world_class()
        self.env = _WORLD_CLASS(house, width, height, hfov_deg, cam_height, agent_radius, forward_step, turn_deg, msaa)
        self.width, self.height = width, height
        self.allow_sliding = allow_sliding

    @property
    def house(self) -> House:
        return self.env.house

    def load_house(self, house: House, x: float, z: float, heading: float) -> None:
        """Rebuild the world for ``house`` with the agent at (x, z) facing ``heading``."""
        self.env.house = house
        self.env._spawn = (float(x), float(z), float(heading))
        self.env.reset()

    def set_agent(self, x: float, z: float, heading: float) -> None:
        self.env.agent.pos = np.array([x, 0.0, z], dtype=float)
        self.env.agent.dir = float(heading)

    @property
    def pose(self) -> tuple[float, float, float]:
        p = self.env.agent.pos
        return float(p[0]), float(p[2]), float(self.env.agent.dir)

    def forward(self) -> bool:
        """Move forward one step; returns False on a collision (then the agent stays, or slides along the wall
        with ``allow_sliding``)."""
        env = self.env
        if env.move_agent(env.forward_step, 0.0):
            return True
        if self.allow_sliding:
            from vidnav.sim.navmap import slide_target

            x, z, h = self.pose
            step = env.forward_step
            slid = slide_target(
                x,
                z,
                step * math.cos(h),
                -step * math.sin(h),
                lambda a, b: bool(env.intersect(env.agent, np.array([a, 0.0, b]), env.agent.radius)),
            )
            if slid is not None:
                env.agent.pos = np.array([slid[0], env.agent.pos[1], slid[1]], dtype=float)
        return False

    def turn(self, left: bool) -> None:
        self.env.turn_agent(self.env.turn_deg if left else -self.env.turn_deg)

    def render(self, depth: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """The egocentric RGB frame (HxWx3 uint8) and, on request, metric depth (HxW float32, metres)
        from the same render."""
        rgb = self.env.render_obs()
        d = self.env.obs_fb.get_depth_map(0.04, 100.0)[:, :, 0] if depth else None
        return rgb, d

    def rgb(self) -> np.ndarray:
        return self.env.render_obs()

    def close(self) -> None:
        self.env.close()
