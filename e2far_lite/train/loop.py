"""Train E2FARNet on synthetic faces: AdamW, warm-up + cosine learning rate, vertex-space loss.

    for step in range(steps):
        batch  = SyntheticFaces(seed=train_seed).batch(step * B ... step * B + B - 1)
        loss   = MultiTaskLoss(net(batch["image"]), batch)["total"]
        AdamW step at lr_at(step); every val_every steps: vertex RMSE on a fixed split

Every training face is new (item ``i`` is a pure function of ``(train_seed, i)``), unless
``train_pool = N``: then the first N faces are rendered once, cached on disk, and cycled through
(on a CPU rendering costs more than the network, so a pool buys several times more steps).
Validation uses a fixed split drawn with another seed (``val_seed``), rendered once and cached
(:mod:`~e2far_lite.train.validation`). Under ``torchrun --nproc_per_node N`` the batch is split
over N processes with DDP, and rank 0 validates and writes
(:mod:`~e2far_lite.train.distributed`). The run writes into ``out_dir``::

    last.pt, best.pt        checkpoints (best by validation RMSE of the full shape)
    history.csv, .json      the log (:mod:`~e2far_lite.train.logs`): averaged loss terms,
                            learning rate, validation errors

(``python -m e2far_lite train`` also draws ``loss_curves.png`` from the log.)

A call may be given a time budget (``train(..., time_budget_s=240)``): after that many seconds it
stops at the next step boundary, validates and saves as at the end, and says how far it got
(:attr:`TrainResult.steps_done` of ``config.steps``). The schedule is not shortened: the run
just stops part-way, and ``resume="auto"`` in the same ``out_dir`` continues it.

The file reads top to bottom: the pieces of one step (:func:`lr_at`, :func:`make_optimizer`,
:func:`train_step`), then :func:`train`, then the small helpers it calls.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..devices import cpu_has_fast_bf16, default_device
from ..errors import BadInput, MissingFile
from ..model.morphable_model import MorphableModel
from ..nets.network import E2FARNet
from ..paths import cache_dir as default_cache_dir
from ..synth.faces import SyntheticFaces, cached_split
from . import distributed
from .checkpoint import build_net, check_model, read_checkpoint, save_checkpoint, set_rng_state
from .configs import RESUMABLE_CHANGES, TrainConfig, config_differences, get_config
from .logs import TERMS, LossMeter, write_history
from .losses import MultiTaskLoss
from .validation import format_figures, mean_shape_baseline, validate, validation_split

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
    steps_done: int = 0  # optimizer steps the run has made (earlier calls' included)

    @property
    def steps_planned(self) -> int:
        """The steps the config asks for (``config.steps``)."""
        return self.config.steps

    @property
    def stopped_early(self) -> bool:
        """True when the time budget stopped the run before ``config.steps``."""
        return self.steps_done < self.config.steps


# ---------------------------------------------------------------------------- one step
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


def amp_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype when ``config.amp``: on CUDA bf16 where supported, else fp16; on a CPU
    bf16 where it multiplies bf16 natively (:func:`~e2far_lite.devices.cpu_has_fast_bf16`);
    otherwise None (float32)."""
    if not config.amp:
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_has_fast_bf16():
        return torch.bfloat16
    return None


def train_step(net: torch.nn.Module, loss_fn: MultiTaskLoss, optimizer: torch.optim.Optimizer,
               scaler: torch.amp.GradScaler, batch: dict[str, Tensor], config: TrainConfig,
               autocast: torch.dtype | None) -> dict[str, Tensor]:
    """One optimisation step on ``batch``: forward (mixed precision when ``autocast``), the
    loss in float32, backward, optional gradient clipping, optimizer step.

    Args:
        batch: B faces of :class:`~e2far_lite.synth.SyntheticFaces`: ``"image"``
            (B, 3, S, S) in [0, 1], ``"a_id"`` (B, K), ``"a_exp"`` (B, E), ``"landmarks"``
            (B, 68, 2) px, ...

    Returns:
        the loss terms of :class:`~e2far_lite.train.MultiTaskLoss`, scalar tensors (mm², or
        %² for the landmarks), not synchronised: no ``.item()``.
    """
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


