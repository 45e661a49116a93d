"""Training on cached vision features with ``transformers.Trainer``: stages, checkpoints, resume, DDP.

Read top to bottom, :func:`train` does:

1. resolve the stages: ``align`` (projector, context module and markers learn while a *pretrained* LM stays
   frozen; a from-scratch LM, as in ``tiny``, trains in both stages since a random frozen LM cannot be aligned
   to), ``full`` (everything but the frozen vision tower and text encoder; LoRA for ``small`` / 7B presets, as
   the preset says), ``auto`` (align then full for a pretrained LM started from its package weights, full
   otherwise). Two-stage runs write stage 1 under ``OUT/align`` and start stage 2 from ``OUT/align/final``.
2. per stage: build the model (preset or ``init_from`` checkpoint), set ``requires_grad``, wrap the rollout
   folders in :class:`NavSamples` + :class:`NavCollator`, and run :class:`VidNavTrainer`. Checkpoints go to
   ``OUT/checkpoints/checkpoint-<step>`` every ``save_steps``; TensorBoard logs to ``OUT/tb``.
3. resume: a rerun of the same command finds the last *complete* checkpoint (incomplete ones, cut by a kill
   mid-save, are removed) and continues from it: weights, optimizer, scheduler, RNG states and the position
   in the seeded data order all come back, so the result equals an uninterrupted run.
4. at the end ``OUT/final`` (``save_pretrained``, written to a temporary folder and renamed) and
   ``OUT/train_summary.json``.

Distributed runs need nothing here: ``accelerate launch`` (or ``torchrun``) sets the environment and the
Trainer wraps the model in DDP / DeepSpeed; every rank builds the same model and dataset, the sampler shards it.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from vidnav.errors import VidNavError
from vidnav.io import read_json, write_json, writer_lock
from vidnav.train.config import RESUME_FREE, TrainConfig

CHECKPOINTS = "checkpoints"
FINAL = "final"
SUMMARY = "train_summary.json"
CONFIG_COPY = "train_config.yaml"


# -- stages ----------------------------------------------------------------------------------------------------
def lm_is_pretrained(cfg: TrainConfig) -> bool:
    """Whether the run's LM starts from pretrained weights (a package / local folder), not from scratch."""
    if cfg.init_from:
        lm = read_json(Path(cfg.init_from) / "config.json", what="checkpoint config").get("lm", "scratch")
    else:
        from vidnav.model.presets import preset_config

        lm = preset_config(cfg.preset, **_model_overrides(cfg)).lm
    return lm != "scratch"


def resolve_stages(cfg: TrainConfig) -> list[str]:
    if cfg.stage != "auto":
        return [cfg.stage]
    # a checkpoint given in init_from is already aligned (e.g. a DAgger round): no second stage 1
    return ["align", "full"] if lm_is_pretrained(cfg) and not cfg.init_from else ["full"]


def set_stage(model, stage: str) -> list[str]:
    """Set requires_grad for a stage; returns the names of the trainable top-level modules."""
    # a freshly built / loaded model has the full stage's settings (vision and text encoder frozen)
    if stage == "align" and model.config.lm != "scratch":
        model.lm.requires_grad_(False)  # LoRA adapters included: stage 1 leaves the LM alone
    trainable = sorted({n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad})
    if not trainable:
        raise VidNavError(f"stage {stage!r} leaves nothing to train for preset {model.config.preset!r}")
    return trainable


# -- model -----------------------------------------------------------------------------------------------------
def _model_overrides(cfg: TrainConfig) -> dict:
    overrides = dict(cfg.overrides or {})
    if cfg.memory is not None:
        overrides["memory"] = cfg.memory
    return overrides


