"""Tests of analysis/silencing.py: vertex errors against vertex_rmse, silencing a fusion tap."""

from __future__ import annotations

import pytest
import torch
from helpers_models import make_tiny_net, tiny_model

from e2far_lite.analysis import silencing as A
from e2far_lite.model.metrics import vertex_rmse


def test_vertex_errors_match_vertex_rmse(blend_net, blend_batch, blend_model):
    errors = A.vertex_errors(blend_net, blend_batch, blend_model)
    with torch.no_grad():
        pred = blend_net(blend_batch["image"])
    exp = vertex_rmse(blend_model.expression_offset(pred["a_exp"]),
                      blend_model.expression_offset(blend_batch["a_exp"]), align=False).mean()
    ident = vertex_rmse(blend_model.neutral(pred["a_id"]), blend_model.neutral(blend_batch["a_id"]),
                        align=False).mean()
    assert errors["expression"] == pytest.approx(float(exp), rel=1e-4)
    assert errors["identity"] == pytest.approx(float(ident), rel=1e-4)


def test_coefficient_errors_of_the_truth_are_zero(blend_batch, blend_model):
    errors = A.coefficient_errors(blend_batch, blend_batch, blend_model)
    assert errors == {"expression": 0.0, "identity": 0.0}


def test_silence_taps_keys_and_identity_untouched(blend_net, blend_batch, blend_model):
    for mode in A.SILENCING_MODES:
        result = A.silence_taps(blend_net, blend_batch, blend_model, mode=mode)
        assert list(result) == ["pool4", "pool5"]
        for change in result.values():
            assert set(change) == {"expression", "identity"}
            assert change["identity"] == 0.0  # the neutral branch never reads the fusion CNN
    zero = A.silence_taps(blend_net, blend_batch, blend_model)
    assert any(abs(change["expression"]) > 0 for change in zero.values())


def test_silence_taps_zero_matches_tap_scale(blend_net, blend_batch, blend_model):
    reference = A.vertex_errors(blend_net, blend_batch, blend_model)
    silenced = A.vertex_errors(blend_net, blend_batch, blend_model, tap_scale={"pool4": 0.0})
    change = A.silence_taps(blend_net, blend_batch, blend_model)["pool4"]["expression"]
    assert change == pytest.approx(silenced["expression"] - reference["expression"], abs=1e-5)


def test_disconnected_tap_has_no_effect(blend_net, blend_batch, blend_model):
    ablation = A.silence_taps(blend_net, blend_batch, blend_model, tap_scale={"pool4": 0.0})
    assert ablation["pool4"] == {"expression": 0.0, "identity": 0.0}
    assert ablation["pool5"]["expression"] != 0.0


def test_mean_ablation_of_identical_images_changes_nothing(blend_net, blend_batch, blend_model):
    same = {k: v[:1].expand(4, *v.shape[1:]).clone() for k, v in blend_batch.items()}
    for change in A.silence_taps(blend_net, same, blend_model, mode="mean").values():
        assert change["expression"] == pytest.approx(0.0, abs=1e-5)


def test_ablation_restores_training_mode(blend_model, blend_batch):
    net = make_tiny_net(blend_model).train()
    A.silence_taps(net, blend_batch, blend_model)
    A.vertex_errors(net, blend_batch, blend_model)
    assert net.training


def test_bad_inputs_name_the_argument(blend_net, blend_batch, blend_model):
    images = blend_batch["image"]
    with pytest.raises(ValueError, match="mode: expected one of"):
        A.silence_taps(blend_net, blend_batch, blend_model, mode="noise")
    with pytest.raises(ValueError, match="batch: expected at least 2 images"):
        one = {k: v[:1] for k, v in blend_batch.items()}
        A.silence_taps(blend_net, one, blend_model, mode="mean")
    with pytest.raises(ValueError, match="tap_scale: expected keys"):
        A.silence_taps(blend_net, blend_batch, blend_model, tap_scale={"pool3": 0.0})
    with pytest.raises(ValueError, match=r"batch: expected keys"):
        A.silence_taps(blend_net, {"image": images}, blend_model)
    with pytest.raises(ValueError, match="model: expected K="):
        A.silence_taps(blend_net, blend_batch, tiny_model(num_id=3))
    with pytest.raises(ValueError, match="net: expected a network with a fusion CNN"):
        A.silence_taps(make_tiny_net(blend_model, fusion_enabled=False), blend_batch, blend_model)
    with pytest.raises(ValueError, match=r"target\['a_exp'\]: expected shape"):
        A.coefficient_errors(blend_batch, {**blend_batch, "a_exp": torch.zeros(3, 2)}, blend_model)
