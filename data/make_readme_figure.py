"""Draw ``data/readme_figure.png``, the picture at the top of the README.

Run from the repository root (about half a minute on a 2-core CPU):

    python data/make_readme_figure.py

Top row: synthetic training faces, as the shipped network's last training stage draws them
(its checkpoint's data settings: ``cpu-real``'s, with the realism levers). Bottom row: the
shipped network (``data/e2far_lite.pt``) on held-out synthetic faces (its mesh drawn over each
input, cropped from the true landmarks' box) and on scikit-image's
astronaut photo (face found by the detector). On the right, a screenshot of notebook 01's model
explorer in JupyterLab, ``data/readme_widget.png``: the browser test writes the page
(``E2FAR_ARTIFACTS=shots python -m pytest tests/notebooks/test_browser.py -k explorer`` leaves
``shots/01_page.png``) and ``--widget shots/01_page.png --crop 370,165,1100,675`` takes the widget
from it (``data/readme_widget.png`` is that crop). ``--widget none`` leaves the panel out.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import skimage.data
from PIL import Image

from e2far_lite.io.atomic import atomic_write
from e2far_lite.photo import load_image, reconstruct, render_overlay
from e2far_lite.synth import realism
from e2far_lite.synth.faces import SyntheticFaces
from e2far_lite.train.shipped import pretrained
from e2far_lite.ui.plots import to_numpy_image

OUT = Path(__file__).resolve().parent / "readme_figure.png"
WIDGET = Path(__file__).resolve().parent / "readme_widget.png"
SEED = 20170721  # held-out faces: no training run uses this seed


def draw_overlay(ax, photo: np.ndarray, face, model, alpha: float = 0.6) -> None:
    """The photo with the reconstructed mesh and its 68 landmarks over the face."""
    ax.imshow(photo)
    rgba = render_overlay(face, model)
    rgba[..., 3] *= alpha
    c = face.crop
    ax.imshow(rgba, extent=(c.x0, c.x0 + c.side, c.y0 + c.side, c.y0), interpolation="bilinear")
    lm = face.landmarks2d.numpy()
    ax.scatter(lm[:, 0], lm[:, 1], s=3, c="lime", edgecolors="none")
    ax.set_xlim(0, photo.shape[1])
    ax.set_ylim(photo.shape[0], 0)


def landmark_box(landmarks) -> tuple[float, float, float, float]:
    """(x, y, w, h) of the true 68 landmarks: the crop rule the network was trained with."""
    lo, hi = landmarks.amin(0), landmarks.amax(0)
    return (float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--widget", default=str(WIDGET),
                        help="a screenshot (PNG) of a notebook widget to add on the right, or "
                             "'none' (default: data/readme_widget.png)")
    parser.add_argument("--crop", default=None,
                        help="left,top,right,bottom: the part of --widget to show (pixels)")
    parser.add_argument("--out", type=Path, default=OUT, help="where to write the PNG")
    args = parser.parse_args()

    net, model, config, source = pretrained(smoke=False)
    print("network:", source)
    faces = SyntheticFaces(model, 14, seed=SEED, config=config.data, device="cpu")
    batch = faces.batch(list(range(14)))
    # held-out faces as the test split draws them: plain renders, no realism levers
    plain = dataclasses.replace(config.data, **{name: 0.0 for name in realism.LEVERS})
    held_out = SyntheticFaces(model, 14, seed=SEED, config=plain, device="cpu").batch(
        list(range(14)))
    astronaut = skimage.data.astronaut()

    cols = 8
    widget = None
    if args.widget != "none":
        widget = plt.imread(args.widget)
        if args.crop:
            left, top, right, bottom = (int(v) for v in args.crop.split(","))
            widget = widget[top:bottom, left:right]
    # the widget panel spans both rows: its width in tiles follows from its aspect ratio
    extra = [] if widget is None else [2.2 * widget.shape[1] / widget.shape[0]]
    fig = plt.figure(figsize=(12 + 1.5 * sum(extra), 3.6), dpi=100)
    grid = fig.add_gridspec(2, cols + len(extra), wspace=0.03, hspace=0.12,
                            width_ratios=[1] * cols + extra)
    for i in range(cols):
        ax = fig.add_subplot(grid[0, i])
        ax.imshow(to_numpy_image(batch["image"][i]))
        ax.axis("off")
    fig.axes[0].set_title("synthetic training faces (rendered with exact labels)", loc="left",
                          fontsize=10)
    for j in range(cols - 2):
        k = cols + j  # faces the top row does not show
        image = held_out["image"][k]
        face = reconstruct(image, net, model, config, box=landmark_box(held_out["landmarks"][k]))
        ax = fig.add_subplot(grid[1, j])
        draw_overlay(ax, to_numpy_image(image), face, model)
        ax.axis("off")
    fig.axes[cols].set_title("the shipped network (trained on synthetic faces only) on held-out "
                             "faces: mesh and landmarks",
                             loc="left", fontsize=10)
    ax = fig.add_subplot(grid[1, cols - 2:cols])
    photo = load_image(astronaut)
    face = reconstruct(photo, net, model, config)
    x, y, w, h = face.box
    draw_overlay(ax, photo, face, model)
    pad = 0.6 * max(w, h)
    ax.set_xlim(x - pad, x + w + pad)
    ax.set_ylim(y + h + pad, y - pad)
    ax.set_title("and on a photo", loc="left", fontsize=10)
    ax.axis("off")
    if widget is not None:
        ax = fig.add_subplot(grid[:, cols])
        ax.imshow(widget)
        ax.set_title("notebook 01: sliders that morph the 3D face", loc="left", fontsize=10)
        ax.axis("off")
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=100, bbox_inches="tight", pad_inches=0.05)
    # a 256-colour palette keeps the PNG small enough for a README (about a third the size)
    small = Image.open(buffer).convert("RGB").quantize(256, dither=Image.Dither.NONE)
    with atomic_write(args.out) as handle:
        small.save(handle, format="PNG")
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
