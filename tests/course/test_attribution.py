"""The checks of notebook 07's pieces: they pass the package's own reference and fail, with a
helpful CheckFailed, on an unwritten or a deliberately wrong version."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from e2far_lite.analysis.probes import _r2, _ridge_fit
from e2far_lite.course.attribution import (
    check_integrated_gradients,
    check_pool_features,
    check_probe_r2,
)
from e2far_lite.course.checks import CheckFailed

# the reference under a name of the test's own: the check refuses a function that calls it
_POOL = F.adaptive_avg_pool2d


def integrated_gradients(f, a, a0, steps):
    total = torch.zeros_like(a)
    for k in range(steps):
        point = (a0 + (k + 0.5) / steps * (a - a0)).requires_grad_(True)
        grad, = torch.autograd.grad(f(point).sum(), point)
        total += grad
    return (a - a0) * total / steps


def left_riemann(f, a, a0, steps):  # the left end of each step, not its midpoint
    total = torch.zeros_like(a)
    for k in range(steps):
        point = (a0 + k / steps * (a - a0)).requires_grad_(True)
        grad, = torch.autograd.grad(f(point).sum(), point)
        total += grad
    return (a - a0) * total / steps


def probe_r2(x_train, y_train, x_test, y_test):
    mean, std, weights, y_mean = _ridge_fit(x_train, y_train, 1e-12)
    return _r2((x_test - mean) / std @ weights + y_mean, y_test, None)


def test_integrated_gradients_check_passes_the_reference(blend_net, blend_model, capsys):
    for _ in range(3):  # a random layer, output and step count each time
        check_integrated_gradients(integrated_gradients, blend_net, blend_model)
    assert capsys.readouterr().out.count("✓") == 3


def test_integrated_gradients_check_fails_helpfully(blend_net, blend_model):
    with pytest.raises(CheckFailed, match="not written yet"):
        check_integrated_gradients(lambda f, a, a0, steps: None, blend_net, blend_model)
    with pytest.raises(CheckFailed, match="elements differ; the first at index"):
        check_integrated_gradients(left_riemann, blend_net, blend_model)
    with pytest.raises(CheckFailed, match="at the start of each of the"):
        check_integrated_gradients(left_riemann, blend_net, blend_model)


def times_a(f, a, a0, steps):  # A for A - A0: right only for a zero baseline
    total = torch.zeros_like(a)
    for k in range(steps):
        point = (a0 + (k + 0.5) / steps * (a - a0)).requires_grad_(True)
        grad, = torch.autograd.grad(f(point).sum(), point)
        total += grad
    return a * total / steps


def test_integrated_gradients_check_names_the_usual_slips(blend_net, blend_model):
    def sums(f, a, a0, steps):  # no division by the number of steps
        return integrated_gradients(f, a, a0, steps) * steps

    def one_point(f, a, a0, steps):  # the gradient at A only: gradient × activation
        point = a.clone().requires_grad_(True)
        grad, = torch.autograd.grad(f(point).sum(), point)
        return (a - a0) * grad

    def squared(f, a, a0, steps):  # no usual slip: the completeness sums instead
        return integrated_gradients(f, a, a0, steps) ** 2

    with pytest.raises(CheckFailed, match="baseline A0 is not zero"):
        check_integrated_gradients(times_a, blend_net, blend_model)
    with pytest.raises(CheckFailed, match="times the expected one, and .* is the number of steps"):
        check_integrated_gradients(sums, blend_net, blend_model)
    with pytest.raises(CheckFailed, match="gradient at A alone"):
        check_integrated_gradients(one_point, blend_net, blend_model)
    with pytest.raises(CheckFailed, match="Completeness, per face"):
        check_integrated_gradients(squared, blend_net, blend_model)
    with pytest.raises(CheckFailed, match="expected shape"):
        check_integrated_gradients(lambda f, a, a0, steps: (a - a0).sum(1), blend_net, blend_model)


def test_probe_r2_check(capsys):
    check_probe_r2(probe_r2)
    check_probe_r2(lambda *args: torch.tensor(probe_r2(*args)))  # a 0-d tensor will do
    assert capsys.readouterr().out.count("✓") == 2
    with pytest.raises(CheckFailed, match="not written yet"):
        check_probe_r2(lambda *args: None)

    def no_intercept(x_train, y_train, x_test, y_test):
        w = torch.linalg.lstsq(x_train, y_train).solution
        return float(1 - ((x_test @ w - y_test) ** 2).sum()
                     / ((y_test - y_test.mean(0)) ** 2).sum())

    with pytest.raises(CheckFailed, match="got .*expected.*without an intercept"):
        check_probe_r2(no_intercept)

    def per_column(x_train, y_train, x_test, y_test):
        ones = torch.ones(len(x_train), 1, dtype=x_train.dtype)
        w = torch.linalg.lstsq(torch.cat([x_train, ones], 1), y_train).solution
        ones = torch.ones(len(x_test), 1, dtype=x_test.dtype)
        residual = torch.cat([x_test, ones], 1) @ w - y_test
        return float((1 - (residual ** 2).sum(0)
                      / ((y_test - y_test.mean(0)) ** 2).sum(0)).mean())

    with pytest.raises(CheckFailed, match="average of the columns' own R²"):
        check_probe_r2(per_column)
    with pytest.raises(CheckFailed, match="one number"):
        check_probe_r2(lambda x_train, y_train, x_test, y_test: y_test[:, 0])


def pool_features(maps, grid, overlap=True, order="channel"):
    """Each map average-pooled by hand: cell i of a side n covers floor(i n / grid) ..
    ceil((i + 1) n / grid) - 1 (or, ``overlap=False``, .. floor((i + 1) n / grid) - 1)."""
    out = {}
    for layer, m in maps.items():
        height, width = m.shape[-2:]

        def edges(i, n):
            end = math.ceil((i + 1) * n / grid) if overlap else (i + 1) * n // grid
            return i * n // grid, end

        cells = torch.zeros(*m.shape[:2], grid, grid, dtype=m.dtype)
        for i in range(grid):
            r0, r1 = edges(i, height)
            for j in range(grid):
                c0, c1 = edges(j, width)
                cells[:, :, i, j] = m[:, :, r0:r1, c0:c1].mean((-2, -1))
        out[layer] = (cells.flatten(1) if order == "channel"
                      else cells.permute(0, 2, 3, 1).flatten(1))
    return out


def test_pool_features_check_passes_the_reference(blend_net, capsys):
    check_pool_features(pool_features, blend_net)
    check_pool_features(lambda maps, grid: {layer: _POOL(m, grid).flatten(1)
                                            for layer, m in maps.items()}, blend_net)
    assert capsys.readouterr().out.count("✓") == 2


def test_pool_features_check_names_the_usual_slips(blend_net):
    with pytest.raises(CheckFailed, match="not written yet"):
        check_pool_features(lambda maps, grid: None, blend_net)
    with pytest.raises(CheckFailed, match="ordered cell by cell"):
        check_pool_features(lambda maps, grid: pool_features(maps, grid, order="cell"),
                            blend_net)
    with pytest.raises(CheckFailed, match="maximum"):
        check_pool_features(lambda maps, grid: {layer: F.adaptive_max_pool2d(m, grid).flatten(1)
                                                for layer, m in maps.items()}, blend_net)
    with pytest.raises(CheckFailed, match="rows and columns swapped"):
        check_pool_features(lambda maps, grid: {
            layer: _POOL(m, grid).mT.flatten(1) for layer, m in maps.items()},
            blend_net)
    with pytest.raises(CheckFailed, match="not multiples.*passed on maps whose sides are"):
        check_pool_features(lambda maps, grid: pool_features(maps, grid, overlap=False),
                            blend_net)


def test_pool_features_check_wants_a_dict_of_the_same_layers(blend_net):
    with pytest.raises(CheckFailed, match="expected a dict"):
        check_pool_features(lambda maps, grid: torch.cat(
            [_POOL(m, grid).flatten(1) for m in maps.values()], 1), blend_net)
    with pytest.raises(CheckFailed, match="expected the layers"):
        check_pool_features(lambda maps, grid: {
            layer: _POOL(m, grid).flatten(1)
            for layer, m in list(maps.items())[:-1]}, blend_net)
