"""Real photos drawn: each face's shaded mesh, landmarks and boxes over the photo, and an upload
widget that reconstructs the photo a student picks (notebook 08)."""

from __future__ import annotations

from collections.abc import Sequence

import ipywidgets as widgets
import numpy as np
from torch import nn

from ..model.morphable_model import MorphableModel
from ..photo.images import load_image
from ..photo.mesh import render_overlay
from ..photo.reconstruction import Reconstruction, reconstruct_faces
from ..train.configs import TrainConfig


def overlay_figure(image, faces: Sequence[Reconstruction], model: MorphableModel,
                   alpha: float = 0.65, show_boxes: bool = True, title: str = "",
                   size: float = 6.0):
    """The photo with each face's shaded mesh, its 68 landmarks and (optionally) its boxes.

    Args:
        image: the photo (anything :func:`load_image` takes).
        faces: reconstructions of that photo.
        model: their morphable model.
        alpha: opacity of the mesh.
        show_boxes: draw the face box (solid) and the crop (dashed).

    Returns:
        a matplotlib figure.
    """
    import matplotlib.pyplot as plt  # pyplot picks its backend on import: only when drawing
    from matplotlib.patches import Rectangle

    photo = load_image(image)
    height, width = photo.shape[:2]
    fig, ax = plt.subplots(figsize=(size, size * height / width))
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
    ax.axis("off")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def upload_widget(net: nn.Module, model: MorphableModel, config: TrainConfig):
    """A file picker (ipywidgets, Jupyter and Colab) that reconstructs every face of the
    uploaded photo and shows :func:`overlay_figure` below it. Returns the widget."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    upload = widgets.FileUpload(accept="image/*", multiple=False, description="Your photo")
    out = widgets.Output()

    def on_upload(change) -> None:
        files = change["new"]
        if not files:
            return
        if isinstance(files, dict):  # ipywidgets 7: {name: {"content": ...}}
            name, item = next(iter(files.items()))
        else:  # ipywidgets 8: ({"name": ..., "content": ...},)
            item = files[0]
            name = item["name"]
        out.clear_output()
        with out:
            try:
                image = load_image(bytes(item["content"]), name=name)  # EXIF-upright
                faces = reconstruct_faces(image, net, model, config, name=name)
            except ValueError as err:  # load_image names what is wrong with the file
                print(f"{name}: {err}")
                return
            print(f"{name}: {len(faces)} face(s), largest first")
            fig = overlay_figure(image, faces, model, title=name)
            display(fig)
            plt.close(fig)

    upload.observe(on_upload, names="value")
    return widgets.VBox([upload, out])


__all__ = ["overlay_figure", "upload_widget"]
