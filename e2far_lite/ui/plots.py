"""Pictures: plotly meshes (interactive, updated in place) and matplotlib image grids."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from torch import Tensor

from ..checks import check_shape, check_tensor
from ..io.atomic import write_figure
from ..train.logs import TERMS


def _np(x: Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)


def mesh_trace(
    vertices: Tensor | np.ndarray,
    triangles: Tensor | np.ndarray,
    intensity: Tensor | np.ndarray | None = None,
    colorscale: str = "Viridis",
    name: str = "face",
    **kwargs,
) -> go.Mesh3d:
    """A shaded plotly ``Mesh3d`` of one face.

    Args:
        vertices: (V, 3) in mm, model frame (y up, z toward the viewer).
        triangles: (F, 3) vertex indices.
        intensity: optional (V,) per-vertex values (e.g. error in mm) drawn with ``colorscale``;
            without it the face is skin-coloured.
    """
    v, f = _np(vertices), _np(triangles)
    style = dict(
        lighting=dict(ambient=0.35, diffuse=0.8, specular=0.15, roughness=0.6, fresnel=0.1),
        lightposition=dict(x=0, y=100, z=1000), flatshading=False, name=name,
    )
    if intensity is not None:
        style.update(intensity=_np(intensity), colorscale=colorscale, showscale=True)
    else:
        style.update(color="#e0b19a")
    style.update(kwargs)
    return go.Mesh3d(x=v[:, 0], y=v[:, 1], z=v[:, 2], i=f[:, 0], j=f[:, 1], k=f[:, 2], **style)


def _front_camera() -> dict:
    # plotly's default camera is z-up; ours is y-up with the face looking along +z
    return dict(up=dict(x=0, y=1, z=0), eye=dict(x=0.0, y=0.0, z=1.9))


def mesh_figure(
    vertices: Tensor | np.ndarray,
    triangles: Tensor | np.ndarray,
    intensity: Tensor | np.ndarray | None = None,
    landmarks: Tensor | np.ndarray | None = None,
    title: str = "",
    height: int = 420,
    widget: bool = False,
    **kwargs,
) -> go.Figure:
    """One face as a plotly figure, seen from the front; optional landmarks (68, 3) as dots.

    ``widget=True`` returns a ``go.FigureWidget`` whose traces can be updated in place
    (``fig.data[0].x = ...``) from an ipywidgets callback, without redrawing the page.
    """
    traces = [mesh_trace(vertices, triangles, intensity, **kwargs)]
    if landmarks is not None:
        lm = _np(landmarks)
        lm = lm[np.isfinite(lm).all(1)]
        traces.append(go.Scatter3d(x=lm[:, 0], y=lm[:, 1], z=lm[:, 2] + 1.0, mode="markers",
                                   marker=dict(size=3, color="#1f4fff"), name="landmarks"))
    layout = go.Layout(
        title=title, height=height, margin=dict(l=0, r=0, t=30 if title else 0, b=0),
        scene=dict(aspectmode="data", camera=_front_camera(), xaxis_visible=False,
                   yaxis_visible=False, zaxis_visible=False),
        showlegend=False,
    )
    cls = go.FigureWidget if widget else go.Figure
    return cls(data=traces, layout=layout)


def image_grid(
    images: Tensor,
    landmarks: Tensor | None = None,
    visible: Tensor | None = None,
    ncols: int = 8,
    titles: Sequence[str] | None = None,
    size: float = 1.6,
):
    """A matplotlib grid of images (B, 3, H, W) in [0, 1], with optional landmarks (B, 68, 2) px.

    Visible landmarks are drawn as green dots, hidden ones as red crosses. Returns the figure.
    """
    import matplotlib.pyplot as plt

    b = images.shape[0]
    ncols = min(ncols, b)
    nrows = (b + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i in range(b):
        ax = axes.ravel()[i]
        ax.imshow(_np(images[i].permute(1, 2, 0).clamp(0, 1)))
        if landmarks is not None:
            lm = _np(landmarks[i])
            vis = np.ones(len(lm), bool) if visible is None else _np(visible[i]).astype(bool)
            ax.scatter(lm[vis, 0], lm[vis, 1], s=3, c="lime")
            ax.scatter(lm[~vis, 0], lm[~vis, 1], s=6, c="red", marker="x", linewidths=0.6)
        if titles is not None:
            ax.set_title(titles[i], fontsize=7)
    fig.tight_layout()
    return fig


def to_numpy_image(image: Tensor) -> np.ndarray:
    """(3, H, W) float in [0, 1] -> (H, W, 3) uint8."""
    return (_np(image.clamp(0, 1).permute(1, 2, 0)) * 255).round().astype(np.uint8)




def pipeline_diagram(face_image: np.ndarray | None = None, sample_image: np.ndarray | None = None):
    """The UH-E2FAR pipeline in one matplotlib picture: model -> render -> network -> loss.

    Args:
        face_image: optional (H, W, 3) render of a model face, drawn in the first box.
        sample_image: optional (H, W, 3) synthetic training image, drawn in the second box.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    fig, ax = plt.subplots(figsize=(13, 4.2))
    ax.set_xlim(0, 13)
    ax.set_ylim(0, 4.2)
    ax.axis("off")

    def box(x, y, w, h, text, color):
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.05", fc=color,
                                    ec="#444", lw=1))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=9, wrap=True)

    def arrow(x0, y0, x1, y1):
        ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=14,
                                     color="#333"))

    box(0.1, 2.9, 2.3, 1.1, "3D morphable model\nS = mean + U_id·a_id\n+ U_exp·a_exp", "#fde2c8")
    box(2.9, 2.9, 2.0, 1.1, "renderer\npose, light, albedo,\nbackground", "#d8ecf7")
    box(5.4, 2.9, 2.0, 1.1, "VGG-style backbone\npool1 … pool5", "#e4f2dc")
    box(8.0, 3.25, 2.3, 0.75, "pool5 → fc → a_id\n(neutral shape)", "#f4dcef")
    box(8.0, 2.1, 2.3, 0.95, "fusion CNN\npool4 + pool5 → a_exp\n(expression)", "#f4dcef")
    box(8.0, 1.15, 2.3, 0.7, "pool5 → pose\n(yaw, pitch, roll, t, s)", "#eeeeee")
    box(10.8, 2.1, 2.1, 1.6, "multi-task loss\nin vertex space\nL_neutral + λ·L_exp\n+ landmarks",
        "#fff3b0")
    arrow(2.45, 3.45, 2.85, 3.45)
    arrow(4.95, 3.45, 5.35, 3.45)
    arrow(7.45, 3.6, 7.95, 3.6)
    arrow(7.45, 3.2, 7.95, 2.6)
    arrow(7.45, 3.0, 7.95, 1.5)
    arrow(10.35, 3.6, 10.75, 3.2)
    arrow(10.35, 2.6, 10.75, 2.7)
    for image, x in ((face_image, 0.4), (sample_image, 3.05)):
        if image is not None:
            ax.imshow(image, extent=(x, x + 1.7, 0.4, 2.1))
    ax.text(1.25, 0.05, "a face of the model", ha="center", fontsize=8)
    ax.text(3.9, 0.05, "a training image (exact labels)", ha="center", fontsize=8)
    ax.set_aspect("equal")
    fig.tight_layout()
    return fig


