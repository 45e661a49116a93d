"""Linear probes of the cached frozen vision features: what can a frame's visual tokens carry at all?

For every frame of some rollout folders the simulator knows the room the camera stands in, its look and where
its doorways are (:mod:`vidnav.data.frame_labels`). A probe pools the frame's feature grid [N, C] to g x g
(g = 4 is the shipped current-frame budget, g = 8 every patch, g = 1 one token), flattens it and fits a
multinomial logistic regression on frames of the training houses; its accuracy on frames of held-out houses
says whether a linear read-out of those tokens can tell that label. Each accuracy comes with the majority
baseline (the training majority class, scored on the held-out frames) and the balanced accuracy (mean recall
over classes; chance is 1 / classes).

Frames are drawn per probe by stratified subsampling: at most ``max_frames`` labelled frames, each class its
proportional share (at least ``min_per_class`` where it has that many), always the frames earliest in one
seeded random order, so that all probes draw mostly the same frames and the features are read once.

Fitting: features standardised with the training frames' mean and deviation; L-BFGS on the mean cross-entropy
plus ``wd / 2 * |W|^2``, with ``wd`` picked per probe and grid from ``WD_GRID`` (by accuracy, ties by
cross-entropy) on a split of the training *houses* (``SELECT_SHARE`` of them held out), then refit on all
training frames. When a grid has more dimensions than training frames, the fit runs in the span of the
training frames (an L2-penalised linear model's weights lie there, so the solution is the same) to keep g = 8
cheap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from vidnav.data.frame_labels import frame_labels
from vidnav.errors import VidNavError

PROBES = (
    "room_type",
    "floor",
    "wall",
    "door_left",
    "door_ahead",
    "door_right",
    "door_behind",
    "door_in_view",
    "room_through_door",
)
WD_GRID = (1e-3, 1e-2, 1e-1, 1.0)
SELECT_SHARE = 0.25


@dataclass
class ProbeFrames:
    """Labelled frames of rollout folders: a feature reader, the house of each frame, each probe's labels."""

    features: object  # callable: indices -> array [len, N, C] (fp16, as stored)
    houses: list[str]  # scene id of each frame
    labels: dict[str, list]  # probe name -> label of each frame (None: the frame has no such label)

    def __len__(self) -> int:
        return len(self.houses)


def label_rollouts(data_dir: str | Path, rollouts: list[str | Path]) -> ProbeFrames:
    """Every frame of the rollout folders, labelled from its stored pose and its house (one feature key once)."""
    from vidnav.data.dataset import FEATURES, TRAJECTORIES
    from vidnav.data.features import FeatureStore
    from vidnav.io import read_jsonl_records
    from vidnav.sim.house import House

    data_dir = Path(data_dir)
    where: list[tuple[int, str, int]] = []  # (folder, key, step) of each frame
    houses: list[str] = []
    labels: dict[str, list] = {p: [] for p in PROBES}
    stores, house_cache = [], {}
    for f, folder in enumerate(rollouts):
        folder = Path(folder)
        records = read_jsonl_records(folder / TRAJECTORIES, "key", "trajectories")
        if not records:
            raise VidNavError(
                f"{folder / TRAJECTORIES} holds no trajectories; collect rollouts with `vidnav data rollouts` first"
            )
        store = FeatureStore(folder / FEATURES)
        stores.append(store)
        seen = set()
        for rec in records:
            if rec["key"] in seen:  # R2R's instructions of one path share its frames
                continue
            seen.add(rec["key"])
            poses = rec.get("poses")
            if not poses:
                raise VidNavError(
                    f"{folder / TRAJECTORIES}: trajectory {rec['key']} has no 'poses' (collected "
                    "before poses were stored); collect the rollouts again"
                )
            if len(poses) != len(store.get(rec["key"])):
                raise VidNavError(
                    f"{folder}: trajectory {rec['key']} has {len(poses)} poses but "
                    f"{len(store.get(rec['key']))} feature rows; the folder is inconsistent"
                )
            scene = rec.get("scene_id")
            if scene not in house_cache:
                path = data_dir / scene if scene else None
                if path is None or not path.exists():
                    raise VidNavError(
                        f"{folder / TRAJECTORIES}: house {scene!r} of {rec['key']} is not in "
                        f"{data_dir}; give the benchmark the rollouts were collected on (--data)"
                    )
                house_cache[scene] = House.load(path)
            house = house_cache[scene]
            for t, pose in enumerate(poses):
                lab = frame_labels(house, tuple(pose))
                if lab is None:
                    continue
                where.append((f, rec["key"], t))
                houses.append(scene)
                for p, v in lab.as_dict().items():
                    labels[p].append(v)
    if not where:
        raise VidNavError(f"no labelled frames in {', '.join(map(str, rollouts))}")

    def features(idx) -> np.ndarray:
        out = np.empty((len(idx), *stores[0].shape), np.float16)
        for j, i in enumerate(idx):
            f, key, t = where[i]
            out[j] = stores[f].get(key, t + 1)[t]
        return out

    return ProbeFrames(features, houses, labels)


