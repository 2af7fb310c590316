"""Notebook 07's widgets in a real JupyterLab (headless Chromium) on a 1280 x 720 laptop screen
with the file browser open: the TapMixer fits on screen with its colour bar clear of plotly's
toolbar, its colour scale stays fixed when a tap moves, and the attribution view follows its
menus and names the same tap as the printed ablation.

Runs like ``tests/notebooks/test_browser.py`` (its helpers in ``tests/browser_helpers.py``):
smoke mode, one Run All for all the tests here, screenshots in ``$E2FAR_ARTIFACTS`` (default: a tmp
folder). Skips where Playwright or chromium is missing, fails instead under
``E2FAR_REQUIRE_BROWSER=1``. About 1.5 min on a busy 2-core CPU.
"""

from __future__ import annotations

import re
import time

import pytest
from browser_helpers import (
    PANEL,
    VIEWPORT,
    error_outputs,
    figures_beside,
    notebook_run,
    press,
    readout,
    slider,
    visible_area,
)

from e2far_lite.paths import REPO_ROOT

REPO = REPO_ROOT
NOTEBOOKS = REPO / "notebooks"
NOTEBOOK = "07_which_layers_drive_expression.ipynb"
RUN_ALL_TIMEOUT_S = 600  # smoke mode on a busy 2-core CPU
ANSWER = re.compile(r"the tap whose mean ablation costs most: (pool\d)")

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not (NOTEBOOKS / NOTEBOOK).exists(),
                                 reason="notebook 07 is not in this checkout")]


@pytest.fixture(scope="module")
def page(browser, lab):
    """Notebook 07 open in JupyterLab (smoke mode) and run once, for every test here."""
    with notebook_run(browser, lab, NOTEBOOK, RUN_ALL_TIMEOUT_S) as opened:
        yield opened


def _mixer(page):
    """The TapMixer's outer box (the innermost box holding both a tap slider and a plot)."""
    boxes = page.locator(f"{PANEL} .widget-box",
                         has=page.locator(".widget-label:text-is('pool5 ×')"))
    return boxes.filter(has=page.locator(".js-plotly-plot")).last


def _mesh(page):
    return figures_beside(page, "pool5 ×").first


def _colour_scale(mesh) -> dict:
    """The mesh's colour range as plotly holds it and the colour bar's tick labels."""
    return mesh.evaluate(
        """(gd) => ({cmin: gd.data[0].cmin, cmax: gd.data[0].cmax,
                     ticks: [...gd.querySelectorAll('.colorbar .cbaxis text, .colorbar .ytick text,'
                                                   + ' .colorbar .xtick text')]
                            .map(t => t.textContent),
                     moved: Math.max(...gd.data[0].intensity)})""")


def _overlap(a: dict, b: dict) -> bool:
    return not (a["right"] <= b["left"] or b["right"] <= a["left"]
                or a["bottom"] <= b["top"] or b["bottom"] <= a["top"])


