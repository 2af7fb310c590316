"""The reconstructed mesh on the photo: a shaded render to draw over it, per-vertex colours
sampled from it where it shows the face, and ``.obj`` / ``.ply`` export in photo pixels.

The pictures themselves (the overlay figure, the upload widget) are drawn by
:mod:`e2far_lite.ui.photo_view`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.nn.functional import grid_sample

from ..io.mesh_files import save_mesh
from ..model.morphable_model import MorphableModel
from ..render.camera import to_camera
from ..render.renderer import Renderer, project_landmarks
from ..render.shading import skin_albedo
from .images import load_image
from .reconstruction import Reconstruction


def _overlay_camera(face: Reconstruction, resolution: int,
                    region: tuple[float, float, float] | None = None,
                    ) -> tuple[Tensor, Tensor, Tensor]:
    """The face's weak-perspective camera as a pinhole 100 m away with a long lens (relative
    depth differences of 0.1%), for a (resolution x resolution) render of the crop square, or
    of ``region`` = (x0, y0, side) in photo pixels: camera-frame points (1, V, 3) mm, focal
    (1,) and centre (1, 2) in render pixels."""
    distance = 1e5  # mm
    points = to_camera(face.vertices[None], face.pose[None, :3],
                       torch.tensor([[0.0, 0.0, distance]]))
    if region is None:
        zoom = resolution / face.image.shape[-1]
        focal = (face.pose[5] * distance * zoom)[None]
        centre = face.pose[None, 3:5] * zoom
    else:
        x0, y0, side = region
        zoom = resolution / side
        focal = (face.photo_pose[5] * distance * zoom)[None]
        centre = (face.photo_pose[None, 3:5] - torch.tensor([x0, y0])) * zoom
    return points, focal, centre


def render_overlay(face: Reconstruction, model: MorphableModel, resolution: int = 256,
                   ) -> np.ndarray:
    """A shaded render of the posed mesh over the crop square: (R, R, 4) RGBA float.

    The weak-perspective camera is stood in for by a pinhole 100 m away with a long lens
    (relative depth differences of 0.1%), so the renderer's z-buffer and shading apply.
    Draw it over the photo with ``extent=(x0, x0 + side, y0 + side, y0)``.
    """
    points, focal, centre = _overlay_camera(face, resolution)
    albedo = skin_albedo(model.mean.cpu(), 1, torch.Generator().manual_seed(0))
    out = Renderer(resolution).render(points, model.triangles.cpu(), focal, centre, albedo)
    rgba = torch.cat([out.image[0], out.mask[0]]).permute(1, 2, 0)
    return rgba.numpy()


#: The colour of vertices the photo does not show (hidden or outside it), RGB in [0, 1].
HIDDEN_GREY = (0.5, 0.5, 0.5)


def vertex_colors(image, face: Reconstruction, model: MorphableModel,
                  tolerance: float = 4.0) -> tuple[Tensor, Tensor]:
    """Per-vertex colours sampled from the photo where the photo shows the vertex.

    The mesh is rendered with the camera of :func:`render_overlay` over a square around its
    projection, at about one render pixel per photo pixel; a vertex is visible when it lies
    inside the photo and at most ``tolerance`` mm behind the rendered depth
    (:func:`~e2far_lite.render.project_landmarks`'s test). Visible vertices take the photo's
    bilinearly interpolated colour at their projection; the others :data:`HIDDEN_GREY`.

    Args:
        image: the photo ``face`` was reconstructed from (anything :func:`load_image` takes).
        face: one :class:`Reconstruction` of it.
        model: its morphable model.
        tolerance: mm a vertex may lie behind the z-buffer and still count as visible.

    Returns:
        colors (V, 3) RGB in [0, 1] and visible (V,) bool.
    """
    photo = torch.from_numpy(load_image(image))
    height, width = photo.shape[:2]
    # render a square around the whole projected mesh (it may reach outside the crop)
    projected = face.photo_vertices[:, :2]
    projected = projected[torch.isfinite(projected).all(1)]
    lo, hi = projected.amin(0) - 2, projected.amax(0) + 2
    side = float((hi - lo).max())
    x0, y0 = (float(v) for v in (lo + hi) / 2 - side / 2)
    resolution = int(np.clip(round(side), 64, 1024))
    points, focal, centre = _overlay_camera(face, resolution, (x0, y0, side))
    grey = torch.ones(1, points.shape[1], 3)
    depth = Renderer(resolution).render(points, model.triangles.cpu(), focal, centre,
                                        grey).depth
    pixels, visible = project_landmarks(points, focal, centre, depth, tolerance)
    xy = pixels[0] * (side / resolution) + torch.tensor([x0, y0])
    inside = ((xy >= 0) & (xy < torch.tensor([width, height]))).all(-1)
    visible = visible[0] & inside
    # grid_sample's align_corners=False grid: -1 and +1 are the photo's outer pixel corners
    grid = (xy / torch.tensor([width, height]) * 2 - 1).nan_to_num(0.0)
    sampled = grid_sample(photo.permute(2, 0, 1)[None], grid[None, None].float(),
                          mode="bilinear", padding_mode="border", align_corners=False)
    sampled = sampled[0, :, 0].T  # (V, 3)
    colors = torch.where(visible[:, None], sampled, torch.tensor(HIDDEN_GREY))
    return colors.clamp(0, 1), visible


#: What the vertex coordinates of :func:`export_mesh`'s files are, written in their header.
EXPORT_UNITS = "photo pixels (x right, y up = -row, z toward the viewer)"


def export_mesh(path: str | os.PathLike, face: Reconstruction, model: MorphableModel,
                colors: Tensor | None = None) -> Path:
    """Save the posed face as ``.obj`` or ``.ply``, placed as in the photo. Written atomically.

    Vertex ``(x, y, z)`` = ``(u, -v, depth)``: ``u, v`` are photo pixels and ``depth`` the
    toward-the-camera depth in the same pixels (:attr:`Reconstruction.photo_vertices`). The
    y flip makes the frame right-handed (x right, y up, z toward the viewer), so the triangles
    keep their counter-clockwise winding and a viewer shows the face upright, facing you.
    Units are photo pixels, and the file's header says so (:data:`EXPORT_UNITS`).

    Args:
        path: output file, ``.obj`` (``v x y z r g b`` lines with colours) or ``.ply``
            (binary, uchar vertex colours).
        face: the reconstruction.
        model: its morphable model (for the triangles).
        colors: optional (V, 3) RGB in [0, 1], e.g. :func:`vertex_colors`.
    """
    flipped = face.photo_vertices * torch.tensor([1.0, -1.0, 1.0])
    return save_mesh(path, flipped, model.triangles.cpu(), colors, units=EXPORT_UNITS)


__all__ = ["render_overlay", "vertex_colors", "HIDDEN_GREY", "export_mesh", "EXPORT_UNITS"]