def stratified_sample(values: list, max_frames: int, order: np.ndarray, min_per_class: int = 20) -> np.ndarray:
    """Sorted indices of at most about ``max_frames`` frames whose value is not None: each class its
    proportional share, at least ``min_per_class`` frames (or all it has), taken earliest in ``order``."""
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    by_class: dict = {}
    for i, v in enumerate(values):
        if v is not None:
            by_class.setdefault(v, []).append(i)
    total = sum(len(v) for v in by_class.values())
    picked = []
    for members in by_class.values():
        quota = (
            len(members)
            if total <= max_frames
            else min(len(members), max(min_per_class, round(max_frames * len(members) / total)))
        )
        members = np.asarray(members)
        picked.append(members[np.argsort(rank[members], kind="stable")[:quota]])
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, np.int64)


def pooled(feats: np.ndarray, g: int) -> torch.Tensor:
    """[M, N, C] -> [M, g*g*C]: the grid average-pooled to g x g (as the model pools its tokens), flattened."""
    from vidnav.model.frame_tokens import pool_grid

    grid = math.isqrt(feats.shape[1])
    if grid * grid != feats.shape[1] or g > grid:
        raise VidNavError(f"--grid {g}: the features lie on {feats.shape[1]} patches; give g between 1 and {grid}")
    x = pool_grid(torch.from_numpy(np.asarray(feats, np.float32)), grid, g)
    return x.reshape(len(x), -1).float()


@dataclass
class _Head:
    rows: torch.Tensor  # rows of the design matrix this probe trains on
    y: torch.Tensor  # class index of each row
    k: int  # classes


def _fit(z: torch.Tensor, heads: list[_Head], wds: list[float], max_iter: int = 300):
    """Weights and biases of all probes at once (their losses are independent; one pass over z serves all)."""
    sizes = [h.k for h in heads]
    cuts = np.cumsum([0] + sizes)
    w = torch.zeros(z.shape[1], cuts[-1], requires_grad=True)
    b = torch.zeros(cuts[-1], requires_grad=True)
    opt = torch.optim.LBFGS(
        [w, b],
        lr=1,
        max_iter=max_iter,
        history_size=20,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-7,
        tolerance_change=1e-10,
    )

    def closure():
        opt.zero_grad()
        logits = z @ w + b
        loss = 0.0
        for h, wd, lo, hi in zip(heads, wds, cuts[:-1], cuts[1:]):
            loss = loss + F.cross_entropy(logits[h.rows, lo:hi], h.y) + wd / 2 * w[:, lo:hi].pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    w, b = w.detach(), b.detach()
    return [(w[:, lo:hi], b[lo:hi]) for lo, hi in zip(cuts[:-1], cuts[1:])]


def _span(x: torch.Tensor) -> torch.Tensor:
    """A basis [D, r] of the span of the rows of x, scaled so that x @ basis has orthogonal columns of the
    singular values' size (an isometry on that span: penalties on the weights stay the same)."""
    vals, vecs = torch.linalg.eigh(x @ x.T)
    keep = vals > vals.max() * 1e-5  # float32: smaller eigenvalues are rounding noise (directions x hardly has)
    return x.T @ (vecs[:, keep] / vals[keep].sqrt())