# ---------------------------------------------------------------------------- the loop
def train(config: TrainConfig | str, out_dir: str | os.PathLike,
          device: torch.device | str | None = None,
          resume: str | os.PathLike | None = None, callback: Callback | None = None,
          progress: bool = True, cache_dir: str | os.PathLike | None = None,
          model: MorphableModel | None = None,
          time_budget_s: float | None = None) -> TrainResult:
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
        time_budget_s: stop once this many seconds of wall time have passed since the call
            began (set-up and validation included), at the end of the step then running, with
            a validation and ``last.pt`` as at the end; at least one step is made. ``None``: no
            limit. The learning rate schedule stays that of ``config.steps``; ``resume="auto"``
            continues the run (with a new budget).

    Returns:
        a :class:`TrainResult`.

    Raises:
        BadInput: named ``resume`` or ``init`` (``config.init``): that checkpoint is missing
            (a :class:`~e2far_lite.errors.MissingFile`), unreadable, or does not fit this run
            (a weights-only file to resume, another config, network or morphable model). Both
            are read once, before ``out_dir`` is created.
        RuntimeError: the loss became NaN or infinite; the message names the step, and
            ``last.pt`` still holds the last checkpoint written before it.
    """
    from tqdm.auto import tqdm

    started = time.perf_counter()
    cfg = _checked(config)
    if time_budget_s is not None and not 0 < time_budget_s < math.inf:
        raise ValueError(f"time_budget_s: expected seconds > 0 or None, got {time_budget_s!r}")
    deadline = None if time_budget_s is None else started + time_budget_s
    # several processes under torchrun (distributed.py); without torchrun nothing changes
    proc, device = distributed.init(torch.device(device) if device is not None
                                    else default_device())
    distributed.local_batch(cfg.batch_size, proc)  # a batch W does not divide: refused now
    progress = progress and proc.is_main
    cache_dir = cache_dir or default_cache_dir()
    paths = _output_paths(out_dir)
    payload = _resume_payload(resume, paths["last"], cfg)  # each file read once, here
    initial = _init_payload(cfg) if payload is None and cfg.init else None
    paths["last"].parent.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(cfg.seed)
    model = model if model is not None else MorphableModel.default()
    net, train_net = _network(payload, initial, model, cfg, proc, device)
    model = model.to(device)
    loss_fn = MultiTaskLoss(model, cfg.loss).to(device)
    optimizer = make_optimizer(net, cfg)
    autocast = amp_dtype(cfg, device)
    scaler = torch.amp.GradScaler(device.type, enabled=autocast == torch.float16)
    run = _Run(cfg, paths, net, model, autocast, progress)
    step = done = run.steps_done = run.restore(payload, optimizer, scaler)  # 0 if fresh
    if proc.is_main:  # rank 0 alone validates
        run.set_validation(validation_split(model, cfg, cache_dir, device=device))
    faces = SyntheticFaces(model, cfg.train_pool or cfg.steps * cfg.batch_size,
                           seed=cfg.train_seed, config=cfg.data, device=device)
    next_batch = _batches(faces, cfg, cache_dir, device, progress, proc)
    if step == 0 and proc.is_main:
        row: dict[str, float] = {"step": 0}
        run.validate(0, row)
        run.history.append(row)
        if callback is not None:
            callback(0, row)

    meter = LossMeter(device)
    bar = tqdm(range(step, cfg.steps), initial=step, total=cfg.steps, disable=not progress,
               desc="training", dynamic_ncols=True)
    for step in bar:
        done = step + 1  # steps finished after this one; logs and checkpoints count these
        lr = lr_at(step, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        terms = train_step(train_net, loss_fn, optimizer, scaler, next_batch(step), cfg,
                           autocast)
        meter.add(terms, done)
        out_of_time = _out_of_time(deadline, proc)  # the budget ends the run here
        is_last = done == cfg.steps or out_of_time
        is_val = done % cfg.val_every == 0 or is_last
        is_ckpt = done % cfg.ckpt_every == 0 or is_last
        if not (done % cfg.log_every == 0 or is_val or is_ckpt):
            continue
        _stop_if_not_finite(meter.reduce(proc), net, done, cfg, paths["last"])
        row = {"step": done, "lr": lr, **meter.take()}
        if proc.is_main:  # rank 0 logs and saves; the others wait in the next collective
            bar.set_postfix({k: f"{row[f'loss_{k}']:.3g}" for k in TERMS[:3]}
                            | {"lr": f"{lr:.2e}"})
            if is_val:
                run.validate(done, row)
            run.history.append(row)
            run.steps_done = done
            if is_ckpt:
                run.save_last(done, optimizer, scaler)
            if is_val or is_last:
                run.write_logs()
            if callback is not None:
                callback(done, row)
        if out_of_time and done < cfg.steps:
            _echo(progress, f"time budget of {time_budget_s:g} s used up: stopped after step "
                            f"{done} of {cfg.steps}; train again with resume='auto' to go on")
            break
    bar.close()
    run.steps_done = done
    if proc.is_main and not paths["csv"].is_file():
        run.write_logs()
    history, baseline = distributed.broadcast((run.history, run.baseline), proc)  # rank 0's
    distributed.close(proc)
    net.eval()
    final = [r for r in history if "val_total_mm" in r][-1]
    final = {k[len("val_"):]: v for k, v in final.items() if k.startswith("val_")}
    return TrainResult(net, model, cfg, history, baseline, final, paths,
                       time.perf_counter() - started, steps_done=done)


# ---------------------------------------------------------------------------- set-up
def _checked(config: TrainConfig | str) -> TrainConfig:
    """The config of a preset name, or ``config`` itself, checked for consistency."""
    cfg = get_config(config) if isinstance(config, str) else config
    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"config: expected a TrainConfig or a preset name, "
                        f"got {type(cfg).__name__}")
    cfg.check_consistent()
    return cfg


def _output_paths(out_dir: str | os.PathLike) -> dict[str, Path]:
    """The run's files in ``out_dir`` (not created here): ``last``, ``best``, ``csv``,
    ``json``."""
    out = Path(out_dir)
    return {"last": out / "last.pt", "best": out / "best.pt", "csv": out / "history.csv",
            "json": out / "history.json"}


def _read_for(argument: str, path: str | os.PathLike, advice: str = "") -> dict[str, Any]:
    """:func:`~e2far_lite.train.read_checkpoint`, its refusals named by :func:`train`'s own
    ``argument`` (``"resume"``, ``"init"``) instead of ``path``; ``advice`` follows the
    message for a missing file."""
    try:
        return read_checkpoint(path)
    except MissingFile:
        raise MissingFile(argument, "a checkpoint file",
                          f"{str(path)!r}, which does not exist{advice}") from None
    except BadInput as err:
        raise err.renamed(argument) from None


def _stored_config(argument: str, payload: dict[str, Any], name: str) -> TrainConfig:
    """The :class:`TrainConfig` a checkpoint was trained with, refused as ``argument``."""
    try:
        return TrainConfig.from_dict(payload["config"])
    except (TypeError, ValueError) as err:
        raise BadInput(argument, "a training config this version of e2far-lite reads",
                       f"{name!r}, refused: {err}") from None


def _resume_payload(resume: str | os.PathLike | None, last: Path,
                    config: TrainConfig) -> dict[str, Any] | None:
    """The training checkpoint to resume from (``None``: start afresh), checked against
    ``config``; refusals are named ``resume``."""
    if resume is None:
        return None
    if str(resume) == "auto":
        if not last.is_file():
            return None
        resume = last
    payload = _read_for("resume", resume)
    name = Path(resume).name
    if "train_state" not in payload:
        raise BadInput("resume", "a training checkpoint (with optimizer state)",
                       f"{name!r}, a weights-only file")
    differences = config_differences(_stored_config("resume", payload, name), config,
                                     ignore=RESUMABLE_CHANGES)
    if differences:
        listed = "(checkpoint vs now): " + "; ".join(differences)
        raise BadInput("resume", f"a checkpoint made with this config (only "
                                 f"{', '.join(RESUMABLE_CHANGES)} may differ)",
                       f"{str(resume)!r}, made with another config {listed}",
                       message=f"resume: checkpoint {str(resume)!r} was made with another "
                               f"config {listed}")
    return payload


def _init_payload(cfg: TrainConfig) -> dict[str, Any]:
    """The checkpoint of ``cfg.init`` (a training or exported one), refused as ``init`` when it
    is missing, unreadable, or holds another network than this config's."""
    payload = _read_for("init", cfg.init, advice=" (train the run that writes it first, or "
                        "start from another checkpoint, e.g. train --init data/e2far_lite.pt)")
    theirs = _stored_config("init", payload, Path(cfg.init).name)
    mine, stored = dataclasses.asdict(cfg.net), dataclasses.asdict(theirs.net)
    differences = [f"net.{k}: {stored[k]!r} vs {mine[k]!r}" for k in mine if stored[k] != mine[k]]
    if differences:
        raise BadInput("init", "the network of this config",
                       f"{cfg.init!r}, another (checkpoint vs now): " + "; ".join(differences))
    return payload


