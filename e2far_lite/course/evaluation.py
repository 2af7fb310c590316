"""Checks for notebook 06: the alignment behind the 3D scores and the first step of the fitting
baseline, written by the student.

- :func:`check_best_rotation`: the rotation that best maps one centred point set onto another
  (Kabsch: the SVD of the cross-covariance, with the reflection fix), against the package's
  :func:`~e2far_lite.model.rigid_align`.
- :func:`check_similarity_transform`: scale, rotation and translation (Umeyama), against
  ``rigid_align(..., scale=True)`` and the RMSE it gives.
- :func:`check_affine_camera`: the affine camera fitted to 2D landmarks by least squares, against
  :func:`~e2far_lite.evaluate.fitting.affine_camera`, the first step of the fitting baseline.
- :func:`check_nme`: the 2D landmark NME in percent, against 100 x the package's
  :func:`~e2far_lite.model.landmark_nme`; a wrong value that matches a usual slip (another
  normaliser, squared distances, hidden landmarks counted, a fraction for a percentage) is named.

Every check draws fresh random inputs: random points moved by a random similarity (or mirrored,
where only the reflection fix gives the right answer), plus noise; random landmark sets with
noisy predictions, some of them hidden.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ..evaluate.fitting import affine_camera
from ..model.metrics import landmark_nme, rigid_align, vertex_rmse
from .checks import (
    CheckFailed,
    call,
    compare,
    fresh_generator,
    not_written,
    passed,
    refuse_reference,
)

#: the spread of the random point sets along x, y, z in mm: face-sized and anisotropic, so the
#: best rotation is well determined
SPREAD = (70.0, 90.0, 50.0)
NOISE_MM = 0.5


def random_rotation(batch: int, g: torch.Generator) -> Tensor:
    """(B, 3, 3) random proper rotations (det +1), float64."""
    q, r = torch.linalg.qr(torch.randn(batch, 3, 3, generator=g, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r, dim1=1, dim2=2))[:, None, :]
    flip = torch.sign(torch.linalg.det(q))  # make det +1: negate the last column where -1
    return q * torch.stack([torch.ones_like(flip), torch.ones_like(flip), flip], -1)[:, None]


def random_pair(batch: int, vertices: int, g: torch.Generator, mirrored: bool = False,
                scaled: bool = True) -> tuple[Tensor, Tensor]:
    """A source (B, V, 3) and a target (B, V, 3) = s·R·source + t + noise, float64 mm.

    ``mirrored``: the target is built from the source mirrored in x, so the best orthogonal
    map is a reflection and the best rotation is something else. ``scaled``: s drawn in
    [0.8, 1.25] (else 1).
    """
    f64 = torch.float64
    source = torch.randn(batch, vertices, 3, generator=g, dtype=f64) * torch.tensor(SPREAD,
                                                                                 dtype=f64)
    moved = source * torch.tensor([-1.0, 1.0, 1.0], dtype=f64) if mirrored else source
    scale = (0.8 * 1.5625 ** torch.rand(batch, generator=g, dtype=f64) if scaled
             else torch.ones(batch, dtype=f64))
    rotation = random_rotation(batch, g)
    shift = 100.0 * torch.randn(batch, 1, 3, generator=g, dtype=f64)
    noise = NOISE_MM * torch.randn(batch, vertices, 3, generator=g, dtype=f64)
    target = scale[:, None, None] * moved @ rotation.mT + shift + noise
    return source, target


#: added to a failure on the mirrored shapes, which are checked after the moved ones passed
_MIRRORED_HINT = (" (the moved shapes passed: on a mirror image the best orthogonal map is a "
                  "reflection, so here the reflection fix decides the answer: which singular "
                  "value's axis does it flip?)")
_MIRRORED_SCALE_HINT = (" (the moved shapes passed: on a mirror image the reflection fix is "
                        "active, in R and in the scale, which must carry its sign too)")


def _cases(g: torch.Generator, scaled: bool) -> list[tuple[str, Tensor, Tensor]]:
    """(label, source, target): a batch of moved shapes and a batch of mirrored ones."""
    return [("moved shapes", *random_pair(4, 50, g, scaled=scaled)),
            ("mirrored shapes", *random_pair(3, 50, g, mirrored=True, scaled=scaled))]


def _rotation_matrices(rotation: Any, what: str, batch: int) -> Tensor:
    """Refuse anything but (B, 3, 3) orthonormal matrices with det +1."""
    not_written(rotation, what)
    if not isinstance(rotation, Tensor):
        raise CheckFailed(f"{what}: expected a torch.Tensor, got {type(rotation).__name__}")
    if tuple(rotation.shape) != (batch, 3, 3):
        raise CheckFailed(f"{what}: expected shape {(batch, 3, 3)}, got {tuple(rotation.shape)}")
    rotation = rotation.detach().double()
    eye = torch.eye(3, dtype=torch.float64).expand(batch, 3, 3)
    compare(rotation @ rotation.mT, eye, f"{what}: R·Rᵀ (R must be orthonormal)", atol=1e-5,
            rtol=0)
    det = torch.linalg.det(rotation)
    if bool((det < 0).any()):
        i = int(torch.nonzero(det < 0)[0])
        raise CheckFailed(f"{what}: det(R) = {float(det[i]):+.3f} for sample {i}: R is a "
                          "reflection, not a rotation (a rotation has det +1)")
    return rotation


def check_best_rotation(best_rotation: Callable) -> None:
    """``best_rotation(x, y)``: centred (B, V, 3) point sets -> (B, 3, 3) the proper rotation R
    minimising ``sum_i |R x_i - y_i|^2``; ``x @ R.mT`` must equal the package's
    ``rigid_align(x, y)`` to 1e-3 mm, on fresh random shapes, moved and mirrored."""
    g = fresh_generator()
    for label, source, target in _cases(g, scaled=False):
        x = source - source.mean(1, keepdim=True)
        y = target - target.mean(1, keepdim=True)
        what = f"best_rotation(x, y) on {len(x)} {label}"
        rotation = _rotation_matrices(call(best_rotation, what, x.clone(), y.clone()), what,
                                      len(x))
        expected = rigid_align(x, y)
        got = x @ rotation.mT
        if not torch.allclose(got, expected, atol=1e-3, rtol=0) and torch.allclose(
                x @ rotation, expected, atol=1e-3, rtol=0):
            raise CheckFailed(f"{what}: your matrix is the transpose of R: the check applies R "
                              "to each point as x @ R.mT (R x_i for a column vector x_i)")
        try:
            compare(got, expected, f"{what}: the points x @ R.mT (mm)", atol=1e-3, rtol=0)
        except CheckFailed as err:
            raise CheckFailed(f"{err}{_MIRRORED_HINT}" if label == "mirrored shapes"
                              else str(err)) from None
    passed("best_rotation(x, y) gives the package's rotation (rigid_align) on fresh random "
           "shapes, moved and mirrored, to 1e-3 mm")


def _similarity(result: Any, what: str, batch: int) -> tuple[Tensor, Tensor, Tensor]:
    """Unpack and check the types and shapes of ``(s, R, t)``."""
    not_written(result, what)
    if not (isinstance(result, tuple | list) and len(result) == 3):
        raise CheckFailed(f"{what}: expected a tuple (s, R, t), got {type(result).__name__}"
                          + (f" of length {len(result)}" if isinstance(result, tuple | list)
                             else ""))
    scale, rotation, shift = result
    for name, value, shape in (("s", scale, (batch,)), ("t", shift, (batch, 3))):
        not_written(value, f"{what}: {name}")
        if not isinstance(value, Tensor):
            raise CheckFailed(f"{what}: expected {name} to be a torch.Tensor, got "
                              f"{type(value).__name__}")
        if tuple(value.shape) != shape:
            raise CheckFailed(f"{what}: expected {name} of shape {shape}, got "
                              f"{tuple(value.shape)}")
    rotation = _rotation_matrices(rotation, f"{what}: R", batch)
    return scale.detach().double(), rotation, shift.detach().double()


def check_similarity_transform(similarity_transform: Callable) -> None:
    """``similarity_transform(x, y)``: (B, V, 3) point sets -> ``(s (B,), R (B, 3, 3),
    t (B, 3))`` minimising ``sum_i |s R x_i + t - y_i|^2`` with det R = +1. The aligned points
    must equal the package's ``rigid_align(x, y, scale=True)`` to 1e-3 mm and their RMSE the
    package's similarity RMSE, on fresh random shapes (moved and scaled, and mirrored)."""
    g = fresh_generator()
    for label, source, target in _cases(g, scaled=True):
        batch = len(source)
        what = f"similarity_transform(x, y) on {batch} {label}"
        scale, rotation, shift = _similarity(
            call(similarity_transform, what, source.clone(), target.clone()), what, batch)
        expected = rigid_align(source, target, scale=True)
        # the reference's scale: R preserves lengths, so s = |aligned - centroid| / |x - mean x|
        ref_scale = ((expected - target.mean(1, keepdim=True)).pow(2).sum((1, 2))
                     / (source - source.mean(1, keepdim=True)).pow(2).sum((1, 2))).sqrt()
        if bool((scale - 1).abs().max() < 1e-9) and bool((ref_scale - 1).abs().max() > 1e-3):
            raise CheckFailed(f"{what}: s is 1 for every sample, but these shapes differ in "
                              "size: the scale is left out")
        try:
            compare(scale, ref_scale, f"{what}: s", atol=1e-6, rtol=1e-6)
            got = scale[:, None, None] * source @ rotation.mT + shift[:, None]
            compare(got.mean(1), target.mean(1), f"{what}: the centroid of s·R·x + t (mm; it "
                    "must land on the centroid of y)", atol=1e-3, rtol=0)
            compare(got, expected, f"{what}: the points s·R·x + t (mm)", atol=1e-3, rtol=0)
        except CheckFailed as err:
            raise CheckFailed(f"{err}{_MIRRORED_SCALE_HINT}" if label == "mirrored shapes"
                              else str(err)) from None
        rmse = (got - target).norm(dim=-1).pow(2).mean(1).sqrt()
        compare(rmse, vertex_rmse(expected, target, align=False),
                f"{what}: the RMSE after your alignment against the package's (mm)", atol=1e-6,
                rtol=0)
    passed("similarity_transform(x, y) gives the package's similarity alignment "
           "(rigid_align(..., scale=True)) and its RMSE on fresh random shapes, moved, scaled "
           "and mirrored, to 1e-3 mm")