def _selection_score(logits: torch.Tensor, head: _Head) -> tuple[float, float]:
    """How a weight decay is ranked on held-out training houses: accuracy, and among equal accuracies (a split
    every candidate gets all right, or all wrong) the lower cross-entropy."""
    if not len(head.rows):
        return (0.0, 0.0)
    return _accuracy(logits.argmax(1), head.y, head.k)[0], -float(F.cross_entropy(logits, head.y))


def _accuracy(pred: torch.Tensor, y: torch.Tensor, k: int) -> tuple[float, float]:
    acc = float((pred == y).float().mean())
    recalls = [float((pred[y == c] == c).float().mean()) for c in range(k) if (y == c).any()]
    return acc, float(np.mean(recalls))


def run_probes(
    train: ProbeFrames,
    heldout: ProbeFrames,
    grids: list[int],
    probes: list[str] | None = None,
    max_frames: int = 3000,
    max_heldout: int = 3000,
    min_per_class: int = 20,
    seed: int = 0,
    wd_grid: tuple[float, ...] = WD_GRID,
    max_iter: int = 300,
    progress=None,
) -> dict:
    """Fit and score the probes at each pooling size; returns {probe: {classes, majority, n_train, ..., grids:
    {g: {acc, balanced_acc, wd}}}}."""
    probes = list(probes or PROBES)
    for p in probes:
        if p not in train.labels:
            raise VidNavError(f"--probe {p!r} is not a probe; known: {', '.join(train.labels)}")
    say = progress or (lambda msg: None)
    rng = np.random.default_rng(seed)
    order_tr, order_ho = rng.permutation(len(train)), rng.permutation(len(heldout))
    picks_tr = {p: stratified_sample(train.labels[p], max_frames, order_tr, min_per_class) for p in probes}
    picks_ho = {p: stratified_sample(heldout.labels[p], max_heldout, order_ho, min_per_class) for p in probes}
    union_tr = np.unique(np.concatenate(list(picks_tr.values())))
    union_ho = np.unique(np.concatenate(list(picks_ho.values())))
    say(f"reading features of {len(union_tr)} training and {len(union_ho)} held-out frames")
    feats_tr, feats_ho = train.features(union_tr), heldout.features(union_ho)

    # classes, heads and the house split for picking the weight decay
    houses = sorted(set(train.houses))
    if len(houses) < 2:
        raise VidNavError(
            "the training rollouts cover one house; the weight decay is picked on held-out "
            "training houses, so give rollouts of at least 2 houses"
        )
    held_houses = set(rng.permutation(houses)[: max(1, round(len(houses) * SELECT_SHARE))].tolist())
    pos_tr = {int(i): j for j, i in enumerate(union_tr)}
    pos_ho = {int(i): j for j, i in enumerate(union_ho)}
    results, heads, heads_ho, sel_in = {}, [], [], []
    for p in probes:
        classes = sorted({train.labels[p][i] for i in picks_tr[p]}, key=str)
        if len(classes) < 2:
            raise VidNavError(f"probe {p}: the training frames hold one class only ({classes}); more rollouts needed")
        index = {c: j for j, c in enumerate(classes)}
        rows = torch.tensor([pos_tr[int(i)] for i in picks_tr[p]])
        y = torch.tensor([index[train.labels[p][i]] for i in picks_tr[p]])
        ho = [i for i in picks_ho[p] if heldout.labels[p][i] in index]  # a class never seen in training
        rows_ho = torch.tensor([pos_ho[int(i)] for i in ho], dtype=torch.long)
        y_ho = torch.tensor([index[heldout.labels[p][i]] for i in ho], dtype=torch.long)
        inner = torch.tensor([train.houses[i] not in held_houses for i in picks_tr[p]])
        heads.append(_Head(rows, y, len(classes)))
        heads_ho.append(_Head(rows_ho, y_ho, len(classes)))
        sel_in.append(inner)
        majority = int(torch.bincount(y, minlength=len(classes)).argmax())
        maj_acc, maj_bal = _accuracy(torch.full_like(y_ho, majority), y_ho, len(classes))
        results[p] = {
            "classes": [str(c) for c in classes],
            "n_train": len(rows),
            "n_heldout": len(rows_ho),
            "heldout_unseen_class": len(picks_ho[p]) - len(ho),
            "majority_class": str(classes[majority]),
            "majority_acc": maj_acc,
            "majority_balanced_acc": maj_bal,
            "grids": {},
        }
    if "room_type" in results:
        results["room_type"]["look_oracle_acc"] = look_oracle(
            train, heldout, picks_tr["room_type"], picks_ho["room_type"]
        )

    for g in grids:
        x_tr, x_ho = pooled(feats_tr, g), pooled(feats_ho, g)
        mean, std = x_tr.mean(0), x_tr.std(0)
        std[std < 1e-6] = 1.0
        x_tr, x_ho = (x_tr - mean) / std, (x_ho - mean) / std
        if x_tr.shape[1] > x_tr.shape[0]:
            basis = _span(x_tr)
            x_tr, x_ho = x_tr @ basis, x_ho @ basis
        # pick each probe's weight decay on held-out training houses
        inner_heads = [_Head(h.rows[m], h.y[m], h.k) for h, m in zip(heads, sel_in)]
        outer_heads = [_Head(h.rows[~m], h.y[~m], h.k) for h, m in zip(heads, sel_in)]
        scores = []
        for wd in wd_grid:
            say(f"g={g}: weight decay {wd:g} on held-out training houses")
            fitted = _fit(x_tr, inner_heads, [wd] * len(heads), max_iter)
            scores.append([_selection_score(x_tr[h.rows] @ w + b, h) for h, (w, b) in zip(outer_heads, fitted)])
        best = [max(range(len(wd_grid)), key=lambda j: (scores[j][i], j)) for i in range(len(heads))]
        wds = [wd_grid[j] for j in best]
        say(f"g={g}: final fit")
        fitted = _fit(x_tr, heads, wds, max_iter)
        for p, h, (w, b), wd in zip(probes, heads_ho, fitted, wds):
            acc, bal = _accuracy((x_ho[h.rows] @ w + b).argmax(1), h.y, h.k) if len(h.rows) else (float("nan"),) * 2
            results[p]["grids"][str(g)] = {"acc": acc, "balanced_acc": bal, "wd": wd}
    return results


