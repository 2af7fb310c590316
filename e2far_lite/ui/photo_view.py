"""Real photos drawn: each face's shaded mesh, landmarks and boxes over the photo, and an upload
widget that reconstructs the photo a student picks (notebook 08).

The upload widget draws its picture on a figure of its own, outside pyplot, and shows the
finished PNG in an ``ipywidgets.Image``. It must not use pyplot: JupyterLab sends widget messages
over a kernel *subshell*, and every widget message the kernel handles there runs IPython's
``post_execute`` hooks in that thread, which draw and show every open pyplot figure. A pyplot
figure made by the upload handler was drawn by that thread while the handler was saving it,
and the PNG came out cut off, blank or of another size.
"""

from __future__ import annotations

import html
import io
import threading
import traceback
from collections.abc import Sequence

import ipywidgets as widgets
import numpy as np
from torch import nn

from ..errors import NoFaceFound
from ..model.morphable_model import MorphableModel
from ..photo.images import load_image
from ..photo.mesh import render_overlay
from ..photo.reconstruction import Reconstruction, reconstruct_faces
from ..train.configs import TrainConfig

#: The upload widget's picture: its longer side in inches at 100 px per inch. 480 px: with the
#: controls above it, it fits a 1280 x 720 laptop screen beside JupyterLab's file browser.
PICTURE_SIZE = 4.8


def _new_figure(figsize: tuple[float, float], pyplot: bool):
    """A figure with one axes: pyplot's (shown by ``plt.show()``), or a bare Agg figure no
    other code knows of (for pictures saved in an event handler)."""
    if pyplot:
        import matplotlib.pyplot as plt  # pyplot picks its backend on import: only when drawing

        return plt.subplots(figsize=figsize)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def overlay_figure(image, faces: Sequence[Reconstruction], model: MorphableModel,
                   alpha: float = 0.65, show_boxes: bool = True, title: str = "",
                   size: float = 6.0, pixel_axes: bool = False, pyplot: bool = True):
    """The photo with each face's shaded mesh, its 68 landmarks and (optionally) its boxes.

    Args:
        image: the photo (anything :func:`load_image` takes).
        faces: reconstructions of that photo (may be empty: the photo alone).
        model: their morphable model.
        alpha: opacity of the mesh.
        show_boxes: draw the face box (solid) and the crop (dashed).
        title: the figure's title.
        size: the figure's width in inches.
        pixel_axes: keep the axes, ticked in photo pixels (to read a face box off them).
        pyplot: make the figure with pyplot (``plt.show()`` shows it); ``False``: a bare
            figure outside pyplot, for :func:`overlay_png`.

    Returns:
        a matplotlib figure.
    """
    from matplotlib.patches import Rectangle

    photo = load_image(image)
    height, width = photo.shape[:2]
    fig, ax = _new_figure((size, size * height / width), pyplot)
    ax.imshow(photo)
    for face in faces:
        rgba = render_overlay(face, model)
        rgba[..., 3] *= alpha
        c = face.crop
        ax.imshow(rgba, extent=(c.x0, c.x0 + c.side, c.y0 + c.side, c.y0), interpolation="bilinear")
        lm = face.landmarks2d.numpy()
        dot = float(np.clip((c.side / width * size * 72 / 30) ** 2, 1.0, 16.0))  # points²
        ax.scatter(lm[:, 0], lm[:, 1], s=dot, c="lime", edgecolors="black", linewidths=0.3)
        if show_boxes:
            x, y, w, h = face.box
            ax.add_patch(Rectangle((x, y), w, h, fill=False, ec="yellow", lw=1))
            ax.add_patch(Rectangle((c.x0, c.y0), c.side, c.side, fill=False, ec="white",
                                   lw=1, ls="--"))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    if pixel_axes:
        ax.tick_params(labelsize=8, top=True, labeltop=True)
        ax.grid(color="white", alpha=0.4, lw=0.5)
    else:
        ax.axis("off")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def overlay_png(image, faces: Sequence[Reconstruction], model: MorphableModel,
                size: float = PICTURE_SIZE, dpi: int = 100, **kwargs) -> bytes:
    """:func:`overlay_figure` as PNG bytes, drawn on a figure outside pyplot.

    Args:
        image, faces, model: as for :func:`overlay_figure`.
        size: the longer side of the picture in inches (a portrait photo gets a narrower one).
        dpi: pixels per inch: the PNG is ``size * dpi`` px on its longer side.
        **kwargs: passed on to :func:`overlay_figure` (``title``, ``pixel_axes``, ...).

    Returns:
        the PNG file's bytes, white behind the photo.
    """
    height, width = load_image(image).shape[:2]
    fig = overlay_figure(image, faces, model, size=size * min(1.0, width / height),
                         pyplot=False, **kwargs)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    return buffer.getvalue()


