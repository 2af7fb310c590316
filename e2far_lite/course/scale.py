"""Checks for the learning-curve exercise: the line the validation error follows as the faces
seen double, fitted by the student.

- :func:`check_log_linear_fit`: the student's ``fit(faces, rmse)`` -> ``(slope, intercept)``
  against the package's :func:`~e2far_lite.analysis.fit_log_linear` (the RMSE in mm against
  ``log2(faces)``, by least squares: ``slope`` is its ``per_doubling``, the mm the RMSE changes
  each time the faces double, and ``intercept`` the line's RMSE at one face), on fresh random
  curves.

A wrong fit that matches a usual slip (no log at all, the log of the RMSE, another base than 2,
the axes swapped, the pair in the wrong order) is named, in words, without the code.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..analysis.curves import fit_log_linear
from .checks import CheckFailed, call, fresh_generator, not_written, passed, refuse_reference

#: random curves of one check
TRIALS = 6

#: the slope and the intercept must agree to this, relative to the package's
TOLERANCE = 1e-6

#: the logs a student may take of an axis: {name: function on a float64 array}
_LOGS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "log2": np.log2, "ln": np.log, "log10": np.log10, "none": lambda v: v}


def _uniform(low: float, high: float, g: torch.Generator) -> float:
    return low + (high - low) * float(torch.rand((), generator=g, dtype=torch.float64))


def random_curve(g: torch.Generator) -> tuple[Tensor, Tensor]:
    """A random learning curve: (N,) faces seen and (N,) validation RMSEs in mm, float64.

    N is 3 .. 12; the faces are log-uniform, sorted and distinct, over 1 to 3 decades starting
    at 10² .. 10⁵; the RMSE follows a random line in ``log2(faces)`` (0.5 .. 2 mm at the last
    count, falling 0.05 .. 0.4 mm per doubling) plus noise of 0.002 .. 0.02 mm, so no line fits
    it exactly.
    """
    n = int(torch.randint(3, 13, (), generator=g))
    first = 10 ** _uniform(2.0, 5.0, g)
    decades = _uniform(1.0, 3.0, g)
    spread = torch.rand(n, generator=g, dtype=torch.float64).sort().values
    spread = (spread - spread[0]) / (spread[-1] - spread[0])  # the ends span all the decades
    faces = first * 10 ** (decades * spread)
    per_doubling = -_uniform(0.05, 0.4, g)
    last = _uniform(0.5, 2.0, g)
    intercept = last - per_doubling * math.log2(float(faces[-1]))
    noise = _uniform(0.002, 0.02, g) * torch.randn(n, generator=g, dtype=torch.float64)
    rmse = (intercept + per_doubling * torch.log2(faces) + noise).clamp_min(0.05)
    return faces, rmse


def reference_fit(faces: Tensor, rmse: Tensor) -> tuple[float, float]:
    """``(slope, intercept)`` of the package's :func:`~e2far_lite.analysis.fit_log_linear`: its
    ``per_doubling`` (mm per doubling of the faces) and its ``intercept`` (mm at one face)."""
    fit = fit_log_linear(faces.tolist(), rmse.tolist())
    return fit.per_doubling, fit.intercept


def _as_pair(got: Any, what: str) -> tuple[float, float]:
    """``got`` as (slope, intercept): a tuple or list of two floats (Python or NumPy floats, or
    one-element floating tensors)."""
    not_written(got, what)
    if not isinstance(got, tuple | list) or len(got) != 2:
        shape = (f" of shape {tuple(got.shape)}" if isinstance(got, Tensor | np.ndarray)
                 else f" of length {len(got)}" if isinstance(got, tuple | list) else "")
        raise CheckFailed(f"{what}: expected a tuple (slope, intercept) of two floats, got "
                          f"{type(got).__name__}{shape}")
    out = []
    for name, value in zip(("slope", "intercept"), got, strict=True):
        not_written(value, f"{what}: {name}")
        if isinstance(value, Tensor) and value.numel() == 1 and value.is_floating_point():
            value = value.item()
        if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind == "f":
            value = value.item()
        if not isinstance(value, float | np.floating):
            raise CheckFailed(f"{what}: expected the {name} to be a float, got "
                              f"{type(value).__name__} {value!r}")
        out.append(float(value))
    return out[0], out[1]


def _close(got: tuple[float, float], expected: tuple[float, float], tolerance: float) -> bool:
    return all(math.isclose(u, v, rel_tol=tolerance, abs_tol=1e-12)
               for u, v in zip(got, expected, strict=True))


def _variants(faces: Tensor, rmse: Tensor) -> list[tuple[tuple[float, float], str]]:
    """(slope, intercept) as the usual slips compute them, each with what is wrong, in words:
    every log (or none) of either axis, the axes swapped or not, the pair in either order."""
    x0, y0 = faces.double().numpy(), rmse.double().numpy()
    out = []
    for x_log, x_of in _LOGS.items():
        for y_log, y_of in _LOGS.items():
            for swapped in (False, True):
                x, y = x_of(x0), y_of(y0)
                slope, intercept = np.polyfit(y, x, 1) if swapped else np.polyfit(x, y, 1)
                for reversed_ in (False, True):
                    if (x_log, y_log, swapped, reversed_) == ("log2", "none", False, False):
                        continue  # the package's fit
                    words = _slip_words(x_log, y_log, swapped, reversed_)
                    pair = (float(intercept), float(slope)) if reversed_ else (float(slope),
                                                                                float(intercept))
                    out.append((pair, words))
    return out


def _slip_words(x_log: str, y_log: str, swapped: bool, reversed_: bool) -> str:
    """What is wrong with a fit of ``y_log(rmse)`` against ``x_log(faces)`` (the axes swapped
    or not), returned in the order given, in words."""
    slips = []
    if x_log == "none" and y_log == "none":
        slips.append("you fitted in linear space (the RMSE against the faces themselves); the "
                     "package fits the RMSE against log2(faces), the number of doublings")
    elif x_log == "none":
        slips.append("you took the log of the RMSE but not of the faces: it is the faces that "
                     "are logged, with log2, and the RMSE stays in mm")
    else:
        if y_log != "none":
            slips.append("you took the log of the RMSE too (a log-log fit); the package fits "
                         "the RMSE itself, in mm, against log2(faces)")
        if x_log == "ln":
            slips.append("you took the natural log of the faces, so your slope is 1/ln 2 ≈ "
                         "1.443 times the package's; the package uses log2(faces), so that the "
                         "slope is the change of the RMSE per doubling of the faces")
        elif x_log == "log10":
            slips.append("you took log10 of the faces, so your slope is per tenfold, log2(10) "
                         "≈ 3.32 times the package's; the package uses log2(faces), so that the "
                         "slope is the change of the RMSE per doubling of the faces")
    if swapped:
        slips.append("the axes are swapped: you fitted the faces against the RMSE; the RMSE is "
                     "y, the value the line predicts, and log2(faces) is x")
    if reversed_:
        slips.append("the pair is in the wrong order: return (slope, intercept), the slope "
                     "first")
    return "; ".join(slips)


def _fit_hint(got: list[tuple[float, float]], curves: list[tuple[Tensor, Tensor]],
              expected: list[tuple[float, float]]) -> str:
    """A sentence naming the slip every one of the student's fits matches, or the precision
    when they are all near the package's, else ``""``."""
    every = [_variants(faces, rmse) for faces, rmse in curves]
    for k, (_, words) in enumerate(every[0]):
        if all(_close(pair, variants[k][0], 1e-4) for pair, variants in
               zip(got, every, strict=True)):
            return f". Your fits match this: {words}."
    if all(_close(pair, ref, 1e-3) for pair, ref in zip(got, expected, strict=True)):
        return (". Your fits are all within 0.1 % of the package's but not within "
                f"{TOLERANCE:g}: solve the least squares exactly, in float64 (the inputs' "
                "dtype), not in float32 or by an iterative method.")
    return ""