def look_oracle(train: ProbeFrames, heldout: ProbeFrames, picks_tr: np.ndarray, picks_ho: np.ndarray) -> float:
    """Held-out accuracy of naming the room type from the room's true floor and wall textures (the training
    frames' most frequent type for that pair, else for that floor, else overall): how far the look alone goes,
    since a look is one type's within a house but several types share textures across houses."""
    from collections import Counter

    def label(ds, i):
        return ds.labels["room_type"][i], ds.labels["floor"][i], ds.labels["wall"][i]

    by_pair, by_floor, overall = {}, {}, Counter()
    for i in picks_tr:
        t, f, w = label(train, i)
        by_pair.setdefault((f, w), Counter())[t] += 1
        by_floor.setdefault(f, Counter())[t] += 1
        overall[t] += 1
    hits = 0
    for i in picks_ho:
        t, f, w = label(heldout, i)
        guess = (by_pair.get((f, w)) or by_floor.get(f) or overall).most_common(1)[0][0]
        hits += guess == t
    return hits / max(1, len(picks_ho))


def format_table(results: dict, grids: list[int]) -> str:
    """A Markdown table: per probe, held-out accuracy at each grid beside the majority baseline."""
    head = (
        "| probe | classes | frames train / held-out | majority | "
        + " | ".join(f"g={g} ({g * g} tok.)" for g in grids)
        + " |"
    )
    lines = [head, "|" + "---|" * (4 + len(grids))]
    for p, r in results.items():
        cells = [f"{r['grids'][str(g)]['acc']:.3f} (bal. {r['grids'][str(g)]['balanced_acc']:.3f})" for g in grids]
        lines.append(
            f"| {p} | {len(r['classes'])} | {r['n_train']} / {r['n_heldout']} | "
            f"{r['majority_acc']:.3f} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)