def _network(payload: dict[str, Any] | None, initial: dict[str, Any] | None,
             model: MorphableModel, cfg: TrainConfig, proc: distributed.Process,
             device: torch.device) -> tuple[E2FARNet, torch.nn.Module]:
    """``(net, train_net)`` on ``device`` in training mode: a fresh network (drawn from torch's
    RNG), or the weights of the checkpoint to resume (``payload``) or start from
    (``initial``). ``train_net`` is what the training forward calls: ``net`` itself, DDP
    around it with several processes, compiled when ``cfg.compile``."""
    if payload is not None:
        net = _stored_net("resume", payload, model, cfg, "resume checkpoint")
    elif initial is not None:
        net = _stored_net("init", initial, model, cfg, f"init checkpoint {cfg.init!r}")
    else:
        net = E2FARNet(model.num_id, model.num_exp, cfg.net)
    net = net.to(device).train()
    if cfg.channels_last:
        net = net.to(memory_format=torch.channels_last)
    # W > 1: BN synchronised over processes, DDP for the training forward; else train_net = net
    net, train_net = distributed.wrap(
        net, proc, device,
        find_unused_parameters=cfg.loss.landmark_weight == 0 and cfg.loss.pose_weight == 0)
    if cfg.compile:  # only the training forward: net, validated and saved, keeps its keys
        train_net = torch.compile(train_net)
    return net, train_net