def _drawn_or_xfail(mesh, seconds: float = 30.0) -> None:
    """Wait until the mesh figure holds its trace; else record the known race as an xfail.

    On a first Run All under load the page can draw a FigureWidget before its data arrives
    (empty axes); :class:`~e2far_lite.ui.layer_widgets.RepaintOnDraw` sends the data again
    when the page reports the figure drawn, but that does not always win yet.
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if mesh.evaluate("(gd) => (gd.data || []).length") > 0:
            return
        time.sleep(0.5)
    pytest.xfail("the TapMixer's mesh came up as empty axes (first-Run-All race)")


def test_tap_mixer_fits_the_screen_with_its_colour_bar_clear(page, artifacts):
    mixer = _mixer(page)
    mixer.scroll_into_view_if_needed()
    time.sleep(1.5)  # the figures measure their boxes again
    area, box = visible_area(page), mixer.bounding_box()
    # scroll the notebook so that the widget's top meets the top of the visible area
    page.evaluate(
        """([panel, shift]) => {
            const outer = document.querySelector(panel + ' .jp-WindowedPanel-outer')
                || document.querySelector(panel + ' .jp-Notebook');
            outer.scrollTop += shift;
        }""", [PANEL, box["y"] - area["top"] - 4])
    time.sleep(1.0)
    area, box = visible_area(page), mixer.bounding_box()
    page.screenshot(path=str(artifacts / "07_tap_mixer_page.png"))
    print(f"TapMixer {box['width']:.0f} x {box['height']:.0f} px at y={box['y']:.0f}; the "
          f"notebook shows y={area['top']:.0f}..{area['bottom']:.0f} at {VIEWPORT}")
    assert box["height"] <= area["bottom"] - area["top"], "the TapMixer is taller than the screen"
    assert box["y"] >= area["top"] - 1 and box["y"] + box["height"] <= area["bottom"] + 1
    assert box["x"] >= area["left"] - 1 and box["x"] + box["width"] <= area["right"] + 1
    # plotly's toolbar shows while the mouse is over the figure: the colour-bar title must not
    # lie under it
    mesh = _mesh(page)
    _drawn_or_xfail(mesh)
    mesh.hover()
    time.sleep(0.5)
    rects = mesh.evaluate(
        """(gd) => {
            const rect = (e) => { const r = e.getBoundingClientRect();
                                  return {left: r.left, right: r.right, top: r.top,
                                          bottom: r.bottom}; };
            const title = [...gd.querySelectorAll('.colorbar text')]
                .find(t => t.textContent.includes('moved'));
            const bar = gd.querySelector('.modebar');
            return {title: title ? rect(title) : null, modebar: bar ? rect(bar) : null};
        }""")
    assert rects["title"] is not None, "no 'moved (mm)' colour-bar title"
    if rects["modebar"] is not None:
        assert not _overlap(rects["title"], rects["modebar"]), rects


def test_tap_mixer_colour_scale_stays_fixed(page, artifacts):
    mesh = _mesh(page)
    mesh.scroll_into_view_if_needed()
    _drawn_or_xfail(mesh)
    before = _colour_scale(mesh)
    control = slider(page, "pool5 ×")
    start = readout(control)
    press(control, "ArrowLeft", 20)
    deadline = time.monotonic() + 60
    after = before
    while time.monotonic() < deadline:  # until the redraw has reached the page
        time.sleep(0.5)
        after = _colour_scale(mesh)
        if after["moved"] != before["moved"]:
            break
    mesh.screenshot(path=str(artifacts / "07_tap_mixer_mesh_pool5_low.png"))
    print(f"pool5 × {start} -> {readout(control)}: largest move {before['moved']:.4f} -> "
          f"{after['moved']:.4f} mm; colour scale {before['cmin']}..{before['cmax']} -> "
          f"{after['cmin']}..{after['cmax']} mm, ticks {after['ticks']}")
    assert readout(control) != start and after["moved"] != before["moved"], "nothing redrew"
    assert (after["cmin"], after["cmax"]) == (before["cmin"], before["cmax"]) == (0, before["cmax"])
    assert after["ticks"] == before["ticks"] and after["ticks"], "the colour bar's ticks changed"


def test_attribution_view_follows_its_menus_and_agrees_with_the_print(page, artifacts):
    figure = page.locator(f"{PANEL} .js-plotly-plot",
                          has=page.locator(".annotation-text:text-is('expression vs identity')"))
    figure.scroll_into_view_if_needed()
    reading = page.locator(f"{PANEL} .widget-html", has=page.locator(".e2far-ablation"))
    bars = "(gd) => gd.data.slice(0, 3).map(t => Array.from(t.y))"

    def choose(label: str, option: str) -> tuple[list, str]:
        before_bars, before_text = figure.evaluate(bars), reading.inner_text()
        menu = page.locator(f"{PANEL} .widget-dropdown",
                            has=page.locator(f".widget-label:text-is('{label}')"))
        menu.locator("select").select_option(label=option)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.3)
            if figure.evaluate(bars) != before_bars and reading.inner_text() != before_text:
                break
        return figure.evaluate(bars), reading.inner_text()

    first_bars, first_text = figure.evaluate(bars), reading.inner_text()
    face_bars, face_text = choose("faces", "face 1")
    assert face_bars != first_bars and face_text != first_text, "choosing a face changed nothing"
    assert "For face 1" in face_text
    silenced_bars, silenced_text = choose("measure",
                                          "silence a fusion tap (its mean over these faces)")
    assert silenced_bars != face_bars and "mean ablation" in silenced_text
    assert silenced_bars[1] == [0, 0, 0, 0, 0]  # the identity never reads the fusion CNN
    figure.screenshot(path=str(artifacts / "07_attribution_view.png"))
    # the tap the widget names is the tap the notebook printed
    shown = ANSWER.search(reading.inner_text())
    # textContent: JupyterLab skips the rendering of cells out of view (no innerText there)
    printed = [ANSWER.search(text) for text in page.locator(
        f"{PANEL} .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stdout']"
    ).all_text_contents()]
    printed = [m.group(1) for m in printed if m]
    print(f"widget: {shown and shown.group(0)}; printed: {printed}")
    assert shown and printed and set(printed) == {shown.group(1)}
    assert error_outputs(page) == []
