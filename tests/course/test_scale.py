"""The learning-curve check (e2far_lite/course/scale.py): it passes the package's least-squares
line of the RMSE against log2(faces), and fails an unwritten or a deliberately wrong fit with a
CheckFailed that names the slip."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from e2far_lite.analysis.curves import fit_log_linear
from e2far_lite.course.checks import CheckFailed
from e2far_lite.course.scale import check_log_linear_fit, random_curve, reference_fit


def fit(faces, rmse, x_log=torch.log2, y_log=None, swapped=False, reversed_=False):
    """The least-squares line written out plainly (torch, float64), or with one of the usual
    slips."""
    x, y = x_log(faces) if x_log else faces, y_log(rmse) if y_log else rmse
    if swapped:
        x, y = y, x
    design = torch.stack([x, torch.ones_like(x)], 1)
    slope, intercept = torch.linalg.lstsq(design, y[:, None]).solution[:, 0].tolist()
    return (intercept, slope) if reversed_ else (slope, intercept)


def test_random_curves_are_what_they_say():
    g = torch.Generator().manual_seed(3)
    for _ in range(20):
        faces, rmse = random_curve(g)
        assert faces.dtype == rmse.dtype == torch.float64 and faces.shape == rmse.shape
        assert 3 <= len(faces) <= 12 and (faces.diff() > 0).all() and (rmse > 0).all()
        assert 0.99 <= math.log10(faces[-1] / faces[0]) <= 3.01
        slope, _ = reference_fit(faces, rmse)
        assert slope < 0  # the error falls as the faces double


def test_the_reference_is_the_package_s_fit():
    faces, rmse = random_curve(torch.Generator().manual_seed(1))
    line = fit_log_linear(faces.tolist(), rmse.tolist())
    assert reference_fit(faces, rmse) == (line.per_doubling, line.intercept)


def test_the_fit_check_passes_the_package_s_line(capsys):
    check_log_linear_fit(lambda faces, rmse: reference_fit(faces, rmse))
    check_log_linear_fit(fit)
    check_log_linear_fit(lambda faces, rmse: tuple(np.polyfit(np.log2(faces.numpy()),
                                                              rmse.numpy(), 1)))
    check_log_linear_fit(lambda faces, rmse: tuple(torch.tensor(fit(faces, rmse))))  # 0-d
    assert capsys.readouterr().out.count("✓") == 4


def test_the_fit_check_names_the_usual_slips():
    with pytest.raises(CheckFailed, match="not written yet"):
        check_log_linear_fit(lambda faces, rmse: None)
    with pytest.raises(CheckFailed, match="not written yet"):
        check_log_linear_fit(lambda faces, rmse: ...)
    with pytest.raises(CheckFailed, match="fitted in linear space"):
        check_log_linear_fit(lambda faces, rmse: fit(faces, rmse, x_log=None))
    with pytest.raises(CheckFailed, match="log of the RMSE but not of the faces"):
        check_log_linear_fit(lambda faces, rmse: fit(faces, rmse, x_log=None, y_log=torch.log))
    with pytest.raises(CheckFailed, match="log of the RMSE too"):
        check_log_linear_fit(lambda faces, rmse: fit(faces, rmse, y_log=torch.log))
    with pytest.raises(CheckFailed, match="natural log of the faces.*uses log2"):
        check_log_linear_fit(lambda faces, rmse: fit(faces, rmse, x_log=torch.log))
    with pytest.raises(CheckFailed, match="log10 of the faces.*uses log2"):
        check_log_linear_fit(lambda faces, rmse: fit(faces, rmse, x_log=torch.log10))
    with pytest.raises(CheckFailed, match="axes are swapped"):
        check_log_linear_fit(lambda faces, rmse: fit(faces, rmse, swapped=True))
    with pytest.raises(CheckFailed, match=r"wrong order: return \(slope, intercept\)"):
        check_log_linear_fit(lambda faces, rmse: fit(faces, rmse, reversed_=True))


def test_the_fit_check_names_the_types_and_the_precision():
    with pytest.raises(CheckFailed, match=r"expected a tuple \(slope, intercept\).*Tensor"):
        check_log_linear_fit(lambda faces, rmse: torch.tensor(fit(faces, rmse)))
    with pytest.raises(CheckFailed, match="expected the slope to be a float, got int"):
        check_log_linear_fit(lambda faces, rmse: (round(fit(faces, rmse)[0]), 1.0))
    with pytest.raises(CheckFailed, match="within 0.1 % of the package's"):
        check_log_linear_fit(lambda faces, rmse: tuple(v * (1 + 1e-5) for v in fit(faces, rmse)))
    with pytest.raises(CheckFailed, match="raised ZeroDivisionError"):
        check_log_linear_fit(lambda faces, rmse: 1 / 0)
