"""Scoring a network against the two baselines every figure needs, on the same faces.

:func:`evaluate_net` renders a fixed set of test faces (``TEST_SEED``: never trained or tuned
on) and scores three ways of getting their shape:

- ``network``: the network's prediction from the image;
- ``mean_shape``: the mean face (all coefficients 0), placed with the true pose;
- ``fit_true_landmarks``: iterative fitting of the model to the *true* 2D landmarks, the best
  case of the method family UH-E2FAR compares against (its detector makes no error).

Each gets the shape figures of :data:`~e2far_lite.model.SHAPE_FIGURES` in mm (``total_mm`` and
``neutral_mm`` after a rigid alignment, ``total_sim_mm`` and ``neutral_sim_mm`` after a
similarity alignment, which forgives the face's absolute size, ``expression_mm`` on the
expression offsets), the landmark NME in %, and the total error by face region. Expression
errors are also binned by how far the expression moves the face in the image, in pixels
(:func:`expression_pixels`): an expression that moves half a pixel cannot be read.
"""

from __future__ import annotations

import copy
import math
import os
from typing import Any

import torch
from torch import Tensor

from ..model.metrics import SHAPE_FIGURES, landmark_nme, shape_errors
from ..model.morphable_model import MorphableModel
from ..model.regions import REGION_NAMES, vertex_regions
from ..render.camera import weak_perspective_project
from ..synth.faces import DataConfig, face_split
from .fitting import FitConfig, fit_landmarks

#: The test split's seed: never used for training or for choosing a model or setting.
TEST_SEED = 20170721
#: Bin edges of the expression's image motion, in pixels (RMS over vertices).
PIXEL_BINS = (0.0, 0.5, 1.0, 2.0, 4.0, math.inf)
METHODS = ("network", "mean_shape", "fit_true_landmarks")


def held_out_faces(model: MorphableModel, data: DataConfig, n: int = 256, seed: int = TEST_SEED,
                   cache_dir: str | os.PathLike | None = None,
                   device: torch.device | str = "cpu") -> dict[str, Tensor]:
    """The test faces: :func:`~e2far_lite.synth.face_split` with the test seed (CPU tensors,
    cached in ``cache_dir`` when given). Nothing is trained or tuned on this seed."""
    return face_split(model, data, n, seed, cache_dir, device)


@torch.no_grad()
def expression_pixels(model: MorphableModel, split: dict[str, Tensor]) -> Tensor:
    """How far each face's expression moves it in the image: (B,) RMS over vertices of the
    2D displacement between the face with and without its expression, projected with its
    true pose, in pixels."""
    a_id, a_exp, pose = (split[k].float() for k in ("a_id", "a_exp", "pose"))
    neutral = model.neutral(a_id)
    moved = weak_perspective_project(neutral + model.expression_offset(a_exp), pose)
    still = weak_perspective_project(neutral, pose)
    return (moved - still).pow(2).sum(-1).mean(-1).sqrt()


def _per_face(model: MorphableModel, pred: dict[str, Tensor], split: dict[str, Tensor],
              labels: Tensor) -> dict[str, Tensor]:
    errors = shape_errors(model, pred, split, labels)
    points = model.landmark_points(pred["a_id"], pred["a_exp"])
    errors["nme"] = landmark_nme(weak_perspective_project(points, pred["pose"]),
                                 split["landmarks"], split["visible"])
    return errors


def _figures(errors: dict[str, Tensor]) -> dict[str, Any]:
    out: dict[str, Any] = {f"{k}_mm": float(errors[k].mean()) for k in SHAPE_FIGURES}
    out["nme_pct"] = 100 * float(errors["nme"].nanmean())
    out["regions_mm"] = {r: float(errors[f"region/{r}"].nanmean()) for r in REGION_NAMES}
    return out


@torch.no_grad()
def predict(net: torch.nn.Module, images: Tensor, batch_size: int = 128) -> dict[str, Tensor]:
    """The network's ``a_id``, ``a_exp`` and ``pose`` for (N, 3, S, S) images, in float32 on the
    CPU, computed in eval mode in chunks (the net is left in the mode it came in)."""
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    try:
        outs = [net(images[s:s + batch_size].to(device)) for s in range(0, len(images),
                                                                         batch_size)]
    finally:
        net.train(was_training)
    return {k: torch.cat([o[k].float().cpu() for o in outs]) for k in ("a_id", "a_exp", "pose")}


