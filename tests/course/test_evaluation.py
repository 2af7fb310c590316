"""Notebook 06's checks (e2far_lite/course/evaluation.py): they pass the package's own alignment,
least-squares camera and landmark NME, and fail a wrong version with a CheckFailed that says
what differs."""

from __future__ import annotations

import pytest
import torch

from e2far_lite.course.checks import CheckFailed
from e2far_lite.course.evaluation import (
    check_affine_camera,
    check_best_rotation,
    check_nme,
    check_similarity_transform,
    random_camera_problem,
    random_landmarks,
    random_pair,
    random_rotation,
)
from e2far_lite.evaluate.fitting import affine_camera
from e2far_lite.model.metrics import landmark_nme, rigid_align

# the reference under a name of the test's own: the check refuses a function that calls it
_NME = landmark_nme


def best_rotation(x, y, fix=True):
    """The Kabsch rotation with (or, ``fix=False``, without) the reflection fix."""
    u, _, vh = torch.linalg.svd(y.mT @ x)
    d = torch.sign(torch.linalg.det(u @ vh)) if fix else torch.ones(len(x), dtype=x.dtype)
    return (u * torch.stack([torch.ones_like(d), torch.ones_like(d), d], -1)[:, None]) @ vh


def similarity_transform(x, y, with_scale=True, fix=True):
    mu_x, mu_y = x.mean(1), y.mean(1)
    xc, yc = x - mu_x[:, None], y - mu_y[:, None]
    rotation = best_rotation(xc, yc, fix)
    s = (yc * (xc @ rotation.mT)).sum((1, 2)) / xc.pow(2).sum((1, 2))
    if not with_scale:
        s = torch.ones_like(s)
    return s, rotation, mu_y - s[:, None] * (mu_x[:, None] @ rotation.mT)[:, 0]


def lstsq_camera(points, landmarks, weight):
    homog = torch.cat([points, torch.ones_like(points[..., :1])], -1)
    root = weight.sqrt()[..., None]
    return torch.linalg.lstsq(root * homog, root * landmarks).solution.mT


def test_random_shapes_are_what_they_say():
    g = torch.Generator().manual_seed(0)
    rotation = random_rotation(5, g)
    eye = torch.eye(3, dtype=torch.float64).expand(5, 3, 3)
    assert torch.allclose(rotation @ rotation.mT, eye, atol=1e-12)
    assert torch.allclose(torch.linalg.det(rotation), torch.ones(5, dtype=torch.float64))
    source, target = random_pair(2, 40, g)
    residual = (rigid_align(source, target, scale=True) - target).norm(dim=-1)
    assert float(residual.max()) < 3.0  # only the 0.5 mm noise is left
    source, target = random_pair(2, 40, g, mirrored=True)
    residual = (rigid_align(source, target, scale=True) - target).norm(dim=-1)
    assert float(residual.mean()) > 10.0  # no rotation undoes a mirror


def test_checks_pass_the_reference_solutions(capsys):
    check_best_rotation(best_rotation)
    check_similarity_transform(similarity_transform)
    check_affine_camera(lstsq_camera)
    check_affine_camera(affine_camera)  # the package's own
    out = capsys.readouterr().out
    assert out.count("✓") == 4


def test_the_package_camera_recovers_an_exact_affine_camera():
    g = torch.Generator().manual_seed(1)
    points = torch.randn(2, 20, 3, generator=g, dtype=torch.float64) * 50.0
    camera = torch.randn(2, 2, 4, generator=g, dtype=torch.float64)
    landmarks = points @ camera[:, :, :3].mT + camera[:, None, :, 3]
    weight = torch.ones(2, 20, dtype=torch.float64)
    # exact but for the whisker of ridge, which shrinks b by about 1e-4 of itself
    assert torch.allclose(affine_camera(points, landmarks, weight), camera, atol=1e-3)
    # shared (P, 3) points broadcast over the batch
    assert torch.allclose(affine_camera(points[0], landmarks[:1].expand(2, -1, -1), weight),
                          camera[:1].expand(2, -1, -1), atol=1e-3)


def test_unwritten_pieces_say_so():
    for check in (check_best_rotation, check_similarity_transform, check_affine_camera):
        with pytest.raises(CheckFailed, match="not written yet"):
            check(lambda *args: None)


def test_no_reflection_fix_fails_naming_the_reflection():
    with pytest.raises(CheckFailed, match="reflection"):
        check_best_rotation(lambda x, y: best_rotation(x, y, fix=False))
    with pytest.raises(CheckFailed, match="reflection"):
        check_similarity_transform(lambda x, y: similarity_transform(x, y, fix=False))


def test_a_fix_on_the_wrong_axis_fails_pointing_at_the_fix():
    def wrong_axis(x, y):  # flips the largest singular value's axis instead of the smallest
        u, _, wt = torch.linalg.svd(y.mT @ x)
        flip = torch.sign(torch.linalg.det(u @ wt))
        ones = torch.ones_like(flip)
        return (u * torch.stack([flip, ones, ones], -1)[:, None, :]) @ wt

    with pytest.raises(CheckFailed, match="mirrored shapes.*which singular value's axis"):
        check_best_rotation(wrong_axis)


def test_transposed_rotation_fails_saying_so():
    with pytest.raises(CheckFailed, match="transpose"):
        check_best_rotation(lambda x, y: best_rotation(x, y).mT)


def test_scale_left_out_fails_naming_the_scale():
    with pytest.raises(CheckFailed, match="scale is left out"):
        check_similarity_transform(lambda x, y: similarity_transform(x, y, with_scale=False))


