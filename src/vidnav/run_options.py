"""How a model agent executes its plans, saved with its checkpoint as ``run_options.json``.

A checkpoint folder holds ``config.json`` (what the model is), ``model.safetensors`` (its weights) and
``run_options.json`` (how it is meant to be run), as a transformers checkpoint holds ``generation_config.json``
beside its weights. The file is small and may be edited by hand::

    {"replan_when_blocked": true, "break_loops": true, "act_steps": null, "loop_plans": 2}

Missing keys take their defaults, and a checkpoint without the file runs with all of them off. `vidnav eval`,
`vidnav demo`, `vidnav.load_navigator()` and `vidnav serve` (which reports them in ``/v1/health``) run an agent
with its checkpoint's options; the command-line flags (``--replan-when-blocked`` / ``--no-replan-when-blocked``,
``--break-loops`` / ``--no-break-loops``, ``--act-steps N``, ``--loop-plans N``) override them for one run.
`vidnav train` writes the file with every checkpoint: the options of ``--init-from``'s checkpoint (defaults when
training from a preset), changed by ``--run-option NAME=VALUE``. For a checkpoint already written::

    from vidnav.run_options import PlanOptions, write_run_options
    write_run_options("runs/x/final", PlanOptions(replan_when_blocked=True, break_loops=True))

This module imports nothing heavy: the model, the trainer and the evaluation all read it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidnav.errors import VidNavError

RUN_OPTIONS_NAME = "run_options.json"
LOOP_PLANS = 2  # plans from one view after which the loop breaker counts the agent as circling there


@dataclass(frozen=True)
class PlanOptions:
    """How a model agent executes its plans (the baselines ignore them).

    ``replan_when_blocked``: when a ``forward`` leaves the camera image unchanged (the agent did not move: a
    wall), drop the rest of the plan and re-plan with ``forward`` excluded as the first action. It reads only
    the agent's own camera (no simulator state), as a robot could.

    ``break_loops``: greedy decoding is deterministic, so an agent that comes back to a view it planned from
    tends to do the same again and circle until the step cap (turning left and right in place, or turning and
    bumping into the same wall). With this option the agent remembers the views it planned from (28×28
    thumbnails, matched within ``blocked_step``'s tolerance) and the first action it chose at each; from a
    view it has already planned from ``loop_plans`` times (default ``LOOP_PLANS``), its plan may not start with
    any of those actions, and once every move has been tried there it stops. Also camera-only.

    ``act_steps``: execute only the first N actions of each plan, then plan again from the new view (a
    receding horizon; None: the whole plan, as Uni-NaVid executes its 4 actions).
    """

    replan_when_blocked: bool = False
    break_loops: bool = False
    act_steps: int | None = None
    loop_plans: int = LOOP_PLANS

    def __post_init__(self):
        for name in ("replan_when_blocked", "break_loops"):
            if not isinstance(getattr(self, name), bool):
                raise VidNavError(
                    f"--{name.replace('_', '-')} is on or off (true / false), got {getattr(self, name)!r}"
                )
        if self.act_steps is not None and not _whole(self.act_steps):
            raise VidNavError(
                f"--act-steps must be a whole number >= 1 (actions executed per plan), got {self.act_steps!r}"
            )
        if not _whole(self.loop_plans):
            raise VidNavError(
                f"--loop-plans must be a whole number >= 1 (plans from one view before the loop "
                f"breaker steps in), got {self.loop_plans!r}"
            )
        if self.loop_plans != LOOP_PLANS and not self.break_loops:
            raise VidNavError("--loop-plans applies to the loop breaker: add --break-loops")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Any, where: str = "run options") -> PlanOptions:
        """Options from a mapping (a run_options.json, a YAML ``run_options:``); missing keys take their
        defaults; unknown keys and wrong values raise an error naming ``where``."""
        if not isinstance(d, Mapping):
            raise VidNavError(
                f"{where} must be a JSON object of run options, got {type(d).__name__}; write e.g. "
                f'{{"replan_when_blocked": true, "break_loops": true}}'
            )
        unknown = sorted(set(d) - set(NAMES))
        if unknown:
            raise VidNavError(
                f"{where}: unknown run option(s) {', '.join(map(str, unknown))}; valid: {', '.join(NAMES)}"
            )
        try:
            return cls(**d)
        except VidNavError as e:
            raise VidNavError(f"{where}: {e}") from None

    def replace(self, changes: Mapping[str, Any] | None, where: str = "run options") -> PlanOptions:
        """These options with ``changes`` (a mapping of some fields, e.g. command-line flags) on top. Turning the
        loop breaker off also drops a ``loop_plans`` that came with it (unless ``changes`` sets one)."""
        if changes is not None and not isinstance(changes, Mapping):
            raise VidNavError(f"{where} must be a mapping of run options (NAME: VALUE), got {type(changes).__name__}")
        changes = dict(changes or {})
        if changes.get("break_loops") is False and "loop_plans" not in changes:
            changes["loop_plans"] = LOOP_PLANS
        return PlanOptions.from_dict({**self.to_dict(), **changes}, where)


NAMES = tuple(f.name for f in dataclasses.fields(PlanOptions))


def _whole(n) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and n >= 1


def resolve(own: PlanOptions, options: PlanOptions | Mapping[str, Any] | None) -> PlanOptions:
    """The options an agent runs with: ``own`` (its checkpoint's) when ``options`` is None, ``own`` with the
    fields in a mapping ``options`` changed (command-line flags), or a :class:`PlanOptions` ``options`` as given."""
    if options is None:
        return own
    if isinstance(options, PlanOptions):
        return options
    return own.replace(options)


def read_run_options(folder: str | Path) -> PlanOptions:
    """The run options saved in a checkpoint folder; all off (the defaults) when it has no run_options.json."""
    path = Path(folder) / RUN_OPTIONS_NAME
    if not path.is_file():
        return PlanOptions()
    fix = 'fix it (e.g. {"replan_when_blocked": true, "break_loops": true}) or delete it (all options off)'
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise VidNavError(f"{path} is not valid JSON ({e}); {fix}") from None
    try:
        return PlanOptions.from_dict(d, str(path))
    except VidNavError as e:
        raise VidNavError(f"{e}; {fix}") from None


def write_run_options(folder: str | Path, options: PlanOptions) -> Path:
    """Write ``options`` as ``folder/run_options.json`` (atomically); returns the path."""
    from vidnav.io import write_json

    if not isinstance(options, PlanOptions):
        raise VidNavError(f"write_run_options takes a PlanOptions, got {type(options).__name__}")
    path = Path(folder) / RUN_OPTIONS_NAME
    write_json(path, options.to_dict())
    return path
