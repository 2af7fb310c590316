"""Headless tests of widgets.py: the model explorer, the redraw coalescer, the live loss plot."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
from helpers_models import make_blend_model

from e2far_lite.ui.widgets import (
    FitPlots,
    LossCurve,
    ModelExplorer,
    Redraw,
    label_style,
    log_ticks,
)


def test_redraw_draws_the_latest_only():
    """Requests during a draw merge into one more draw, which sees the latest value."""
    seen, value, release = [], [0], threading.Event()

    def draw():
        release.wait(5)
        seen.append(value[0])

    redraw = Redraw(draw)
    for k in range(1, 21):
        value[0] = k
        redraw.request()
    release.set()
    redraw.wait()
    assert seen[-1] == 20 and len(seen) <= 2 and redraw.draws == len(seen)
    redraw.request()
    redraw.wait()
    assert seen[-1] == 20 and redraw.draws == len(seen)


def test_redraw_reports_errors_and_recovers():
    calls = []

    def draw():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("broken redraw")

    redraw = Redraw(draw)
    redraw.request()
    with pytest.raises(RuntimeError, match="broken redraw"):
        redraw.wait()
    redraw.request()
    redraw.wait()  # the error was reported once; the next draw works
    assert len(calls) == 2


def test_label_style_fits_the_longest_name():
    width = label_style(["id 0", "mouthLowerDown_L"])["description_width"]
    assert width.endswith("ch") and float(width[:-2]) >= len("mouthLowerDown_L")


def test_model_explorer_sliders_and_layout():
    model = make_blend_model()
    explorer = ModelExplorer(model, num_identity=2, blendshapes=("jawOpen", "eyeBlink_R"))
    assert [s.description for s in explorer.sliders] == ["id 0", "id 1", "jawOpen",
                                                         "eyeBlink_R"]
    for slider in explorer.sliders:
        assert slider.tooltip and slider.layout.width == "100%"
        assert slider.style.description_width == explorer.sliders[0].style.description_width
    assert explorer.widget.layout.flex_flow == "row wrap"
    controls, plots = explorer.widget.children
    assert controls.layout.min_width and controls.layout.width is None  # flexible, not fixed
    assert isinstance(plots.children[-1], FitPlots) and plots.children[0] is explorer.figure
    assert explorer.figure.layout.width is None  # the box's width, measured in the browser
    assert explorer.figure._config["scrollZoom"] is False
    x_before = np.array(explorer.figure.data[0].x)
    explorer.exp_sliders[0].value = 1.0
    explorer.wait()
    vertices, _ = explorer.shape()
    np.testing.assert_allclose(explorer.figure.data[0].y, vertices[0, :, 1].numpy(), atol=1e-5)
    explorer.reset()
    explorer.wait()
    np.testing.assert_allclose(explorer.figure.data[0].x, x_before, atol=1e-5)


@pytest.mark.parametrize("low, high", [(3.0, 20.0), (0.5, 2000.0), (1e-4, 1e3), (2.0, 2.5),
                                       (0.01, 0.9), (1.0, 1e12), (0.07, 0.3)])
def test_log_ticks_are_few_and_inside(low, high):
    ticks = log_ticks(low, high)
    assert 1 <= len(ticks) <= 6 and ticks == sorted(ticks)
    assert all(low * (1 - 1e-9) <= t <= high * (1 + 1e-9) for t in ticks)
    if math.log10(high / low) >= 1:
        assert len(ticks) >= 2
    with pytest.raises(ValueError, match="low, high"):
        log_ticks(0.0, 1.0)


def test_loss_curve_axes_ticks_and_legend():
    curve = LossCurve()
    layout = curve.figure.layout
    assert layout.xaxis.title.text == layout.xaxis2.title.text == "training step"
    assert "mm²" in layout.yaxis.title.text and "(mm)" in layout.yaxis2.title.text
    assert layout.legend.x > 1 and layout.legend.xanchor == "left"  # right of both plots
    assert curve.figure._config["scrollZoom"] is False
    for step in range(0, 500, 50):
        row = {f"loss_{t}": 1000.0 / (1 + step) ** (0.5 + i / 4)
               for i, t in enumerate(LossCurve.TERMS)}
        if step % 100 == 0:
            row.update({f"val_{k}_mm": 5.0 - step / 200 for k in LossCurve.VALIDATION})
        curve.callback(step, row)
    data = curve.figure.data
    assert list(data[0].x) == list(range(0, 500, 50)) and list(data[4].x) == [0, 100, 200, 300,
                                                                             400]
    ticks = list(layout.yaxis.tickvals)
    values = [v for trace in data[:4] for v in trace.y]
    assert 2 <= len(ticks) <= 6 and min(values) <= ticks[0] and ticks[-1] <= max(values)
    assert list(layout.yaxis.ticktext) == [f"{t:g}" for t in ticks]


def test_loss_curve_skips_missing_values():
    curve = LossCurve()
    curve.callback(0, {"loss_total": float("nan"), "val_total_mm": 4.0})
    assert list(curve.figure.data[0].y) == [] and list(curve.figure.data[4].y) == [4.0]


def test_loss_curve_says_it_waits_for_the_first_validation():
    curve = LossCurve()
    layout = curve.figure.layout
    assert any(a.text == "waiting for the first validation" for a in layout.annotations)
    assert layout.yaxis2.showticklabels is False  # no empty 0-1 axis
    curve.callback(25, {"loss_total": 3.0})  # a resumed run logs before it validates
    assert any(a.text == "waiting for the first validation" for a in layout.annotations)
    curve.callback(50, {"loss_total": 2.0, "val_total_mm": 4.0})
    assert [a.text for a in curve.figure.layout.annotations] == ["training loss", "validation"]
    assert curve.figure.layout.yaxis2.showticklabels is True