def _stored_net(argument: str, payload: dict[str, Any], model: MorphableModel,
                cfg: TrainConfig, source: str) -> E2FARNet:
    """A network holding a checkpoint's weights, refused as ``argument`` (``"resume"``,
    ``"init"``) when it was trained for another morphable model or its weights do not fit."""
    try:
        check_model(payload["model"], model, source)
    except BadInput as err:  # the file was chosen for this run's model: the file is refused
        raise BadInput(argument, "a checkpoint trained for this run's morphable model",
                       f"one trained for {err.received}") from None
    return build_net(payload, model, cfg, source, argument=argument)


def training_batches(config: TrainConfig, model: MorphableModel,
                     device: torch.device | str = "cpu",
                     cache_dir: str | os.PathLike | None = None,
                     progress: bool = True) -> Callable[[int], dict[str, Tensor]]:
    """``next_batch(step)``: the batch :func:`train` trains on at ``step`` (0-based), for one
    process: rendered on the fly, or read from the cached pool of ``config.train_pool`` faces
    (rendered on the first call, as :func:`train` does; ``progress`` shows a bar meanwhile).

    Returns:
        a function of the step giving the batch: ``"image"`` (B, 3, S, S) in [0, 1],
        ``"a_id"`` (B, K), ``"a_exp"`` (B, E), ``"pose"`` (B, 6), ``"landmarks"`` (B, 68, 2)
        px, ``"visible"`` (B, 68), on ``device``.
    """
    device = torch.device(device)
    faces = SyntheticFaces(model, config.train_pool or config.steps * config.batch_size,
                           seed=config.train_seed, config=config.data, device=device)
    return _batches(faces, config, cache_dir or default_cache_dir(), device, progress,
                    distributed.Process())


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


# ---------------------------------------------------------------------------- logged steps
def _out_of_time(deadline: float | None, proc: distributed.Process) -> bool:
    """Whether the time budget is used up (``deadline``: a ``time.perf_counter()`` value, or
    None for no budget). With several processes, rank 0's clock decides for all of them."""
    if deadline is None:
        return False
    return bool(distributed.broadcast(time.perf_counter() >= deadline, proc))


