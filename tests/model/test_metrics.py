"""3D and 2D error metrics: e2far_lite/model/metrics.py."""

from __future__ import annotations

import math

import plotly.graph_objects as go
import pytest
import torch

from e2far_lite.model.metrics import (
    landmark_nme,
    per_vertex_error,
    rigid_align,
    shape_errors,
    vertex_rmse,
)
from e2far_lite.model.regions import REGION_NAMES, vertex_regions
from e2far_lite.render.camera import rotation_matrix
from e2far_lite.ui.plots import error_heatmap


def cloud(batch: int = 3, points: int = 40, seed: int = 0) -> torch.Tensor:
    """An asymmetric random point cloud (B, V, 3), about face-sized in mm."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, points, 3, generator=g) * torch.tensor([60.0, 80.0, 40.0])


def random_rotation(batch: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return rotation_matrix((torch.rand(batch, 3, generator=g) - 0.5) * 2 * math.pi)


# ------------------------------------------------------------------------- 3D alignment
def test_rigid_transform_aligns_to_zero_error():
    target = cloud()
    moved = target @ random_rotation(3).mT + torch.tensor([10.0, -20.0, 300.0])
    assert float(vertex_rmse(moved, target, align=False).min()) > 10.0
    assert torch.allclose(rigid_align(moved, target), target, atol=1e-3)
    assert float(vertex_rmse(moved, target).max()) < 1e-3


def test_constant_offset_without_alignment_gives_its_length():
    target = cloud()
    offset = torch.tensor([3.0, 0.0, 4.0])
    assert torch.allclose(vertex_rmse(target + offset, target, align=False),
                          torch.full((3,), 5.0), atol=1e-4)
    assert torch.allclose(per_vertex_error(target + offset, target, align=False),
                          torch.full((3, 40), 5.0), atol=1e-4)
    assert float(vertex_rmse(target + offset, target).max()) < 1e-4  # alignment removes it


def test_alignment_never_reflects():
    target = cloud()
    mirrored = target * torch.tensor([-1.0, 1.0, 1.0])  # a reflection, no rotation undoes it
    aligned = rigid_align(mirrored, target)

    def volume(p):  # signed volume of the first four points: flips under a reflection
        e = p[:, 1:4] - p[:, :1]
        return torch.linalg.det(e)

    assert bool((torch.sign(volume(aligned)) == torch.sign(volume(mirrored))).all())
    assert float(vertex_rmse(mirrored, target).min()) > 5.0
    # and what comes back is a rigid motion of the input: distances are kept
    def distances(p):
        return (p[:, :, None] - p[:, None]).norm(dim=-1)

    assert torch.allclose(distances(aligned), distances(mirrored), atol=1e-3)


def test_alignment_is_least_squares_under_noise():
    # Kabsch can only do better than the true transform, never worse
    target = cloud()
    noise = torch.randn(target.shape, generator=torch.Generator().manual_seed(2))
    rot = random_rotation(3, seed=3)
    moved = (target + 2.0 * noise) @ rot.mT + 7.0
    undone = (moved - 7.0) @ rot  # the true inverse: leaves exactly the noise
    assert bool((vertex_rmse(moved, target) <= vertex_rmse(undone, target, align=False)
                 + 1e-4).all())


def test_similarity_alignment_removes_scale_only_when_asked():
    target = cloud()
    moved = 1.1 * target @ random_rotation(3).mT + 5.0
    assert torch.allclose(rigid_align(moved, target, scale=True), target, atol=1e-3)
    assert float(vertex_rmse(moved, target).min()) > 1.0  # rigid leaves the size error


def test_mask_selects_vertices_after_whole_alignment():
    target = cloud(batch=2)
    pred = target.clone()
    pred[:, :10] += torch.tensor([0.0, 0.0, 2.0])  # error on the first 10 only
    mask = torch.zeros(40, dtype=torch.bool)
    mask[:10] = True
    errors = per_vertex_error(pred, target)
    expected = errors[:, :10].pow(2).mean(1).sqrt()
    assert torch.allclose(vertex_rmse(pred, target, mask=mask), expected)
    assert torch.allclose(vertex_rmse(pred, target, mask=mask.expand(2, -1)), expected)
    assert bool(vertex_rmse(pred, target, mask=torch.zeros(40, dtype=torch.bool)).isnan().all())


# ------------------------------------------------------------------------- shape errors
def test_shape_errors_keys_and_zero_for_identical(default_model):
    g = torch.Generator().manual_seed(0)
    coeffs = {"a_id": torch.randn(2, default_model.num_id, generator=g),
              "a_exp": 0.5 * torch.randn(2, default_model.num_exp, generator=g)}
    errors = shape_errors(default_model, coeffs, coeffs)
    assert set(errors) == {"total", "neutral", "total_sim", "neutral_sim", "expression",
                           *(f"region/{n}" for n in REGION_NAMES)}
    for key, value in errors.items():
        assert value.shape == (2,), key
        assert float(value.abs().max()) < 0.02, key  # float32 SVD noise only


def test_shape_errors_split_identity_and_expression(default_model):
    g = torch.Generator().manual_seed(1)
    num_id, num_exp = default_model.num_id, default_model.num_exp
    a_id = torch.randn(2, num_id, generator=g)
    target = {"a_id": a_id, "a_exp": torch.zeros(2, num_exp)}
    pred = {"a_id": a_id, "a_exp": torch.randn(2, num_exp, generator=g)}
    labels = vertex_regions(default_model)
    errors = shape_errors(default_model, pred, target, labels=labels)
    assert float(errors["neutral"].max()) < 0.02  # same identity
    offsets = default_model.expression_offset(pred["a_exp"])
    assert torch.allclose(errors["expression"], offsets.norm(dim=-1).pow(2).mean(1).sqrt(),
                          rtol=1e-4)
    # the region errors are the total error read over each region, one alignment for all
    full = per_vertex_error(default_model(pred["a_id"], pred["a_exp"]),
                            default_model(target["a_id"], target["a_exp"]))
    for i, name in enumerate(REGION_NAMES):
        expected = full[:, labels == i].pow(2).mean(1).sqrt()
        assert torch.allclose(errors[f"region/{name}"], expected, rtol=1e-4), name


def test_similarity_figures_forgive_size_only(default_model):
    g = torch.Generator().manual_seed(2)
    target = {"a_id": torch.randn(8, default_model.num_id, generator=g),
              "a_exp": torch.randn(8, default_model.num_exp, generator=g)}
    pred = {"a_id": torch.zeros(8, default_model.num_id),
            "a_exp": torch.zeros(8, default_model.num_exp)}
    errors = shape_errors(default_model, pred, target)
    assert bool((errors["total_sim"] <= errors["total"] + 1e-5).all())
    assert bool((errors["neutral_sim"] <= errors["neutral"] + 1e-5).all())
    # the similarity figure is the RMSE after Umeyama's alignment, scale included
    p = default_model.neutral(pred["a_id"])
    t = default_model.neutral(target["a_id"])
    expected = (rigid_align(p, t, scale=True) - t).norm(dim=-1).pow(2).mean(1).sqrt()
    assert torch.allclose(errors["neutral_sim"], expected, rtol=1e-5)


def test_shape_errors_bad_inputs(default_model):
    good = {"a_id": torch.zeros(1, default_model.num_id),
            "a_exp": torch.zeros(1, default_model.num_exp)}
    with pytest.raises(ValueError, match="pred_coeffs"):
        shape_errors(default_model, {"a_id": good["a_id"]}, good)
    with pytest.raises(ValueError, match=r"target_coeffs\['a_exp'\]"):
        shape_errors(default_model, good, {"a_id": good["a_id"], "a_exp": torch.zeros(1, 3)})


# ------------------------------------------------------------------------- landmark NME
def box_landmarks(batch: int = 2) -> torch.Tensor:
    """(B, 68, 2) landmarks spread over a 100 x 64 px box (sqrt(w h) = 80 px)."""
    g = torch.Generator().manual_seed(0)
    points = torch.rand(batch, 68, 2, generator=g) * torch.tensor([100.0, 64.0]) + 20.0
    points[:, 0] = torch.tensor([20.0, 20.0])
    points[:, 1] = torch.tensor([120.0, 84.0])  # pin the box corners
    return points


def test_nme_of_a_known_shift():
    target = box_landmarks()
    pred = target + torch.tensor([6.0, 8.0])  # 10 px everywhere
    assert torch.allclose(landmark_nme(pred, target), torch.full((2,), 10.0 / 80.0))


def test_nme_ignores_invisible_points():
    target = box_landmarks()
    visible = torch.ones(2, 68, dtype=torch.bool)
    visible[:, 40:] = False
    pred = target + torch.tensor([0.0, 4.0])
    pred[:, 40:] += 1000.0  # wild, but hidden
    target_far = target.clone()
    target_far[:, 60:] = torch.tensor([900.0, 900.0])  # outside the box, but hidden: no effect
    size = (target[:, :40].amax(1) - target[:, :40].amin(1)).prod(-1).sqrt()
    assert torch.allclose(landmark_nme(pred, target, visible), 4.0 / size)
    assert torch.allclose(landmark_nme(pred, target_far, visible), 4.0 / size)
    # undefined (NaN) targets count as invisible
    target_nan = target.clone()
    target_nan[:, 40:] = float("nan")
    assert torch.allclose(landmark_nme(pred, target_nan), 4.0 / size)


def test_nme_degenerate_box_is_nan():
    target = box_landmarks(1)
    visible = torch.zeros(1, 68, dtype=torch.bool)
    visible[0, 5] = True  # one point spans no area
    assert bool(landmark_nme(target + 1.0, target, visible).isnan().all())


# ------------------------------------------------------------------------- heat map
def test_error_heatmap(default_model):
    vertices = default_model.mean
    errors = vertices[:, 0].abs() / 10.0
    fig = error_heatmap(default_model, vertices, errors, title="demo")
    assert isinstance(fig, go.Figure)
    mesh = fig.data[0]
    assert len(mesh.intensity) == default_model.num_vertices
    assert "mm" in mesh.colorbar.title.text
    assert mesh.cmin == 0.0 and mesh.cmax == pytest.approx(float(errors.max()))
    fig = error_heatmap(default_model.triangles, vertices, errors, cmax=3.0)
    assert fig.data[0].cmax == 3.0


# ------------------------------------------------------------------------- bad inputs
def test_bad_shapes_name_the_argument():
    points = cloud(batch=2, points=10)
    with pytest.raises(ValueError, match="target"):
        rigid_align(points, points[:, :5])
    with pytest.raises(ValueError, match="source"):
        rigid_align(points[..., :2], points)
    with pytest.raises(ValueError, match="pred"):
        vertex_rmse(points.long(), points)
    with pytest.raises(ValueError, match="mask"):
        vertex_rmse(points, points, mask=torch.ones(9, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask"):
        vertex_rmse(points, points, mask=torch.ones(10))
    lm = box_landmarks()
    with pytest.raises(ValueError, match="target"):
        landmark_nme(lm, lm[:, :10])
    with pytest.raises(ValueError, match="visible"):
        landmark_nme(lm, lm, torch.ones(2, 67, dtype=torch.bool))
    with pytest.raises(ValueError, match="visible"):
        landmark_nme(lm, lm, torch.ones(2, 68))
    with pytest.raises(ValueError, match="errors"):
        error_heatmap(torch.zeros(1, 3, dtype=torch.long), torch.zeros(3, 3), torch.zeros(4))