def image_row(images: Tensor | Sequence[Tensor], titles: Sequence[str] | None = None,
              size: float = 2.2, title: str = ""):
    """A row of images (each (3, H, W) in [0, 1]) with optional titles. Returns the figure."""
    import matplotlib.pyplot as plt

    n = len(images)
    fig, axes = plt.subplots(1, n, figsize=(size * n, size + 0.35), squeeze=False)
    for i, ax in enumerate(axes[0]):
        ax.imshow(to_numpy_image(images[i]))
        ax.axis("off")
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def error_colors(errors: Tensor, vmax: float, colormap: str = "inferno") -> Tensor:
    """Per-vertex errors as colours for ``render_preview(..., albedo=...)``.

    Args:
        errors: (B, V) errors in mm.
        vmax: the error (mm) drawn with the colormap's last colour; 0 mm gets its first.
        colormap: a matplotlib colormap name.

    Returns:
        (B, V, 3) RGB in [0, 1], on the device of ``errors``.
    """
    import matplotlib

    if vmax <= 0:
        raise ValueError(f"vmax: expected > 0 mm, got {vmax}")
    scaled = (errors.detach().float().cpu() / vmax).clamp(0, 1).numpy()
    rgb = matplotlib.colormaps[colormap](scaled)[..., :3]
    return torch.as_tensor(rgb, dtype=torch.float32, device=errors.device)


def error_colorbar(vmax: float, colormap: str = "inferno", label: str = "error (mm)"):
    """A thin horizontal colour bar from 0 to ``vmax`` mm, for rows drawn with
    :func:`error_colors`. Returns the figure."""
    import matplotlib
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 0.45))
    fig.colorbar(matplotlib.cm.ScalarMappable(matplotlib.colors.Normalize(0, vmax), colormap),
                 cax=ax, orientation="horizontal", label=label)
    fig.subplots_adjust(bottom=0.6, top=0.95, left=0.05, right=0.95)
    return fig


