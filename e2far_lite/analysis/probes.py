"""Where in depth are expression and identity linearly readable? Ridge probes per layer.

:func:`linear_probes` fits, for each layer pool1 .. pool5, a closed-form ridge regression from
the layer's average-pooled features (:func:`pooled_features`) to the true ``a_exp`` and
``a_id`` of synthetic faces, and scores it on held-out faces (:func:`probe_r2`). R² is
measured in vertex space through the vertex loss's Gram matrices
(:func:`~e2far_lite.train.gram_matrix`): the share of the shapes' variance in mm² the probe
explains. :func:`best_layer` picks the layer that reads a target best.

Letters: N faces, D features, T target columns, C channels, S the input size, K identity and
E expression coefficients. Features are computed in eval mode; the network's mode is put back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..checks import check_positive_int, check_shape, check_tensor
from ..model.morphable_model import MorphableModel
from ..nets.backbone import TAP_NAMES
from ..nets.network import E2FARNet
from ..synth.faces import SyntheticFaces
from ..train.losses import gram_matrix
from .inputs import (
    _device,
    check_batch,
    check_images,
    check_layer,
    check_model,
    check_net,
    evaluating,
)
from .targets import TARGETS

#: Ridge penalties the probes choose from (per sample, on standardised features).
RIDGES = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)


def pooled_features(net: E2FARNet, images: Tensor, layers: Sequence[str] = TAP_NAMES,
                    grid: int = 2, batch_size: int = 64) -> dict[str, Tensor]:
    """Each layer's map average-pooled to a small ``grid`` x ``grid``: the probes' inputs.

    Args:
        net: the network.
        images: (B, 3, S, S) RGB in [0, 1].
        layers: which taps.
        grid: cells per side after pooling (1 = global average pooling).
        batch_size: images per forward pass.

    Returns:
        ``{layer: (B, C * grid²)}`` on the CPU, float32.
    """
    check_net(net)
    images = check_images(images, net)
    check_positive_int(grid, "grid")
    device = _device(net)
    parts: dict[str, list[Tensor]] = {layer: [] for layer in layers}
    with evaluating(net), torch.no_grad():
        for start in range(0, images.shape[0], batch_size):
            features = net.backbone(images[start:start + batch_size].to(device))
            for layer in layers:
                pooled = F.adaptive_avg_pool2d(features[layer], grid)
                parts[layer].append(pooled.flatten(1).float().cpu())
    return {layer: torch.cat(chunks) for layer, chunks in parts.items()}


def _ridge_fit(x: Tensor, y: Tensor, ridge: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Standardise x, centre y, solve ``(XᵀX + ridge n I) W = Xᵀ y``; all float64."""
    mean, std = x.mean(0), x.std(0, unbiased=False).clamp(min=1e-8)
    xs = (x - mean) / std
    y_mean = y.mean(0)
    n, d = xs.shape
    lhs = xs.T @ xs + ridge * n * torch.eye(d, dtype=x.dtype)
    weights = torch.linalg.solve(lhs, xs.T @ (y - y_mean))
    return mean, std, weights, y_mean


def _r2(pred: Tensor, y: Tensor, gram: Tensor | None) -> float:
    """``1 - Σ rᵀ G r / Σ (y - ȳ)ᵀ G (y - ȳ)`` over samples, r = pred - y (G = I if None)."""
    g = torch.eye(y.shape[1], dtype=y.dtype) if gram is None else gram
    residual, spread = pred - y, y - y.mean(0)
    total = ((spread @ g) * spread).sum()
    if total <= 0:
        return float("nan")
    return float(1 - ((residual @ g) * residual).sum() / total)


