"""Validation during training: the fixed split, the network's errors on it, the mean-shape baseline.

Figures, in mm, are means over faces of per-face vertex RMSE
(:func:`~e2far_lite.model.shape_errors`): ``total`` (full shape, rigidly aligned), ``neutral``
(identity only, aligned) and ``expression`` (offsets from the neutral face, not aligned), plus
their similarity-aligned variants; the landmark NME (%, :func:`~e2far_lite.model.landmark_nme`)
scores the predicted pose and shape projected into the image. The mean-shape baseline predicts
``a_id = a_exp = 0`` for every face.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import torch
from torch import Tensor

from ..model.metrics import SHAPE_FIGURES, landmark_nme, shape_errors
from ..model.morphable_model import MorphableModel
from ..model.regions import vertex_regions
from ..nets.network import E2FARNet
from ..render.camera import weak_perspective_project
from ..synth.faces import face_split
from .configs import TrainConfig


def validation_split(model: MorphableModel, config: TrainConfig, cache_dir: str | os.PathLike,
                     device: torch.device | str | None = None) -> dict[str, Tensor]:
    """The run's validation faces (CPU tensors, cached in ``cache_dir``): ``config.val_size``
    faces of :func:`~e2far_lite.synth.face_split` with ``config.val_seed`` and
    ``config.validation_data``.

    Returns:
        the batch dict of N = ``config.val_size`` faces: ``"image"`` (N, 3, S, S) in [0, 1],
        ``"a_id"`` (N, K), ``"a_exp"`` (N, E), ``"landmarks"`` (N, 68, 2) in pixels, ...
    """
    return face_split(model, config.validation_data, config.val_size, config.val_seed,
                      cache_dir, device)


def _chunks(split: dict[str, Tensor], batch_size: int,
            device: torch.device) -> Iterator[dict[str, Tensor]]:
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

    Args:
        net: the network (its mode is restored afterwards).
        model: the morphable model of its coefficients.
        split: N faces: ``"image"`` (N, 3, S, S), ``"a_id"`` (N, K), ``"a_exp"`` (N, E),
            ``"landmarks"`` (N, 68, 2) px, ``"visible"`` (N, 68).
        batch_size: faces per forward pass.
        autocast: the mixed-precision dtype of training (:func:`~e2far_lite.train.amp_dtype`).
        channels_last: feed the images in channels-last memory format.

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
    """Errors of predicting the mean face (``a_id = a_exp = 0``) for every face of ``split``
    (``"a_id"`` (N, K), ``"a_exp"`` (N, E)): the shape figures of :func:`validate`, in mm."""
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


__all__ = ["validation_split", "validate", "mean_shape_baseline", "format_figures"]