def evaluate_net(net: torch.nn.Module, model: MorphableModel, data: DataConfig,
                 n: int = 256, seed: int = TEST_SEED, fit: bool = True,
                 cache_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Score ``net``, the mean shape and (when ``fit``) perfect-landmark fitting on ``n`` faces.

    Args:
        net: an :class:`~e2far_lite.nets.E2FARNet` whose input size is ``data.image_size``.
        model: the morphable model the network predicts coefficients of.
        data: how the test faces are drawn (``DataConfig(image_size=S)`` is the full
            distribution).
        n: number of test faces.
        seed: their seed (default :data:`TEST_SEED`).
        fit: also run the fitting baseline (about 40 ms per face on one CPU thread).
        cache_dir: cache the rendered faces there (default: render every time).

    Returns:
        ``{"faces", "seed", "image_size", "network", "mean_shape", "fit_true_landmarks",
        "expression_by_pixels", "paired"}`` (``fit_true_landmarks`` only when ``fit``); each
        method holds the figures listed in the module docstring; ``expression_by_pixels``
        holds the bin edges (px, None for no upper edge), the number of faces per bin, each
        method's mean expression RMSE per bin (mm, None for an empty bin) and ``median_px``,
        the median motion; ``paired["network_vs_<method>"]["<figure>_mm"]`` is the mean
        per-face difference network - method and its 95% interval half-width (mm): the same
        faces for both, so the interval is much tighter than the two spreads.
    """
    if model.mean.device.type != "cpu":  # a CPU copy: the caller's model stays where it is
        model = copy.deepcopy(model).cpu()
    split = held_out_faces(model, data, n, seed, cache_dir)
    labels = vertex_regions(model)
    preds = {"network": predict(net, split["image"])}
    zero_id, zero_exp = torch.zeros_like(split["a_id"]), torch.zeros_like(split["a_exp"])
    preds["mean_shape"] = {"a_id": zero_id, "a_exp": zero_exp, "pose": split["pose"]}
    if fit:
        fitted = fit_landmarks(model, split["landmarks"], split["visible"], FitConfig())
        preds["fit_true_landmarks"] = {k: fitted[k].float() for k in ("a_id", "a_exp", "pose")}
    errors = {name: _per_face(model, pred, split, labels) for name, pred in preds.items()}
    pixels = expression_pixels(model, split)
    which = torch.bucketize(pixels, torch.tensor(PIXEL_BINS[1:-1]), right=True)
    bins: dict[str, Any] = {"edges_px": [e if math.isfinite(e) else None for e in PIXEL_BINS],
                            "faces": [int((which == b).sum()) for b in range(len(PIXEL_BINS) - 1)]}
    for name, err in errors.items():
        bins[name] = [float(err["expression"][which == b].mean()) if (which == b).any()
                      else None for b in range(len(PIXEL_BINS) - 1)]
    bins["median_px"] = float(pixels.median())
    paired = {f"network_vs_{name}": _paired(errors["network"], err)
              for name, err in errors.items() if name != "network"}
    return {"faces": n, "seed": seed, "image_size": data.image_size,
            **{name: _figures(err) for name, err in errors.items()},
            "expression_by_pixels": bins, "paired": paired}


def _paired(a: dict[str, Tensor], b: dict[str, Tensor]) -> dict[str, list[float]]:
    """Mean per-face difference a - b and its 95% interval half-width (normal approximation
    over faces), for each shape figure, in mm."""
    out = {}
    for key in SHAPE_FIGURES:
        diff = (a[key] - b[key]).double()
        half = 1.96 * float(diff.std()) / math.sqrt(len(diff)) if len(diff) > 1 else math.nan
        out[f"{key}_mm"] = [float(diff.mean()), half]
    return out


def ratios(result: dict[str, Any], method: str = "network",
           baseline: str = "mean_shape") -> dict[str, float]:
    """``method``'s figures divided by ``baseline``'s (0.5 = half the error)."""
    a, b = result[method], result[baseline]
    return {k: a[k] / b[k] for k in (*(f"{s}_mm" for s in SHAPE_FIGURES), "nme_pct")}


def format_result(result: dict[str, Any]) -> str:
    """A small plain-text table of :func:`evaluate_net`'s figures, one row per method."""
    head = ("method", "total", "total sim", "neutral", "neutral sim", "expression", "NME %")
    rows = [f"{head[0]:<20}" + "".join(f"{h:>12}" for h in head[1:])]
    for name in METHODS:
        if name not in result:
            continue
        f = result[name]
        cells = [f[f"{k}_mm"] for k in ("total", "total_sim", "neutral", "neutral_sim",
                                         "expression")] + [f["nme_pct"]]
        rows.append(f"{name:<20}" + "".join(f"{c:>12.3f}" for c in cells))
    bins = result["expression_by_pixels"]
    edges = bins["edges_px"]
    rows.append("expression RMSE (mm) by how far the expression moves the face in the image:")
    for b, count in enumerate(bins["faces"]):
        label = f"{edges[b]:g}-{edges[b + 1]:g} px" if edges[b + 1] else f">= {edges[b]:g} px"
        cells = "  ".join(f"{m} {bins[m][b]:.2f}" if bins[m][b] is not None else f"{m} -"
                          for m in METHODS if m in bins)
        rows.append(f"  {label:<10} {count:>4} faces  {cells}")
    return "\n".join(rows)


__all__ = ["evaluate_net", "held_out_faces", "expression_pixels", "predict", "ratios",
           "format_result", "TEST_SEED", "PIXEL_BINS", "METHODS"]
