"""Checks for notebook 07: integrated gradients and a linear probe's R², written by the student.

- :func:`check_integrated_gradients`: the student's ``integrated_gradients(f, a, a0, steps)``
  against :func:`~e2far_lite.analysis.integrated_gradients`, at a random layer of a network,
  for a random output, baseline and number of steps.
- :func:`check_probe_r2`: the student's ``probe_r2(x_train, y_train, x_test, y_test)`` (least
  squares with an intercept, R² on held-out rows) against
  :func:`~e2far_lite.analysis.probes.probe_r2` with a vanishing ridge penalty, on fresh random
  features and targets.
"""

from __future__ import annotations

import random
from collections.abc import Callable

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
    compare(got, expected.attributions, what, atol=1e-4 * scale + 1e-7, rtol=1e-3)
    passed("integrated_gradients(f, a, a0, steps) equals the package's integrated_gradients "
           "on fresh random images, layers, outputs, baselines and step counts")


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
        compare(torch.tensor(float(got), dtype=torch.float64),
                torch.tensor(expected, dtype=torch.float64), what, atol=1e-6, rtol=1e-6)
    passed("probe_r2(x_train, y_train, x_test, y_test) equals the package's probe_r2 "
           "(no ridge penalty) on fresh random features and targets")


__all__ = ["check_integrated_gradients", "check_probe_r2"]
