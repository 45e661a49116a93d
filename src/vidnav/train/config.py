"""TrainConfig: one experiment, as a dataclass with YAML in/out (``vidnav train --config exp.yaml``).

It is the one place a training setting is defined: its type, its default and its help text. ``vidnav train``
builds its options from these fields (``--max-steps``, ``--set``, ...) and takes ``KEY=VALUE`` arguments for any
of them. Every field has a default that works for a smoke run of the ``tiny`` preset; a YAML file names only what
it changes. Unknown keys are errors (a typo must not silently train the default), and every value is checked
against the field's type, naming the key (PyYAML reads ``lr: 2e-4`` as a string: numbers written as strings are
read as numbers, anything else of the wrong type is refused).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidnav.data.sampling import FrameSampling
from vidnav.errors import VidNavError

STAGES = ("auto", "align", "full")


def _f(default: Any, help: str, **cli) -> Any:
    """A field with its help text (and how the CLI names it, when not ``--field-name``)."""
    if isinstance(default, (list, dict)):
        return field(default_factory=type(default), metadata={"help": help, **cli})
    return field(default=default, metadata={"help": help, **cli})


@dataclass
class TrainConfig:
    # model
    preset: str = _f("tiny", "tiny, small, navid-7b, uninavid-7b or navila-8b")
    memory: str | None = _f(None, "navid, uninavid, navila, llamavid or streaming (unset: the preset's)")
    overrides: dict = _f(
        {}, "model setting NAME=VALUE (VidNavConfig fields), e.g. use_context_token=true", flag="--set"
    )
    init_from: str | None = _f(None, "checkpoint folder to start from (save_pretrained), e.g. runs/round1/final")
    run_options: dict = _f(
        {},
        "how the trained agent runs, NAME=VALUE, saved as run_options.json with every "
        "checkpoint over --init-from's (else the defaults): replan_when_blocked, break_loops, "
        "act_steps, loop_plans; e.g. break_loops=true",
        flag="--run-option",
    )
    # data
    data: list[str] = _f(
        [], "rollout folder (repeat to aggregate DAgger rounds; a folder given K times weighs K times)", short="-d"
    )
    max_history: int | None = _f(None, "frames per sample, the current one included (unset: all)")
    stride: int = _f(1, "use every N-th frame of a trajectory as a sample (the last one always)")
    first_frames: int | None = _f(
        None, "only the first N frames of each trajectory are samples (training and eval data)"
    )
    start_frames: int | None = _f(None, "with start_repeat: the first N frames of each trajectory")
    start_repeat: int = _f(
        0,
        "list the first start_frames frames of each trajectory K extra times in the training data (the episode start)",
    )
    end_frames: int | None = _f(None, "with end_repeat: the last N frames of each trajectory")
    end_repeat: int = _f(
        0, "list the last end_frames frames of each trajectory K extra times in the training data (where to stop)"
    )
    inflection_repeat: int = _f(
        0, "list every frame where the expert's first action changes K extra times (VLN-CE inflection weighting)"
    )
    pack_frames: int | None = _f(
        None,
        "pack up to N frames of one trajectory per sequence: the instruction and "
        "history run once for all N (same loss, ~3x faster; batch_size then counts "
        "sequences)",
    )
    qa_data: str | None = _f(
        None,
        "co-train embodied questions (which room, which room next, which door, rooms "
        "left) on the frames; the benchmark folder the rollouts came from",
    )
    qa_ratio: float = _f(0.5, "with qa_data: question items per navigation frame")
    qa_families: list[str] = _f([], "question families (vidnav.data.questions); unset: all")
    eval_data: list[str] = _f(
        [], "held-out rollout folder (repeatable): action accuracy every eval_steps and at the end"
    )
    eval_steps: int | None = _f(None, "validate every N steps (unset: every save_steps) and after the last step")
    eval_samples: int | None = _f(512, "held-out samples per validation, a fixed seeded subset (0 or null: all)")
    # run
    out: str = _f("runs/train", "run folder: checkpoints/, tb/, final/, train_summary.json")
    stage: str = _f("auto", "align, full or auto (align then full for a pretrained LM, full otherwise)")
    epochs: float = _f(1.0, "passes over the data (ignored when max_steps > 0)")
    max_steps: int = _f(-1, "optimizer steps, > 0 overrides epochs (-1: unset)")
    lr: float = _f(2e-4, "peak learning rate")
    batch_size: int = _f(4, "samples per device per step")
    grad_accum: int = _f(1, "gradient accumulation steps")
    warmup_steps: int = _f(0, "linear warm-up steps")
    weight_decay: float = _f(0.0, "AdamW weight decay")
    lr_scheduler: str = _f("cosine", "transformers scheduler name (cosine, linear, constant, ...)")
    max_grad_norm: float = _f(1.0, "gradient clipping norm")
    seed: int = _f(0, "seed of the weights and of the data order")
    save_steps: int = _f(500, "checkpoint every N steps")
    save_total_limit: int | None = _f(3, "checkpoints kept (null: all)")
    logging_steps: int = _f(10, "log loss / lr every N steps (TensorBoard: OUT/tb)")
    # stage 1 (align) when stage is auto and the LM is pretrained
    align_epochs: float = _f(1.0, "stage-1 (align) epochs when align_max_steps is unset")
    align_max_steps: int = _f(-1, "stage-1 (align) steps when stage auto runs two stages (-1: unset)")
    align_lr: float = _f(1e-3, "stage-1 (align) learning rate")
    # hardware
    bf16: bool = _f(False, "bfloat16 mixed precision (GPUs)")
    gradient_checkpointing: bool = _f(False, "recompute LM activations in backward")
    dataloader_workers: int = _f(0, "DataLoader worker processes", alias="--workers")
    deepspeed: str | None = _f(None, "DeepSpeed JSON config (ZeRO), e.g. configs/accelerate/ds_zero2.json")
    progress: bool = _f(True, "show progress bars")
    record_samples: bool = _f(False, "write OUT/seen_samples-rank<r>.json (which samples each rank trained on)")

    # -- validation ----------------------------------------------------------------------------------------
    @property
    def sampling(self) -> FrameSampling:
        """The frame-sampling knobs as one value (checked when built)."""
        return FrameSampling(
            stride=self.stride,
            first_frames=self.first_frames,
            start_frames=self.start_frames,
            start_repeat=self.start_repeat,
            end_frames=self.end_frames,
            end_repeat=self.end_repeat,
            inflection_repeat=self.inflection_repeat,
        )

    def validate(self) -> "TrainConfig":
        for f in dataclasses.fields(self):  # TrainConfig(...) in Python is checked as a YAML file is
            setattr(self, f.name, check_value(f.name, getattr(self, f.name)))
        if self.stage not in STAGES:
            raise VidNavError(f"stage must be one of {', '.join(STAGES)}, got {self.stage!r}")
        if not self.data:
            raise VidNavError("no training data: give at least one rollout folder (--data R or data: [R] in YAML)")
        if self.eval_steps is not None and self.eval_steps < 1:
            raise VidNavError(f"eval_steps must be >= 1 (or unset: every save_steps), got {self.eval_steps}")
        if self.eval_samples is not None and self.eval_samples < 0:  # 0 = all, as `validate --samples 0`
            raise VidNavError(f"eval_samples must be >= 0 (0 or unset = all held-out samples), got {self.eval_samples}")
        for name in ("batch_size", "grad_accum", "save_steps", "logging_steps"):
            if getattr(self, name) < 1:
                raise VidNavError(f"{name} must be >= 1, got {getattr(self, name)}")
        self.sampling  # noqa: B018 - the checks NavSamples makes, before any data is read
        if self.pack_frames is not None and (self.pack_frames < 1 or self.max_history is not None):
            raise VidNavError(
                f"pack_frames must be >= 1 and cannot be combined with max_history (packed sequences "
                f"keep every history frame), got pack_frames={self.pack_frames}, "
                f"max_history={self.max_history}"
            )
        if self.pack_frames and self.gradient_checkpointing:
            raise VidNavError(
                "pack_frames runs the frames' rows on the LM's KV cache of the shared part, which "
                "gradient checkpointing switches off; use one or the other"
            )
        if self.qa_data is not None:
            if not (Path(self.qa_data) / "houses").is_dir():
                raise VidNavError(
                    f"qa_data {self.qa_data} is not a benchmark folder (no houses/); pass the folder "
                    "the rollouts were collected from (vidnav data build --out)"
                )
            if self.pack_frames:
                raise VidNavError("qa_data (embodied questions) cannot be combined with pack_frames")
            if not 0 < self.qa_ratio <= 1:
                raise VidNavError(f"qa_ratio must be in (0, 1], got {self.qa_ratio}")
        for name in ("max_steps", "align_max_steps"):  # -1: unset (epochs decide); 0 or -3 meant a whole epoch
            if getattr(self, name) == 0 or getattr(self, name) < -1:
                raise VidNavError(f"{name} must be >= 1 (or -1: unset, the epochs decide), got {getattr(self, name)}")
        if self.max_steps <= 0 and self.epochs <= 0:
            raise VidNavError("set epochs > 0 or max_steps > 0")
        if self.lr <= 0:
            raise VidNavError(f"lr must be > 0, got {self.lr}")
        if self.init_from is not None and not (Path(self.init_from) / "config.json").is_file():
            raise VidNavError(
                f"init_from {self.init_from} is not a vidnav checkpoint folder (no config.json); "
                "pass e.g. runs/round1/final"
            )
        from vidnav.run_options import PlanOptions, read_run_options

        base = read_run_options(self.init_from) if self.init_from is not None else PlanOptions()
        base.replace(
            self.run_options, "run_options (vidnav train --run-option NAME=VALUE, or run_options: in the YAML file)"
        )
        return self

    # -- YAML ----------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "config") -> "TrainConfig":
        if not isinstance(d, dict):
            raise VidNavError(f"{where} must be a mapping of settings, got {type(d).__name__}")
        return cls().with_changes(d, where)

    def with_changes(self, changes: dict[str, Any], where: str = "config") -> "TrainConfig":
        """A copy with ``changes`` (setting name -> value), each checked against its field's type."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise VidNavError(
                f"{where}: unknown setting(s) {', '.join(map(str, unknown))}; valid: {', '.join(sorted(names))}"
            )
        return dataclasses.replace(self, **{k: check_value(k, v, where) for k, v in changes.items()})

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> "TrainConfig":
        import yaml

        path = Path(path)
        if not path.is_file():
            raise VidNavError(f"experiment file not found: {path}")
        try:
            d = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise VidNavError(f"{path} is not valid YAML: {e}") from None
        return cls.from_dict(d, where=str(path))

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def save_yaml(self, path: str | os.PathLike) -> None:
        from vidnav.io import atomic_write_text

        atomic_write_text(path, self.to_yaml())

    def replace(self, **changes) -> "TrainConfig":
        return self.with_changes(changes, "TrainConfig.replace")


