"""Notebook 08's upload widget in a real JupyterLab, driven by headless Chromium.

Like tests/notebooks/test_browser.py (same helpers, same rules): JupyterLab on 127.0.0.1 over a
temporary copy of ``notebooks/`` in smoke mode, Debian's chromium through Playwright on a 1280 x
720 page with the file browser open. Notebook 08 is run from the Run menu; then the same photo
is uploaded 10 times through the widget's file picker, and each picture the browser shows must
be whole: the PNG behind it opaque and of the right size, the photo on most rows (JupyterLab
sends widget messages over a kernel subshell, which used to draw the picture while it was being
saved: cut off, blank or of another size). Also: a file that is not an image, a photo without a
face and the face box fields, tooltips, and the widget inside the notebook's width. Skips
without Playwright or chromium, fails instead under ``E2FAR_REQUIRE_BROWSER=1``. About 3 min on
a busy 2-core CPU. Screenshots go to ``$E2FAR_ARTIFACTS`` (default: the test's tmp folder).
"""

from __future__ import annotations

import base64
import io
import time
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from browser_helpers import (
    PANEL,
    VIEWPORT,
    error_outputs,
    label_report,
    notebook_run,
)
from PIL import Image

from e2far_lite.paths import REPO_ROOT
from e2far_lite.ui.photo_view import PICTURE_SIZE

REPO = REPO_ROOT
NOTEBOOKS = REPO / "notebooks"
NOTEBOOK_08 = "08_real_photos.ipynb"
RUN_ALL_TIMEOUT_S = 600  # smoke mode on a busy 2-core CPU
PICTURE_TIMEOUT_S = 120  # one reconstruction on a busy CPU, with margin
UPLOADS = 10
PICTURE_SIDE = round(100 * PICTURE_SIZE)  # px: the widget's picture of a square photo

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not (NOTEBOOKS / NOTEBOOK_08).exists(),
                                 reason="notebook 08 is not in this checkout")]


@pytest.fixture(scope="module")
def page(browser, lab):
    """Notebook 08 open in JupyterLab (smoke mode) and run once, for every test here."""
    with notebook_run(browser, lab, NOTEBOOK_08, RUN_ALL_TIMEOUT_S) as opened:
        opened.locator(f"{PANEL} .widget-upload").scroll_into_view_if_needed()
        yield opened


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("uploads")
    paths = {"astronaut": folder / "astronaut.png", "wall": folder / "wall.png",
             "text": folder / "notanimage.png"}
    Image.fromarray(skimage.data.astronaut()).save(paths["astronaut"])
    Image.fromarray(np.full((300, 400, 3), 128, np.uint8)).save(paths["wall"])
    paths["text"].write_text("hello, not a picture\n")
    return paths


def widget(page):
    """The upload widget: the innermost widget box holding the upload button."""
    return page.locator(f"{PANEL} .widget-vbox", has=page.locator(".widget-upload")).last


def pick(page, path: Path) -> None:
    """Click the upload button and choose ``path`` in the file dialog, as a student does."""
    with page.expect_file_chooser() as chooser:
        page.locator(f"{PANEL} .widget-upload").click()
    chooser.value.set_files(str(path))


def message(page) -> str:
    return widget(page).locator(".widget-html").last.inner_text()


def wait_for_message(page, *needles: str, timeout_s: float = PICTURE_TIMEOUT_S) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = message(page)
        if any(needle in text for needle in needles):
            return text
        time.sleep(0.2)
    raise AssertionError(f"no {needles} in the widget's message after {timeout_s} s: "
                         f"{message(page)!r}")


def picture(page, previous: str | None = None) -> tuple[str, bytes, dict]:
    """The widget's picture once it shows one other than ``previous`` (its blob URL): the
    URL, the PNG's bytes and the picture's box on the page."""
    image = widget(page).locator("img.widget-image")
    deadline = time.monotonic() + PICTURE_TIMEOUT_S
    while time.monotonic() < deadline:
        state = image.evaluate("(img) => ({src: img.src, shown: img.offsetParent !== null, "
                               "done: img.complete && img.naturalWidth > 0})")
        if state["shown"] and state["done"] and state["src"] != previous:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"no new picture after {PICTURE_TIMEOUT_S} s: {message(page)!r}")
    data = image.evaluate("""async (img) => {
        const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
        let text = '';
        for (const b of bytes) text += String.fromCharCode(b);
        return btoa(text);
    }""")
    box = image.evaluate("""(img) => {
        const r = img.getBoundingClientRect();
        const notebook = img.closest('.jp-Notebook').getBoundingClientRect();
        return {left: r.left, right: r.right, width: r.width, height: r.height,
                natural: [img.naturalWidth, img.naturalHeight], notebook: notebook.right};
    }""")
    return state["src"], base64.b64decode(data), box


def whole(png: bytes) -> tuple[tuple[int, int], int, int]:
    """(width, height), transparent rows, rows with something drawn on white."""
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))
    transparent = int((pixels[..., 3] < 255).any(1).sum())
    drawn = int((pixels[..., :3] < 250).any(-1).any(1).sum())
    return (pixels.shape[1], pixels.shape[0]), transparent, drawn