def shape_comparison(image: Tensor, true: Tensor, predicted: dict[str, Tensor],
                     triangles: Tensor, vmax: float | None = None, size: float = 1.8):
    """One face in a row: the input image, the true shape, and each predicted shape, rendered
    frontally (so the shape is judged, not the pose), each titled with its RMSE after rigid
    alignment. Returns the figure.

    Args:
        image: (3, H, W) input image in [0, 1].
        true: (V, 3) true vertices in mm.
        predicted: ``{label: (V, 3) vertices in mm}``, e.g. ``{"mean face": ...,
            "predicted": ...}``, drawn in this order.
        triangles: (F, 3) vertex indices.
        vmax: colour each prediction by its per-vertex error from 0 to ``vmax`` mm
            (:func:`error_colors`; draw the scale with :func:`error_colorbar`); None: plain
            shading.
    """
    from ..model.metrics import per_vertex_error
    from ..render.renderer import render_preview

    check_shape(true, "true", (None, 3))
    if not isinstance(predicted, dict) or not predicted:
        raise ValueError(f"predicted: expected a dict of one or more {{label: (V, 3) "
                         f"vertices}}, got {predicted!r:.60}")
    for label, shape in predicted.items():
        check_shape(shape, f"predicted[{label!r}]", (true.shape[0], 3))
    shapes = torch.stack([p.detach().float().cpu() for p in predicted.values()])
    truth = true.detach().float().cpu()
    errors = per_vertex_error(shapes, truth.expand_as(shapes))  # (P, V) mm
    albedo = None if vmax is None else error_colors(errors, vmax)
    faces = triangles.cpu()
    pictures = [image.detach().cpu(), render_preview(truth[None], faces, size=128)[0],
                *render_preview(shapes, faces, size=128, albedo=albedo)]
    rmse = errors.pow(2).mean(1).sqrt()
    titles = ["input", "true shape",
              *(f"{label}: {float(r):.2f} mm" for label, r in zip(predicted, rmse, strict=True))]
    return image_row(pictures, titles, size=size)