def _stop_if_not_finite(first_bad: int, net: torch.nn.Module, done: int, cfg: TrainConfig,
                        last: Path) -> None:
    """Raise ``RuntimeError`` when a loss since the last logged step (``first_bad`` >= 0: its
    step), or a weight after step ``done``, is NaN or infinite."""
    if first_bad >= 0:
        raise RuntimeError(
            f"non-finite loss at step {first_bad} (its batch: items from "
            f"{(first_bad - 1) * cfg.batch_size} on, seed {cfg.train_seed}); training stopped, "
            f"{last} holds the last checkpoint written before it")
    # a finite loss can still give an infinite update
    if not bool(torch.stack([torch.isfinite(p).all() for p in net.parameters()]).all()):
        raise RuntimeError(f"non-finite weights after step {done}; training stopped, {last} "
                           "holds the last checkpoint written before it")


def _echo(progress: bool, text: str) -> None:
    if progress:
        from tqdm.auto import tqdm

        tqdm.write(text)


@dataclass
class _Run:
    """What rank 0 keeps of a run and writes: the log rows, the best validation error, the
    validation split and its mean-shape baseline; checkpoints and log files."""

    config: TrainConfig
    paths: dict[str, Path]  # from _output_paths
    net: E2FARNet  # the network itself (not DDP): validated and saved
    model: MorphableModel
    autocast: torch.dtype | None
    progress: bool
    history: list[dict[str, float]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=lambda: {"best_total_mm": math.inf})
    split: dict[str, Tensor] = field(default_factory=dict)  # the validation faces
    baseline: dict[str, float] = field(default_factory=dict)  # their mean-shape errors, mm
    steps_done: int = 0  # the last step logged

    def restore(self, payload: dict[str, Any] | None, optimizer: torch.optim.Optimizer,
                scaler: torch.amp.GradScaler) -> int:
        """Continue a checkpoint's run: its optimizer, scaler and RNG states, log and best
        error. Returns the steps it had done (0 without a checkpoint)."""
        if payload is None:
            return 0
        state = payload["train_state"]
        optimizer.load_state_dict(state["optimizer"])
        if state["scaler"]:
            scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        self.history, self.extra = list(payload["history"]), dict(payload["extra"])
        _echo(self.progress, f"resumed from step {payload['step']}")
        return payload["step"]

    def set_validation(self, split: dict[str, Tensor]) -> None:
        """Keep the validation faces and print the mean shape's errors on them."""
        self.split, self.baseline = split, mean_shape_baseline(self.model, split)
        self.extra["baseline"] = self.baseline
        cfg = self.config
        _echo(self.progress, f"validation: {cfg.val_size} faces (seed {cfg.val_seed}); "
                             "mean-shape baseline "
                             + format_figures(self.baseline).replace("vertex ", ""))

    def validate(self, done: int, row: dict[str, float]) -> None:
        """Add ``val_<figure>`` to ``row``; a new best total error writes ``best.pt``."""
        figures = validate(self.net, self.model, self.split, autocast=self.autocast,
                           channels_last=self.config.channels_last)
        row.update({f"val_{k}": v for k, v in figures.items()})
        if figures["total_mm"] < self.extra["best_total_mm"]:
            self.extra["best_total_mm"] = figures["total_mm"]
            save_checkpoint(self.paths["best"], self.net, self.model, self.config, step=done,
                            history=self.history, extra=self.extra)
        _echo(self.progress, f"step {done:>6}: " + format_figures(figures, self.baseline))

    def save_last(self, done: int, optimizer: torch.optim.Optimizer,
                  scaler: torch.amp.GradScaler) -> None:
        """Write ``last.pt``, a training checkpoint that resumes exactly."""
        save_checkpoint(self.paths["last"], self.net, self.model, self.config, step=done,
                        optimizer=optimizer, scaler=scaler, history=self.history,
                        extra=self.extra)

    def write_logs(self) -> None:
        """Write ``history.csv`` and ``history.json`` (with the steps done and planned)."""
        write_history(self.history, self.paths["csv"].parent,
                      {"config": self.config.to_dict(), "baseline": self.baseline,
                       "steps_done": self.steps_done, "steps_planned": self.config.steps})


__all__ = ["train", "TrainResult", "lr_at", "make_optimizer", "amp_dtype", "train_step",
           "training_batches"]