def geometry(page) -> dict:
    """The widget's height, the notebook's visible height and right edge, the rightmost
    control's right edge (px), and the buttons' tooltips."""
    return widget(page).evaluate("""(w) => {
        const notebook = w.closest('.jp-Notebook').getBoundingClientRect();
        const controls = [...w.querySelectorAll('button, input, .widget-label')];
        return {right: Math.max(...controls.map(c => c.getBoundingClientRect().right)),
                notebook: notebook.right, height: w.getBoundingClientRect().height,
                room: notebook.height,
                titles: [...w.querySelectorAll('button')].map(b => b.title)};
    }""")


def set_box(page, values: tuple[int, int, int, int]) -> None:
    """Type ``values`` into the x, y, w, h box fields (w = 0: the detector finds the faces)."""
    fields = widget(page).locator(".widget-inline-hbox", has=page.locator("input"))
    for label, value in zip("xywh", values, strict=True):
        field = fields.filter(has=page.locator(f".widget-label:text-is('{label}')"))
        field.locator("input").fill(str(value))
        field.locator("input").press("Enter")
    time.sleep(1)  # the values reach the kernel


def test_the_same_photo_ten_times_gives_ten_whole_pictures(page, files, artifacts):
    """Upload the astronaut 10 times: each time a new picture, PICTURE_SIDE px square,
    opaque, drawn on most rows, the same as the first; shown at that size (not stretched),
    inside the notebook's width at 1280 x 720; the widget (controls, message, picture) no
    taller than the notebook's view."""
    set_box(page, (0, 0, 0, 0))  # whatever an earlier test typed: the detector finds the face
    previous, first = None, None
    for i in range(UPLOADS):
        pick(page, files["astronaut"])
        src, png, box = picture(page, previous)
        text = wait_for_message(page, "face(s) found", "failed")
        size, transparent, drawn = whole(png)
        (artifacts / f"08_upload_{i}.png").write_bytes(png)
        print(f"upload {i}: {size[0]} x {size[1]} px, {transparent} transparent rows, "
              f"{drawn} drawn; shown {box['width']:.0f} x {box['height']:.0f} px")
        assert "1 face(s) found" in text, text
        assert size == (PICTURE_SIDE, PICTURE_SIDE), f"upload {i}: {size}"
        assert transparent == 0, f"upload {i}: {transparent} transparent rows"
        assert drawn > 0.8 * PICTURE_SIDE, f"upload {i}: {drawn} rows drawn"
        assert abs(box["width"] - PICTURE_SIDE) <= 1 and box["right"] <= box["notebook"] + 1, box
        pixels = np.asarray(Image.open(io.BytesIO(png)))
        if first is None:
            first = pixels
        assert np.array_equal(pixels, first), f"upload {i} differs from the first"
        previous = src
    widget(page).scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "08_upload_page.png"))
    fits = geometry(page)
    print(f"widget {fits['height']:.0f} px high; the notebook shows {fits['room']:.0f} px")
    assert fits["height"] <= fits["room"], "the widget is taller than the notebook's view"
    assert error_outputs(page) == []


def test_a_file_that_is_not_an_image_is_named_once(page, files):
    pick(page, files["text"])
    text = wait_for_message(page, "not an image file")
    assert text.count("notanimage.png") == 1, text


def test_no_face_then_the_box_fields(page, files):
    """A photo without a face asks for the box fields (not a ``box=`` argument); typing a box
    and pressing "reconstruct" reconstructs the face in it."""
    pick(page, files["wall"])
    text = wait_for_message(page, "No face found")
    assert "wall.png (400 × 300 px)" in text and "box fields" in text and "box=" not in text
    set_box(page, (150, 100, 90, 100))
    try:
        widget(page).locator("button:has-text('reconstruct')").click()
        text = wait_for_message(page, "the face in the box", "failed", "outside")
        assert "(x, y, w, h) = (150, 100, 90, 100)" in text, text
    finally:
        set_box(page, (0, 0, 0, 0))  # the detector again, for the tests after this one


def test_the_widget_fits_a_laptop_with_tooltips(page, artifacts):
    """At 1280 x 720 with the file browser open: the controls lie inside the notebook's width,
    their labels whole, and no tooltip reads "null"."""
    box = geometry(page)
    widget(page).screenshot(path=str(artifacts / "08_widget.png"))
    print(box)
    assert box["right"] <= min(box["notebook"], VIEWPORT["width"]) + 1, box
    assert all(title and title != "null" for title in box["titles"]), box["titles"]
    labels = [entry for entry in label_report(page) if entry["text"] in ("x", "y", "w", "h")]
    assert len(labels) == 4, labels
    assert not any(entry["cut"] or not entry["inside"] for entry in labels), labels
    assert all(entry["tooltip"] and entry["tooltip"] != "null" for entry in labels), labels