def random_camera_problem(batch: int, points: int, g: torch.Generator,
                          hidden: float = 0.0) -> tuple[Tensor, Tensor, Tensor]:
    """3D points (B, P, 3) mm, their images (B, P, 2) px under a random affine camera plus
    0.5 px of noise, and weights (B, P): 0 for a ``hidden`` fraction of the points (at least
    8 stay visible), whose landmarks are then moved far off, as a detector's junk would be."""
    f64 = torch.float64
    x = torch.randn(batch, points, 3, generator=g, dtype=f64) * torch.tensor(SPREAD, dtype=f64)
    matrix = torch.randn(batch, 2, 3, generator=g, dtype=f64)  # px per mm
    shift = 112.0 + 20.0 * torch.randn(batch, 1, 2, generator=g, dtype=f64)
    landmarks = x @ matrix.mT + shift + 0.5 * torch.randn(batch, points, 2, generator=g,
                                                          dtype=f64)
    weight = (torch.rand(batch, points, generator=g, dtype=f64) >= hidden).to(f64)
    weight[:, :8] = 1.0
    junk = 300.0 * torch.randn(batch, points, 2, generator=g, dtype=f64)
    landmarks = torch.where(weight[..., None] > 0, landmarks, landmarks + junk)
    return x, landmarks, weight


