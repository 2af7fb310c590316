"""The notebooks in a real JupyterLab, driven by headless Chromium; and run from the repo root.

``@pytest.mark.browser`` tests start ``jupyter lab`` on 127.0.0.1 (random port and token) over a
temporary copy of ``notebooks/`` with ``E2FAR_SMOKE=1``, open a notebook in Debian's chromium
through Playwright on a 1280 x 720 page with the file browser open in the side panel (a laptop
screen), run all cells from the Run menu, and check that moving a slider really redraws the 3D
mesh (two screenshots must differ), that every slider can be grabbed with the mouse and moved,
that no widget label is cut, and that the feature-map rank slider spans each layer's channels.
Each notebook runs once for all its tests. Screenshots go to ``$E2FAR_ARTIFACTS`` (default: the
test's tmp folder); their paths are printed. The tests skip, saying why, where Playwright or
chromium is missing (``apt-get install chromium``, ``pip install playwright``; Playwright's own
browser download is not needed), and fail instead under ``E2FAR_REQUIRE_BROWSER=1`` (CI).
About 2 min on a busy 2-core CPU: 01 ~40 s, 07 ~60 s.
"""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest
from browser_helpers import (
    PANEL,
    VIEWPORT,
    all_sliders,
    drag,
    error_outputs,
    figures_beside,
    label_report,
    open_notebook,
    pixel_difference,
    plot_report,
    press,
    readout,
    run_all_cells,
    screenshot_when_changed,
    shutdown_kernels,
    slider,
    slider_geometry,
    visible_area,
)
from nbclient import NotebookClient

from e2far_lite.paths import REPO_ROOT

REPO = REPO_ROOT
NOTEBOOKS = REPO / "notebooks"
RUN_ALL_TIMEOUT_S = 600  # smoke mode on a busy 2-core CPU
NOTEBOOK_01 = "01_morphable_model.ipynb"
NOTEBOOK_07 = "07_which_layers_drive_expression.ipynb"
NOTEBOOK_05 = "05_multitask_loss_and_training.ipynb"
needs_07 = pytest.mark.skipif(not (NOTEBOOKS / NOTEBOOK_07).exists(),
                              reason="notebook 07 is not in this checkout")


@pytest.fixture(scope="module")
def notebook(browser, lab):
    """``notebook(name)``: a page with notebook ``name`` open and run, once for all its tests.

    Opening another notebook closes the previous page and stops its kernel.
    """
    base, token = lab
    open_pages: dict[str, object] = {}

    def close() -> None:
        for page in open_pages.values():
            page.close()
        open_pages.clear()
        shutdown_kernels(base, token)

    def get(name: str):
        if name not in open_pages:
            close()
            started = time.perf_counter()
            page = open_notebook(browser, base, token, name)
            open_pages[name] = page
            seconds = run_all_cells(page, RUN_ALL_TIMEOUT_S)
            print(f"{name}: all cells ran in {seconds:.1f} s "
                  f"({time.perf_counter() - started:.1f} s with the page)")
        page = open_pages[name]
        assert error_outputs(page) == []
        return page

    yield get
    close()


def _drive(page, artifacts: Path, notebook: str, label: str, key: str,
           presses: int) -> list[float]:
    """Press ``key`` on slider ``label`` of the open ``notebook``; returns, for each plotly
    figure of that widget, the share of its pixels that changed."""
    control = slider(page, label)
    control.wait_for(timeout=60_000)
    figures = figures_beside(page, label)
    figures.first.scroll_into_view_if_needed()
    figures.first.locator(".main-svg").first.wait_for(timeout=60_000)  # plotly has drawn
    time.sleep(2)  # WebGL's first frame
    stem = Path(notebook).stem[:2]
    befores = []
    for i in range(figures.count()):
        befores.append(figures.nth(i).screenshot(path=str(artifacts / f"{stem}_{i}_a.png")))
    start_value = readout(control)
    press(control, key, presses)
    released = time.monotonic()
    deadline = released + 30
    while readout(control) == start_value and time.monotonic() < deadline:
        time.sleep(0.2)
    print(f"{label}: {start_value} -> {readout(control)}")
    assert readout(control) != start_value, "the slider did not move"
    changes = []
    for i, before in enumerate(befores):
        after_path = artifacts / f"{stem}_{i}_b.png"
        after = screenshot_when_changed(figures.nth(i), before, after_path)
        changes.append(pixel_difference(before, after))
        print(f"figure {i}: {100 * changes[-1]:.2f}% of the pixels changed, settled "
              f"{time.monotonic() - released:.1f} s after the last key; screenshots "
              f"{artifacts / f'{stem}_{i}_a.png'} {after_path}")
    page.screenshot(path=str(artifacts / f"{stem}_page.png"))  # the 1280 x 720 screen
    return changes


