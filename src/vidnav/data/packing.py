"""Packed training items: up to F supervised frames of one trajectory per item (``vidnav train --pack-frames F``).

:class:`PackedSamples` regroups a :class:`~vidnav.data.dataset.NavSamples` listing. Every frame the listing holds
becomes a supervised frame, weighted by how many times the listing holds it (the start, end and inflection
repeats become weights 2, 3, ... instead of copies), and the frames of each trajectory are cut, in order, into
items of at most F frames. :class:`PackedCollator` gives each item the features of frames 0..(its last frame)
and calls ``model.prepare_packed_batch``; the model runs the instruction and the history once per item
(:mod:`vidnav.model.packing`). The weighted loss over an item equals, in expectation over the data order, the
per-sample loss over the same listing.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import torch
from torch.utils.data import Dataset

from vidnav.data.dataset import NavSamples
from vidnav.errors import VidNavError


class PackedSamples(Dataset):
    """Items of up to ``frames`` supervised frames of one trajectory, in a fixed order (trajectory, then frame)."""

    def __init__(self, samples: NavSamples, frames: int):
        if int(frames) < 1:
            raise VidNavError(f"pack_frames must be >= 1 (supervised frames per packed sequence), got {frames}")
        if samples.max_history is not None:
            raise VidNavError(
                "packed sequences keep every history frame; drop max_history (--max-history) "
                "or train without --pack-frames"
            )
        self.samples = samples
        self.frames = int(frames)
        counts: dict[int, Counter] = {}
        for j, t in samples.samples:
            counts.setdefault(j, Counter())[t] += 1
        self.items: list[tuple[int, list[int], list[float]]] = []
        for j in sorted(counts):
            ts = sorted(counts[j])
            for s in range(0, len(ts), self.frames):
                chunk = ts[s : s + self.frames]
                self.items.append((j, chunk, [float(counts[j][t]) for t in chunk]))

    # what the trainer reads of a dataset
    @property
    def trajectories(self):
        return self.samples.trajectories

    @property
    def rollout_dirs(self):
        return self.samples.rollout_dirs

    @property
    def feature_shape(self) -> tuple[int, int]:
        return self.samples.feature_shape

    @property
    def supervised_frames(self) -> int:
        return sum(len(ts) for _, ts, _ in self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        j, ts, ws = self.items[i]
        traj = self.samples.trajectories[j]
        return {
            "index": int(i),
            "trajectory": j,
            "frames": list(ts),
            "weights": list(ws),
            "instruction": traj.instruction,
            "targets": [traj.targets[t] for t in ts],
        }

    def summary(self) -> dict[str, Any]:
        out = self.samples.summary()
        out.update(
            packed_sequences=len(self.items), supervised_frames=self.supervised_frames, listed_samples=len(self.samples)
        )
        return out


class PackedCollator:
    """PackedSamples items → ``model.prepare_packed_batch(...)`` output (+ ``sample_index``, the item indices)."""

    def __init__(self, model: Any, samples: PackedSamples, with_index: bool = True):
        self.prepare = model.prepare_packed_batch
        self.samples = samples
        self.with_index = with_index

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        feats = [self.samples.samples.features(it["trajectory"], it["frames"][-1]) for it in items]
        batch = self.prepare(
            [it["instruction"] for it in items],
            feats,
            [it["frames"] for it in items],
            [it["targets"] for it in items],
            [it["weights"] for it in items],
        )
        if self.with_index:
            batch["sample_index"] = torch.tensor([it["index"] for it in items], dtype=torch.long)
        return batch
