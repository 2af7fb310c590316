"""Face regions (eyes, nose, mouth, cheeks, jaw) derived from a model's 68 landmarks.

The benchmark reports the 3D error per region, so that "the mouth is worse than the nose" can be
read off a table. Regions are computed once per model, on the mean shape seen from the front
(the x–y plane of the model frame), from the iBUG-68 landmark groups:

- **eyes**: around each eye together with its brow (landmarks 36–41 + 17–21 and 42–47 + 22–26),
- **nose**: around the bridge and base of the nose (27–35),
- **mouth**: around the lips (48–67),
- **jaw**: whatever is not mouth and lies below the jaw-line level, the mean height of contour
  points 3, 4, 12 and 13 (about the mouth corners' height): chin, lower jaw and any neck,
- **cheeks**: everything else — cheeks, temples and forehead.

"Around" means inside the convex hull of the group's landmarks in the x–y plane, grown by a
margin that is a fixed fraction of the face size (the RMS x–y radius of the defined landmarks,
about 55 mm on the ICT model), so the rules work in any unit. A vertex inside several grown hulls
goes to the one it lies deepest inside. A group whose landmarks the model leaves undefined (-1)
gives an empty region.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

REGION_NAMES = ("eyes", "nose", "mouth", "cheeks", "jaw")
EYES, NOSE, MOUTH, CHEEKS, JAW = range(5)

# landmark groups (iBUG-68, 0-based); each eye is hulled with its own brow, so the two eye regions
# stay apart and the glabella between them is not counted as "eyes"
_HULL_GROUPS: tuple[tuple[int, tuple[int, ...]], ...] = (
    (EYES, tuple(range(36, 42)) + tuple(range(17, 22))),
    (EYES, tuple(range(42, 48)) + tuple(range(22, 27))),
    (NOSE, tuple(range(27, 36))),
    (MOUTH, tuple(range(48, 68))),
)
# margin around each hull, as a fraction of the face size (~55 mm on the ICT model: 8 mm); enough to
# take in the eyelids below the eye landmarks, the nose's alar creases and the lips' outer rims
_MARGIN = 0.15
_JAW_LEVEL = (3, 4, 12, 13)  # contour points whose mean height is the jaw line


def _convex_hull(points: np.ndarray) -> np.ndarray:
    """Counter-clockwise convex hull of (P, 2) points (Andrew's monotone chain), (H, 2)."""
    pts = np.unique(points, axis=0)
    if len(pts) < 3:
        return pts

    def half(seq: np.ndarray) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        for p in seq:
            while len(out) >= 2:
                a, b = out[-2], out[-1]
                if (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]) > 0:
                    break
                out.pop()
            out.append(p)
        return out

    lower, upper = half(pts), half(pts[::-1])
    return np.array(lower[:-1] + upper[:-1])


def _hull_distance(xy: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Signed Euclidean distance of (V, 2) points to the convex hull of (P, 2) points: < 0 inside.

    Growing a hull by a margin thus rounds its corners (an acute corner, like the top of the
    nose, does not shoot a spike up the forehead). A hull with fewer than 3 corners (collinear
    landmarks) is treated as its points.
    """
    hull = _convex_hull(points)
    if len(hull) < 3:
        return np.linalg.norm(xy[:, None] - points[None], axis=-1).min(1)
    start, edge = hull, np.roll(hull, -1, axis=0) - hull  # (H, 2) each
    rel = xy[:, None] - start[None]  # (V, H, 2)
    along = np.clip((rel * edge).sum(-1) / (edge * edge).sum(-1), 0.0, 1.0)
    to_edge = np.linalg.norm(rel - along[..., None] * edge, axis=-1).min(1)
    # inside a counter-clockwise hull every point is left of every edge
    inside = (edge[None, :, 0] * rel[..., 1] - edge[None, :, 1] * rel[..., 0] >= 0).all(1)
    return np.where(inside, -to_edge, to_edge)


def vertex_regions(model) -> Tensor:
    """Label every vertex of ``model`` with its face region.

    Args:
        model: a :class:`~e2far_lite.model.MorphableModel`.

    Returns:
        (V,) int64 labels indexing :data:`REGION_NAMES` (0 eyes, 1 nose, 2 mouth, 3 cheeks,
        4 jaw), on the model's device.

    Examples:
        >>> from e2far_lite.model.morphable_model import MorphableModel
        >>> labels = vertex_regions(MorphableModel.default())
        >>> [REGION_NAMES[i] for i in labels.unique().tolist()]
        ['eyes', 'nose', 'mouth', 'cheeks', 'jaw']
    """
    xy = model.mean[:, :2].detach().cpu().double().numpy()
    index = model.landmarks.cpu().numpy()
    defined = index >= 0
    labels = np.full(len(xy), CHEEKS, dtype=np.int64)
    if defined.sum() >= 2:
        lm = np.zeros((len(index), 2))
        lm[defined] = xy[index[defined]]
        centre = lm[defined].mean(0)
        face_size = np.sqrt(((lm[defined] - centre) ** 2).sum(1).mean())

        best = np.zeros(len(xy))  # depth inside a grown hull (negative = inside)
        for region, group in _HULL_GROUPS:
            ids = [i for i in group if defined[i]]
            if not ids:
                continue
            depth = _hull_distance(xy, lm[ids]) - _MARGIN * face_size
            take = depth < best
            labels[take], best[take] = region, depth[take]

        jaw_ids = [i for i in _JAW_LEVEL if defined[i]]
        if jaw_ids:
            below = xy[:, 1] < lm[jaw_ids, 1].mean()
            labels[below & (labels == CHEEKS)] = JAW
    return torch.from_numpy(labels).to(model.mean.device)


def region_masks(model, labels: Tensor | None = None) -> dict[str, Tensor]:
    """``{name: (V,) bool}`` for every name in :data:`REGION_NAMES`."""
    labels = vertex_regions(model) if labels is None else labels
    return {name: labels == i for i, name in enumerate(REGION_NAMES)}


__all__ = ["REGION_NAMES", "vertex_regions", "region_masks"]