#: Tooltips of the face box fields of :class:`PhotoUpload`.
BOX_TIPS = {"x": "left edge of the face box, in photo pixels from the left",
            "y": "top edge of the face box, in photo pixels from the top",
            "w": "width of the face box in photo pixels (0: let the detector find faces)",
            "h": "height of the face box in photo pixels (0: let the detector find faces)"}


class PhotoUpload:
    """Pick a photo: every face the detector finds is reconstructed and drawn over it.

    A file picker, face box fields ``x, y, w, h`` (photo pixels) with a "reconstruct" button,
    a message line and the picture (:func:`overlay_png`). With ``w`` and ``h`` at 0 the
    detector finds the faces; when it finds none, the photo is shown with pixel axes and the
    message asks for a box: with ``w, h > 0`` the next reconstruction (the button, or the next
    photo picked) uses the face in that box, tight around it (eyebrows to chin, jaw to jaw).
    Picking the same file again reconstructs it again. Works in Jupyter and Colab.

    Args:
        net, model, config: the network, its morphable model and training config
            (:func:`~e2far_lite.train.pretrained`).
        size: the picture's longer side in inches at 100 px per inch (shown at that size,
            smaller where the notebook is narrower).

    Attributes:
        widget: the widget to display.
        picture: the ``ipywidgets.Image`` showing the last PNG (``picture.value``).
        message: what the last reconstruction found (an ``ipywidgets.HTML``).
    """

    def __init__(self, net: nn.Module, model: MorphableModel, config: TrainConfig,
                 size: float = PICTURE_SIZE) -> None:
        self.net, self.model, self.config, self.size = net, model, config, size
        self.photo: np.ndarray | None = None
        self.name = ""
        self.faces: list[Reconstruction] = []
        self._lock = threading.Lock()  # widget events may come on two threads: one at a time
        self.upload = widgets.FileUpload(
            accept="image/*", multiple=False, description="Your photo",
            tooltip="Pick a photo (JPEG, PNG, ...) from your computer: every face found in it "
                    "is reconstructed. Nothing leaves your machine.")
        style = {"description_width": "1.2em"}
        self.box = {key: widgets.BoundedIntText(
            0, min=0, max=100_000, description=key, tooltip=tip, style=style,
            layout=widgets.Layout(width="7.5em")) for key, tip in BOX_TIPS.items()}
        self.again = widgets.Button(
            description="reconstruct", icon="refresh", disabled=True,
            tooltip="Reconstruct the last photo again: the face in the box when w and h are "
                    "above 0, else every face the detector finds")
        self.message = widgets.HTML("Pick a photo.")
        self.picture = widgets.Image(format="png", layout=widgets.Layout(  # never stretched
            display="none", max_width="100%", height="auto", align_self="flex-start"))
        self.upload.observe(self._on_upload, names="value")
        self.again.on_click(lambda _button: self.run())
        row = widgets.Layout(display="flex", flex_flow="row wrap", align_items="center",
                             width="100%")
        box_label = widgets.HTML("face box (px):", layout=widgets.Layout(margin="0 4px 0 12px"))
        self.widget = widgets.VBox(
            [widgets.Box([self.upload, box_label, *self.box.values(), self.again], layout=row),
             self.message, self.picture],
            layout=widgets.Layout(width="100%", max_width="100%"))

    # ------------------------------------------------------------------ events
    def _on_upload(self, change: dict) -> None:
        files = change["new"]
        if not files:
            return
        if isinstance(files, dict):  # ipywidgets 7: {name: {"content": ...}}
            name, item = next(iter(files.items()))
        else:  # ipywidgets 8: ({"name": ..., "content": ...},)
            item = files[0]
            name = item["name"]
        # emptied, so that picking the same file again is a change (read-only in ipywidgets 7)
        self.upload.set_trait("value", {} if isinstance(files, dict) else ())
        self.show(bytes(item["content"]), name)

    def show(self, content, name: str = "image") -> None:
        """Load a photo (file bytes, a path, an array: anything :func:`load_image` takes) and
        reconstruct it; what the upload button does."""
        with self._lock:
            try:
                photo = load_image(content, name=name)  # EXIF-upright
            except (ValueError, TypeError, FileNotFoundError) as err:
                self._say(_named(err, name), error=True)
                return
            self.photo, self.name = photo, name
            self.again.disabled = False
            self._reconstruct()

    def run(self) -> None:
        """Reconstruct the last photo again with the box fields as they are now."""
        with self._lock:
            if self.photo is not None:
                self._reconstruct()

    def box_value(self) -> tuple[int, int, int, int] | None:
        """The box fields ``(x, y, w, h)``, or None when ``w`` or ``h`` is 0 (detect)."""
        x, y, w, h = (self.box[key].value for key in "xywh")
        return (x, y, w, h) if w > 0 and h > 0 else None

    # ------------------------------------------------------------------ work
    def _reconstruct(self) -> None:
        photo, name = self.photo, self.name
        height, width = photo.shape[:2]
        box = self.box_value()
        problem = None if box is None else _box_problem(box, width, height)
        self._say(f"{name}: reconstructing…")
        self.picture.layout.display = "none"  # the old picture goes: this one is new
        self.picture.value = b""
        try:
            if problem is not None:
                self._say(f"{name}: {problem}", error=True)
                self._draw([], pixel_axes=True)
                return
            # no box: reconstruct_faces detects the faces; a given box is tight around them
            self.faces = reconstruct_faces(photo, self.net, self.model, self.config,
                                           boxes=None if box is None else [box], name=name)
            self._draw(self.faces)
        except NoFaceFound:
            self.faces = []
            self._say(f"No face found in {name} ({width} × {height} px). Give its box "
                      "instead: type x, y (its top-left corner), w and h in the face box "
                      "fields above, in photo pixels read off the picture's axes, tight "
                      "around the face (eyebrows to chin, jaw to jaw), then press "
                      "“reconstruct”.", error=True)
            self._draw([], pixel_axes=True)
            return
        except (ValueError, TypeError) as err:
            self._say(_named(err, name), error=True)
            return
        except Exception:  # shown here: an event handler's errors reach no notebook cell
            self._say(f"{name}: the reconstruction failed:", error=True,
                      details=traceback.format_exc(limit=-6))
            return
        if box is None:
            self._say(f"{name}: {len(self.faces)} face(s) found, drawn largest first (the "
                      "solid box is the detector's, the dashed square the network's crop).")
        else:
            self._say(f"{name}: the face in the box (x, y, w, h) = {box}. Set w to 0 to let "
                      "the detector find the faces again.")

    def _draw(self, faces: Sequence[Reconstruction], pixel_axes: bool = False) -> None:
        self.picture.value = overlay_png(self.photo, faces, self.model, size=self.size,
                                         title=self.name, pixel_axes=pixel_axes)
        self.picture.layout.display = ""

    def _say(self, text: str, error: bool = False, details: str = "") -> None:
        colour = "#b00020" if error else "inherit"
        extra = f"<pre>{html.escape(details)}</pre>" if details else ""
        self.message.value = f'<span style="color:{colour}">{html.escape(text)}</span>{extra}'