def check_affine_camera(affine_camera_fn: Callable) -> None:
    """``affine_camera(points, landmarks, weight)``: (B, P, 3) mm, (B, P, 2) px, (B, P) 0/1 ->
    (B, 2, 4) the camera ``M = [A | b]`` minimising ``sum_j w_j |A X_j + b - p_j|^2``. It must
    equal the package's :func:`~e2far_lite.evaluate.fitting.affine_camera` to 2e-3 + 1e-3
    relative, on fresh random cameras and points, all visible and with some hidden. (The
    package adds a whisker of ridge, 1e-8 of the trace of the normal matrix, which moves b by
    up to a few hundredths of a pixel, 3e-4 of b at most in 1,800 draws; an exact solve
    passes.)"""
    g = fresh_generator()
    for label, hidden in (("all points visible", 0.0), ("about 30 % of them hidden", 0.3)):
        points, landmarks, weight = random_camera_problem(3, 68, g, hidden)
        what = f"affine_camera(points, landmarks, weight), 68 points, {label}"
        got = call(affine_camera_fn, what, points.clone(), landmarks.clone(), weight.clone())
        expected = affine_camera(points, landmarks, weight)
        if hidden and isinstance(got, Tensor) and tuple(got.shape) == tuple(expected.shape):
            unweighted = affine_camera(points, landmarks, torch.ones_like(weight))
            if torch.allclose(got.detach().double(), unweighted, atol=2e-3, rtol=1e-3):
                raise CheckFailed(f"{what}: your camera fits the hidden points too (weight 0): "
                                  "they must not count")
        compare(got, expected, f"{what}: M = [A | b]", atol=2e-3, rtol=1e-3)
    passed("affine_camera(points, landmarks, weight) equals the package's least-squares camera "
           "on fresh random cameras, all points visible and some hidden")


