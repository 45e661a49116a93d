"""TrainConfig: one experiment, as a dataclass with YAML in/out (``vidnav train --config exp.yaml``).

Every field has a default that works for a smoke run of the ``tiny`` preset; a YAML file names only what it
changes. Unknown keys are errors (a typo must not silently train the default).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidnav.errors import VidNavError

STAGES = ("auto", "align", "full")


@dataclass
class TrainConfig:
    # model
    preset: str = "tiny"
    memory: str | None = None  # None: the preset's strategy
    overrides: dict = field(default_factory=dict)  # VidNavConfig fields, e.g. {use_context_token: true}
    init_from: str | None = None  # a checkpoint folder (save_pretrained) to start from, e.g. the last DAgger round
    run_options: dict = field(default_factory=dict)  # how the trained agent is meant to run (vidnav.run_options),
    #   saved as run_options.json with every checkpoint: init_from's (else the defaults) with these changes
    # data
    data: list[str] = field(default_factory=list)  # rollout folders (DAgger: several)
    max_history: int | None = None  # frames per sample, the current one included; None = all
    stride: int = 1  # every stride-th frame of a trajectory is a sample (the last one always)
    first_frames: int | None = None  # only frames t < N of each trajectory (training and eval data); None = all
    start_frames: int | None = None  # with start_repeat: the start of each trajectory (frames t < N) ...
    start_repeat: int = 0  # ... is listed this many extra times in the training data (not in eval data)
    end_frames: int | None = None  # with end_repeat: the last N frames of each trajectory (near the goal) ...
    end_repeat: int = 0  # ... are listed this many extra times in the training data (not in eval data)
    inflection_repeat: int = 0  # frames where the expert's first action changes: listed this many extra times
    pack_frames: int | None = None  # > 0: items of up to N frames of one trajectory, each frame's listing a weight,
    #   the instruction and history run once per item (vidnav.model.packing); batch_size then counts items
    qa_data: str | None = None  # the benchmark folder of the rollouts: co-train embodied questions on their frames
    qa_ratio: float = 0.5  # with qa_data: about this many question items per navigation frame
    qa_families: list[str] = field(default_factory=list)  # question families (vidnav.data.questions); [] = all
    eval_data: list[str] = field(default_factory=list)  # held-out rollout folders: action accuracy while training
    eval_steps: int | None = None  # validate every N steps (None: every save_steps) and after the last step
    eval_samples: int | None = 512  # a fixed seeded subset of the held-out samples (0 or None: all)
    # run
    out: str = "runs/train"
    stage: str = "auto"  # align | full | auto (align then full for a pretrained LM, full otherwise)
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    lr: float = 2e-4
    batch_size: int = 4  # per device
    grad_accum: int = 1
    warmup_steps: int = 0
    weight_decay: float = 0.0
    lr_scheduler: str = "cosine"
    max_grad_norm: float = 1.0
    seed: int = 0
    save_steps: int = 500
    save_total_limit: int | None = 3
    logging_steps: int = 10
    # stage 1 (align) when stage is auto and the LM is pretrained
    align_epochs: float = 1.0
    align_max_steps: int = -1
    align_lr: float = 1e-3
    # hardware
    bf16: bool = False
    gradient_checkpointing: bool = False
    dataloader_workers: int = 0
    deepspeed: str | None = None  # a DeepSpeed JSON config (ZeRO); normally given via accelerate launch
    progress: bool = True
    record_samples: bool = False  # write OUT/seen_samples-rank{r}.json (which samples each rank trained on)

    # -- validation ----------------------------------------------------------------------------------------
    def validate(self) -> "TrainConfig":
        if self.stage not in STAGES:
            raise VidNavError(f"stage must be one of {', '.join(STAGES)}, got {self.stage!r}")
        if not self.data:
            raise VidNavError("no training data: give at least one rollout folder (--data R or data: [R] in YAML)")
        if isinstance(self.data, (str, os.PathLike)):
            self.data = [str(self.data)]
        self.data = [str(d) for d in self.data]
        if isinstance(self.eval_data, (str, os.PathLike)):
            self.eval_data = [str(self.eval_data)]
        self.eval_data = [str(d) for d in (self.eval_data or [])]
        if self.eval_steps is not None and int(self.eval_steps) < 1:
            raise VidNavError(f"eval_steps must be >= 1 (or unset: every save_steps), got {self.eval_steps}")
        if self.eval_samples is not None and int(self.eval_samples) < 0:  # 0 = all, as `validate --samples 0`
            raise VidNavError(f"eval_samples must be >= 0 (0 or unset = all held-out samples), got {self.eval_samples}")
        if not isinstance(self.overrides, dict):
            raise VidNavError(f"overrides must be a mapping of model settings, got {type(self.overrides).__name__}")
        for name in ("batch_size", "grad_accum", "save_steps", "logging_steps"):
            if int(getattr(self, name)) < 1:
                raise VidNavError(f"{name} must be >= 1, got {getattr(self, name)}")
        from vidnav.data.dataset import check_sampling  # the checks NavSamples makes, before any data is read

        check_sampling(self.stride, self.first_frames, self.start_frames, self.start_repeat, self.end_frames,
                       self.end_repeat, self.inflection_repeat)
        if self.pack_frames is not None and (int(self.pack_frames) < 1 or self.max_history is not None):
            raise VidNavError(f"pack_frames must be >= 1 and cannot be combined with max_history (packed sequences "
                              f"keep every history frame), got pack_frames={self.pack_frames}, "
                              f"max_history={self.max_history}")
        if self.pack_frames and self.gradient_checkpointing:
            raise VidNavError("pack_frames runs the frames' rows on the LM's KV cache of the shared part, which "
                              "gradient checkpointing switches off; use one or the other")
        if self.qa_data is not None:
            if not (Path(self.qa_data) / "houses").is_dir():
                raise VidNavError(f"qa_data {self.qa_data} is not a benchmark folder (no houses/); pass the folder "
                                  "the rollouts were collected from (vidnav data build --out)")
            if self.pack_frames:
                raise VidNavError("qa_data (embodied questions) cannot be combined with pack_frames")
            if not 0 < float(self.qa_ratio) <= 1:
                raise VidNavError(f"qa_ratio must be in (0, 1], got {self.qa_ratio}")
        for name in ("max_steps", "align_max_steps"):  # -1: unset (epochs decide); 0 or -3 meant a whole epoch
            if int(getattr(self, name)) == 0 or int(getattr(self, name)) < -1:
                raise VidNavError(f"{name} must be >= 1 (or -1: unset, the epochs decide), got {getattr(self, name)}")
        if self.max_steps <= 0 and self.epochs <= 0:
            raise VidNavError("set epochs > 0 or max_steps > 0")
        if self.lr <= 0:
            raise VidNavError(f"lr must be > 0, got {self.lr}")
        if self.init_from is not None and not (Path(self.init_from) / "config.json").is_file():
            raise VidNavError(f"init_from {self.init_from} is not a vidnav checkpoint folder (no config.json); "
                              "pass e.g. runs/round1/final")
        from vidnav.run_options import PlanOptions, read_run_options

        base = read_run_options(self.init_from) if self.init_from is not None else PlanOptions()
        base.replace(self.run_options, "run_options (vidnav train --run-option NAME=VALUE, or run_options: in the "
                                       "YAML file)")
        return self

    # -- YAML ----------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "config") -> "TrainConfig":
        if not isinstance(d, dict):
            raise VidNavError(f"{where} must be a mapping of settings, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise VidNavError(f"{where}: unknown setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}")
        d = dict(d)
        for name in ("data", "eval_data"):
            if isinstance(d.get(name), str):
                d[name] = [d[name]]
        return cls(**d)

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
        return dataclasses.replace(self, **changes)


# Settings that may differ when a run is resumed (they do not change the numbers it computes).
RESUME_FREE = ("dataloader_workers", "progress", "logging_steps", "save_total_limit", "record_samples", "out",
               "eval_data", "eval_steps", "eval_samples")