def field_types() -> dict[str, Any]:
    """Each TrainConfig field's type (resolved annotations)."""
    return typing.get_type_hints(TrainConfig)


def _kind(tp: Any) -> tuple[type, bool]:
    """(base type, whether None is allowed) of a field annotation: str, int, float, bool, list or dict."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _kind(inner[0])[0], True
    return (typing.get_origin(tp) or tp), False


_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a finite number",
    bool: "true or false",
    list: "a list of strings",
    dict: "a mapping NAME: VALUE",
}


def check_value(name: str, value: Any, where: str = "config") -> Any:
    """``value`` as the type of TrainConfig's field ``name``, or a VidNavError naming ``where`` and the key."""
    base, optional = _kind(field_types()[name])

    def bad() -> VidNavError:
        return VidNavError(
            f"{where}: {name} must be {_NAMES[base]}{' or null' if optional else ''}, "
            f"got {value!r} ({type(value).__name__})"
        )

    if value is None:
        if optional:
            return None
        raise bad()
    if base is bool:
        if isinstance(value, bool):
            return value
        raise bad()
    if base in (int, float):
        if isinstance(value, bool):
            raise bad()
        if isinstance(value, str):  # PyYAML reads 2e-4 and 1e3 as strings
            text = value.strip().replace("_", "")
            try:
                value = int(text) if base is int and text.lstrip("+-").isdigit() else float(text)
            except ValueError:
                raise bad() from None
        if isinstance(value, numbers.Integral):
            value = int(value)
        elif isinstance(value, numbers.Real):
            value = float(value)
        else:
            raise bad()
        if isinstance(value, float) and not math.isfinite(value):  # "nan", "inf": never a setting
            raise bad()
        if base is int:
            if isinstance(value, float) and not value.is_integer():
                raise bad()
            return int(value)
        return float(value)
    if base is str:
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if isinstance(value, str):
            return value
        raise bad()
    if base is list:
        if isinstance(value, (str, os.PathLike)):
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, (str, os.PathLike)) for v in value):
            raise bad()
        return [os.fspath(v) for v in value]
    if base is dict:
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            return dict(value)
        raise bad()
    raise AssertionError(f"TrainConfig.{name} has a type check_value does not know: {base}")  # pragma: no cover


# Settings that may differ when a run is resumed (they do not change the numbers it computes).
RESUME_FREE = (
    "dataloader_workers",
    "progress",
    "logging_steps",
    "save_total_limit",
    "record_samples",
    "out",
    "eval_data",
    "eval_steps",
    "eval_samples",
)