#: 0-based indices of the 68-point scheme (iBUG 300-W, dlib): the outer eye corners, and each
#: eye's six points, whose centre is taken for its pupil
OUTER_EYE_CORNERS = (36, 45)
EYES = (range(36, 42), range(42, 48))


def random_landmarks(batch: int, g: torch.Generator,
                     hidden: float = 0.0) -> tuple[Tensor, Tensor, Tensor]:
    """Random 68-landmark sets: predictions (B, 68, 2) px, targets (B, 68, 2) px, and visible
    (B, 68) bool.

    The targets are scattered around a random centre, with a random spread in x and another in
    y, so the landmark box is not square; each face's predictions are its targets plus a few
    pixels of noise and a small offset. A ``hidden`` fraction of the landmarks is not visible
    (the first 10 always are): those targets lie farther out, most beyond the visible ones'
    box, and their predictions are far worse, as a hidden point's would be.
    """
    f64 = torch.float64
    centre = 60.0 + 140.0 * torch.rand(batch, 1, 2, generator=g, dtype=f64)
    spread = torch.stack([12.0 + 18.0 * torch.rand(batch, generator=g, dtype=f64),
                          18.0 + 27.0 * torch.rand(batch, generator=g, dtype=f64)], -1)
    target = centre + torch.randn(batch, 68, 2, generator=g, dtype=f64) * spread[:, None]
    sigma = 1.0 + 5.0 * torch.rand(batch, 1, 1, generator=g, dtype=f64)
    noise = torch.randn(batch, 68, 2, generator=g, dtype=f64)
    pred = target + sigma * noise + 2.0 * torch.randn(batch, 1, 2, generator=g, dtype=f64)
    visible = torch.rand(batch, 68, generator=g) >= hidden
    visible[:, :10] = True
    out = ~visible[..., None]
    target = torch.where(out, centre + 1.8 * (target - centre), target)
    pred = torch.where(out, target + 4.0 * sigma * noise, pred)
    return pred, target, visible


def _box_size(points: Tensor, valid: Tensor, how: str) -> Tensor:
    """(B,) a size of the box of ``points`` (B, P, 2) over ``valid`` (B, P): its side's
    geometric mean, area, diagonal, longer side or mean side."""
    inf = torch.tensor(float("inf"), dtype=points.dtype)
    lo = torch.where(valid[..., None], points, inf).amin(1)
    hi = torch.where(valid[..., None], points, -inf).amax(1)
    w, h = (hi - lo).unbind(-1)
    return {"sqrt": (w * h).sqrt(), "area": w * h, "diagonal": (w * w + h * h).sqrt(),
            "longer": torch.maximum(w, h), "mean": (w + h) / 2}[how]


