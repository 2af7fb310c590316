"""Checks for notebook 07: integrated gradients, a linear probe's R² and the probes' pooled
features, written by the student.

- :func:`check_integrated_gradients`: the student's ``integrated_gradients(f, a, a0, steps)``
  against :func:`~e2far_lite.analysis.integrated_gradients`, at a random layer of a network,
  for a random output, baseline and number of steps.
- :func:`check_probe_r2`: the student's ``probe_r2(x_train, y_train, x_test, y_test)`` (least
  squares with an intercept, R² on held-out rows) against
  :func:`~e2far_lite.analysis.probes.probe_r2` with a vanishing ridge penalty, on fresh random
  features and targets.
- :func:`check_pool_features`: the student's ``pool_features(maps, grid)`` (each layer's maps
  average-pooled to a grid x grid and flattened) against the pooling of
  :func:`~e2far_lite.analysis.probes.pooled_features`: on fresh random maps of random sizes
  (multiples of the grid, then not), then on a network's own maps against ``pooled_features``
  itself.

A failure that matches one of the usual slips (gradients at the wrong points of the path, the
wrong factor, a sum for an average; no intercept, the wrong ȳ, R² per column or on the training
rows; the features in the wrong order, a maximum for a mean, cells that do not overlap where
the package's do) says which, in words, without the code.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..analysis.attribution import integrated_gradients as reference_ig
from ..analysis.inputs import evaluating
from ..analysis.probes import pooled_features
from ..analysis.probes import probe_r2 as reference_r2
from ..analysis.targets import target_function
from ..model.morphable_model import MorphableModel
from ..nets.backbone import TAP_NAMES
from ..nets.network import E2FARNet
from .checks import (
    CheckFailed,
    call,
    compare,
    fresh_generator,
    not_written,
    passed,
    refuse_reference,
)


def _targets(model: MorphableModel) -> list[str]:
    """The outputs the check draws from: expression, identity and the model's blend shapes."""
    return ["expression", "identity", *model.blendshape_names[:8]]


def _mean_gradient(f: Callable, a: Tensor, a0: Tensor, alphas: list[float]) -> Tensor:
    """The gradient of ``f`` averaged over the points ``a0 + α (a - a0)``, α in ``alphas``."""
    total = torch.zeros_like(a)
    for alpha in alphas:
        point = (a0 + alpha * (a - a0)).detach().requires_grad_(True)
        grad, = torch.autograd.grad(f(point).sum(), point)
        total += grad
    return total / len(alphas)


def _ig_hint(got: Tensor, f: Callable, a: Tensor, a0: Tensor, steps: int, expected: Any,
             atol: float, rtol: float) -> str:
    """What a wrong ``integrated_gradients`` result looks like: one of the usual slips, or else
    how far its per-face sums are from completeness. Says what is wrong, not the code."""
    got = got.to(a)
    midpoint = _mean_gradient(f, a, a0, [(k + 0.5) / steps for k in range(steps)])
    where = ("so the sum takes its gradients at other points of the path than the formula's: "
             "read again where on each step the formula evaluates the gradient")
    slips = [
        ((a - a0) * _mean_gradient(f, a, a0, [k / steps for k in range(steps)]),
         f"Your values match gradients taken at the start of each of the {steps} steps, {where}"),
        ((a - a0) * _mean_gradient(f, a, a0, [(k + 1) / steps for k in range(steps)]),
         f"Your values match gradients taken at the end of each of the {steps} steps, {where}"),
        ((a - a0) * _mean_gradient(f, a, a0, torch.linspace(0, 1, steps).tolist()),
         f"Your values match {steps} points spread from α = 0 to α = 1 inclusive, {where}"),
        ((a - a0) * _mean_gradient(f, a, a0, [1.0]),
         "Your values match the gradient at A alone times (A - A0): one point of the path "
         "(gradient × activation), where the formula averages the gradient along it"),
        (a * midpoint,
         "Your values match the averaged gradient times A itself. The check's baseline A0 is "
         "not zero (your function must work for any baseline): look again at what the formula "
         "multiplies the average by"),
        (midpoint,
         "Your values match the averaged gradient alone: look again at what the formula "
         "multiplies it by, element by element"),
        ((a - a0) * midpoint * steps,
         f"Every value is {steps} times the expected one, and {steps} is the number of steps: "
         "look at what your code sums and what it averages"),
        ((a - a0) * midpoint / steps,
         f"Every value is 1/{steps} of the expected one, and {steps} is the number of steps: "
         "look at what your code sums and what it averages"),
    ]
    for value, hint in slips:
        if bool(((got - value).abs() <= atol + rtol * value.abs()).all()):
            return hint
    sums = ", ".join(f"{float(v):.4g}" for v in got.sum((1, 2, 3)))
    change = ", ".join(f"{float(v):.4g}" for v in expected.value - expected.baseline_value)
    return (f"Completeness, per face: your attributions add up to {sums}, while "
            f"f(a) - f(a0) = {change} (a midpoint sum of {steps} steps comes close to it)")