def probe_r2(features: Tensor, targets: Tensor, ridge: float | Sequence[float] = RIDGES,
             test_fraction: float = 0.25, seed: int = 0, gram: Tensor | None = None) -> float:
    """Held-out R² of a closed-form ridge regression from ``features`` to ``targets``.

    Samples are split at random (``seed``) into train and test. Features are standardised
    with the train statistics; the ridge penalty is ``ridge * n_train * |W|²``. Given several
    ``ridge`` values, the one with the best R² on a validation fifth of the train split is
    refitted on the whole train split. R² is pooled over the target's columns,
    ``1 - Σ rᵀ G r / Σ (y - ȳ)ᵀ G (y - ȳ)`` with residuals r; with a Gram matrix ``G`` of the
    morphable model (:func:`~e2far_lite.train.gram_matrix`) it is the share of the shapes'
    variance in vertex space (mm²) that the probe explains, so each coefficient counts by how
    far it moves the face; without one (G = I), columns count by their variance.

    Args:
        features: (N, D) inputs.
        targets: (N, T) outputs, e.g. ``a_exp`` (N, E).
        ridge: penalty, or candidates to choose from (default :data:`RIDGES`).
        test_fraction: share of samples held out for the reported R².
        seed: the split's random seed.
        gram: optional (T, T) symmetric positive semi-definite weighting.

    Returns:
        R² on the test split (1 = perfect, 0 = no better than the train mean, can be < 0).

    Examples:
        >>> x = torch.randn(200, 5)
        >>> round(probe_r2(x, x @ torch.randn(5, 3), ridge=1e-6), 4)
        1.0
    """
    check_shape(check_tensor(features, "features"), "features", (None, None))
    check_shape(check_tensor(targets, "targets"), "targets", (features.shape[0], None))
    if gram is not None:
        check_shape(check_tensor(gram, "gram"), "gram", (targets.shape[1], targets.shape[1]))
        gram = gram.double().cpu()
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction: expected a number in (0, 1), got {test_fraction!r}")
    candidates = (ridge,) if isinstance(ridge, (int, float)) else tuple(ridge)
    if not candidates or not all(isinstance(r, (int, float)) and r > 0 for r in candidates):
        raise ValueError(f"ridge: expected a positive number or a sequence of them, "
                         f"got {ridge!r}")
    n = features.shape[0]
    n_test = int(round(n * test_fraction))
    if n_test < 2 or n - n_test < 4:
        raise ValueError(f"features: expected enough samples for a train/test split "
                         f"(>= 8), got {n}")
    x, y = features.double().cpu(), targets.double().cpu()
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    test, train = order[:n_test], order[n_test:]

    def score(fit_idx: Tensor, eval_idx: Tensor, penalty: float) -> float:
        mean, std, weights, y_mean = _ridge_fit(x[fit_idx], y[fit_idx], penalty)
        return _r2((x[eval_idx] - mean) / std @ weights + y_mean, y[eval_idx], gram)

    best = candidates[0]
    if len(candidates) > 1:
        n_val = max(2, len(train) // 5)
        val, fit = train[:n_val], train[n_val:]
        scores = [score(fit, val, r) for r in candidates]
        best = candidates[max(range(len(candidates)),
                              key=lambda i: -math.inf if math.isnan(scores[i]) else scores[i])]
    return score(train, test, best)


def linear_probes(net: E2FARNet, faces_or_batch: SyntheticFaces | Mapping[str, Tensor],
                  model: MorphableModel | None = None, layers: Sequence[str] = TAP_NAMES,
                  ridge: float | Sequence[float] = RIDGES, grid: int = 2,
                  test_fraction: float = 0.25, seed: int = 0) -> dict[str, dict[str, float]]:
    """Where in depth are expression and identity linearly readable? R² of ridge probes.

    For each layer, a ridge regression from the layer's pooled features
    (:func:`pooled_features`, ``grid`` x ``grid`` average pooling) to the true ``a_exp`` and to
    the true ``a_id`` is fitted on a train split and scored on held-out faces
    (:func:`probe_r2`). R² is measured in vertex space: the share of the variance of the
    expression offsets (of the neutral shapes) over the test faces, in mm², that the probe
    explains. (Plain R² over the coefficients would weigh an identity mode that barely moves
    the face like the largest one.)

    Args:
        net: the network.
        faces_or_batch: a :class:`~e2far_lite.synth.SyntheticFaces` (all its items are
            rendered) or a batch ``{"image": (N, 3, S, S), "a_id": (N, K), "a_exp": (N, E)}``.
        model: the morphable model of the coefficients; default the faces' own model
            (required with a batch dict).
        layers: which taps.
        ridge: penalty or candidates, see :func:`probe_r2`.
        grid: pooling grid per side.
        test_fraction: share of faces held out.
        seed: the split's seed.

    Returns:
        ``{layer: {"expression": R², "identity": R²}}``.
    """
    check_net(net)
    if isinstance(faces_or_batch, SyntheticFaces):
        faces = faces_or_batch
        if faces.config.image_size != net.config.image_size:
            raise ValueError(f"faces_or_batch: expected images of {net.config.image_size} px "
                             f"like the network, got {faces.config.image_size} px")
        model = faces.model if model is None else model
        chunks = [faces.batch(range(s, min(s + 64, len(faces))))
                  for s in range(0, len(faces), 64)]
        batch = {k: torch.cat([c[k].cpu() for c in chunks]) for k in ("image", "a_id", "a_exp")}
    else:
        batch = check_batch(faces_or_batch, net, "faces_or_batch")
        if model is None:
            raise ValueError("model: expected the MorphableModel of the batch's coefficients, "
                             "got None")
    check_model(model, net)
    for layer in layers:
        check_layer(layer)
    grams = {"a_exp": gram_matrix(model.exp_basis, model.exp_std),
             "a_id": gram_matrix(model.id_basis, model.id_std)}
    features = pooled_features(net, batch["image"], layers, grid)
    return {layer: {name: probe_r2(features[layer], batch[key], ridge, test_fraction, seed,
                                   grams[key])
                    for name, key in (("expression", "a_exp"), ("identity", "a_id"))}
            for layer in layers}


def best_layer(probes: Mapping[str, Mapping[str, float]], target: str = "expression") -> str:
    """The layer whose probe has the highest R² for ``target`` (``"expression"``/``"identity"``)."""
    if target not in TARGETS:
        raise ValueError(f"target: expected one of {TARGETS}, got {target!r}")
    return max(probes, key=lambda layer: probes[layer][target])


__all__ = ["RIDGES", "pooled_features", "probe_r2", "linear_probes", "best_layer"]
