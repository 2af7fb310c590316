"""Tests for losses.py: the Gram-matrix vertex loss against the explicit one, landmarks, pose."""

from __future__ import annotations

import math

import pytest
import torch
from helpers_models import tiny_model

from e2far_lite.model.morphable_model import MorphableModel
from e2far_lite.render.camera import weak_perspective_project
from e2far_lite.train.losses import LossConfig, MultiTaskLoss, gram_matrix, vertex_loss_explicit

S = 128  # image size


def batch(model: MorphableModel, size: int = 3, seed: int = 0,
          dtype: torch.dtype = torch.float64) -> dict[str, torch.Tensor]:
    """A random target (or prediction) dict in the network's / data's format."""
    g = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=dtype)

    pose = torch.cat([0.3 * randn(size, 3), S / 2 + 5 * randn(size, 2),
                      0.6 + 0.05 * randn(size, 1)], 1)
    return {"a_id": randn(size, model.num_id), "a_exp": randn(size, model.num_exp),
            "pose": pose, "landmarks": S * torch.rand(size, 68, 2, generator=g, dtype=dtype),
            "visible": torch.rand(size, 68, generator=g) > 0.3}


@pytest.fixture(scope="module")
def tiny() -> MorphableModel:
    return tiny_model().double()


def test_gram_really_matters(tiny):
    gram = gram_matrix(tiny.id_basis, tiny.id_std)
    off_diagonal = gram - torch.diag(torch.diag(gram))
    assert off_diagonal.abs().max() > 0.1 * gram.diag().min()
    cross = MultiTaskLoss(tiny).gram_shape[:tiny.num_id, tiny.num_id:]
    assert cross.abs().max() > 0.1  # identity and expression directions overlap


def test_gram_loss_equals_explicit_float64(tiny):
    pred, target = batch(tiny, seed=1), batch(tiny, seed=2)
    for multi_task in (True, False):
        loss = MultiTaskLoss(tiny, LossConfig(multi_task=multi_task)).double()
        fast = loss(pred, target)
        slow = vertex_loss_explicit(tiny, pred, target)
        for key in ("neutral", "expression", "shape"):
            assert fast[key].dtype == torch.float64
            torch.testing.assert_close(fast[key], slow[key], rtol=1e-12, atol=0)
    # the single-task shape loss keeps the id/exp cross term
    assert not torch.isclose(slow["shape"], slow["neutral"] + slow["expression"])


def test_gram_loss_equals_explicit_default_model_float32():
    model = MorphableModel.default()
    pred, target = batch(model, size=2, seed=1, dtype=torch.float32), batch(
        model, size=2, seed=2, dtype=torch.float32)
    fast = MultiTaskLoss(model)(pred, target)
    slow = vertex_loss_explicit(model, pred, target)
    for key in ("neutral", "expression", "shape"):
        torch.testing.assert_close(fast[key], slow[key], rtol=1e-4, atol=0)


def test_total_combines_terms(tiny):
    pred, target = batch(tiny, seed=1), batch(tiny, seed=2)
    config = LossConfig(lambda_exp=5.0, landmark_weight=0.5, pose_weight=0.25)
    terms = MultiTaskLoss(tiny, config).double()(pred, target)
    assert set(terms) == {"neutral", "expression", "shape", "landmarks", "pose", "total"}
    assert all(t.dim() == 0 for t in terms.values())
    extra = 0.5 * terms["landmarks"] + 0.25 * terms["pose"]
    torch.testing.assert_close(terms["total"],
                               terms["neutral"] + 5.0 * terms["expression"] + extra)
    config.multi_task = False
    single = MultiTaskLoss(tiny, config).double()(pred, target)
    torch.testing.assert_close(single["total"], single["shape"] + extra)