def _box_problem(box: tuple[int, int, int, int], width: int, height: int) -> str | None:
    """What is wrong with a face box (x, y, w, h) for a width x height photo, or None."""
    x, y, w, h = box
    if x >= width or y >= height:
        return (f"the face box starts outside the photo ({width} × {height} px): x must be "
                f"under {width} and y under {height}.")
    if max(w, h) > 2 * max(width, height):
        return (f"the face box is over twice the photo's size ({width} × {height} px): w and "
                f"h must be at most {2 * max(width, height)}.")
    return None


def _named(err: Exception, name: str) -> str:
    """An error's message, starting with the photo's name once (load_image's already do)."""
    text = str(err)
    return text if text.startswith(f"{name}:") else f"{name}: {text}"


def upload_widget(net: nn.Module, model: MorphableModel, config: TrainConfig):
    """A file picker (ipywidgets, Jupyter and Colab) that reconstructs every face of the
    uploaded photo and shows :func:`overlay_png` below it, with face box fields for photos the
    detector finds no face in (:class:`PhotoUpload`). Returns the widget."""
    return PhotoUpload(net, model, config).widget


__all__ = ["overlay_figure", "overlay_png", "upload_widget", "PhotoUpload", "BOX_TIPS",
           "PICTURE_SIZE"]
