"""Notebook 08's upload widget, kernel side: complete pictures, face box fields, messages.

The picture used to be a pyplot figure, which JupyterLab's widget messages, handled on a
kernel subshell thread, drew at the same time through IPython's ``post_execute`` hooks
(``pyplot.draw_all`` and the inline backend's ``flush_figures``): PNGs came out cut off, blank
or of another size. Here a thread does what those hooks do while the widget makes its picture
10 times; every PNG must be whole.
"""

from __future__ import annotations

import datetime
import io
import threading

import matplotlib
import numpy as np
import pytest
import skimage.data
from PIL import Image

from e2far_lite.ui import PhotoUpload, overlay_png
from e2far_lite.ui.photo_view import BOX_TIPS

matplotlib.use("Agg")
ASTRONAUT_FACE = (180, 70, 90, 100)  # the face area of skimage.data.astronaut(), by eye
SIZE = 3.0  # inches at 100 dpi: small pictures, quick tests


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def astronaut_png() -> bytes:
    return png_bytes(skimage.data.astronaut())


def upload(view: PhotoUpload, content: bytes, name: str) -> None:
    """What the browser's file picker does: set the FileUpload's value (ipywidgets 8)."""
    view.upload.value = ({"name": name, "type": "image/png", "size": len(content),
                          "content": memoryview(content),
                          "last_modified": datetime.datetime.now(datetime.timezone.utc)},)


def rgba(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


def assert_whole(png: bytes, width: int, height: int, drawn_share: float = 0.8) -> np.ndarray:
    """The PNG is width x height px (height ±1: rounding), opaque everywhere, and the photo
    fills at least ``drawn_share`` of the rows."""
    pixels = rgba(png)
    assert pixels.shape[1] == width and abs(pixels.shape[0] - height) <= 1, \
        f"{pixels.shape[1]} x {pixels.shape[0]} px, expected {width} x {height}"
    opaque = (pixels[..., 3] == 255).all(1)
    assert opaque.all(), f"transparent rows: {np.flatnonzero(~opaque)[:10]}..."
    drawn = (pixels[..., :3] < 250).any(-1).any(1)  # rows with something on white
    assert drawn.mean() > drawn_share, f"only {int(drawn.sum())} of {height} rows drawn"
    return pixels


class PostExecuteHooks:
    """A thread that does, over and over, what IPython's ``post_execute`` hooks do when a
    widget message is handled on a kernel subshell: draw every pyplot figure, then save each
    as a PNG (the inline backend's ``flush_figures``). Records the most figures it saw."""

    def __init__(self) -> None:
        self.most = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        from matplotlib._pylab_helpers import Gcf

        while not self.stop.is_set():
            managers = Gcf.get_all_fig_managers()
            self.most = max(self.most, len(managers))
            for manager in managers:
                try:
                    manager.canvas.draw_idle()
                    manager.canvas.figure.savefig(io.BytesIO(), format="png",
                                                  bbox_inches="tight")
                except Exception:  # a figure closed under us: the race this test is about
                    pass
            self.stop.wait(0.01)

    def __enter__(self) -> PostExecuteHooks:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(10)


@pytest.mark.slow  # a few seconds: CI runs it, the fast lane does not
def test_the_upload_picture_is_whole_ten_times(smoke, astronaut_png):
    """The same photo uploaded 10 times while the hooks draw: 10 whole, identical pictures,
    and never a pyplot figure the hooks could draw."""
    import matplotlib.pyplot as plt

    plt.close("all")  # figures other tests left open are not this upload's
    view = PhotoUpload(*smoke, size=SIZE)
    side = round(SIZE * 100)
    figures_before = plt.get_fignums()
    pictures = []
    with PostExecuteHooks() as hooks:
        for _ in range(10):
            upload(view, astronaut_png, "astronaut.png")
            assert "1 face(s) found" in view.message.value, view.message.value
            pictures.append(view.picture.value)
    assert hooks.most == 0, "the upload picture was a pyplot figure: other threads draw those"
    assert plt.get_fignums() == figures_before
    assert view.upload.value == ()  # cleared, so that the same file runs again
    first = assert_whole(pictures[0], side, side)
    for i, png in enumerate(pictures[1:], start=1):
        assert np.array_equal(assert_whole(png, side, side), first), f"upload {i} differs"


def test_overlay_png_size_follows_the_photo(smoke):
    """The longer side is size x dpi px, for landscape and portrait photos alike."""
    _, model, _ = smoke
    wide = np.full((60, 120, 3), 90, np.uint8)
    assert Image.open(io.BytesIO(overlay_png(wide, [], model, size=2.0))).size == (200, 100)
    tall = np.full((120, 60, 3), 90, np.uint8)
    assert Image.open(io.BytesIO(overlay_png(tall, [], model, size=2.0))).size == (100, 200)


def test_no_face_asks_for_the_box_fields_and_uses_them(smoke, astronaut_png):
    """A photo without a face: the message points at the box fields (no ``box=`` argument);
    the picture has pixel axes; the box typed in is used by the button and the next upload."""
    view = PhotoUpload(*smoke, size=SIZE)
    wall = np.full((90, 160, 3), 128, np.uint8)
    upload(view, png_bytes(wall), "wall.png")
    message = view.message.value
    assert "No face found in wall.png (160 × 90 px)" in message
    assert "box fields" in message and "reconstruct" in message and "box=" not in message
    assert_whole(view.picture.value, round(SIZE * 100), round(SIZE * 100 * 90 / 160), 0.5)
    assert not view.again.disabled
    upload(view, astronaut_png, "astronaut.png")
    assert "1 face(s) found" in view.message.value
    detected = view.faces[0].box
    for key, value in zip("xywh", ASTRONAUT_FACE, strict=True):
        view.box[key].value = value
    view.again.click()
    assert "the face in the box (x, y, w, h) = (180, 70, 90, 100)" in view.message.value
    assert view.faces[0].box == tuple(float(v) for v in ASTRONAUT_FACE) != detected
    upload(view, astronaut_png, "astronaut.png")  # the next photo uses the box too
    assert view.faces[0].box == tuple(float(v) for v in ASTRONAUT_FACE)
    view.box["w"].value = 0  # back to the detector
    view.run()
    assert "1 face(s) found" in view.message.value and view.faces[0].box == detected
    view.box["w"].value, view.box["x"].value = 90, 600
    view.run()
    assert "starts outside the photo (512 × 512 px): x must be under 512" in view.message.value


def test_messages_name_the_file_once(smoke):
    """A file that is not an image: its name once, then what is wrong."""
    view = PhotoUpload(*smoke, size=SIZE)
    upload(view, b"hello, not a picture", "notanimage.png")
    text = view.message.value
    assert text.count("notanimage.png") == 1, text
    assert "notanimage.png: not an image file" in text
    assert view.picture.layout.display == "none"  # nothing drawn yet
    assert view.again.disabled  # no photo to reconstruct again


def test_every_control_has_a_tooltip(smoke):
    """No "null" tooltips: the upload button, the box fields and the button say what they do."""
    view = PhotoUpload(*smoke)
    controls = [view.upload, view.again, *view.box.values()]
    assert all(isinstance(c.tooltip, str) and len(c.tooltip) > 20 for c in controls)
    assert [view.box[key].tooltip for key in "xywh"] == list(BOX_TIPS.values())
