"""How good is a reconstruction? 3D vertex errors, landmark NME and error heat maps.

Two families of numbers, as in the E2FAR paper and its successors:

- **3D shape error** (:func:`vertex_rmse`, :func:`shape_errors`): predicted and true meshes share
  the model's topology, so vertex ``i`` of one corresponds to vertex ``i`` of the other. The
  prediction is first aligned to the truth, then the RMSE over vertices is reported in mm. Two
  alignments (:func:`rigid_align`): *rigid* (rotation + translation; both shapes are in mm, so
  the face's size counts as part of the answer) and *similarity* (one scale as well, as
  NoW-style benchmarks do: a face k times larger at k times the distance casts the same image,
  so its absolute size cannot be read from one photo). :data:`SHAPE_FIGURES` names both.
- **2D landmark error** (:func:`landmark_nme`): the AFLW2000-3D protocol of 3DDFA, mean point
  distance over the visible landmarks divided by ``sqrt(w * h)`` of the true landmarks' box.

Shapes use fixed letters: B batch, V vertices, K identity and E expression coefficients.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..checks import check_finite, check_floating, check_shape, check_tensor
from .regions import REGION_NAMES, vertex_regions

#: The per-face shape figures of :func:`shape_errors` that callers report (as ``<name>_mm``):
#: rigid and similarity alignment of the whole face and of the neutral face, and the
#: expression offsets.
SHAPE_FIGURES = ("total", "neutral", "total_sim", "neutral_sim", "expression")


def _check_pair(pred: Tensor, target: Tensor, pred_name: str, target_name: str,
                last: int) -> None:
    check_shape(pred, pred_name, (None, None, last))
    check_floating(pred, pred_name)
    check_shape(target, target_name, tuple(pred.shape))
    check_floating(target, target_name)


def _rigid_align(source: Tensor, target: Tensor, scale: bool) -> Tensor:
    # Kabsch / Umeyama in float64: the SVD of a 3x3 cross-covariance per sample
    src, tgt = source.double(), target.double()
    mu_s, mu_t = src.mean(1, keepdim=True), tgt.mean(1, keepdim=True)
    src_c, tgt_c = src - mu_s, tgt - mu_t
    cov = src_c.transpose(1, 2) @ tgt_c  # (B, 3, 3)
    u, sigma, vh = torch.linalg.svd(cov)
    # flip the last axis where needed so R is a rotation, never a reflection
    d = torch.sign(torch.linalg.det(u @ vh))
    d = torch.where(d == 0, torch.ones_like(d), d)
    signs = torch.stack([torch.ones_like(d), torch.ones_like(d), d], -1)  # (B, 3)
    rot_t = (u * signs[:, None, :]) @ vh  # R^T, so that aligned = src_c @ R^T
    if scale:
        s = (sigma * signs).sum(-1) / src_c.pow(2).sum((1, 2)).clamp(min=1e-30)
        rot_t = rot_t * s[:, None, None]
    return (src_c @ rot_t + mu_t).to(source.dtype)


def rigid_align(source: Tensor, target: Tensor, scale: bool = False) -> Tensor:
    """Move ``source`` onto ``target`` by the least-squares rotation and translation.

    Kabsch's algorithm on all vertices (Umeyama's with ``scale=True``, which also fits one
    uniform scale). Reflections are excluded. The rigid default counts a wrong face size as an
    error; ``scale=True`` forgives it, for the size no single photo can show (both are
    reported, see :data:`SHAPE_FIGURES`).

    Args:
        source: (B, V, 3) points to move, e.g. a predicted mesh in mm.
        target: (B, V, 3) corresponding points, e.g. the true mesh.
        scale: also fit a uniform scale (similarity transform).

    Returns:
        (B, V, 3) ``source`` rotated (and scaled) about its centroid and moved onto the
        target's centroid, in the source's dtype.

    Examples:
        >>> from e2far_lite.render.camera import rotation_matrix
        >>> target = torch.randn(1, 10, 3)
        >>> moved = target @ rotation_matrix(torch.tensor([[0.3, 0.1, -0.2]])).mT + 5.0
        >>> bool(torch.allclose(rigid_align(moved, target), target, atol=1e-5))
        True
    """
    _check_pair(source, target, "source", "target", 3)
    check_finite(source, "source")  # an SVD of NaN fails deep inside LAPACK
    check_finite(target, "target")
    return _rigid_align(source, target, scale)


def per_vertex_error(pred: Tensor, target: Tensor, align: bool = True) -> Tensor:
    """Euclidean distance per vertex, after rigid alignment of ``pred`` onto ``target``.

    Args:
        pred: (B, V, 3) predicted vertices in mm.
        target: (B, V, 3) true vertices in mm, same topology.
        align: rigidly align ``pred`` to ``target`` on all vertices first.

    Returns:
        (B, V) distances in mm.
    """
    _check_pair(pred, target, "pred", "target", 3)
    if align:
        check_finite(pred, "pred")  # an SVD of NaN fails deep inside LAPACK
        check_finite(target, "target")
        pred = _rigid_align(pred, target, scale=False)
    return (pred - target).norm(dim=-1)


def _masked_rmse(errors: Tensor, mask: Tensor | None) -> Tensor:
    """(B, V) distances -> (B,) root mean square over ``mask``; NaN where it selects nothing."""
    if mask is None:
        return errors.pow(2).mean(1).sqrt()
    weight = mask.to(errors.dtype).expand_as(errors)
    count = weight.sum(1)
    mse = (errors.pow(2) * weight).sum(1) / count.clamp(min=1)
    return torch.where(count > 0, mse.sqrt(), torch.full_like(mse, float("nan")))


def vertex_rmse(pred: Tensor, target: Tensor, align: bool = True,
                mask: Tensor | None = None) -> Tensor:
    """Root mean squared vertex distance in mm: ``sqrt(mean_i |p_i - t_i|^2)``.

    Alignment (when ``align``) always uses all vertices; ``mask`` then chooses which vertices'
    errors are averaged, so region errors are read off one whole-face alignment.

    Args:
        pred: (B, V, 3) predicted vertices in mm.
        target: (B, V, 3) true vertices in mm, same topology.
        align: rigidly align ``pred`` to ``target`` first (:func:`rigid_align`).
        mask: optional (V,) or (B, V) bool, the vertices to average over.

    Returns:
        (B,) RMSE in mm; NaN for a sample whose mask selects no vertex.

    Examples:
        >>> target = torch.zeros(2, 4, 3)
        >>> vertex_rmse(target + torch.tensor([3.0, 0.0, 4.0]), target, align=False)
        tensor([5., 5.])
    """
    errors = per_vertex_error(pred, target, align=align)
    if mask is not None:
        check_tensor(mask, "mask")
        if mask.dtype != torch.bool:
            raise ValueError(f"mask: expected a bool tensor, got {mask.dtype}")
        if mask.dim() == 1:
            check_shape(mask, "mask", (pred.shape[1],))
        else:
            check_shape(mask, "mask", (pred.shape[0], pred.shape[1]))
    return _masked_rmse(errors, mask)


def _check_coeffs(coeffs: object, name: str, model) -> tuple[Tensor, Tensor]:
    if not isinstance(coeffs, dict) or "a_id" not in coeffs or "a_exp" not in coeffs:
        got = sorted(coeffs) if isinstance(coeffs, dict) else type(coeffs).__name__
        raise ValueError(f"{name}: expected a dict with keys 'a_id' and 'a_exp', got {got}")
    a_id, a_exp = coeffs["a_id"], coeffs["a_exp"]
    check_shape(a_id, f"{name}['a_id']", (None, model.num_id))
    check_shape(a_exp, f"{name}['a_exp']", (a_id.shape[0], model.num_exp))
    return a_id, a_exp


def shape_errors(model, pred_coeffs: dict, target_coeffs: dict,
                 labels: Tensor | None = None) -> dict[str, Tensor]:
    """The benchmark's 3D errors of predicted coefficients against the true ones, in mm.

    Keys, each a (B,) tensor:

    - ``"total"``: the full shape (identity + expression), RMSE after rigid alignment.
    - ``"neutral"``: the identity (neutral) shapes only, RMSE after rigid alignment.
    - ``"total_sim"``, ``"neutral_sim"``: the same after a similarity alignment (one uniform
      scale fitted as well, as NoW-style benchmarks do). A face k times larger at k times the
      distance casts the same image, so its absolute size cannot be read from one photo; these
      two measure the shape alone.
    - ``"expression"``: the expression offsets ``expression_offset(a_exp)``, compared directly
      without alignment. An offset is a displacement field measured from the neutral face in
      the model frame, so there is no pose to remove; aligning would instead let a rotation
      soak up part of a real expression (an open jaw is largely a rotation of the chin).
    - ``"region/<name>"`` for each of :data:`~e2far_lite.model.REGION_NAMES`: the total error
      over that region's vertices, after the whole-face alignment used for ``"total"``
      (NaN where the model's region is empty).

    Args:
        model: the :class:`~e2far_lite.model.MorphableModel` both sets refer to.
        pred_coeffs: ``{"a_id": (B, K), "a_exp": (B, E)}`` predicted coefficients.
        target_coeffs: ``{"a_id": (B, K), "a_exp": (B, E)}`` true coefficients.
        labels: optional (V,) region labels from :func:`~e2far_lite.model.vertex_regions`
            (computed from ``model`` when omitted; pass them to save time in a loop).
    """
    p_id, p_exp = _check_coeffs(pred_coeffs, "pred_coeffs", model)
    t_id, t_exp = _check_coeffs(target_coeffs, "target_coeffs", model)
    if p_id.shape[0] != t_id.shape[0]:
        raise ValueError(f"target_coeffs: expected batch size {p_id.shape[0]} like "
                         f"pred_coeffs, got {t_id.shape[0]}")
    if labels is None:
        labels = vertex_regions(model)
    check_shape(labels, "labels", (model.num_vertices,))

    p_neutral, t_neutral = model.neutral(p_id), model.neutral(t_id)
    p_offset, t_offset = model.expression_offset(p_exp), model.expression_offset(t_exp)
    p_total, t_total = p_neutral + p_offset, t_neutral + t_offset
    total = per_vertex_error(p_total, t_total, align=True)
    out = {
        "total": _masked_rmse(total, None),
        "neutral": vertex_rmse(p_neutral, t_neutral, align=True),
        "total_sim": _masked_rmse((_rigid_align(p_total, t_total, scale=True) - t_total)
                                  .norm(dim=-1), None),
        "neutral_sim": _masked_rmse((_rigid_align(p_neutral, t_neutral, scale=True)
                                     - t_neutral).norm(dim=-1), None),
        "expression": vertex_rmse(p_offset, t_offset, align=False),
    }
    for i, name in enumerate(REGION_NAMES):
        out[f"region/{name}"] = _masked_rmse(total, labels == i)
    return out


def landmark_nme(pred: Tensor, target: Tensor, visible: Tensor | None = None) -> Tensor:
    """Normalised mean error of 2D landmarks, the AFLW2000-3D protocol of 3DDFA.

    Per sample: the mean Euclidean distance over the visible landmarks, divided by
    ``sqrt(w * h)`` of the bounding box of the target's visible landmarks (Zhu et al., "Face
    Alignment Across Large Poses: A 3D Solution", CVPR 2016). Multiply by 100 for the percent
    figures of papers. Target points that are not finite (undefined landmarks) count as not
    visible.

    Args:
        pred: (B, 68, 2) predicted landmarks in pixels.
        target: (B, 68, 2) true landmarks in pixels.
        visible: optional (B, 68) bool, the landmarks to score (default all).

    Returns:
        (B,) NME (a fraction of the face size); NaN for a sample whose visible landmarks span
        no area.

    Examples:
        >>> target = torch.tensor([[[0.0, 0.0], [10.0, 0.0], [0.0, 40.0]]])
        >>> landmark_nme(target + torch.tensor([3.0, 4.0]), target)  # 5 / sqrt(10 * 40)
        tensor([0.2500])
    """
    _check_pair(pred, target, "pred", "target", 2)
    valid = torch.isfinite(target).all(-1)
    if visible is not None:
        check_shape(visible, "visible", tuple(target.shape[:2]))
        if visible.dtype != torch.bool:
            raise ValueError(f"visible: expected a bool tensor, got {visible.dtype}")
        valid = valid & visible
    inf = torch.tensor(float("inf"), dtype=target.dtype, device=target.device)
    lo = torch.where(valid[..., None], target, inf).amin(1)
    hi = torch.where(valid[..., None], target, -inf).amax(1)
    size = (hi - lo).prod(-1).clamp(min=0).sqrt()  # (B,); nan when nothing is visible
    dist = torch.where(valid, (pred - target).norm(dim=-1), torch.zeros_like(target[..., 0]))
    mean = dist.sum(1) / valid.sum(1).clamp(min=1)
    nme = mean / size
    return torch.where(size > 0, nme, torch.full_like(nme, float("nan")))




__all__ = ["rigid_align", "per_vertex_error", "vertex_rmse", "shape_errors", "landmark_nme",
           "SHAPE_FIGURES"]
