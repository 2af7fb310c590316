"""Tests of analysis/silencing.py: vertex errors against vertex_rmse, silencing a fusion tap."""

from __future__ import annotations

import pytest
import torch
from helpers_models import tiny_model
from test_attribution import blend_model, random_batch, tiny_net

from e2far_lite.analysis import silencing as A
from e2far_lite.model.metrics import vertex_rmse
from e2far_lite.model.morphable_model import MorphableModel
from e2far_lite.nets.network import E2FARNet


@pytest.fixture(scope="module")
def model() -> MorphableModel:
    return blend_model()


@pytest.fixture(scope="module")
def net(model) -> E2FARNet:
    return tiny_net(model)


@pytest.fixture(scope="module")
def batch(model) -> dict[str, torch.Tensor]:
    return random_batch(model)


def test_vertex_errors_match_vertex_rmse(net, batch, model):
    errors = A.vertex_errors(net, batch, model)
    with torch.no_grad():
        pred = net(batch["image"])
    exp = vertex_rmse(model.expression_offset(pred["a_exp"]),
                      model.expression_offset(batch["a_exp"]), align=False).mean()
    ident = vertex_rmse(model.neutral(pred["a_id"]), model.neutral(batch["a_id"]),
                        align=False).mean()
    assert errors["expression"] == pytest.approx(float(exp), rel=1e-4)
    assert errors["identity"] == pytest.approx(float(ident), rel=1e-4)


def test_coefficient_errors_of_the_truth_are_zero(batch, model):
    assert A.coefficient_errors(batch, batch, model) == {"expression": 0.0, "identity": 0.0}


def test_silence_taps_keys_and_identity_untouched(net, batch, model):
    for mode in A.SILENCING_MODES:
        result = A.silence_taps(net, batch, model, mode=mode)
        assert list(result) == ["pool4", "pool5"]
        for change in result.values():
            assert set(change) == {"expression", "identity"}
            assert change["identity"] == 0.0  # the neutral branch never reads the fusion CNN
    zero = A.silence_taps(net, batch, model)
    assert any(abs(change["expression"]) > 0 for change in zero.values())


def test_silence_taps_zero_matches_tap_scale(net, batch, model):
    reference = A.vertex_errors(net, batch, model)
    silenced = A.vertex_errors(net, batch, model, tap_scale={"pool4": 0.0})
    change = A.silence_taps(net, batch, model)["pool4"]["expression"]
    assert change == pytest.approx(silenced["expression"] - reference["expression"], abs=1e-5)


def test_disconnected_tap_has_no_effect(net, batch, model):
    ablation = A.silence_taps(net, batch, model, tap_scale={"pool4": 0.0})
    assert ablation["pool4"] == {"expression": 0.0, "identity": 0.0}
    assert ablation["pool5"]["expression"] != 0.0


def test_mean_ablation_of_identical_images_changes_nothing(net, batch, model):
    same = {k: v[:1].expand(4, *v.shape[1:]).clone() for k, v in batch.items()}
    for change in A.silence_taps(net, same, model, mode="mean").values():
        assert change["expression"] == pytest.approx(0.0, abs=1e-5)


def test_ablation_restores_training_mode(model, batch):
    net = tiny_net(model).train()
    A.silence_taps(net, batch, model)
    A.vertex_errors(net, batch, model)
    assert net.training


def test_bad_inputs_name_the_argument(net, batch, model):
    images = batch["image"]
    with pytest.raises(ValueError, match="mode: expected one of"):
        A.silence_taps(net, batch, model, mode="noise")
    with pytest.raises(ValueError, match="batch: expected at least 2 images"):
        A.silence_taps(net, {k: v[:1] for k, v in batch.items()}, model, mode="mean")
    with pytest.raises(ValueError, match="tap_scale: expected keys"):
        A.silence_taps(net, batch, model, tap_scale={"pool3": 0.0})
    with pytest.raises(ValueError, match=r"batch: expected keys"):
        A.silence_taps(net, {"image": images}, model)
    with pytest.raises(ValueError, match="model: expected K="):
        A.silence_taps(net, batch, tiny_model(num_id=3))
    with pytest.raises(ValueError, match="net: expected a network with a fusion CNN"):
        A.silence_taps(tiny_net(model, fusion_enabled=False), batch, model)
    with pytest.raises(ValueError, match=r"target\['a_exp'\]: expected shape"):
        A.coefficient_errors(batch, {**batch, "a_exp": torch.zeros(3, 2)}, model)
