"""Training configurations: one dataclass, and the named presets in one place.

A :class:`TrainConfig` holds the architecture (:class:`~e2far_lite.nets.NetConfig`), the loss
weights (:class:`~e2far_lite.train.LossConfig`), how synthetic faces are drawn
(:class:`~e2far_lite.synth.DataConfig`) and the optimisation settings. The input size lives in
one field, ``image_size``, and is copied into the three sub-configs on construction, so they
can never disagree; likewise ``loss.multi_task`` follows ``net.multi_task``.

Presets (``get_config(name, **overrides)``); "easy" data means near-frontal heads (yaw within
30 degrees) on a black background, "full" the DataConfig defaults (yaw to 75 degrees, clutter):

=============  ======  ====================  =====  =====  ==========  ============================
name           pixels  backbone widths       steps  batch  data        meant for
=============  ======  ====================  =====  =====  ==========  ============================
``smoke``      64      4, 8, 16, 32, 64      60     8      easy        CI, ``E2FAR_SMOKE=1`` (secs)
``cpu-quick``  64      8, 16, 32, 64, 128    3600   32     easy, pool  a 2-core CPU, ~3 minutes
``cpu-full``   96      16, 32, 64, 128, 256  36000  32     full        the previous 1st stage, bf16
``cpu-night``  96      as ``cpu-full``       80000  32     full        shipped net, 1st stage, bf16
``cpu-real``   96      as ``cpu-full``       9000   32     full, real  its 2nd stage, from cpu-night
``cpu-2h``     96      as ``cpu-full``       24000  32     full, real  one run, 80 min, bf16
``default``    128     16, 32, 64, 128, 256  10000  64     full        a GPU, float32
``gpu``        128     16, 32, 64, 128, 256  20000  128    full        a GPU, mixed precision
=============  ======  ====================  =====  =====  ==========  ============================

"Real" is the full distribution with the five realism levers of :mod:`~e2far_lite.synth.realism`
that the realism study chose (eyebrows and lips, eyeballs, a head around the face, occluders,
JPEG); "bf16": bfloat16 autocast (``amp``) where the device has it (CUDA, or a CPU with
AVX512-BF16 or AMX: :func:`~e2far_lite.devices.cpu_has_fast_bf16`), float32 elsewhere. The last
five share one backbone (:data:`_LITE`: one conv in blocks 1 and 2, two in 3-5).
``cpu-quick`` renders a pool of 12288 training faces once (cached in ``data/cache``) and cycles
through it: on a CPU rendering a face costs more than a training step on it. The two GPU
presets have not been timed on a GPU: ``python -m e2far_lite benchmark --speed`` measures them
(and the renderer) on yours.

Configs turn into plain dicts (:meth:`TrainConfig.to_dict`, for checkpoints and JSON logs) and
back (:meth:`TrainConfig.from_dict`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from ..checks import check_positive_int
from ..nets.backbone import BackboneConfig
from ..nets.fusion import FusionConfig
from ..nets.network import NetConfig
from ..synth.faces import DataConfig
from .losses import LossConfig

#: Fields that may differ between a checkpoint and the config resuming it: bookkeeping only.
RESUMABLE_CHANGES = ("steps", "val_every", "ckpt_every", "log_every")


@dataclass
class TrainConfig:
    """Everything a training run depends on; :func:`~e2far_lite.train.train` takes one."""

    net: NetConfig = field(default_factory=NetConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    image_size: int = 128  # S in px; copied into net, loss and data (the one place it is set)
    # optimisation
    steps: int = 10_000  # optimizer steps (one batch each)
    batch_size: int = 64  # B, faces per step
    lr: float = 1e-3  # peak AdamW learning rate
    weight_decay: float = 1e-4  # AdamW decay, on weight matrices and kernels only
    warmup_steps: int = 200  # linear warm-up from lr / warmup_steps to lr
    min_lr_ratio: float = 0.05  # cosine decay from lr to min_lr_ratio * lr at the last step
    grad_clip: float = 0.0  # clip the global gradient norm to this (0 = no clipping)
    # data: training item i of step s is SyntheticFaces(seed=train_seed)[s * batch_size + i],
    # or, with a pool, item (s * batch_size + i) % train_pool of it (rendered once and cached)
    train_seed: int = 1
    train_pool: int = 0  # 0: a new face every time; N: cycle through the first N faces
    val_seed: int = 2  # validation split: items 0 .. val_size-1 of SyntheticFaces(seed=val_seed)
    val_data: DataConfig | None = None  # the validation faces' distribution (None: like data)
    val_size: int = 256  # faces in the fixed validation split
    seed: int = 0  # torch.manual_seed before the network is built (initial weights)
    init: str = ""  # start from this checkpoint's weights ("" = random); optimizer, schedule anew
    # bookkeeping
    log_every: int = 50  # average the loss terms over this many steps for the log and bar
    val_every: int = 500  # validate every this many steps (and at step 0 and the end)
    ckpt_every: int = 500  # write last.pt every this many steps (and at the end)
    # speed
    amp: bool = False  # mixed precision: bf16 on CUDA or a CPU with native bf16, fp16 on old GPUs
    channels_last: bool = False  # NHWC memory layout for convolutions (faster on tensor cores)
    compile: bool = False  # torch.compile the training forward (compiles during the first steps)

    def __post_init__(self) -> None:
        for name in ("image_size", "steps", "batch_size", "val_size", "log_every", "val_every",
                     "ckpt_every"):
            setattr(self, name, check_positive_int(getattr(self, name), name))
        if isinstance(self.train_pool, bool) or not isinstance(self.train_pool, int) \
                or self.train_pool < 0:
            raise ValueError(f"train_pool: expected an integer >= 0, got {self.train_pool!r}")
        if isinstance(self.warmup_steps, bool) or not isinstance(self.warmup_steps, int) \
                or self.warmup_steps < 0:
            raise ValueError(f"warmup_steps: expected an integer >= 0, got {self.warmup_steps!r}")
        if not self.lr > 0:
            raise ValueError(f"lr: expected > 0, got {self.lr!r}")
        for name in ("weight_decay", "grad_clip"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name}: expected >= 0, got {getattr(self, name)!r}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"min_lr_ratio: expected a number in [0, 1], "
                             f"got {self.min_lr_ratio!r}")
        # copies, so that presets never share (and mutate) one sub-config object
        size = self.image_size
        self.net = dataclasses.replace(self.net, image_size=size)
        self.loss = dataclasses.replace(self.loss, image_size=size,
                                        multi_task=self.net.multi_task)
        self.data = dataclasses.replace(self.data, image_size=size)
        if self.val_data is not None:
            self.val_data = dataclasses.replace(self.val_data, image_size=size)

    @property
    def validation_data(self) -> DataConfig:
        """How the validation split is drawn: ``val_data``, or the training ``data``."""
        return self.data if self.val_data is None else self.val_data

    def check_consistent(self) -> None:
        """Raise ``ValueError`` if a sub-config was edited after construction to disagree."""
        sizes = [("net.image_size", self.net.image_size),
                 ("loss.image_size", self.loss.image_size),
                 ("data.image_size", self.data.image_size)]
        if self.val_data is not None:
            sizes.append(("val_data.image_size", self.val_data.image_size))
        for name, value in sizes:
            if value != self.image_size:
                raise ValueError(f"{name}: expected {self.image_size} like image_size, got "
                                 f"{value}; change image_size instead (dataclasses.replace or "
                                 "get_config(..., image_size=...))")
        if self.loss.multi_task != self.net.multi_task:
            raise ValueError(f"loss.multi_task: expected {self.net.multi_task} like "
                             f"net.multi_task, got {self.loss.multi_task}")

    def to_dict(self) -> dict[str, Any]:
        """Nested plain dict (tuples kept; ``json.dumps`` writes them as lists)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; also takes JSON (lists for tuples). Missing keys take
        their defaults; unknown keys raise ``ValueError``."""
        return _from_dict(cls, values, "config")


def _from_dict(cls: type, values: Any, where: str) -> Any:
    if not isinstance(values, dict):
        raise ValueError(f"{where}: expected a dict for {cls.__name__}, "
                         f"got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown} for {cls.__name__}")
    kwargs = {}
    for name, value in values.items():
        kind = hints[name]
        if isinstance(value, dict) and typing.get_origin(kind) in (typing.Union, types.UnionType):
            kind = next((k for k in typing.get_args(kind) if dataclasses.is_dataclass(k)), kind)
            if not dataclasses.is_dataclass(kind):
                raise ValueError(f"{where}.{name}: expected {kind}, got a dict")
        if dataclasses.is_dataclass(kind):
            value = _from_dict(kind, value, f"{where}.{name}")
        elif isinstance(value, list):  # every sequence field of these configs is a tuple
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def config_differences(a: TrainConfig, b: TrainConfig, ignore: tuple[str, ...] = ()) -> list[str]:
    """Lines ``"net.backbone.widths: (8, ...) vs (16, ...)"`` for every field that differs.

    Args:
        a, b: the configs to compare.
        ignore: top-level field names to skip (e.g. :data:`RESUMABLE_CHANGES`).
    """
    out: list[str] = []

    def walk(x: Any, y: Any, prefix: str) -> None:
        if isinstance(x, dict) and isinstance(y, dict):
            for key in sorted(set(x) | set(y)):
                if not prefix and key in ignore:
                    continue
                walk(x.get(key), y.get(key), f"{prefix}{key}" if not prefix
                     else f"{prefix}.{key}")
        elif x != y:
            out.append(f"{prefix}: {x!r} vs {y!r}")

    walk(a.to_dict(), b.to_dict(), "")
    return out


# ------------------------------------------------------------------------------------- presets
# The presets' backbone: blocks 1-2 have one conv each. Their maps are large and thin (16 and
# 32 channels at 1/1 and 1/2 of the input), where a second 3x3 conv cost about a quarter of
# the multiply-adds and of the batch-1 latency (docs/results.md, Speed), for little.
_LITE = BackboneConfig(widths=(16, 32, 64, 128, 256), convs_per_block=(1, 1, 2, 2, 2))
# Near-frontal heads on a black background: the quick presets learn identity within minutes on
# this distribution, while the full one (turns to 75 degrees, cluttered backgrounds) first spends
# thousands of steps finding the face. Validation uses the same distribution as training.
_EASY = DataConfig(yaw_max=30.0, pitch_max=15.0, roll_max=10.0, augment=0.5, backgrounds=False)
# The full distribution with the realism levers the realism study chose (notebook 10), leaving
# out the two that made real faces worse there (low resolution, colour casts). Each touches
# half the faces: trained on them all, the float32 network shipped two before this one forgot
# how to read a plain render (its landmark NME on plain validation faces rose from 2.1 % to
# 3.2 % in 2000 steps).
_REAL = DataConfig(features=0.5, interior=0.5, head=0.5, occluder=0.3, jpeg=0.5)

PRESETS: dict[str, TrainConfig] = {
    # seconds on a CPU: proves the pipeline runs and the errors fall; numbers mean little
    "smoke": TrainConfig(
        net=NetConfig(backbone=BackboneConfig(widths=(4, 8, 16, 32, 64)),
                      fusion=FusionConfig(width=16, hidden=32),
                      id_hidden=64, exp_hidden=32, pose_hidden=32),
        # no single strong blend shapes: smoke runs check the pipeline, not expressions (with
        # them its first AdamW steps hang on the last bits of the gradients: test_distributed)
        loss=LossConfig(landmark_weight=3.0), data=dataclasses.replace(_EASY, strong_share=0.0),
        image_size=64, steps=60, batch_size=8, lr=2e-3, warmup_steps=5,
        val_size=32, log_every=5, val_every=30, ckpt_every=30),
    # minutes on a 2-core CPU, pool rendering included (notebook 05 trains it): total vertex
    # RMSE about a fifth below the mean shape's on its easy validation faces (docs/training.md)
    "cpu-quick": TrainConfig(
        net=NetConfig(backbone=BackboneConfig(widths=(8, 16, 32, 64, 128)),
                      fusion=FusionConfig(width=64, hidden=128),
                      id_hidden=256, exp_hidden=128, pose_hidden=64),
        loss=LossConfig(landmark_weight=3.0), data=_EASY,
        image_size=64, steps=3600, batch_size=32, lr=2e-3, warmup_steps=100, train_pool=12288,
        val_size=256, log_every=25, val_every=600, ckpt_every=600),
    # the previous shipped checkpoint's first stage: the full distribution at 96 px, fresh
    # faces, bf16 autocast where the CPU has it: 1,152,000 faces in 73 min on two threads of a
    # 2-core Xeon (the studies built on it train in float32: studies.recipe, studies.realism)
    "cpu-full": TrainConfig(
        net=NetConfig(backbone=_LITE),
        loss=LossConfig(landmark_weight=3.0),
        image_size=96, steps=36_000, batch_size=32, lr=2e-3, warmup_steps=300,
        val_size=256, log_every=50, val_every=500, ckpt_every=500, channels_last=True,
        amp=True),
    # cpu-full, longer: the shipped checkpoint's first stage (data/make_checkpoint.py),
    # 2,560,000 faces under one cosine schedule, chosen where cpu-full's fitted learning curve
    # (analysis.faces_for_goals) put the landmark goal and near the expression goal; the run
    # fell short of both (experiments/curve_prediction.json). 224 min on two threads of a
    # 2-core AMX Xeon under bf16; about 6.3 h on two float32 threads of a 2-core AMD EPYC
    "cpu-night": TrainConfig(
        net=NetConfig(backbone=_LITE),
        loss=LossConfig(landmark_weight=3.0),
        image_size=96, steps=80_000, batch_size=32, lr=2e-3, warmup_steps=300,
        val_size=256, log_every=50, val_every=1000, ckpt_every=500, channels_last=True,
        amp=True),
    # the shipped checkpoint's second stage: cpu-night's best weights trained on with the
    # realism levers of the realism study (experiments/realism_study.json), validated on the
    # plain full distribution like cpu-night: 288,000 faces in 21 min on the same two threads
    "cpu-real": TrainConfig(
        net=NetConfig(backbone=_LITE),
        loss=LossConfig(landmark_weight=3.0), data=_REAL, val_data=DataConfig(),
        image_size=96, steps=9000, batch_size=32, lr=1e-3, warmup_steps=300,
        train_seed=11, init="runs/cpu-night/best.pt",
        val_size=256, log_every=50, val_every=500, ckpt_every=500, channels_last=True,
        amp=True),
    # the shipped network's design in one run: cpu-real's data from the first step (the realism
    # levers on half the faces, validated on plain ones), bf16 autocast where the CPU multiplies
    # bf16 natively (1.5x faster training on an AMX Xeon; float32 elsewhere): 768,000 faces in
    # 80 min on two threads of a 2-core Xeon. Measured against two stages (docs/training.md):
    # worse than the float32 ones before them (2.95 against 2.85 mm) and the bf16 ones after
    # (2.65 mm), since realism from the first step slows learning the face
    "cpu-2h": TrainConfig(
        net=NetConfig(backbone=_LITE),
        loss=LossConfig(landmark_weight=3.0), data=_REAL, val_data=DataConfig(),
        image_size=96, steps=24_000, batch_size=32, lr=2e-3, warmup_steps=300, train_seed=21,
        val_size=256, log_every=50, val_every=1000, ckpt_every=500, channels_last=True,
        amp=True),
    # the lite model as designed, on the full data distribution at 128 px, for a GPU (640,000
    # faces)
    "default": TrainConfig(
        net=NetConfig(backbone=_LITE),
        image_size=128, steps=10_000, batch_size=64, lr=1e-3, warmup_steps=300,
        val_size=512, log_every=50, val_every=1000, ckpt_every=1000),
    # the same model, more faces per step and mixed precision (2,560,000 faces)
    "gpu": TrainConfig(
        net=NetConfig(backbone=_LITE),
        image_size=128, steps=20_000, batch_size=128, lr=1.5e-3, warmup_steps=500,
        val_size=1024, log_every=100, val_every=2000, ckpt_every=2000,
        amp=True, channels_last=True),
}


def get_config(name: str, **overrides: Any) -> TrainConfig:
    """A fresh copy of preset ``name`` with top-level fields replaced.

    Examples:
        >>> cfg = get_config("smoke", steps=10)
        >>> cfg.steps, cfg.net.image_size == cfg.data.image_size == cfg.image_size
        (10, True)
    """
    if name not in PRESETS:
        raise ValueError(f"name: expected one of {sorted(PRESETS)}, got {name!r}")
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(TrainConfig)})
    if unknown:
        raise ValueError(f"overrides: unknown TrainConfig fields {unknown}")
    plain = {k: dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v
             for k, v in overrides.items()}
    return TrainConfig.from_dict({**PRESETS[name].to_dict(), **plain})


__all__ = ["TrainConfig", "PRESETS", "get_config", "config_differences", "RESUMABLE_CHANGES"]
