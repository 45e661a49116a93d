"""Held-out action accuracy: how well a model predicts the expert's next actions on rollouts it did not train on.

Closed-loop evaluation (``vidnav eval``) is the measure that matters, but it is slow on a CPU and mixes many
failure causes. This is the cheap, offline one: for a fixed subset of samples of some rollout folders (e.g.
expert rollouts on val_unseen), it reports

- ``loss``: teacher-forced cross-entropy per answer token (what training minimises);
- ``first_action_acc``: the greedy constrained plan's first word equals the expert's (the action executed);
- ``plan_acc``: all k planned words equal the expert's; ``word_acc``: per-position agreement;
- ``recall``: first-action accuracy per expert word (forward / left / right / stop) and ``label_share``,
  the expert's first-word distribution, so a model that only says ``forward`` is visible at once;
- ``confusion``: counts of (expert first word → planned first word).

The subset is the same for every model given the same folders, ``max_samples`` and ``seed``, so checkpoints
and memory strategies compare on identical samples.

:func:`swap_instructions` gives every trajectory the instruction of another path, so scoring both versions
shows how much a model relies on the language at all (a model that ignores it scores the same on both, the
unimodal-baseline check of VLN papers). :func:`pair_accuracy` asks the same of the branch frames of minimal
pairs, where the frames are identical and only the words tell the two right actions apart.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import numpy as np
import torch

from vidnav.actions import ACTIONS
from vidnav.data.dataset import NavCollator, NavSamples
from vidnav.errors import VidNavError
from vidnav.model.actions import canonical_actions


def sample_subset(n: int, max_samples: int | None, seed: int = 0) -> list[int]:
    """Sorted indices of a seeded random subset of ``range(n)`` (all of them when ``max_samples`` is None, 0 or ≥ n:
    0 means all, as ``vidnav validate --samples 0`` and ``--eval-samples 0`` do)."""
    if max_samples is not None and max_samples < 0:
        raise VidNavError(f"max_samples must be >= 0 (0 or None = all samples), got {max_samples}")
    if not max_samples or max_samples >= n:
        return list(range(n))
    rng = np.random.default_rng(seed)
    return sorted(int(i) for i in rng.choice(n, size=max_samples, replace=False))


def swap_instructions(samples: NavSamples, seed: int = 0) -> NavSamples:
    """A copy of ``samples`` in which each trajectory reads an instruction written for a different path.

    Paths are put in a seeded random cycle; the trajectories of a path take the instructions of the next
    path in the cycle (its i-th trajectory the i-th instruction, wrapping around). Frames, targets and
    sample order stay as they were. A path is the episodes' ``trajectory_id`` (with the scene) where the
    rollout lines record it: a DAgger round gives each episode of a path its own feature key. Folders
    written before that field are grouped by feature key (one per path for expert rollouts).
    """
    by_key: dict[tuple, list[int]] = {}
    for j, traj in enumerate(samples.trajectories):
        tid = traj.extra.get("trajectory_id")
        by_key.setdefault(
            ("path", traj.scene_id, str(tid)) if tid is not None else ("key", traj.rollout, traj.key), []
        ).append(j)
    keys = list(by_key)
    if len(keys) < 2:
        raise VidNavError(
            "swapping instructions needs trajectories of at least two paths; "
            f"{', '.join(map(str, samples.rollout_dirs))} hold one"
        )
    order = [keys[i] for i in np.random.default_rng(seed).permutation(len(keys))]
    trajectories = list(samples.trajectories)
    for a, b in zip(order, order[1:] + order[:1]):
        donors = [samples.trajectories[j].instruction for j in by_key[b]]
        for i, j in enumerate(by_key[a]):
            trajectories[j] = dataclasses.replace(trajectories[j], instruction=donors[i % len(donors)])
    out = copy.copy(samples)
    out.trajectories = trajectories
    return out


@torch.no_grad()
def action_accuracy(
    model, samples: NavSamples, *, max_samples: int | None = 512, batch_size: int = 16, seed: int = 0
) -> dict[str, Any]:
    """Offline metrics of ``model`` on (a seeded subset of) ``samples``; see the module docstring."""
    if batch_size < 1:
        raise VidNavError(f"batch_size must be >= 1, got {batch_size}")
    shape = (model.num_patches, model.vision.hidden_size)
    if tuple(samples.feature_shape) != shape:
        raise VidNavError(
            f"validation features have shape {tuple(samples.feature_shape)} per frame but the model "
            f"expects {shape}; collect them with this model's vision tower"
        )
    was_training = model.training
    model.eval()
    collate = NavCollator(model, samples, with_index=False)
    index = sample_subset(len(samples), max_samples, seed)
    k = model.config.num_actions
    words = list(ACTIONS)
    confusion = np.zeros((len(words), len(words)), dtype=np.int64)
    loss_sum, tokens, plans_right, words_right = 0.0, 0, 0, np.zeros(k, dtype=np.int64)
    try:
        for start in range(0, len(index), batch_size):
            items = [samples[i] for i in index[start : start + batch_size]]
            batch = collate(items)
            labels = batch["labels"]
            loss, plans = model.score_and_plan(batch)
            n_tok = int((labels != -100).sum())
            loss_sum += float(loss) * n_tok
            tokens += n_tok
            for item, plan in zip(items, plans):
                target = canonical_actions(list(item["targets"]), k)
                confusion[words.index(target[0]), words.index(plan[0])] += 1
                plans_right += int(plan == target)
                words_right += np.array([p == t for p, t in zip(plan, target)], dtype=np.int64)
    finally:
        model.train(was_training)
    n = len(index)
    per_label = confusion.sum(axis=1)
    return {
        "samples": n,
        "loss": loss_sum / max(tokens, 1),
        "first_action_acc": float(np.trace(confusion)) / n,
        "plan_acc": plans_right / n,
        "word_acc": [float(x) / n for x in words_right],
        "recall": {w: (float(confusion[i, i]) / per_label[i] if per_label[i] else None) for i, w in enumerate(words)},
        "label_share": {w: float(per_label[i]) / n for i, w in enumerate(words)},
        "planned_share": {w: float(confusion[:, i].sum()) / n for i, w in enumerate(words)},
        "confusion": {w: {v: int(confusion[i, j]) for j, v in enumerate(words)} for i, w in enumerate(words)},
    }


def branch_samples(pairs: NavSamples) -> tuple[NavSamples, NavSamples]:
    """The branch frames of a minimal-pairs folder (:mod:`vidnav.data.pairs`), twice: read with each pair's
    instruction and labels, and read with the instruction and labels of the path whose frames they are. The two
    labels differ at every one of these frames by construction, so a model that plans the same first action
    whatever the words gets at most one of each pair right."""
    from vidnav.data.dataset import FEATURES, read_trajectories

    own_trajs, order = list(pairs.trajectories), []
    sources: dict[str, dict[str, object]] = {}
    for j, traj in enumerate(pairs.trajectories):
        root = pairs.rollout_dirs[traj.rollout]
        if traj.extra.get("prefix") is not True or "branch" not in traj.extra or "pair_of" not in traj.extra:
            raise VidNavError(
                f"{root}: trajectory {traj.key!r} is not a minimal pair (no prefix/branch/pair_of); "
                "--pairs scores folders written by `vidnav data pairs`"
            )
        src = (root / FEATURES).resolve().parent
        if str(src) not in sources:
            sources[str(src)] = {t.episode_id: t for t in read_trajectories(src)}
        own = sources[str(src)].get(str(traj.extra["pair_of"]))
        if own is None:
            raise VidNavError(
                f"{src}: no trajectory for episode {traj.extra['pair_of']} that {root} pairs with; "
                "make the pairs again from this folder"
            )
        own_trajs[j] = dataclasses.replace(traj, instruction=own.instruction, targets=own.targets[: traj.length])
        order.append((j, int(traj.extra["branch"])))
    with_pair, with_own = copy.copy(pairs), copy.copy(pairs)
    with_pair.samples, with_own.samples = order, list(order)
    with_own.trajectories = own_trajs
    return with_pair, with_own


@torch.no_grad()
def first_words(model, samples: NavSamples, *, batch_size: int = 16) -> list[tuple[str, str]]:
    """(expert's first word, planned first word) for every sample, in order."""
    was_training = model.training
    model.eval()
    collate = NavCollator(model, samples, with_index=False)
    out = []
    try:
        for start in range(0, len(samples), batch_size):
            items = [samples[i] for i in range(start, min(start + batch_size, len(samples)))]
            _, plans = model.score_and_plan(collate(items))
            out += [(item["targets"][0], plan[0]) for item, plan in zip(items, plans)]
    finally:
        model.train(was_training)
    return out


def pair_accuracy(model, pairs: NavSamples, *, batch_size: int = 16) -> dict[str, Any]:
    """Minimal-pair scores at the branch frames: first-action accuracy with the pair's instruction and with the
    path's own, ``both`` (right with both: only a model that reads can), and ``same_plan`` (the same first word
    under both instructions: what a model that ignores the words always does)."""
    with_pair, with_own = branch_samples(pairs)
    a = first_words(model, with_pair, batch_size=batch_size)
    b = first_words(model, with_own, batch_size=batch_size)
    n = len(a)
    return {
        "pairs": n,
        "pair_acc": sum(t == p for t, p in a) / n,
        "own_acc": sum(t == p for t, p in b) / n,
        "both": sum(ta == pa and tb == pb for (ta, pa), (tb, pb) in zip(a, b)) / n,
        "same_plan": sum(pa == pb for (_, pa), (_, pb) in zip(a, b)) / n,
    }


@torch.no_grad()
def question_accuracy(
    model, qa, *, max_samples: int | None = 512, batch_size: int = 16, seed: int = 0
) -> dict[str, Any]:
    """Exact-match accuracy of the greedy answers to a :class:`~vidnav.data.dataset.QASamples`' questions, per
    question family, beside the majority answer's accuracy (what a model that ignores the frames and the words
    could get) on the same items."""
    from collections import Counter

    from vidnav.data.questions import QUESTIONS

    family_of = {q: f for f, q in QUESTIONS.items()}
    was_training = model.training
    model.eval()
    collate = NavCollator(model, qa, with_index=False)
    index = sample_subset(len(qa), max_samples, seed)
    rows: dict[str, list[tuple[str, str]]] = {}
    try:
        for start in range(0, len(index), batch_size):
            items = [qa[i] for i in index[start : start + batch_size]]
            for item, said in zip(items, model.answer(collate(items))):
                rows.setdefault(family_of[item["question"]], []).append((item["targets"], said))
    finally:
        model.train(was_training)
    out: dict[str, Any] = {"samples": len(index), "families": {}}
    for fam, pairs in sorted(rows.items()):
        majority = Counter(t for t, _ in pairs).most_common(1)[0]
        out["families"][fam] = {
            "n": len(pairs),
            "accuracy": sum(t == s for t, s in pairs) / len(pairs),
            "majority": majority[0],
            "majority_accuracy": majority[1] / len(pairs),
        }
    return out


def swap_question_instructions(qa, samples_swapped: NavSamples):
    """The same question items (answers of each trajectory's own route) read with the swapped instructions."""
    out = copy.copy(qa)
    out.nav = samples_swapped
    return out


def format_questions(metrics: dict[str, Any]) -> str:
    return "\n".join(
        f"  {fam:5s} {m['accuracy']:.3f} ({m['n']} questions; majority answer {m['majority']!r}: "
        f"{m['majority_accuracy']:.3f})"
        for fam, m in metrics["families"].items()
    )


def format_report(metrics: dict[str, Any]) -> str:
    """A few human-readable lines of :func:`action_accuracy` output."""
    recall = ", ".join(f"{w} {v:.2f}" if v is not None else f"{w} -" for w, v in metrics["recall"].items())
    share = ", ".join(f"{w} {v:.2f}" for w, v in metrics["label_share"].items())
    planned = ", ".join(f"{w} {v:.2f}" for w, v in metrics["planned_share"].items())
    return "\n".join(
        [
            f"{metrics['samples']} samples: loss {metrics['loss']:.4f}, first action {metrics['first_action_acc']:.3f}, "
            f"whole plan {metrics['plan_acc']:.3f}, per position {' '.join(f'{x:.2f}' for x in metrics['word_acc'])}",
            f"first-action recall: {recall}",
            f"expert first words: {share}",
            f"planned first words: {planned}",
        ]
    )
