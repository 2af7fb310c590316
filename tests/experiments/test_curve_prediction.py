"""experiments/curve_prediction.py: the committed prediction is the shipped record's fit, and a
longer run's curve is compared with it point by point."""

import json
import math
import runpy

import pytest

from e2far_lite.analysis.curves import faces_for_goals
from e2far_lite.errors import BadInput
from e2far_lite.paths import REPO_ROOT

SCRIPT = runpy.run_path(str(REPO_ROOT / "experiments" / "curve_prediction.py"))
RECORD = json.loads((REPO_ROOT / "experiments" / "curve_prediction.json").read_text())


def _history(baseline, values, batch=32, every=1000, steps=80_000):
    """A run's history.json with validation rows whose figures are ``values(faces)``."""
    rows = [{"step": step, **{f"val_{k}": v for k, v in values(step * batch).items()}}
            for step in range(every, steps + 1, every)]
    rows += [{"step": step, "loss_total": 1.0} for step in range(50, steps, every)]  # no val_
    return {"config": {"batch_size": batch}, "baseline": baseline, "rows": rows,
            "steps_done": steps, "steps_planned": steps}


def test_the_committed_prediction_is_the_fit_it_names():
    prediction = RECORD["prediction"]
    fitted_on = prediction["fitted_on"]
    assert fitted_on["preset"] == "cpu-full" and fitted_on["from_faces"] == 288_000
    # made from the shipped record's first stage while it was the cpu-full one
    shipped = json.loads((REPO_ROOT / "data" / "e2far_lite.json").read_text())
    if shipped["training"]["stages"][0]["preset"] == "cpu-full":
        for key, line in faces_for_goals(shipped).items():
            assert prediction["lines"][key] == pytest.approx(line)


def test_a_run_on_the_line_matches_it_and_reaches_the_goals_where_it_says():
    prediction = RECORD["prediction"]
    lines = prediction["lines"]

    def on_the_line(faces):
        return {k: SCRIPT["line_at"](line, faces) for k, line in lines.items()}

    out = SCRIPT["compare"](prediction, _history(prediction["mean_shape"], on_the_line,
                                                 steps=400_000), "toy")
    assert out["points"][0]["faces"] == 288_000  # from 288,000 faces on: step 9000
    assert out["faces_seen"] == 400_000 * 32
    for point in out["points"]:
        for key in lines:
            assert point[key]["measured"] == pytest.approx(point[key]["predicted"])
    for goal in out["goals"].values():
        if goal["predicted_faces"] <= out["faces_seen"]:  # the first point past the crossing
            assert 0 <= goal["measured_faces"] - goal["predicted_faces"] <= 32_000
        else:
            assert goal["measured_faces"] is None
    assert math.isclose(out["goals"]["nme_pct"]["predicted_faces"],
                        lines["nme_pct"]["faces"])


def test_a_run_on_other_validation_faces_is_refused():
    prediction = RECORD["prediction"]
    other = {k: 1.1 * v for k, v in prediction["mean_shape"].items()}
    with pytest.raises(BadInput, match="history"):
        SCRIPT["compare"](prediction, _history(other, lambda f: {
            k: 1.0 for k in prediction["lines"]}), "other")
