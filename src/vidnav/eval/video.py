"""Episode videos: the egocentric view beside a top-down map (reference path, agent path, goal circle)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vidnav.eval.topdown import TopDownMap


class EpisodeVideo:
    """Collects one frame per step and writes an H.264 MP4 atomically (temp file, then rename)."""

    def __init__(self, task, fps: int = 8):
        self.task = task
        self.fps = fps
        self.map = None
        self.frames: list[np.ndarray] = []

    def add(self, rgb: np.ndarray, path_xz: list[tuple[float, float]], pose: tuple[float, float, float]) -> None:
        h = rgb.shape[0]
        if self.map is None:
            self.map = TopDownMap(self.task.house, height=h)
        top = self.map.draw(
            reference=self.task.reference,
            path=path_xz,
            goal=self.task.goal,
            goal_radius=self.task.goal_radius,
            pose=pose,
        )
        frame = np.concatenate([rgb, np.full((h, 4, 3), 255, np.uint8), top], axis=1)
        pad = (-frame.shape[1]) % 16  # H.264 with yuv420p wants even sizes; 16 avoids ffmpeg rescaling
        if pad:
            frame = np.pad(frame, ((0, 0), (0, pad), (0, 0)), constant_values=255)
        self.frames.append(frame)

    def write(self, path: str | Path) -> Path:
        import imageio.v2 as imageio

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.mp4")
        with imageio.get_writer(
            tmp, fps=self.fps, codec="libx264", quality=7, macro_block_size=16, ffmpeg_log_level="error"
        ) as w:
            for f in self.frames:
                w.append_data(f)
        os.replace(tmp, path)
        return path