def check_integrated_gradients(integrated_gradients: Callable, net: E2FARNet,
                               model: MorphableModel, batch: int = 2) -> None:
    """``integrated_gradients(f, a, a0, steps)`` -> (B, C, h, w) must equal the package's.

    ``f`` maps a layer's activation (B, C, h, w) to one output per face (B,) through the
    sub-network from that layer up; ``a`` is the real activation, ``a0`` the baseline. The
    reference is :func:`~e2far_lite.analysis.integrated_gradients` (midpoint rule, ``steps``
    points), run on ``batch`` random images at a random layer, for a random output (the size of
    the expression or identity in mm, or a blend shape's weight), a random non-negative
    baseline and a random number of steps.

    Args:
        integrated_gradients: the student's function.
        net: the network (any :class:`~e2far_lite.nets.E2FARNet`).
        model: its morphable model.
        batch: B, the number of random images.
    """
    g = fresh_generator()
    pick = random.Random(int(torch.randint(2**31, (1,), generator=g)))
    layer, target = pick.choice(TAP_NAMES), pick.choice(_targets(model))
    steps = pick.randint(3, 9)
    size = net.config.image_size
    device = next(net.parameters()).device
    images = torch.rand(batch, 3, size, size, generator=g).to(device)
    fn = target_function(model, target)
    with evaluating(net), torch.no_grad():
        features = net.backbone(images)
    act = features[layer]
    baseline = (0.5 * torch.rand(act.shape, generator=g)).to(act) * act.mean()
    expected = reference_ig(net, images, model, layer, target, steps, baseline=baseline)

    def f(a: Tensor) -> Tensor:
        """(B, C, h, w) activation at the layer -> (B,) the output, one per face."""
        out = net.forward_from(layer, a, features)
        return fn(out["a_id"], out["a_exp"])

    what = (f"integrated_gradients(f, a, a0, steps={steps}) at {layer} for the output "
            f"{target!r}")
    with evaluating(net):
        got = call(integrated_gradients, what, f, act.clone(), baseline.clone(), steps)
    scale = float(expected.attributions.abs().max())
    atol, rtol = 1e-4 * scale + 1e-7, 1e-3
    try:
        compare(got, expected.attributions, what, atol=atol, rtol=rtol)
    except CheckFailed as err:
        if not (isinstance(got, Tensor) and got.shape == expected.attributions.shape):
            raise
        with evaluating(net):
            hint = _ig_hint(got.detach(), f, act, baseline, steps, expected, atol, rtol)
        raise CheckFailed(f"{err}. {hint}.") from None
    passed("integrated_gradients(f, a, a0, steps) equals the package's integrated_gradients "
           "on fresh random images, layers, outputs, baselines and step counts")