def _check_labels(page) -> list[dict]:
    """Every widget label shows its full text, inside the notebook, with a real tooltip."""
    labels = label_report(page)
    assert labels, "no widget labels found"
    cut = [entry["text"] for entry in labels if entry["cut"]]
    assert not cut, f"labels cut at {VIEWPORT}: {cut}"
    outside = [entry["text"] for entry in labels if not entry["inside"]]
    assert not outside, f"labels outside the notebook's width: {outside}"
    # a slider's tooltip is on its label; ipywidgets shows none for a described dropdown
    assert all(entry["tooltip"] != "null" for entry in labels), labels
    assert all(entry["tooltip"] for entry in labels if entry["slider"]), labels
    return labels


def _check_plots(page) -> list[dict]:
    """Every plotly figure lies inside the notebook's visible width; each widget's is drawn at
    its box's width (not plotly's 700 px fallback)."""
    figures = page.locator(f"{PANEL} .js-plotly-plot")
    for i in range(figures.count()):  # as a reader scrolls past them
        figures.nth(i).scroll_into_view_if_needed()
        time.sleep(0.5)
    deadline = time.monotonic() + 20
    while True:  # the figures re-measure their boxes shortly after they show
        plots = plot_report(page)
        bad = [p for p in plots if p["right"] > p["notebook"] + 1
               or (p["widget"] and abs(p["drawn"] - p["box"]) > 2)]
        if not bad or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert plots and not bad, f"plots not fitted to their boxes at {VIEWPORT}: {bad}"
    return plots


def _grab_every_slider(page) -> int:
    """Drag each slider's handle with the mouse: its value must change, and its handle and
    readout must be on screen, inside the notebook. Returns the number of sliders."""
    sliders = all_sliders(page)
    count = sliders.count()
    assert count > 0
    for i in range(count):
        control = sliders.nth(i)
        name = control.locator(".widget-label").first.inner_text()
        geometry = slider_geometry(control)
        for part in ("handle", "readout"):
            box = geometry[part]
            assert box["width"] > 0 and box["x"] + box["width"] <= geometry["right"] + 1, \
                f"{name}: {part} hidden at {VIEWPORT} ({box}, notebook ends at " \
                f"{geometry['right']})"
        assert geometry["track"]["width"] >= 60, f"{name}: track {geometry['track']}"
        before = readout(control)
        drag(page, control)
        deadline = time.monotonic() + 10
        while readout(control) == before and time.monotonic() < deadline:
            time.sleep(0.1)
        print(f"{name}: dragged {before} -> {readout(control)}")
        assert readout(control) != before, f"{name}: dragging the handle did not move it"
    time.sleep(1)
    assert error_outputs(page) == []
    return count


@pytest.mark.browser
def test_model_explorer_slider_moves_the_mesh(notebook, artifacts):
    """Notebook 01: the jawOpen slider of the ModelExplorer opens the mouth of the 3D mesh."""
    (mesh,) = _drive(notebook(NOTEBOOK_01), artifacts, NOTEBOOK_01,
                     "jawOpen", "ArrowRight", 16)
    assert mesh > 0.01  # an open jaw redraws a good part of the face


@pytest.mark.browser
def test_notebook_01_sliders_fit_a_laptop(notebook):
    """Notebook 01 at 1280 x 720 with the side panel open: every label whole (both
    mouthSmile_L and mouthSmile_R, say), every slider grabbed and moved."""
    page = notebook(NOTEBOOK_01)
    texts = [entry["text"] for entry in _check_labels(page)]
    assert {"id 0", "mouthSmile_L", "mouthSmile_R", "browInnerUp_L"} <= set(texts)
    _check_plots(page)
    assert _grab_every_slider(page) >= 10