def build_train_model(cfg: TrainConfig, init_from: str | os.PathLike | None):
    """A fresh preset model (seeded) or one loaded from a checkpoint folder, in train mode. Its run options
    (saved as run_options.json with every checkpoint) are the checkpoint's, else the defaults, changed by
    ``cfg.run_options``."""
    from transformers import set_seed

    set_seed(cfg.seed)  # fresh trainable weights are the same on every rank and every rerun
    if init_from:
        from vidnav.model.modeling_vidnav import VidNavForCausalLM

        model = VidNavForCausalLM.from_pretrained(init_from, **_model_overrides(cfg))
    else:
        from vidnav.model.presets import build_model

        model = build_model(cfg.preset, **_model_overrides(cfg))
    model.run_options = model.run_options.replace(cfg.run_options, "run_options")
    return model.train()


def load_checkpoint_weights(model, folder: str | os.PathLike) -> None:
    """Load what ``save_pretrained`` wrote (model.safetensors [+ adapter/]) into an existing model: the loader
    ``from_pretrained`` uses, with a hint for a resumed run."""
    model.load_checkpoint_weights(folder, mismatch_hint="was OUT used for another preset? use a new --out")


# -- checkpoints -----------------------------------------------------------------------------------------------
def _is_complete(ckpt: Path) -> bool:
    """Trainer writes trainer_state.json last: a checkpoint is whole when it parses and the weights exist."""
    try:
        json.loads((ckpt / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return (ckpt / "model.safetensors").is_file() and ((ckpt / "optimizer.pt").is_file() or _has_deepspeed_state(ckpt))


def _has_deepspeed_state(ckpt: Path) -> bool:
    """Under DeepSpeed the optimizer is saved by its engine: a ``latest`` file naming a ``global_step*`` folder."""
    try:
        tag = (ckpt / "latest").read_text().strip()
    except OSError:
        return False
    return bool(tag) and (ckpt / tag).is_dir() and any((ckpt / tag).iterdir())


def last_checkpoint(folder: str | os.PathLike, clean: bool = False) -> Path | None:
    """The newest complete ``checkpoint-<step>`` in ``folder``; ``clean`` removes newer incomplete ones."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    ckpts = sorted(
        (p for p in folder.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()),
        key=lambda p: int(p.name.split("-")[-1]),
        reverse=True,
    )
    for ckpt in ckpts:
        if _is_complete(ckpt):
            return ckpt
        if clean:
            shutil.rmtree(ckpt, ignore_errors=True)  # cut by a kill mid-save; the step will be saved again
    return None


def _atomic_save(model, dest: Path) -> None:
    """save_pretrained into a temporary sibling folder, then rename it into place."""
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
    if dest.exists():
        os.replace(dest, old)
    os.replace(tmp, dest)
    shutil.rmtree(old, ignore_errors=True)


# -- the Trainer -------------------------------------------------------------------------------------------------
def _trainer_class():
    from transformers import Trainer

    class VidNavTrainer(Trainer):
        """Trainer + vidnav checkpoints (trainable weights only, LoRA adapter beside) + sample bookkeeping."""

        def __init__(self, *args, record_samples: bool = False, eval_samples: int | None = 512, **kwargs):
            super().__init__(*args, **kwargs)
            self.eval_samples = eval_samples
            self.last_eval: dict[str, Any] | None = None
            self.last_eval_step = -1
            # forward() returns a mean loss and ignores num_items_in_batch: let the Trainer scale for
            # gradient accumulation itself
            self.model_accepts_loss_kwargs = False
            self.record_samples = record_samples
            self.seen_samples: list[int] = []
            self.last_loss: float | None = None

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            index = inputs.pop("sample_index", None)
            if self.record_samples and index is not None and model.training:
                self.seen_samples.extend(int(i) for i in index.tolist())
            out = super().compute_loss(
                model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
            )
            loss = out[0] if return_outputs else out
            self.last_loss = float(loss.detach())
            return out

        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
            """Held-out action accuracy (:mod:`vidnav.train.validate`) instead of the Trainer's logits gathering;
            rank 0 computes and logs it (TensorBoard: eval/*), other ranks wait."""
            from vidnav.train.validate import action_accuracy

            data = eval_dataset if eval_dataset is not None else self.eval_dataset
            if eval_dataset is None and self.last_eval is not None and self.last_eval_step == self.state.global_step:
                return flat_eval_metrics(self.last_eval, metric_key_prefix)  # a step that ends an epoch asks twice
            self.last_eval_step = self.state.global_step
            metrics: dict[str, float] = {}
            if self.args.process_index == 0:
                self.last_eval = action_accuracy(
                    self.accelerator.unwrap_model(self.model),
                    data,
                    max_samples=self.eval_samples,
                    batch_size=self.args.per_device_eval_batch_size,
                )
                metrics = flat_eval_metrics(self.last_eval, metric_key_prefix)
                self.log(metrics)
            if self.args.world_size > 1:
                torch.distributed.barrier()
            return metrics

        def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
            # the default loader would miss the LoRA adapter (our checkpoints keep it in adapter/)
            load_checkpoint_weights(self.accelerator.unwrap_model(model or self.model), resume_from_checkpoint)

    return VidNavTrainer


def flat_eval_metrics(m: dict[str, Any], prefix: str = "eval") -> dict[str, float]:
    """The scalar part of :func:`vidnav.train.validate.action_accuracy` output, for logs and TensorBoard."""
    out = {f"{prefix}_{name}": float(m[name]) for name in ("loss", "first_action_acc", "plan_acc")}
    out.update({f"{prefix}_recall_{w}": float(v) for w, v in m["recall"].items() if v is not None})
    return out


def _training_args(cfg: TrainConfig, out: Path, *, epochs: float, max_steps: int, lr: float):
    from transformers import TrainingArguments

    kwargs: dict[str, Any] = dict(
        output_dir=str(out / CHECKPOINTS),
        num_train_epochs=epochs,
        max_steps=max_steps if max_steps and max_steps > 0 else -1,
        learning_rate=lr,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        warmup_steps=cfg.warmup_steps,
        weight_decay=cfg.weight_decay,
        lr_scheduler_type=cfg.lr_scheduler,
        max_grad_norm=cfg.max_grad_norm,
        seed=cfg.seed,
        data_seed=cfg.seed,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        logging_strategy="steps",
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        eval_strategy="steps" if cfg.eval_data else "no",
        eval_steps=cfg.eval_steps or cfg.save_steps,
        per_device_eval_batch_size=cfg.batch_size,
        report_to=["tensorboard"],
        remove_unused_columns=False,  # items are dicts the collator reads, not model inputs
        dataloader_num_workers=cfg.dataloader_workers,
        bf16=cfg.bf16,
        activation_checkpointing=cfg.gradient_checkpointing,  # transformers 5's name for gradient checkpointing
        activation_checkpointing_kwargs={"use_reentrant": False} if cfg.gradient_checkpointing else None,
        disable_tqdm=not cfg.progress,
        deepspeed=cfg.deepspeed,
        # without a GPU, torchrun / accelerate ranks must be told to run DDP on CPU (gloo), else each
        # rank silently trains alone on the whole data set
        use_cpu=not _has_accelerator(),
    )
    return TrainingArguments(**kwargs)


def _has_accelerator() -> bool:
    if torch.cuda.is_available():
        return True
    xpu = getattr(torch, "xpu", None)
    mps = getattr(torch.backends, "mps", None)
    return bool((xpu is not None and xpu.is_available()) or (mps is not None and mps.is_available()))


def _check_same_run(cfg: TrainConfig, out: Path, is_main: bool) -> None:
    """A rerun into the same OUT must be the same experiment (else the resumed numbers would be nonsense)."""
    path = out / CONFIG_COPY
    if path.is_file():
        old = TrainConfig.from_yaml(path).to_dict()
        new = cfg.to_dict()
        diff = sorted(k for k in new if k not in RESUME_FREE and old.get(k) != new.get(k))
        if diff:
            raise VidNavError(
                f"{out} holds a run with different settings ({', '.join(diff)}); to continue it rerun "
                f"with the settings in {path}, or train into a new --out"
            )
    elif is_main:
        out.mkdir(parents=True, exist_ok=True)
        cfg.save_yaml(path)


def run_stage(
    cfg: TrainConfig, stage: str, out: Path, *, init_from, epochs: float, max_steps: int, lr: float
) -> dict[str, Any]:
    """One Trainer run into ``out``; returns (and writes) its summary. A finished stage is not rerun."""
    from transformers.integrations import TensorBoardCallback

    from vidnav.data.dataset import NavCollator, NavSamples
    from vidnav.data.packing import PackedCollator, PackedSamples

    args = _training_args(cfg, out, epochs=epochs, max_steps=max_steps, lr=lr)
    is_main = args.process_index == 0
    _check_same_run(cfg, out, is_main)  # before "finished": other settings into a finished OUT are refused too
    if (out / SUMMARY).is_file() and (out / FINAL / "config.json").is_file():
        summary = read_json(out / SUMMARY, what="train summary")
        print(f"stage {stage}: already finished in {out} ({summary.get('steps')} steps); nothing to do")
        return summary
    nav = data = NavSamples(
        cfg.data,
        max_history=cfg.max_history,
        sampling=cfg.sampling,  # validates first
        check_finite=False,
    )  # train() read every row of these folders once already
    if cfg.pack_frames:
        data = PackedSamples(data, cfg.pack_frames)
    if cfg.qa_data:
        from vidnav.data.dataset import CoSamples, QASamples

        data = CoSamples(data, QASamples(data, cfg.qa_data, cfg.qa_ratio, cfg.qa_families or None, seed=cfg.seed))
    held_out = (
        NavSamples(cfg.eval_data, max_history=cfg.max_history, first_frames=cfg.first_frames)  # no repeats
        if cfg.eval_data
        else None
    )
    model = build_train_model(cfg, init_from)
    for samples in (nav, held_out) if held_out is not None else (nav,):  # before step 0, naming the folder
        samples.check_num_actions(model.config.num_actions)
    if tuple(data.feature_shape) != (model.num_patches, model.vision.hidden_size):
        raise VidNavError(
            f"rollout features have shape {tuple(data.feature_shape)} per frame but preset "
            f"{model.config.preset!r} expects ({model.num_patches}, {model.vision.hidden_size}); "
            "collect the rollouts with this model's vision tower"
        )
    trainable = set_stage(model, stage)
    total, n_train = model.num_parameters_split()

    resume = last_checkpoint(out / CHECKPOINTS, clean=is_main)
    if args.world_size > 1:  # every rank must resume from the same checkpoint (rank 0 may have cleaned up)
        torch.distributed.barrier()
        resume = last_checkpoint(out / CHECKPOINTS)
    start_step = 0
    if resume is not None:
        start_step = int(read_json(resume / "trainer_state.json", what="trainer state").get("global_step", 0))
    if is_main:
        what = f"resuming from {resume} (step {start_step})" if resume else "starting"
        items = (
            f"{len(data)} packed sequences ({data.supervised_frames} supervised frames)"
            if cfg.pack_frames
            else f"{len(data)} samples"
        )
        print(
            f"stage {stage}: {what}; {items} from {len(data.trajectories)} trajectories; "
            f"trainable {n_train:,} of {total:,} parameters ({', '.join(trainable)})"
        )

    if held_out is not None and tuple(held_out.feature_shape) != tuple(data.feature_shape):
        raise VidNavError(
            f"--eval-data features have shape {tuple(held_out.feature_shape)} per frame but the "
            f"training data's are {tuple(data.feature_shape)}; use rollouts of the same vision tower"
        )
    trainer = _trainer_class()(
        model=model,
        args=args,
        train_dataset=data,
        eval_dataset=held_out,
        data_collator=(PackedCollator if cfg.pack_frames else NavCollator)(model, data),
        record_samples=cfg.record_samples,
        eval_samples=cfg.eval_samples,
    )
    for cb in trainer.callback_handler.callbacks:
        if isinstance(cb, TensorBoardCallback) and cb.tb_writer is None:
            cb.logging_dir = str(out / "tb")
    t0 = time.time()
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    wall = time.time() - t0
    if held_out is not None:
        trainer.evaluate()  # the final weights are always validated (a no-op when the last step just was)

    rank = args.process_index
    if cfg.record_samples:
        write_json(
            out / f"seen_samples-rank{rank}.json",
            {"rank": rank, "world_size": args.world_size, "start_step": start_step, "samples": trainer.seen_samples},
        )
    logged = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    summary = {
        "stage": stage,
        "steps": trainer.state.global_step,
        "start_step": start_step,
        "resumed_from": str(resume) if resume else None,
        "final_loss": logged[-1] if logged else trainer.last_loss,
        "last_batch_loss": trainer.last_loss,
        "first_loss": logged[0] if logged else None,
        "train_loss": result.training_loss,  # mean over the steps run by this invocation
        "wall_seconds": round(wall, 3),
        "samples": len(data),  # packed sequences with pack_frames
        "supervised_frames": data.supervised_frames if cfg.pack_frames else len(data),
        "trajectories": len(data.trajectories),
        "sources": data.summary()["sources"],
        "epochs": trainer.state.epoch,
        "world_size": args.world_size,
        "trainable_parameters": n_train,
        "preset": model.config.preset,
        "memory": model.config.memory,
        "data": [str(d) for d in cfg.data],
        "init_from": str(init_from) if init_from else None,
    }
    if trainer.last_eval is not None:
        summary["eval"] = {"data": [str(d) for d in cfg.eval_data], **trainer.last_eval}
        summary["eval_history"] = [h for h in trainer.state.log_history if "eval_first_action_acc" in h]
    if is_main:
        _atomic_save(trainer.accelerator.unwrap_model(trainer.model), out / FINAL)
        write_json(out / SUMMARY, summary)
        print(
            f"stage {stage}: {summary['steps']} steps, final loss {summary['final_loss']:.4f}, "
            f"{wall:.1f} s → {out / FINAL}"
        )
    if args.world_size > 1:
        torch.distributed.barrier()
    return summary


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Run the experiment ``cfg`` (all its stages); rerunning after an interruption continues it."""
    from vidnav.data.dataset import NavSamples

    cfg.validate()
    NavSamples(cfg.data, max_history=cfg.max_history, sampling=cfg.sampling)  # bad data fails before anything heavy
    out = Path(cfg.out)
    stages = resolve_stages(cfg)
    summary: dict[str, Any] = {}
    init_from = cfg.init_from
    # one job per OUT (a second one would delete the first's half-saved checkpoint as "cut by a kill"); the
    # ranks of one distributed run share OUT, so each locks its own file. The rank is the Trainer's own
    # (accelerate's, which also reads MPI and SLURM launches), so the lock and the checkpoints agree on it.
    rank = _training_args(cfg, out, epochs=cfg.epochs, max_steps=cfg.max_steps, lr=cfg.lr).process_index
    with writer_lock(out, "training", name=f".writer-rank{rank}.lock"):
        for i, stage in enumerate(stages):
            last = i == len(stages) - 1
            stage_out = out if last else out / stage
            if stage == "align" and not last:
                summary = run_stage(
                    cfg,
                    stage,
                    stage_out,
                    init_from=init_from,
                    epochs=cfg.align_epochs,
                    max_steps=cfg.align_max_steps,
                    lr=cfg.align_lr,
                )
            else:
                summary = run_stage(
                    cfg,
                    stage,
                    stage_out,
                    init_from=init_from,
                    epochs=cfg.epochs,
                    max_steps=cfg.max_steps,
                    lr=cfg.align_lr if stage == "align" else cfg.lr,
                )
            init_from = stage_out / FINAL
    return summary