def test_wrong_scale_or_translation_fails_naming_it():
    def unsigned_scale(x, y):  # the singular values without the reflection fix's sign
        s, rotation, t = similarity_transform(x, y)
        xc = x - x.mean(1, keepdim=True)
        yc = y - y.mean(1, keepdim=True)
        sigma = torch.linalg.svdvals(yc.mT @ xc)
        s = sigma.sum(-1) / xc.pow(2).sum((1, 2))
        return s, rotation, y.mean(1) - s[:, None] * (x.mean(1)[:, None] @ rotation.mT)[:, 0]

    with pytest.raises(CheckFailed, match="mirrored shapes: s.*carry its sign"):
        check_similarity_transform(unsigned_scale)
    with pytest.raises(CheckFailed, match="centroid"):
        check_similarity_transform(lambda x, y: (lambda s, r, t: (s, r, t + 1.0))(
            *similarity_transform(x, y)))
    with pytest.raises(CheckFailed, match=r"expected a tuple \(s, R, t\)"):
        check_similarity_transform(lambda x, y: similarity_transform(x, y)[:2])


def test_a_camera_that_counts_hidden_points_fails_saying_so():
    with pytest.raises(CheckFailed, match="hidden points"):
        check_affine_camera(lambda p, lm, w: lstsq_camera(p, lm, torch.ones_like(w)))


def test_a_camera_without_translation_fails_with_the_first_difference():
    def no_translation(points, landmarks, weight):
        root = weight.sqrt()[..., None]
        a = torch.linalg.lstsq(root * points, root * landmarks).solution.mT
        return torch.cat([a, torch.zeros_like(a[..., :1])], -1)

    with pytest.raises(CheckFailed, match=r"elements differ; the first at index"):
        check_affine_camera(no_translation)


def test_the_camera_problem_hides_what_it_says():
    g = torch.Generator().manual_seed(2)
    points, landmarks, weight = random_camera_problem(4, 68, g, hidden=0.3)
    assert points.shape == (4, 68, 3) and landmarks.shape == (4, 68, 2)
    assert bool((weight[:, :8] == 1).all()) and 0 < float((weight == 0).float().mean()) < 0.5


def box_nme(pred, target, visible, per_cent=True, squared=False, normaliser="box"):
    """The NME written out plainly, or with one of the usual slips."""
    dist = (pred - target).norm(dim=-1)
    if squared:
        dist = dist ** 2
    mean = (dist * visible).sum(1) / visible.sum(1)
    sizes = []
    for points, seen in zip(target, visible, strict=True):
        w, h = points[seen].amax(0) - points[seen].amin(0)
        sizes.append({"box": (w * h).sqrt(), "diagonal": (w * w + h * h).sqrt(),
                      "eyes": (points[36] - points[45]).norm()}[normaliser])
    return (100 if per_cent else 1) * mean / torch.stack(sizes)


def test_the_random_landmarks_hide_what_they_say():
    g = torch.Generator().manual_seed(3)
    pred, target, visible = random_landmarks(6, g, hidden=0.25)
    assert pred.shape == target.shape == (6, 68, 2) and visible.shape == (6, 68)
    assert bool(visible[:, :10].all()) and 0.1 < float((~visible).float().mean()) < 0.4
    dist = (pred - target).norm(dim=-1)
    assert float(dist[~visible].mean()) > 2 * float(dist[visible].mean())  # hidden: worse
    w, h = (target.amax(1) - target.amin(1)).unbind(-1)
    assert bool(((w / h - 1).abs() > 0.01).all())  # not square: the normalisers differ


def test_the_nme_check_passes_the_plain_definition(capsys):
    check_nme(box_nme)
    check_nme(lambda p, t, v: 100 * _NME(p, t, v))  # the package's, in percent
    check_nme(lambda p, t, v: box_nme(p.float(), t.float(), v))  # float32 is close enough
    assert capsys.readouterr().out.count("✓") == 3


def test_the_nme_check_names_the_usual_slips():
    with pytest.raises(CheckFailed, match="not written yet"):
        check_nme(lambda p, t, v: None)
    with pytest.raises(CheckFailed, match="fractions of the face size.*percent"):
        check_nme(lambda p, t, v: box_nme(p, t, v, per_cent=False))
    with pytest.raises(CheckFailed, match="average the squared distances"):
        check_nme(lambda p, t, v: box_nme(p, t, v, squared=True))
    with pytest.raises(CheckFailed, match=r"box's diagonal"):
        check_nme(lambda p, t, v: box_nme(p, t, v, normaliser="diagonal"))
    with pytest.raises(CheckFailed, match="outer eye corners.*fractions of the face size"):
        check_nme(lambda p, t, v: box_nme(p, t, v, per_cent=False, normaliser="eyes"))
    with pytest.raises(CheckFailed, match="one NME per face"):
        check_nme(lambda p, t, v: box_nme(p, t, v).mean())


def test_the_nme_check_names_hidden_landmarks_that_count():
    def every_landmark(pred, target, visible):
        return box_nme(pred, target, torch.ones_like(visible))

    def mean_over_68(pred, target, visible):
        w, h = (torch.where(visible[..., None], target, torch.inf).amin(1)
                - torch.where(visible[..., None], target, -torch.inf).amax(1)).unbind(-1)
        return 100 * (pred - target).norm(dim=-1).mean(1) / (w * h).sqrt()

    with pytest.raises(CheckFailed, match="25 % of them hidden.*hidden ones included"):
        check_nme(every_landmark)
    with pytest.raises(CheckFailed, match="all 68 landmarks, hidden ones included"):
        check_nme(mean_over_68)