@pytest.mark.browser
def test_notebook_05_plots_fit_a_laptop(notebook):
    """Notebook 05 at 1280 x 720 with the side panel open: the live loss plot and every other
    figure inside the notebook's width, drawn at their boxes' width, and no taller than the
    part of the window a notebook shows (so a whole plot fits on screen at once)."""
    page = notebook(NOTEBOOK_05)
    plots = _check_plots(page)
    assert any(p["widget"] for p in plots), "the live loss plot is missing"
    area = visible_area(page)
    figures = page.locator(f"{PANEL} .js-plotly-plot")
    heights = [figures.nth(i).bounding_box()["height"] for i in range(figures.count())]
    assert max(heights) <= area["bottom"] - area["top"], (
        f"plots taller than the notebook's view ({area['bottom'] - area['top']:.0f} px at "
        f"{VIEWPORT}): {heights}")


@pytest.mark.browser
@needs_07
def test_tap_slider_changes_the_prediction(notebook, artifacts):
    """Notebook 07: turning the TapMixer's pool5 tap to 0 redraws the blend-shape bars. (In
    smoke mode the net is barely trained: its mesh moves by hundredths of a millimetre, under one
    step of the mixer's colour scale, which is fixed in millimetres across settings, so the
    mesh's pixels may not change; tests/ui/test_layer_widgets.py checks that its colours do, and
    tests/notebooks/test_browser_07.py that the scale stays fixed on screen.)"""
    _mesh, bars = _drive(notebook(NOTEBOOK_07), artifacts, NOTEBOOK_07,
                         "pool5 ×", "ArrowLeft", 20)
    assert bars > 0.005


@pytest.mark.browser
@needs_07
def test_notebook_07_sliders_fit_a_laptop(notebook):
    """Notebook 07 at 1280 x 720 with the side panel open: labels whole, the attribution view's
    three panels inside the notebook, every slider grabbed and moved."""
    page = notebook(NOTEBOOK_07)
    texts = {entry["text"] for entry in _check_labels(page)}
    assert {"pool4 ×", "pool5 ×", "faces", "shape", "layer", "rank"} <= texts
    plots = _check_plots(page)  # the attribution view's probe panel among them
    assert any("expression vs identity" in p["title"] for p in plots), plots
    assert _grab_every_slider(page) >= 3


@pytest.mark.browser
@needs_07
def test_rank_slider_spans_each_layer(notebook):
    """Notebook 07's feature maps: after another layer is chosen, the End key takes the rank
    slider to that layer's last channel (the title says how many there are)."""
    page = notebook(NOTEBOOK_07)
    title = page.locator(".js-plotly-plot .gtitle", has_text="channel")

    def end_of_range() -> tuple[int, int]:
        control = slider(page, "rank")
        press(control, "End", 1)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            text = title.first.text_content()
            channels = int(text.split(" of ")[1].split()[0])
            if readout(control) == channels - 1 and f" of {channels} " in text:
                break
            time.sleep(0.2)
        return int(readout(control)), channels

    first_end, first_channels = end_of_range()
    assert first_end == first_channels - 1
    menu = page.locator(".widget-dropdown", has=page.locator(".widget-label:text-is('layer')"))
    options = menu.locator("option").all_inner_texts()
    for name in options:
        menu.locator("select").select_option(label=name)
        deadline = time.monotonic() + 20
        while not title.first.text_content().startswith(name) and time.monotonic() < deadline:
            time.sleep(0.2)
        end, channels = end_of_range()
        print(f"{name}: {channels} channels, End -> {end}")
        assert end == channels - 1, f"{name}: End stopped at {end} of {channels} channels"
    assert error_outputs(page) == []


# ------------------------------------------------------------------- working directory
@pytest.mark.slow
def test_a_notebook_runs_from_the_repository_root(monkeypatch):
    """Notebooks must not depend on their folder: run one with the kernel's cwd at the root."""
    monkeypatch.setenv("E2FAR_SMOKE", "1")
    monkeypatch.chdir(REPO)
    nb = nbformat.read(NOTEBOOKS / "00_overview_and_setup.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import os\nprint(os.getcwd())"))
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(REPO)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, errors
    assert nb.cells[-1].outputs[0]["text"].strip() == str(REPO)  # it really ran at the root
