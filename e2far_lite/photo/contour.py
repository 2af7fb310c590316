"""Jaw-line landmarks on the face's silhouette, as 2D annotations place them.

The model's 68 landmarks are fixed vertices. That suits every point but the jaw line: an
annotator of a photo (iBUG 300-W, dlib's sets) traces the jaw along the face's visible outline,
and when the head turns, the outline on the far side is no longer the jaw vertex, which slips
behind the cheek, but a cheek vertex in front of it. Zhu et al. ("Face alignment across large
poses: a 3D solution", CVPR 2016, the 3DDFA paper) move each jaw landmark along a horizontal
line of vertices to the one on the silhouette ("landmark marching"). This module does the same
on the model's mean shape:

* each jaw landmark but the chin gets a line of candidate vertices: those within
  :data:`CONTOUR_BAND_MM` of its height, on its side of the face, between
  :data:`CONTOUR_INNER` of its distance from the midline and its own vertex;
* for a posed face, the candidate that projects furthest out along the image direction of the
  model's x axis (towards that landmark's side) is the silhouette point. For the mean shape
  seen from the front that is the jaw vertex itself; other frontal faces move a jaw point by
  about a millimetre at most. Where the x axis points at the camera (yaw of exactly ±90°) it
  has no image direction, and the fixed vertices stay.

Only the 2D landmarks of photos use it (:func:`~e2far_lite.photo.reconstruct_faces`); training,
synthetic scores and the crop that refining cuts keep the fixed vertices the network learnt.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..checks import check_floating, check_shape
from ..model.morphable_model import MorphableModel
from ..render.camera import weak_perspective_project

#: iBUG-68 jaw points (0-based) that follow the silhouette; 8, the chin, stays a vertex.
JAW_CONTOUR: tuple[int, ...] = (*range(0, 8), *range(9, 17))
#: half-height of a landmark's candidate line, mm on the mean shape.
CONTOUR_BAND_MM = 3.0
#: the line runs from this share of the landmark's distance from the midline out to its vertex.
CONTOUR_INNER = 0.3


def contour_candidates(model: MorphableModel) -> dict[int, Tensor]:
    """Per jaw landmark of :data:`JAW_CONTOUR` the model defines, its candidate vertices.

    Returns:
        ``{landmark index: (P,) int64 vertex indices}``; the landmark's own vertex is always
        among them.
    """
    mean = model.mean
    out = {}
    for j in JAW_CONTOUR:
        v = int(model.landmarks[j])
        if v < 0:
            continue
        x, y = float(mean[v, 0]), float(mean[v, 1])
        side = 1.0 if x >= 0 else -1.0
        outward = mean[:, 0] * side
        line = (((mean[:, 1] - y).abs() <= CONTOUR_BAND_MM) & (outward >= CONTOUR_INNER * abs(x))
                & (outward <= abs(x)))
        line[v] = True
        out[j] = torch.nonzero(line)[:, 0].cpu()
    return out


def contour_landmarks(vertices: Tensor, pose: Tensor, model: MorphableModel) -> Tensor:
    """The 68 landmarks in the image, the jaw line's on the silhouette.

    Args:
        vertices: (B, V, 3) mm, model frame: the faces (``model(a_id, a_exp)``).
        pose: (B, 6) yaw, pitch, roll (radians), tx, ty (pixels), scale (pixels per mm), as
            :func:`~e2far_lite.render.weak_perspective_project` takes it.
        model: the morphable model of ``vertices`` (its landmarks and mean shape).

    Returns:
        (B, 68, 2) pixels: the fixed landmarks projected, except the points of
        :data:`JAW_CONTOUR`, each the candidate of :func:`contour_candidates` furthest out on
        its side of the face; NaN where the model has no such landmark.

    Raises:
        ValueError: naming ``vertices`` or ``pose`` for a wrong shape, an integer dtype, or a
            ``pose`` of another dtype or device than ``vertices``.
    """
    check_shape(vertices, "vertices", (None, model.num_vertices, 3))
    check_floating(vertices, "vertices")
    check_shape(pose, "pose", (vertices.shape[0], 6))
    if pose.dtype != vertices.dtype or pose.device != vertices.device:
        raise ValueError(f"pose: expected {vertices.dtype} on {vertices.device} like vertices, "
                         f"got {pose.dtype} on {pose.device}")
    idx = model.landmarks.clamp(min=0).to(vertices.device)
    points = weak_perspective_project(vertices[:, idx], pose)
    points = torch.where(model.landmark_mask.to(vertices.device)[None, :, None], points,
                         torch.full_like(points, float("nan")))
    # the image direction of the model's x axis, per face (the projection is linear)
    axis = weak_perspective_project(pose.new_tensor([[0.0, 0, 0], [1.0, 0, 0]]).expand(
        len(pose), 2, 3), pose)
    axis = axis[:, 1] - axis[:, 0]  # (B, 2) px per mm of x
    along = torch.nn.functional.normalize(axis, dim=-1)
    # 1 mm of x shows as under 1e-4 of what it would face-on: the axis points at the camera
    seen = axis.norm(dim=-1) > 1e-4 * pose[:, 5].abs()  # (B,)
    for j, line in contour_candidates(model).items():
        side = 1.0 if float(model.mean[int(model.landmarks[j]), 0]) >= 0 else -1.0
        projected = weak_perspective_project(vertices[:, line.to(vertices.device)], pose)
        best = (side * (projected * along[:, None]).sum(-1)).argmax(1)  # (B,)
        outline = projected[torch.arange(len(pose)), best]
        points[:, j] = torch.where(seen[:, None], outline, points[:, j])
    return points


__all__ = ["CONTOUR_BAND_MM", "CONTOUR_INNER", "JAW_CONTOUR", "contour_candidates",
           "contour_landmarks"]
