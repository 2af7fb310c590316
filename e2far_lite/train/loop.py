"""Train E2FARNet on synthetic faces: AdamW, warm-up + cosine learning rate, vertex-space loss.

    for step in range(steps):
        batch  = SyntheticFaces(seed=train_seed).batch(step * B ... step * B + B - 1)
        loss   = MultiTaskLoss(net(batch["image"]), batch)["total"]
        AdamW step at lr_at(step); every val_every steps: vertex RMSE on a fixed split

Every training face is new (item ``i`` is a pure function of ``(train_seed, i)``), unless
``train_pool = N``: then the first N faces are rendered once, cached on disk, and cycled through
(on a CPU rendering costs more than the network, so a pool buys several times more steps).
Validation uses a fixed split drawn with another seed (``val_seed``), rendered once and cached.
Under ``torchrun --nproc_per_node N`` the batch is split over N processes with DDP, and rank 0
validates and writes (:mod:`~e2far_lite.train.distributed`). The run writes into ``out_dir``::

    last.pt, best.pt        checkpoints (best by validation RMSE of the full shape)
    history.csv, .json      the log: averaged loss terms, learning rate, validation errors

(``python -m e2far_lite train`` also draws ``loss_curves.png`` from the log.)

Validation figures, in mm, are means over faces of per-face vertex RMSE
(:func:`~e2far_lite.model.shape_errors`): ``total`` (full shape, rigidly aligned), ``neutral``
(identity only, aligned) and ``expression`` (offsets from the neutral face, not aligned); the
landmark NME (%, :func:`~e2far_lite.model.landmark_nme`) scores the predicted pose and shape
projected into the image. The mean-shape baseline predicts ``a_id = a_exp = 0`` for every face.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..devices import default_device
from ..io.atomic import atomic_write
from ..model.metrics import SHAPE_FIGURES, landmark_nme, shape_errors
from ..model.morphable_model import MorphableModel
from ..model.regions import vertex_regions
from ..nets.network import E2FARNet
from ..paths import cache_dir as default_cache_dir
from ..render.camera import weak_perspective_project
from ..synth.faces import SyntheticFaces, cached_split, face_split
from . import distributed
from .checkpoint import build_net, check_model, read_checkpoint, save_checkpoint, set_rng_state
from .configs import RESUMABLE_CHANGES, TrainConfig, config_differences, get_config
from .losses import MultiTaskLoss

#: Loss terms logged (averaged over ``log_every`` steps), in the order of the progress bar.
TERMS = ("total", "neutral", "expression", "landmarks", "pose")

Callback = Callable[[int, dict[str, float]], Any]


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    net: E2FARNet  # the trained network, eval mode, on the training device
    model: MorphableModel  # the morphable model its coefficients refer to
    config: TrainConfig
    history: list[dict[str, float]]  # the rows of history.csv
    baseline: dict[str, float]  # mean-shape errors on the validation split (mm)
    final: dict[str, float]  # validation errors after the last step (mm, NME in %)
    paths: dict[str, Path] = field(default_factory=dict)  # last, best, csv, json
    seconds: float = 0.0  # wall time of this call


# ---------------------------------------------------------------------------- schedule
def lr_at(step: int, config: TrainConfig) -> float:
    """Learning rate of update ``step`` (0-based): linear warm-up, then cosine decay.

    Rises linearly over ``warmup_steps`` to ``lr``, then follows half a cosine down to
    ``min_lr_ratio * lr`` at the last step.
    """
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    span = max(1, config.steps - 1 - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    low = config.lr * config.min_lr_ratio
    return low + 0.5 * (config.lr - low) * (1 + math.cos(math.pi * progress))


def make_optimizer(net: torch.nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on kernels and weight matrices only (not biases or BN)."""
    decay = [p for p in net.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in net.parameters() if p.requires_grad and p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=config.lr)