def _nme_variants(pred: Tensor, target: Tensor,
                  visible: Tensor) -> list[tuple[tuple[str, ...], Tensor]]:
    """The NME (B,) as the usual slips compute it, each with what is wrong, in words (empty for
    the right part): every combination of a numerator, a normaliser and a factor."""
    dist = (pred - target).norm(dim=-1)  # (B, 68)
    count = visible.sum(1)
    zero = torch.zeros_like(dist)
    every = torch.ones_like(visible)

    def over_visible(values: Tensor) -> Tensor:
        return torch.where(visible, values, zero).sum(1) / count

    numerators = [
        ("", over_visible(dist)),
        ("they average the squared distances (the NME averages the distances themselves)",
         over_visible(dist ** 2)),
        ("they take the root mean square distance (the NME averages the distances themselves)",
         over_visible(dist ** 2).sqrt()),
        ("they average the coordinates' absolute differences (the NME averages each "
         "landmark's Euclidean distance)", over_visible((pred - target).abs().mean(-1))),
        ("they average over all 68 landmarks, hidden ones included (average over the visible "
         "ones only)", dist.mean(1)),
        ("they divide the visible landmarks' summed distances by 68 (divide by the number of "
         "visible landmarks)", torch.where(visible, dist, zero).sum(1) / 68),
    ]
    left, right = OUTER_EYE_CORNERS
    pupils = [target[:, list(eye)].mean(1) for eye in EYES]
    normalisers = [
        ("", _box_size(target, visible, "sqrt")),
        ("they divide by the size of the box of all 68 true landmarks, hidden ones included "
         "(the box is the visible landmarks' own)", _box_size(target, every, "sqrt")),
        ("they divide by the size of the predicted landmarks' box (the normaliser is the true "
         "landmarks' box)", _box_size(pred, visible, "sqrt")),
        ("they divide by the box's diagonal √(w² + h²) (the NME divides by √(w·h))",
         _box_size(target, visible, "diagonal")),
        ("they divide by the box's area w·h (the NME divides by its square root)",
         _box_size(target, visible, "area")),
        ("they divide by the box's longer side (the NME divides by √(w·h))",
         _box_size(target, visible, "longer")),
        ("they divide by the mean of the box's sides, (w + h) / 2 (the NME divides by "
         "√(w·h))", _box_size(target, visible, "mean")),
        (f"they divide by the distance between the outer eye corners (landmarks {left} and "
         f"{right}: 300-W's inter-ocular normaliser; this NME, AFLW2000-3D's, divides by the "
         "size of the box)", (target[:, left] - target[:, right]).norm(dim=-1)),
        ("they divide by the distance between the eyes' centres (inter-pupil; this NME, "
         "AFLW2000-3D's, divides by the size of the box)",
         (pupils[0] - pupils[1]).norm(dim=-1)),
    ]
    factors = [("", 100.0),
               ("they are fractions of the face size (the NME here is in percent)", 1.0),
               ("they are percentages multiplied by 100 once more", 1e4)]
    return [(tuple(w for w in (num_what, norm_what, factor_what) if w),
             factor * num / norm)
            for num_what, num in numerators for norm_what, norm in normalisers
            for factor_what, factor in factors]


def _nme_hint(got: Tensor, pred: Tensor, target: Tensor, visible: Tensor) -> str:
    """A sentence naming the slips whose NME ``got`` matches, or ``""``."""
    got = got.detach().cpu().double()
    for slips, value in _nme_variants(pred, target, visible):
        if slips and torch.allclose(got, value, rtol=1e-4, atol=1e-6):
            return ". Your values fit this: " + "; ".join(slips)
    return ""


def check_nme(nme: Callable) -> None:
    """``nme(pred, target, visible)``: (B, 68, 2) px, (B, 68, 2) px, (B, 68) bool -> (B,) the
    landmark NME of each face in percent: the mean distance over the visible landmarks divided
    by √(w·h) of the visible true landmarks' box, times 100. It must equal 100 x the package's
    :func:`~e2far_lite.model.landmark_nme` to 1e-4 (relative), on fresh random landmark sets,
    first all visible, then with about a quarter hidden (whose points lie outside the visible
    ones' box and are predicted badly, so counting them shows)."""
    refuse_reference(nme, ("landmark_nme",), "nme(pred, target, visible)")
    g = fresh_generator()
    for label, hidden in (("all landmarks visible", 0.0), ("about 25 % of them hidden", 0.25)):
        batch = 5
        pred, target, visible = random_landmarks(batch, g, hidden)
        what = f"nme(pred, target, visible) on {batch} faces, {label}"
        got = call(nme, what, pred.clone(), target.clone(), visible.clone())
        not_written(got, what)
        if isinstance(got, Tensor) and got.numel() == 1 and batch > 1:
            raise CheckFailed(f"{what}: expected one NME per face, shape ({batch},), got one "
                              f"number (shape {tuple(got.shape)}): average over each face's "
                              "landmarks, not over the faces")
        expected = 100 * landmark_nme(pred, target, visible)
        try:
            compare(got, expected, f"{what} (%)", atol=1e-6, rtol=1e-4)
        except CheckFailed as err:
            hint = (_nme_hint(got, pred, target, visible) if isinstance(got, Tensor)
                    and tuple(got.shape) == (batch,) else "")
            raise CheckFailed(f"{err}{hint}" + ("." if hint else "")) from None
    passed("nme(pred, target, visible) equals 100 x the package's landmark_nme on fresh random "
           "landmark sets, all visible and some hidden")


__all__ = ["EYES", "OUTER_EYE_CORNERS", "check_affine_camera", "check_best_rotation",
           "check_nme", "check_similarity_transform", "random_camera_problem",
           "random_landmarks", "random_pair", "random_rotation"]