def _r2_variants(x_train: Tensor, y_train: Tensor, x_test: Tensor,
                 y_test: Tensor) -> list[tuple[float, str]]:
    """R² as the usual slips compute it, each with what is wrong (not how to write it)."""
    def fit(x: Tensor, y: Tensor, intercept: bool = True) -> Tensor:
        return torch.linalg.lstsq(_with_ones(x) if intercept else x, y).solution

    def r2(pred: Tensor, y: Tensor, centre: Tensor) -> float:
        return float(1 - ((pred - y) ** 2).sum() / ((y - centre) ** 2).sum())

    w = fit(x_train, y_train)
    pred = _with_ones(x_test) @ w
    no_intercept = x_test @ fit(x_train, y_train, intercept=False)
    per_column = 1 - ((pred - y_test) ** 2).sum(0) / ((y_test - y_test.mean(0)) ** 2).sum(0)
    return [
        (r2(no_intercept, y_test, y_test.mean(0)),
         "the R² of a fit without an intercept: these targets do not pass through the origin, "
         "so the fit needs the constant column too"),
        (r2(pred, y_test, y_train.mean(0)),
         "an R² with ȳ the mean of the training targets; in the formula ȳ is the mean over the "
         "test faces"),
        (r2(pred, y_test, y_test.mean()),
         "an R² with ȳ one number, the mean of all the targets' entries; in the formula ȳ is a "
         "mean face, one mean per target column"),
        (float(per_column.mean()),
         "the average of the columns' own R² values; the formula pools the sums over the "
         "columns first and divides once"),
        (r2(_with_ones(x_train) @ w, y_train, y_train.mean(0)),
         "the R² on the training rows; a probe is scored on the test rows, which the fit never "
         "saw"),
        (1 - r2(pred, y_test, y_test.mean(0)),
         "1 - R²: the residuals' share of the spread, not the share explained"),
    ]


def _with_ones(x: Tensor) -> Tensor:
    """``x`` (N, D) with a column of ones appended: (N, D + 1)."""
    return torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)


def _probe_hint(got: float, x_train: Tensor, y_train: Tensor, x_test: Tensor,
                y_test: Tensor) -> str:
    """A sentence when ``got`` is one of the usual slips' R², else ``""``."""
    for value, hint in _r2_variants(x_train, y_train, x_test, y_test):
        if abs(got - value) <= 1e-6 + 1e-6 * abs(value):
            return f". Your value is {hint}."
    return ""


def check_probe_r2(probe_r2: Callable) -> None:
    """``probe_r2(x_train, y_train, x_test, y_test)`` -> R² must equal the package's.

    The reference is :func:`~e2far_lite.analysis.probes.probe_r2` with a vanishing ridge
    penalty (1e-10: plain least squares) and no Gram matrix (every target column counts by its
    variance), on fresh random features (N, D), targets (N, T) that depend on them linearly
    plus noise, and the package's own random train/test split. R² is pooled over the columns:
    ``1 - Σ (ŷ - y)² / Σ (y - ȳ)²`` over the test rows, ȳ their mean.

    Args:
        probe_r2: the student's function; it may return a float or a 0-d tensor.
    """
    g = fresh_generator()
    seed = int(torch.randint(2**31, (1,), generator=g))
    for n, d, t, noise in ((120, 6, 3, 0.5), (200, 10, 5, 2.0)):
        x = torch.randn(n, d, generator=g, dtype=torch.float64) * 3 + 1
        y = x @ torch.randn(d, t, generator=g, dtype=torch.float64) + 2
        y = y + noise * torch.randn(n, t, generator=g, dtype=torch.float64)
        expected = reference_r2(x, y, ridge=1e-10, test_fraction=0.25, seed=seed)
        # the same split as the package's
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        n_test = int(round(n * 0.25))
        test, train = order[:n_test], order[n_test:]
        what = f"probe_r2(x_train, y_train, x_test, y_test) on {n} rows of {d} features"
        got = call(probe_r2, what, x[train].clone(), y[train].clone(), x[test].clone(),
                   y[test].clone())
        not_written(got, what)
        if isinstance(got, Tensor):
            if got.numel() != 1:
                raise CheckFailed(f"{what}: expected one number (R² pooled over the columns), "
                                  f"got a tensor of shape {tuple(got.shape)}")
            got = float(got)
        if not isinstance(got, (int, float)):
            raise CheckFailed(f"{what}: expected a float, got {type(got).__name__}")
        got = float(got)
        if math.isnan(got) or abs(got - expected) > 1e-6 + 1e-6 * abs(expected):
            hint = _probe_hint(got, x[train], y[train], x[test], y[test])
            raise CheckFailed(f"{what}: got R² = {got:.6g}, expected {expected:.6g}{hint}")
    passed("probe_r2(x_train, y_train, x_test, y_test) equals the package's probe_r2 "
           "(no ridge penalty) on fresh random features and targets")


