"""The jaw line on the silhouette (photo.contour): frontal faces keep their landmarks, turned
faces move the far side's jaw points to the outline, and nothing else moves."""

from __future__ import annotations

import math

import pytest
import torch

from e2far_lite import photo
from e2far_lite.render.camera import weak_perspective_project


def _pose(yaw_deg: float, batch: int = 1) -> torch.Tensor:
    """(B, 6): yaw, no pitch or roll, the origin at (100, 100) px, 1 px per mm."""
    return torch.tensor([[math.radians(yaw_deg), 0.0, 0.0, 100.0, 100.0, 1.0]]).repeat(batch, 1)


def _mean_face(model, batch: int = 1) -> torch.Tensor:
    return model(torch.zeros(batch, model.num_id), torch.zeros(batch, model.num_exp))


def _fixed(model, vertices, pose):
    return weak_perspective_project(vertices[:, model.landmarks], pose)


def test_every_jaw_point_but_the_chin_has_a_line_through_its_own_vertex(default_model):
    lines = photo.contour_candidates(default_model)
    assert sorted(lines) == list(photo.JAW_CONTOUR) and 8 not in lines
    mean = default_model.mean
    for j, line in lines.items():
        own = int(default_model.landmarks[j])
        assert own in line.tolist() and len(line) >= 5, j
        assert bool(((mean[line, 1] - mean[own, 1]).abs() <= photo.CONTOUR_BAND_MM).all())
        assert bool((mean[line, 0] * mean[own, 0] > 0).all())  # its own side of the face


def test_a_frontal_face_keeps_its_landmarks(default_model):
    vertices, pose = _mean_face(default_model), _pose(0.0)
    torch.testing.assert_close(photo.contour_landmarks(vertices, pose, default_model),
                               _fixed(default_model, vertices, pose))


@pytest.mark.parametrize("yaw", [-35.0, 35.0])
def test_a_turned_face_puts_its_far_jaw_on_the_outline(default_model, yaw):
    vertices, pose = _mean_face(default_model), _pose(yaw)
    moved = photo.contour_landmarks(vertices, pose, default_model)[0]
    fixed = _fixed(default_model, vertices, pose)[0]
    others = [j for j in range(68) if j not in photo.JAW_CONTOUR]
    torch.testing.assert_close(moved[others], fixed[others])
    # the side turned away: x > 0 in the model goes back for positive yaw (x' = x cos + z sin)
    far = [j for j in photo.JAW_CONTOUR if (default_model.mean[default_model.landmarks[j], 0]
                                            * yaw) > 0]
    assert len(far) == 8
    everything = weak_perspective_project(vertices, pose)[0]
    mean_y = default_model.mean[:, 1]
    for j in far:
        side = 1.0 if default_model.mean[default_model.landmarks[j], 0] > 0 else -1.0
        # never further in than the hidden jaw vertex ...
        assert side * (moved[j, 0] - fixed[j, 0]) >= 0, j
        if j not in (0, 1, 2, 3, 13, 14, 15, 16):
            continue  # towards the chin the outline runs sideways, not up and down
        # ... and where the outline runs up and down, on it: no vertex of the face at that
        # height sticks out further
        own_y = mean_y[default_model.landmarks[j]]
        near = everything[(mean_y - own_y).abs() <= photo.CONTOUR_BAND_MM]
        assert float(side * (near[:, 0] - moved[j, 0]).max()) < 1.0, j  # within 1 px (1 mm)
    upper = [j for j in far if j in (0, 1, 2, 14, 15, 16)]
    assert float(min(side_gap.abs() for side_gap in moved[upper, 0] - fixed[upper, 0])) > 2.0


def test_a_batch_is_each_face_alone(default_model):
    g = torch.Generator().manual_seed(0)
    vertices = default_model(torch.randn(3, default_model.num_id, generator=g),
                             0.5 * torch.randn(3, default_model.num_exp, generator=g))
    pose = _pose(0.0, 3)
    pose[:, 0] = torch.tensor([-0.5, 0.0, 0.6])
    pose[:, 5] = torch.tensor([0.5, 1.0, 2.0])
    together = photo.contour_landmarks(vertices, pose, default_model)
    for i in range(3):
        alone = photo.contour_landmarks(vertices[i:i + 1], pose[i:i + 1], default_model)
        torch.testing.assert_close(together[i:i + 1], alone)


@pytest.mark.parametrize(("vertices", "pose", "message"), [
    (torch.zeros(1, 5, 3), torch.zeros(1, 6), r"vertices: expected shape \(B, 6706, 3\), got"),
    (torch.zeros(1, 6706, 3, dtype=torch.int64), torch.zeros(1, 6),
     r"vertices: expected a floating-point dtype, got torch.int64"),
    (torch.zeros(2, 6706, 3), torch.zeros(1, 6), r"pose: expected shape \(2, 6\), got \(1, 6\)"),
    (torch.zeros(1, 6706, 3), torch.zeros(1, 6, dtype=torch.float64),
     r"pose: expected torch.float32 on cpu like vertices, got torch.float64 on cpu"),
])
def test_bad_input_names_the_argument(default_model, vertices, pose, message):
    with pytest.raises(ValueError, match=message):
        photo.contour_landmarks(vertices, pose, default_model)


def test_a_face_turned_side_on_keeps_its_fixed_jaw(default_model):
    """At a yaw of exactly 90 degrees the model's x axis has no image direction."""
    vertices, pose = _mean_face(default_model), _pose(90.0)
    torch.testing.assert_close(photo.contour_landmarks(vertices, pose, default_model),
                               _fixed(default_model, vertices, pose))


def test_other_frontal_faces_move_their_jaw_by_a_millimetre_at_most(default_model):
    g = torch.Generator().manual_seed(1)
    vertices = default_model(torch.randn(16, default_model.num_id, generator=g),
                             0.5 * torch.randn(16, default_model.num_exp, generator=g))
    pose = _pose(0.0, 16)  # 1 px per mm
    moved = photo.contour_landmarks(vertices, pose, default_model) - _fixed(
        default_model, vertices, pose)
    assert float(moved.norm(dim=-1).max()) < 1.5