def plot_study(results: dict, path: str | os.PathLike | None = None):
    """Learning curves of the recipe study (the results of
    :func:`~e2far_lite.analysis.run_study`): validation total RMSE (similarity-aligned, left) and
    expression RMSE (right) against faces seen, mean over seeds per lever, the mean shape
    dashed. Returns the matplotlib figure; also saved to ``path`` (PNG) when given."""
    import statistics

    import matplotlib.pyplot as plt

    from ..studies.recipe import LEVERS

    curves: dict[str, list[list[dict]]] = {}
    for run in results["runs"].values():
        curves.setdefault(run["lever"], []).append(run["curve"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for ax, key, title in zip(axes, ("total_sim_mm", "expression_mm"),
                              ("total shape, similarity-aligned", "expression"), strict=True):
        for name, runs in curves.items():
            n = min(len(c) for c in runs)
            faces = [runs[0][i]["faces"] / 1000 for i in range(n)]
            mean = [statistics.fmean(c[i][key] for c in runs) for i in range(n)]
            style = {"color": "black", "linewidth": 2.5} if name == "base" else {}
            ax.plot(faces, mean, label=f"{LEVERS[name].label} ({len(runs)} seeds)"
                    if name in LEVERS else name, **style)
        means = [run["baseline"][key] for run in results["runs"].values()
                 if key in run.get("baseline", {})]
        if means:
            ax.axhline(statistics.fmean(means), color="grey", linestyle="--",
                       label="mean shape")
        ax.set_xlabel("training faces seen (thousands)")
        ax.set_ylabel("validation RMSE (mm)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    if path is not None:
        write_figure(fig, path, dpi=80)
    return fig


def plot_claims(studies: dict[str, dict]):
    """The paper's claims in each study (``{label: results of run_study}``): per claim of
    :func:`~e2far_lite.analysis.claims`, the paired difference in expression error (variant
    minus base, mm) with its 95 % interval, one colour per study. A bar across the grey line at
    0 is no detectable effect; a point right of it says the design choice helps. Returns the
    matplotlib figure."""
    import matplotlib.pyplot as plt

    from ..studies.recipe import claims

    fig, ax = plt.subplots(figsize=(8.5, 0.8 + 0.6 * len(studies)), constrained_layout=True)
    names: list[str] = []
    for k, (label, study) in enumerate(studies.items()):
        rows = claims(study)
        names = [row["claim"] for row in rows]
        offset = 0.2 * (k - (len(studies) - 1) / 2)  # the studies side by side around a claim
        ax.errorbar([row["difference_mm"] for row in rows], [i + offset for i in range(len(rows))],
                    xerr=[row["ci95_mm"] for row in rows], fmt="o", capsize=4, label=label)
    ax.axvline(0.0, color="grey", linewidth=1)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel("expression error without the choice minus with it (mm)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)  # beside the bars
    return fig


def error_heatmap(model_or_triangles, vertices: Tensor, errors: Tensor, title: str = "",
                  cmax: float | None = None, colorscale: str = "Inferno", **kwargs):
    """A plotly figure of one mesh coloured by per-vertex error, colour bar in mm.

    Args:
        model_or_triangles: a ``MorphableModel`` (its triangles are used) or (F, 3) indices.
        vertices: (V, 3) mesh to draw in mm, usually the true shape.
        errors: (V,) per-vertex error in mm, e.g. ``per_vertex_error(pred, true)[0]``.
        title: figure title.
        cmax: top of the colour scale in mm (default: the largest error), so several figures
            can share one scale.
        colorscale: a plotly colour scale name.
        **kwargs: passed on to :func:`~e2far_lite.ui.mesh_figure`.

    Returns:
        A ``plotly.graph_objects.Figure``.
    """
    triangles = getattr(model_or_triangles, "triangles", model_or_triangles)
    check_shape(check_tensor(triangles, "model_or_triangles"), "model_or_triangles", (None, 3))
    check_shape(vertices, "vertices", (None, 3))
    check_shape(errors, "errors", (vertices.shape[0],))
    if cmax is None:
        cmax = float(errors.max()) if errors.numel() else 1.0
    return mesh_figure(vertices, triangles, intensity=errors, title=title,
                       colorscale=colorscale, cmin=0.0, cmax=cmax,
                       colorbar=dict(title=dict(text="error (mm)")), **kwargs)


def plot_history(history: list[dict[str, float]], baseline: dict[str, float] | None,
                 path: str | os.PathLike | None = None):
    """The loss curves (left) and validation RMSE with the mean-shape baseline (right).

    ``history`` is :attr:`TrainResult.history <e2far_lite.train.TrainResult>` (or the rows of
    ``history.json``). Returns a bare matplotlib ``Figure`` (no pyplot, so it works in any
    backend and thread), also saved as a PNG to ``path`` when given.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4), layout="constrained")
    ax_loss, ax_val = fig.subplots(1, 2)
    for term in TERMS:
        rows = [r for r in history if f"loss_{term}" in r]
        if rows:
            ax_loss.plot([r["step"] for r in rows], [r[f"loss_{term}"] for r in rows],
                         label=term, lw=1.2 if term == "total" else 0.8)
    ax_loss.set(xlabel="step", ylabel="training loss (mm², %²)", yscale="log",
                title="training loss terms")
    ax_loss.legend(fontsize=8)
    for key, colour in (("total", "C0"), ("neutral", "C1"), ("expression", "C2")):
        rows = [r for r in history if f"val_{key}_mm" in r]
        if rows:
            ax_val.plot([r["step"] for r in rows], [r[f"val_{key}_mm"] for r in rows],
                        "o-", color=colour, ms=3, label=key)
        if baseline is not None:
            ax_val.axhline(baseline[f"{key}_mm"], color=colour, ls="--", lw=0.8)
    ax_val.set(xlabel="step", ylabel="vertex RMSE (mm)", ylim=(0, None),
               title="validation (dashed: mean shape)")
    ax_val.legend(fontsize=8)
    if path is not None:
        write_figure(fig, path, dpi=90)
    return fig


__all__ = ["mesh_trace", "mesh_figure", "image_grid", "to_numpy_image", "pipeline_diagram",
           "image_row", "error_colors", "error_colorbar", "shape_comparison", "plot_study",
           "plot_claims",
           "error_heatmap",
           "plot_history"]


def plot_realism_study(results: dict, path: str | os.PathLike | None = None):
    """The realism study (:func:`~e2far_lite.studies.realism.collect`'s results): each
    lever's change in real-face landmark NME from the control run of the same seed, for the
    detected boxes (left) and the landmarks' own boxes (right); a dot per seed, a bar for
    their mean. Below zero the lever helped. Returns the figure; saved to ``path`` if given."""
    import matplotlib.pyplot as plt

    from ..studies.realism import summary

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True, constrained_layout=True)
    for ax, box, title in zip(axes, ("detected", "landmarks"),
                              ("crops from the detected box", "crops from the landmarks' box"),
                              strict=True):
        rows = [(k, v) for k, v in summary(results, box).items() if k != "control"]
        for i, (_, row) in enumerate(rows):
            colour = "tab:green" if row["vs_control"] < 0 else "tab:red"
            ax.barh(i, row["vs_control"], color=colour, alpha=0.5)
            ax.plot(row["vs_control_seeds"], [i] * len(row["vs_control_seeds"]), "k.")
        ax.set_yticks(range(len(rows)), [k.replace("_", " ") for k, _ in rows])
        ax.axvline(0, color="black", linewidth=0.8)
        ax.invert_yaxis()
        ax.set_xlabel("real-face NME minus the control's (percentage points)")
        ax.set_title(title)
        ax.grid(alpha=0.3, axis="x")
    if path is not None:
        write_figure(fig, path, dpi=80)
    return fig