def _pool_variants(feature_map: Tensor, grid: int) -> list[tuple[Tensor, str]]:
    """(B, C·grid²) features as the usual slips pool and flatten (B, C, H, W), each with what
    is wrong, in words."""
    pooled = F.adaptive_avg_pool2d(feature_map, grid)  # (B, C, grid, grid)
    height, width = feature_map.shape[-2:]
    return [
        (pooled.permute(0, 2, 3, 1).flatten(1),
         "ordered cell by cell (all channels of cell (0, 0), then of cell (0, 1), ...); the "
         "package flattens the pooled (B, C, grid, grid) maps as they lie in memory, channel by "
         "channel: feature c·grid² + i·grid + j is channel c's cell (i, j)"),
        (pooled.mT.flatten(1),
         "flattened with rows and columns swapped: cell (i, j) is row band i (down the map's "
         "height H) and column band j (across its width W), and j runs fastest"),
        (F.adaptive_max_pool2d(feature_map, grid).flatten(1),
         "each cell's maximum; the probes average each cell"),
        (pooled.flatten(1) * (height // grid) * (width // grid),
         "each cell's sum; the probes average each cell"),
    ]


def _pool_hint(got: Tensor, feature_map: Tensor, grid: int) -> str:
    """A sentence when ``got`` is one of the usual slips' features, else ``""``."""
    got = got.detach().cpu().float()
    for value, hint in _pool_variants(feature_map, grid):
        if torch.allclose(got, value, atol=1e-5, rtol=1e-5):
            return f". Your features are {hint}"
    return ""


def _compare_pooled(got: Any, expected: Mapping[str, Tensor], maps: Mapping[str, Tensor],
                    grid: int, what: str, context: str, overlap_hint: str = "") -> None:
    """Compare a dict of pooled features with ``expected``, layer by layer, with a hint for a
    usual slip (or ``overlap_hint`` when none fits). ``what`` is the call, ``context`` says on
    what maps."""
    not_written(got, f"{what} {context}")
    if not isinstance(got, Mapping):
        shape = f" of shape {tuple(got.shape)}" if isinstance(got, Tensor) else ""
        raise CheckFailed(f"{what} {context}: expected a dict {{layer: (B, C·grid²) "
                          f"features}} like the maps' dict, got {type(got).__name__}{shape}")
    if set(got) != set(expected):
        raise CheckFailed(f"{what} {context}: expected the layers {list(expected)}, got "
                          f"{list(got)}")
    for layer, reference in expected.items():
        try:
            compare(got[layer], reference, f"{what}[{layer!r}] {context}", atol=1e-5,
                    rtol=1e-5)
        except CheckFailed as err:
            if not (isinstance(got[layer], Tensor) and got[layer].shape == reference.shape):
                raise
            hint = _pool_hint(got[layer], maps[layer], grid) or overlap_hint
            raise CheckFailed(f"{err}{hint}{'.' if hint else ''}") from None


def _random_maps(g: torch.Generator, grid: int, multiples: bool,
                 batch: int = 2) -> dict[str, Tensor]:
    """{layer: (B, C, H, W)} of three random layers, random channels and sides: multiples of
    ``grid`` with cells of 2 x 2 or more (so a cell's maximum or sum is not its mean), or not
    (then W > H > ``grid``)."""
    def side(wider: int) -> int:
        if multiples:
            return grid * int(torch.randint(2, 4, (), generator=g))
        step = int(torch.randint(1, grid, (), generator=g))
        return grid * (int(torch.randint(1, 3, (), generator=g)) + wider) + step

    layers = [TAP_NAMES[int(i)] for i in torch.randperm(len(TAP_NAMES), generator=g)[:3]]
    maps = {}
    for layer in sorted(layers):
        channels = int(torch.randint(2, 7, (), generator=g))
        height, width = side(0), side(2)
        maps[layer] = torch.randn(batch, channels, height, width, generator=g)
    return maps


def check_pool_features(pool_features: Callable, net: E2FARNet, batch: int = 2) -> None:
    """``pool_features(maps, grid)``: ``{layer: (B, C, H, W)}`` -> ``{layer: (B, C·grid²)}``,
    each map average-pooled to grid x grid cells and flattened channel by channel, must equal
    the probes' features.

    First on fresh random maps of three layers with random channels and sides (multiples of
    the grid, then sides that are not, where PyTorch's adaptive cells overlap), against the
    pooling :func:`~e2far_lite.analysis.probes.pooled_features` applies
    (``F.adaptive_avg_pool2d(map, grid).flatten(1)``); then on ``net``'s own maps of ``batch``
    random images, for grid 2 and 1, against ``pooled_features(net, images, grid=grid)``
    itself, to 1e-5.

    Args:
        pool_features: the student's function.
        net: the network (any :class:`~e2far_lite.nets.E2FARNet`).
        batch: B, the number of random images.
    """
    refuse_reference(pool_features, ("pooled_features", "adaptive_avg_pool2d",
                                     "AdaptiveAvgPool2d"), "pool_features(maps, grid)")
    g = fresh_generator()
    for multiples in (True, False):
        grid = int(torch.randint(2, 4, (), generator=g))
        maps = _random_maps(g, grid, multiples)
        sides = ", ".join(f"{layer} {tuple(m.shape)}" for layer, m in maps.items())
        what = f"pool_features(maps, grid={grid})"
        context = (f"on random maps {sides} (sides "
                   f"{'multiples of the grid' if multiples else 'not multiples of the grid'})")
        expected = {layer: F.adaptive_avg_pool2d(m, grid).flatten(1) for layer, m in maps.items()}
        got = call(pool_features, f"{what} {context}",
                   {layer: m.clone() for layer, m in maps.items()}, grid)
        overlap = "" if multiples else (
            ". Your pooling passed on maps whose sides are multiples of the grid; on these the "
            "cells are not a clean partition: read again which rows and columns each cell "
            "covers (neighbouring cells share a row or column here)")
        _compare_pooled(got, expected, maps, grid, what, context, overlap)
    size = net.config.image_size
    images = torch.rand(batch, 3, size, size, generator=g)
    with evaluating(net), torch.no_grad():
        maps = {layer: m.float().cpu()
                for layer, m in net.backbone(images.to(next(net.parameters()).device)).items()}
    for grid in (2, 1):
        what = f"pool_features(net.backbone(images), grid={grid})"
        context = f"on {batch} random {size} px images, against pooled_features"
        expected = pooled_features(net, images, TAP_NAMES, grid)
        got = call(pool_features, f"{what} {context}",
                   {layer: m.clone() for layer, m in maps.items()}, grid)
        _compare_pooled(got, expected, maps, grid, what, context)
    passed("pool_features(maps, grid) gives the probes' pooled features on fresh random maps "
           "(sides multiples of the grid and not) and equals pooled_features on the network's "
           "own maps, grid 2 and 1")


__all__ = ["check_integrated_gradients", "check_pool_features", "check_probe_r2"]
