"""Checks for notebook 07: integrated gradients and a linear probe's R², written by the student.

- :func:`check_integrated_gradients`: the student's ``integrated_gradients(f, a, a0, steps)``
  against :func:`~e2far_lite.analysis.integrated_gradients`, at a random layer of a network,
  for a random output, baseline and number of steps.
- :func:`check_probe_r2`: the student's ``probe_r2(x_train, y_train, x_test, y_test)`` (least
  squares with an intercept, R² on held-out rows) against
  :func:`~e2far_lite.analysis.probes.probe_r2` with a vanishing ridge penalty, on fresh random
  features and targets.

A failure that matches one of the usual slips (gradients at the wrong points of the path, the
wrong factor, a sum for an average; no intercept, the wrong ȳ, R² per column or on the training
rows) says which, in words, without the code.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ..analysis.attribution import integrated_gradients as reference_ig
from ..analysis.inputs import evaluating
from ..analysis.probes import probe_r2 as reference_r2
from ..analysis.targets import target_function
from ..model.morphable_model import MorphableModel
from ..nets.backbone import TAP_NAMES
from ..nets.network import E2FARNet
from .checks import CheckFailed, call, compare, fresh_generator, not_written, passed


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


__all__ = ["check_integrated_gradients", "check_probe_r2"]