def test_landmark_term_against_reference(tiny):
    pred, target = batch(tiny, seed=1), batch(tiny, seed=2)
    target["landmarks"][~target["visible"]] = float("nan")  # ignored where invisible
    loss = MultiTaskLoss(tiny, LossConfig(pose_weight=0.0)).double()
    pred["a_id"].requires_grad_(True)
    pred["pose"].requires_grad_(True)
    value = loss(pred, target)["landmarks"]
    # reference: the model's own landmark points, a loop over the 68 slots
    points = tiny.landmark_points(pred["a_id"], pred["a_exp"])
    projected = weak_perspective_project(points, pred["pose"])
    per_face = []
    for b in range(3):
        total, count = 0.0, 0
        for i in range(68):
            if tiny.landmarks[i] >= 0 and target["visible"][b, i]:
                diff = (projected[b, i] - target["landmarks"][b, i]) / S * 100
                total, count = total + float(diff.detach().pow(2).sum()), count + 1
        per_face.append(total / max(count, 1))  # mean per face, then over faces
    assert value.item() == pytest.approx(sum(per_face) / 3, rel=1e-12)
    value.backward()  # undefined (NaN) model landmarks and NaN targets stay out of gradients
    assert torch.isfinite(pred["a_id"].grad).all() and torch.isfinite(pred["pose"].grad).all()
    assert pred["pose"].grad.abs().sum() > 0


def test_landmark_term_is_zero_at_truth_and_scale_free(tiny):
    target = batch(tiny, seed=2)
    points = tiny.landmark_points(target["a_id"], target["a_exp"]).nan_to_num()
    target["landmarks"] = weak_perspective_project(points, target["pose"])
    loss = MultiTaskLoss(tiny).double()
    terms = loss(target, target)
    for key in ("neutral", "expression", "shape", "landmarks", "pose", "total"):
        assert terms[key].abs() < 1e-10, key
    pred = batch(tiny, seed=1)
    small = loss(pred, target)["landmarks"]
    # the same scene in a crop twice as large: pixel quantities double, the term does not
    def doubled(d):
        return dict(d, pose=d["pose"] * torch.tensor([1, 1, 1, 2, 2, 2.0]),
                    landmarks=d["landmarks"] * 2)
    large = MultiTaskLoss(tiny, LossConfig(image_size=2 * S)).double()
    torch.testing.assert_close(large(doubled(pred), doubled(target))["landmarks"], small)


def test_pose_term_units(tiny):
    target = batch(tiny, seed=2)
    pred = dict(target, pose=target["pose"].clone())
    pred["pose"][:, 0] += math.radians(1.0)  # 1 degree of yaw
    pred["pose"][:, 3] += S / 100  # 1% of the crop in x
    loss = MultiTaskLoss(tiny, LossConfig(landmark_weight=0.0)).double()
    assert loss(pred, target)["pose"].item() == pytest.approx(2 / 6)


def test_zero_weights_need_fewer_keys(tiny):
    coefficients = {k: v for k, v in batch(tiny).items() if k in ("a_id", "a_exp")}
    loss = MultiTaskLoss(tiny, LossConfig(landmark_weight=0, pose_weight=0)).double()
    terms = loss(coefficients, coefficients)
    assert terms["landmarks"] == 0 and terms["pose"] == 0


def test_bad_inputs_name_the_argument(tiny):
    loss = MultiTaskLoss(tiny).double()
    pred, target = batch(tiny, seed=1), batch(tiny, seed=2)
    with pytest.raises(ValueError, match=r"pred\['a_id'\]: expected shape \(B, 5\), got \(3, 4\)"):
        loss(dict(pred, a_id=pred["a_id"][:, :4]), target)
    with pytest.raises(ValueError,
                       match=r"target\['a_exp'\]: expected shape \(3, 4\), got \(2, 4\)"):
        loss(pred, dict(target, a_exp=target["a_exp"][:2]))
    with pytest.raises(ValueError, match=r"target\['landmarks'\]: expected shape \(3, 68, 2\)"):
        loss(pred, dict(target, landmarks=target["landmarks"][:, :60]))
    with pytest.raises(ValueError, match=r"target\['visible'\]: expected dtype torch.bool"):
        loss(pred, dict(target, visible=target["visible"].double()))
    with pytest.raises(ValueError, match=r"target: expected keys .*missing \['visible'\]"):
        loss(pred, {k: v for k, v in target.items() if k != "visible"})
    with pytest.raises(ValueError, match=r"pred\['pose'\]: expected a floating-point dtype"):
        loss(dict(pred, pose=pred["pose"].long()), target)
    with pytest.raises(ValueError, match="config.lambda_exp: expected a weight >= 0"):
        MultiTaskLoss(tiny, LossConfig(lambda_exp=-1.0))