def _call_text(faces: Tensor, rmse: Tensor) -> str:
    """The call, as a message names it."""
    return (f"fit(faces, rmse) for {len(faces)} faces from {float(faces[0]):,.0f} to "
            f"{float(faces[-1]):,.0f} and RMSEs from {float(rmse.max()):.3f} to "
            f"{float(rmse.min()):.3f} mm")


def check_log_linear_fit(fit_log_linear_student: Callable) -> None:
    """``fit(faces, rmse)`` -> ``(slope, intercept)``, for (N,) float64 tensors of faces seen
    (> 0) and validation RMSEs in mm (> 0), N >= 3, must equal the package's
    :func:`~e2far_lite.analysis.fit_log_linear` to 1e-6 relative: the least-squares line
    ``rmse ≈ intercept + slope · log2(faces)``, ``slope`` its ``per_doubling`` (mm per doubling
    of the faces) and ``intercept`` its ``intercept`` (mm at one face), on fresh random
    curves."""
    refuse_reference(fit_log_linear_student, ("fit_log_linear", "faces_for_goals"),
                     "fit(faces, rmse)")
    g = fresh_generator()
    curves, fits, expected = [], [], []
    for _ in range(TRIALS):
        faces, rmse = random_curve(g)
        what = _call_text(faces, rmse)
        got = call(fit_log_linear_student, what, faces.clone(), rmse.clone())
        fits.append(_as_pair(got, what))
        curves.append((faces, rmse))
        expected.append(reference_fit(faces, rmse))
    for got, ref, (faces, rmse) in zip(fits, expected, curves, strict=True):
        if not all(math.isfinite(v) for v in got):
            raise CheckFailed(f"{_call_text(faces, rmse)}: got (slope, intercept) = {got}: "
                              "expected finite numbers")
        if not _close(got, ref, TOLERANCE):
            hint = _fit_hint(fits, curves, expected)
            raise CheckFailed(f"{_call_text(faces, rmse)}: got (slope, intercept) = "
                              f"({got[0]:.6g}, {got[1]:.6g}), expected ({ref[0]:.6g}, "
                              f"{ref[1]:.6g}) to {TOLERANCE:g} relative{hint}")
    passed(f"fit(faces, rmse) gives the package's fit_log_linear (slope per doubling, intercept) "
           f"on {TRIALS} fresh random learning curves, to {TOLERANCE:g} relative")


__all__ = ["TOLERANCE", "TRIALS", "check_log_linear_fit", "random_curve", "reference_fit"]
