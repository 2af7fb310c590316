"""Learning curves: how fast the error falls with the faces seen, and what a goal would take.

Past its first phase (where the network finds the face, its pose and landmarks), a training
run's validation error falls roughly by the same amount each time the faces seen double:
``error ≈ intercept + per_doubling · log2(faces)``. :func:`fit_log_linear` fits that line by
least squares, and :meth:`LogLinearFit.faces_for` reads off how many faces the line needs to
reach a goal. It is an extrapolation of one run: a cosine schedule's last drop, a curve that
flattens, or another input size all move the answer, so it says the order of magnitude, not
the number.

Example (notebook 09 does this with the shipped network's committed curve):

    >>> fit = fit_log_linear([250_000, 500_000, 1_000_000], [3.0, 2.8, 2.6])
    >>> round(fit.per_doubling, 3), round(fit.faces_for(2.2) / 1e6, 1)
    (-0.2, 4.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LogLinearFit:
    """``error = intercept + per_doubling · log2(faces)``, fitted on ``faces_range``."""

    intercept: float  # the line's error at one face (mm, or % for the NME)
    per_doubling: float  # change of the error each time the faces double (< 0: it falls)
    residual_sd: float  # standard deviation of the fitted points about the line
    faces_range: tuple[float, float]  # first and last faces of the fitted points

    def at(self, faces: float) -> float:
        """The line's error after ``faces`` faces."""
        return self.intercept + self.per_doubling * math.log2(faces)

    def faces_for(self, error: float) -> float:
        """Faces the line needs to reach ``error``; ``inf`` where the line does not fall."""
        if self.per_doubling >= 0:
            return math.inf
        return 2.0 ** ((error - self.intercept) / self.per_doubling)


def fit_log_linear(faces: Sequence[float], errors: Sequence[float]) -> LogLinearFit:
    """Least-squares line of ``errors`` against ``log2(faces)``.

    Args:
        faces: N > 1 positive counts of faces seen, not all equal.
        errors: N validation errors at those counts (mm, or %).
    """
    x = np.asarray(faces, dtype=np.float64)
    y = np.asarray(errors, dtype=np.float64)
    if x.ndim != 1 or y.shape != x.shape:
        raise ValueError(f"errors: expected one error per face count ({x.shape}), "
                         f"got shape {y.shape}")
    if len(x) < 2 or not (x > 0).all() or np.ptp(x) == 0:
        raise ValueError(f"faces: expected two or more positive, distinct counts, got "
                         f"{x.tolist()}")
    if not np.isfinite(y).all():
        raise ValueError(f"errors: expected finite numbers, got {y.tolist()}")
    slope, intercept = np.polyfit(np.log2(x), y, 1)
    residuals = y - (intercept + slope * np.log2(x))
    return LogLinearFit(float(intercept), float(slope), float(residuals.std()),
                        (float(x.min()), float(x.max())))


#: The shipped network's accuracy goals on the full distribution: (figure, kind, value), where
#: "ratio" is a multiple of the mean shape's error and "absolute" the figure itself.
GOALS = (("total_sim_mm", "ratio", 0.45), ("expression_mm", "ratio", 0.5),
         ("nme_pct", "absolute", 1.0))


def faces_for_goals(record: dict, start: float = 288_000) -> dict[str, dict[str, float]]:
    """What the shipped network's learning curve says each goal of :data:`GOALS` would take.

    Fits :func:`fit_log_linear` to the validation curve of the record's first stage (plain
    faces, one cosine schedule), from ``start`` faces to the stage's end, for each figure.

    Args:
        record: ``data/e2far_lite.json`` as a dict: ``training.curve`` (rows of ``faces`` and
            the figures), ``training.curve_mean_shape`` and ``training.stages``.
        start: the first face count fitted (past the phase where pose and landmarks are
            learned).

    Returns:
        ``{figure: {"goal", "reached", "intercept", "per_doubling", "residual_sd", "faces"}}``:
        the goal in the figure's unit, the curve's value at the end of the first stage, the
        fitted line (:class:`LogLinearFit`'s fields), and the faces it needs for the goal.
    """
    training = record["training"]
    end = training["stages"][0]["faces_seen"]
    rows = [row for row in training["curve"] if start <= row["faces"] <= end]
    out = {}
    for key, kind, value in GOALS:
        goal = value * training["curve_mean_shape"][key] if kind == "ratio" else value
        fit = fit_log_linear([row["faces"] for row in rows], [row[key] for row in rows])
        out[key] = {"goal": goal, "reached": rows[-1][key], "intercept": fit.intercept,
                    "per_doubling": fit.per_doubling,
                    "residual_sd": fit.residual_sd, "faces": fit.faces_for(goal)}
    return out


__all__ = ["GOALS", "LogLinearFit", "faces_for_goals", "fit_log_linear"]
