"""analysis/curves.py: the log-linear learning-curve fit and the faces a goal would take."""

import json
import math

import numpy as np
import pytest

from e2far_lite.analysis import GOALS, faces_for_goals, fit_log_linear
from e2far_lite.paths import data_dir


def test_fit_recovers_a_known_line_and_inverts_it():
    faces = [2.0 ** k for k in range(14, 21)]
    errors = [5.0 - 0.25 * math.log2(n) for n in faces]
    fit = fit_log_linear(faces, errors)
    assert fit.per_doubling == pytest.approx(-0.25)
    assert fit.intercept == pytest.approx(5.0)
    assert fit.residual_sd == pytest.approx(0.0, abs=1e-9)
    assert fit.faces_range == (2.0 ** 14, 2.0 ** 20)
    assert fit.at(2.0 ** 22) == pytest.approx(-0.5)
    for target in (0.1, 1.0, 1.5):  # faces_for is the inverse of at
        assert fit.at(fit.faces_for(target)) == pytest.approx(target)


def test_a_curve_that_does_not_fall_never_reaches_a_lower_goal():
    fit = fit_log_linear([1000, 2000, 4000], [2.0, 2.1, 2.2])
    assert fit.per_doubling > 0
    assert fit.faces_for(1.0) == math.inf


@pytest.mark.parametrize("faces, errors, name", [
    ([1000, 2000], [1.0], "errors"),
    ([1000], [1.0], "faces"),
    ([1000, 1000], [1.0, 2.0], "faces"),
    ([0, 1000], [1.0, 2.0], "faces"),
    ([1000, 2000], [1.0, float("nan")], "errors"),
])
def test_bad_curves_are_refused_by_name(faces, errors, name):
    with pytest.raises(ValueError, match=f"^{name}: expected"):
        fit_log_linear(faces, errors)


def test_goals_from_the_shipped_curve_match_a_fit_by_hand():
    record = json.loads((data_dir() / "e2far_lite.json").read_text())
    training = record["training"]
    end = training["stages"][0]["faces_seen"]
    rows = [r for r in training["curve"] if 288_000 <= r["faces"] <= end]
    fits = faces_for_goals(record)
    assert set(fits) == {key for key, _, _ in GOALS}
    for key, kind, value in GOALS:
        goal = value * training["curve_mean_shape"][key] if kind == "ratio" else value
        # the line by an independent least-squares solve, and where it meets the goal
        x = np.log2([r["faces"] for r in rows])
        design = np.stack([np.ones_like(x), x], axis=1)
        (intercept, slope), *_ = np.linalg.lstsq(design, [r[key] for r in rows], rcond=None)
        assert fits[key]["goal"] == pytest.approx(goal)
        assert fits[key]["reached"] == rows[-1][key]
        assert fits[key]["per_doubling"] == pytest.approx(slope)
        assert fits[key]["intercept"] == pytest.approx(intercept)
        assert fits[key]["faces"] == pytest.approx(2 ** ((goal - intercept) / slope), rel=1e-6)
        assert len(rows) >= 20 and rows[0]["faces"] == 288_000
        # the line crosses the goal beyond what was trained: the goals are not met yet
        assert fits[key]["faces"] > end