def train_step(net: torch.nn.Module, loss_fn: MultiTaskLoss, optimizer: torch.optim.Optimizer,
               scaler: torch.amp.GradScaler, batch: dict[str, Tensor], config: TrainConfig,
               autocast: torch.dtype | None) -> dict[str, Tensor]:
    """One optimisation step on ``batch``: forward (mixed precision when ``autocast``), the
    loss in float32, backward, optional gradient clipping, optimizer step. Returns the loss
    terms (not synchronised: no ``.item()``)."""
    images = batch["image"]
    if config.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    device_type = images.device.type
    with torch.autocast(device_type, dtype=autocast or torch.float32,
                        enabled=autocast is not None):
        out = net(images)
    # the loss in float32: squared mm over thousands of vertices can overflow fp16
    terms = loss_fn({k: out[k].float() for k in ("a_id", "a_exp", "pose")}, batch)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(terms["total"]).backward()
    if config.grad_clip > 0:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
    scaler.step(optimizer)
    scaler.update()
    return terms


def amp_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype: bf16 or fp16 on CUDA when ``config.amp``, else None (float32)."""
    if not config.amp or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


# ---------------------------------------------------------------------------- validation
def validation_split(model: MorphableModel, config: TrainConfig, cache_dir: str | os.PathLike,
                     device: torch.device | str | None = None) -> dict[str, Tensor]:
    """The run's validation faces (CPU tensors, cached in ``cache_dir``): ``config.val_size``
    faces of :func:`~e2far_lite.synth.face_split` with ``config.val_seed`` and
    ``config.validation_data``."""
    return face_split(model, config.validation_data, config.val_size, config.val_seed,
                      cache_dir, device)


def _chunks(split: dict[str, Tensor], batch_size: int, device: torch.device):
    n = len(split["a_id"])
    for start in range(0, n, batch_size):
        yield {k: v[start:start + batch_size].to(device) for k, v in split.items()}


def _shape_figures(errors: dict[str, Tensor]) -> dict[str, float]:
    return {f"{key}_mm": float(errors[key].mean()) for key in SHAPE_FIGURES}


@torch.no_grad()
def validate(net: E2FARNet, model: MorphableModel, split: dict[str, Tensor],
             batch_size: int = 128, autocast: torch.dtype | None = None,
             channels_last: bool = False) -> dict[str, float]:
    """Validation errors of ``net`` on ``split`` (a dict from :func:`validation_split`).

    Returns:
        ``total_mm``, ``neutral_mm``, ``total_sim_mm``, ``neutral_sim_mm``, ``expression_mm``:
        mean per-face vertex RMSE in mm (see :data:`SHAPE_FIGURES`);
        ``nme_pct``: mean landmark NME in % of the face size. The network is left in the
        mode it came in.
    """
    device = next(net.parameters()).device
    model = model.to(device)
    labels = vertex_regions(model)
    was_training = net.training
    net.eval()
    parts: dict[str, list[Tensor]] = {key: [] for key in (*SHAPE_FIGURES, "nme")}
    try:
        for batch in _chunks(split, batch_size, device):
            images = batch["image"]
            if channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=autocast or torch.float32,
                                enabled=autocast is not None):
                out = net(images)
            pred = {k: out[k].float() for k in ("a_id", "a_exp", "pose")}
            errors = shape_errors(model, pred, batch, labels)
            for key in SHAPE_FIGURES:
                parts[key].append(errors[key])
            points = model.landmark_points(pred["a_id"], pred["a_exp"])
            landmarks = weak_perspective_project(points, pred["pose"])
            parts["nme"].append(landmark_nme(landmarks, batch["landmarks"], batch["visible"]))
    finally:
        net.train(was_training)
    figures = _shape_figures({k: torch.cat(v) for k, v in parts.items()})
    figures["nme_pct"] = 100 * float(torch.cat(parts["nme"]).nanmean())
    return figures


@torch.no_grad()
def mean_shape_baseline(model: MorphableModel, split: dict[str, Tensor]) -> dict[str, float]:
    """Errors of predicting the mean face (``a_id = a_exp = 0``) for every face of ``split``:
    the shape figures of :func:`validate`."""
    device = model.mean.device
    target = {"a_id": split["a_id"].float().to(device), "a_exp": split["a_exp"].float().to(device)}
    zero = {k: torch.zeros_like(v) for k, v in target.items()}
    return _shape_figures(shape_errors(model, zero, target))


def format_figures(figures: dict[str, float], baseline: dict[str, float] | None = None) -> str:
    """One line: ``vertex RMSE total 2.10 mm (mean shape 3.05 mm, -31%), neutral ...``."""
    parts = []
    for key in ("total", "total_sim", "expression"):
        value = figures[f"{key}_mm"]
        text = f"{key} {value:.3f} mm"
        if baseline is not None:
            base = baseline[f"{key}_mm"]
            text += f" (mean shape {base:.3f} mm, {100 * (value / base - 1):+.0f}%)"
        parts.append(text)
    line = "vertex RMSE " + ", ".join(parts)
    if "nme_pct" in figures:
        line += f"; landmark NME {figures['nme_pct']:.2f}%"
    return line


# ---------------------------------------------------------------------------- logs
def write_history(history: list[dict[str, float]], out_dir: Path,
                  extra: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Write ``history.csv`` (one row per logged step, blanks where a figure was not taken)
    and ``history.json`` (``{"rows": history, **extra}``), atomically."""
    columns: list[str] = []
    for row in history:
        columns += [k for k in row if k not in columns]
    csv_path, json_path = out_dir / "history.csv", out_dir / "history.json"
    with atomic_write(csv_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(history)
    with atomic_write(json_path, "w") as handle:
        json.dump({**(extra or {}), "rows": history}, handle, indent=1)
    return csv_path, json_path




# ---------------------------------------------------------------------------- training
def _resume_payload(resume: str | os.PathLike | None, last: Path,
                    config: TrainConfig) -> dict[str, Any] | None:
    if resume is None:
        return None
    if str(resume) == "auto":
        if not last.is_file():
            return None
        resume = last
    payload = read_checkpoint(resume)
    if "train_state" not in payload:
        raise ValueError(f"resume: expected a training checkpoint (with optimizer state), got "
                         f"{Path(resume).name!r}, a weights-only file")
    differences = config_differences(TrainConfig.from_dict(payload["config"]), config,
                                     ignore=RESUMABLE_CHANGES)
    if differences:
        raise ValueError(f"resume: checkpoint {str(resume)!r} was made with another config "
                         "(checkpoint vs now): " + "; ".join(differences))
    return payload


def _batches(faces: SyntheticFaces, config: TrainConfig, cache_dir: str | os.PathLike,
             device: torch.device, progress: bool,
             proc: distributed.Process) -> Callable[[int], dict[str, Tensor]]:
    """``next_batch(step)``: rendered on the fly, or read from the cached pool. With several
    processes, this one's share: items ``step * B + first .. + local - 1`` (distributed.py)."""
    size = config.batch_size
    first, local = distributed.local_batch(size, proc)  # (0, B) for one process
    if not config.train_pool:
        return lambda step: faces.batch(range(step * size + first, step * size + first + local))
    with distributed.main_first(proc):  # rank 0 renders and caches the pool, the others read it
        pool = cached_split(faces, cache_dir, progress=progress)
    pool["image"] = (pool["image"] * 255).round().to(torch.uint8)  # a quarter of the memory

    def next_batch(step: int) -> dict[str, Tensor]:
        index = torch.arange(step * size + first, step * size + first + local) % config.train_pool
        batch = {k: v[index].to(device, non_blocking=True) for k, v in pool.items()}
        batch["image"] = batch["image"].float() / 255
        return batch

    return next_batch


def _weights_finite(net: torch.nn.Module) -> bool:
    flags = [torch.isfinite(p).all() for p in net.parameters()]
    return bool(torch.stack(flags).all())


def _echo(progress: bool, text: str) -> None:
    if progress:
        from tqdm.auto import tqdm

        tqdm.write(text)


def train(config: TrainConfig | str, out_dir: str | os.PathLike,
          device: torch.device | str | None = None,
          resume: str | os.PathLike | None = None, callback: Callback | None = None,
          progress: bool = True, cache_dir: str | os.PathLike | None = None,
          model: MorphableModel | None = None) -> TrainResult:
    """Train E2FARNet on the shipped morphable model; see the module docstring.

    Args:
        config: a :class:`~e2far_lite.train.TrainConfig` or a preset name (``"smoke"``,
            ``"cpu-quick"``, ``"default"``, ``"gpu"``).
        out_dir: folder for checkpoints and logs (created).
        device: default ``devices.default_device()`` (CUDA, MPS, then CPU).
        resume: ``None`` (start afresh), a checkpoint path, or ``"auto"`` (``out_dir/last.pt``
            if it exists). A resumed run continues exactly where the checkpoint stopped; the
            config must match the checkpoint's except for ``steps``, ``val_every``,
            ``ckpt_every`` and ``log_every``.
        callback: ``callback(step, row)`` after each logged step (and after the step-0
            validation), ``row`` the dict also written to history.csv: ``loss_<term>`` and
            ``lr`` when logged, ``val_<figure>`` when validated. Exceptions it raises stop
            training (the last checkpoint stays as it was).
        progress: show a tqdm bar with the loss terms and print validation lines.
        cache_dir: where the validation split is cached (default ``data/cache``, or
            ``$E2FAR_CACHE``).
        model: the morphable model to train on (default: the shipped ICT model); any model in
            the documented ``.npz`` format works, and the checkpoint records which one it was.

    Returns:
        a :class:`TrainResult`.

    Raises:
        RuntimeError: the loss became NaN or infinite; the message names the step, and
            ``last.pt`` still holds the last checkpoint written before it.
    """
    from tqdm.auto import tqdm

    started = time.perf_counter()
    cfg = get_config(config) if isinstance(config, str) else config
    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"config: expected a TrainConfig or a preset name, "
                        f"got {type(cfg).__name__}")
    cfg.check_consistent()
    device = torch.device(device) if device is not None else default_device()
    # several processes under torchrun (distributed.py); without torchrun nothing changes
    proc, device = distributed.init(device)
    distributed.local_batch(cfg.batch_size, proc)  # a batch W does not divide: refused now
    progress = progress and proc.is_main
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"last": out / "last.pt", "best": out / "best.pt", "csv": out / "history.csv",
             "json": out / "history.json"}
    payload = _resume_payload(resume, paths["last"], cfg)

    torch.manual_seed(cfg.seed)
    model = model if model is not None else MorphableModel.default()
    if payload is not None:
        check_model(payload["model"], model, "resume checkpoint")
        net = build_net(payload, model, cfg)
    else:
        net = E2FARNet(model.num_id, model.num_exp, cfg.net)
    model = model.to(device)
    net = net.to(device).train()
    if cfg.channels_last:
        net = net.to(memory_format=torch.channels_last)
    # W > 1: BN synchronised over processes, DDP for the training forward; else train_net = net
    net, train_net = distributed.wrap(
        net, proc, device,
        find_unused_parameters=cfg.loss.landmark_weight == 0 and cfg.loss.pose_weight == 0)
    if cfg.compile:  # only the training forward: net, validated and saved, keeps its keys
        train_net = torch.compile(train_net)
    loss_fn = MultiTaskLoss(model, cfg.loss).to(device)
    optimizer = make_optimizer(net, cfg)
    autocast = amp_dtype(cfg, device)
    scaler = torch.amp.GradScaler(device.type, enabled=autocast == torch.float16)
    step, history, extra = 0, [], {"best_total_mm": math.inf}
    if payload is not None:
        state = payload["train_state"]
        optimizer.load_state_dict(state["optimizer"])
        if state["scaler"]:
            scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        step, history, extra = payload["step"], list(payload["history"]), dict(payload["extra"])
        _echo(progress, f"resumed from step {step}")

    split, baseline = None, {}
    if proc.is_main:  # rank 0 alone validates
        split = validation_split(model, cfg, cache_dir or default_cache_dir(), device=device)
        baseline = mean_shape_baseline(model, split)
        extra["baseline"] = baseline
        _echo(progress, f"validation: {cfg.val_size} faces (seed {cfg.val_seed}); mean-shape "
                        f"baseline " + format_figures(baseline).replace("vertex ", ""))
    faces = SyntheticFaces(model, cfg.train_pool or cfg.steps * cfg.batch_size,
                           seed=cfg.train_seed, config=cfg.data, device=device)
    next_batch = _batches(faces, cfg, cache_dir or default_cache_dir(), device, progress,
                          proc)

    def run_validation(done: int, row: dict[str, float]) -> None:
        figures = validate(net, model, split, autocast=autocast, channels_last=cfg.channels_last)
        row.update({f"val_{k}": v for k, v in figures.items()})
        if figures["total_mm"] < extra["best_total_mm"]:
            extra["best_total_mm"] = figures["total_mm"]
            save_checkpoint(paths["best"], net, model, cfg, step=done, history=history,
                            extra=extra)
        _echo(progress, f"step {done:>6}: " + format_figures(figures, baseline))

    def save_logs() -> None:
        write_history(history, out, {"config": cfg.to_dict(), "baseline": baseline})

    if step == 0 and proc.is_main:
        row: dict[str, float] = {"step": 0}
        run_validation(0, row)
        history.append(row)
        if callback is not None:
            callback(0, row)

    running = torch.zeros(len(TERMS), device=device)
    first_bad = torch.full((), -1, dtype=torch.long, device=device)  # on device: no sync/step
    tick, since = time.perf_counter(), 0
    bar = tqdm(range(step, cfg.steps), initial=step, total=cfg.steps, disable=not progress,
               desc="training", dynamic_ncols=True)
    for step in bar:
        done = step + 1  # steps finished after this one; logs and checkpoints count these
        lr = lr_at(step, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        terms = train_step(train_net, loss_fn, optimizer, scaler, next_batch(step), cfg,
                           autocast)
        values = torch.stack([terms[k].detach().float() for k in TERMS])
        running += values
        first_bad = torch.where((first_bad < 0) & ~torch.isfinite(values).all(), done, first_bad)
        since += 1
        is_val = done % cfg.val_every == 0 or done == cfg.steps
        is_ckpt = done % cfg.ckpt_every == 0 or done == cfg.steps
        if not (done % cfg.log_every == 0 or is_val or is_ckpt):
            continue
        distributed.reduce_log(running, first_bad, proc)  # over processes; none for one
        # one host sync per logged step
        bad = int(first_bad)
        if bad >= 0:
            raise RuntimeError(
                f"non-finite loss at step {bad} (its batch: items from "
                f"{(bad - 1) * cfg.batch_size} on, seed {cfg.train_seed}); training stopped, "
                f"{paths['last']} holds the last checkpoint written before it")
        if not _weights_finite(net):  # a finite loss can still give an infinite update
            raise RuntimeError(
                f"non-finite weights after step {done}; training stopped, {paths['last']} "
                "holds the last checkpoint written before it")
        now = time.perf_counter()
        row = {"step": done, "lr": lr, "steps_per_s": since / (now - tick)}
        row.update({f"loss_{k}": v / since for k, v in zip(TERMS, running.tolist(),
                                                           strict=True)})
        running.zero_()
        tick, since = now, 0
        if not proc.is_main:  # rank 0 logs and saves; the others wait in the next collective
            continue
        bar.set_postfix({k: f"{row[f'loss_{k}']:.3g}" for k in TERMS[:3]} | {"lr": f"{lr:.2e}"})
        if is_val:
            run_validation(done, row)
        history.append(row)
        if is_ckpt:
            save_checkpoint(paths["last"], net, model, cfg, step=done, optimizer=optimizer,
                            scaler=scaler, history=history, extra=extra)
        if is_val or done == cfg.steps:
            save_logs()
        if callback is not None:
            callback(done, row)
    bar.close()
    if proc.is_main and not paths["csv"].is_file():
        save_logs()
    history, baseline = distributed.broadcast((history, baseline), proc)  # rank 0's, everywhere
    distributed.close(proc)
    net.eval()
    val_rows = [r for r in history if "val_total_mm" in r]
    final = {k[len("val_"):]: v for k, v in val_rows[-1].items() if k.startswith("val_")}
    return TrainResult(net, model, cfg, history, baseline, final, paths,
                       time.perf_counter() - started)


__all__ = ["train", "TrainResult", "validate", "mean_shape_baseline", "validation_split", "lr_at",
           "make_optimizer", "format_figures", "write_history", "TERMS"]
