"""Tests of analysis/attribution.py on a tiny untrained network (64 px, a few channels) and a
tiny model with blend shapes (the ``blend_*`` fixtures of tests/conftest.py)."""

from __future__ import annotations

import math

import pytest
import torch
from helpers_models import make_tiny_net

from e2far_lite.analysis import attribution as A
from e2far_lite.analysis.targets import target_function
from e2far_lite.nets.backbone import TAP_NAMES


def test_disconnected_tap_gets_no_share(blend_net, blend_batch, blend_model):
    shares = A.tap_attribution(blend_net, blend_batch["image"], blend_model,
                               tap_scale={"pool4": 0.0})
    assert shares == {"pool4": 0.0, "pool5": 1.0}
    # all taps off: the expression no longer depends on the image at all
    dead = A.layer_attribution(blend_net, blend_batch["image"], blend_model, "expression",
                               tap_scale={"pool4": 0.0, "pool5": 0.0})
    assert all(value == 0.0 for value in dead.values())


def test_attribution_depth():
    assert A.attribution_depth({"pool1": 1.0}) == 1.0
    assert A.attribution_depth({"pool2": 0.5, "pool4": 0.5}) == pytest.approx(3.0)
    assert math.isnan(A.attribution_depth({"pool1": 0.0, "pool5": 0.0}))


def test_layer_attribution_shares(blend_net, blend_batch, blend_model):
    for target in ("expression", "identity", "jawOpen"):
        shares = A.layer_attribution(blend_net, blend_batch["image"], blend_model, target)
        assert list(shares) == list(TAP_NAMES)
        assert all(v >= 0 for v in shares.values())
        assert sum(shares.values()) == pytest.approx(1.0)
    raw = A.layer_attribution(blend_net, blend_batch["image"], blend_model, normalize=False,
                              layers=("pool2",))
    assert list(raw) == ["pool2"] and raw["pool2"] > 0


def test_grad_x_act_equals_the_sub_network_gradient(blend_net, blend_batch, blend_model):
    """One backward through the whole net == the gradient of the sub-network from each tap."""
    images = blend_batch["image"]
    raw = A.layer_attribution(blend_net, images, blend_model, "mouthSmile_L", normalize=False)
    fn = target_function(blend_model, "mouthSmile_L")
    with torch.no_grad():
        features = blend_net.backbone(images)
    for layer in ("pool3", "pool4", "pool5"):
        act = features[layer].clone().requires_grad_(True)
        out = blend_net.forward_from(layer, act, features)
        grad, = torch.autograd.grad(fn(out["a_id"], out["a_exp"]).sum(), act)
        assert raw[layer] == pytest.approx(float((grad * act).detach().abs().sum()), rel=1e-4)


def test_per_sample_rows_add_up_to_the_batch(blend_net, blend_batch, blend_model):
    images = blend_batch["image"]
    rows = A.per_sample_attribution(blend_net, images, blend_model, "jawOpen")
    assert rows.shape == (3, len(TAP_NAMES))
    whole = A.layer_attribution(blend_net, images, blend_model, "jawOpen", normalize=False)
    torch.testing.assert_close(rows.sum(0), torch.tensor(list(whole.values()),
                                                         dtype=rows.dtype), rtol=1e-5, atol=0)
    alone = A.layer_attribution(blend_net, images[1:2], blend_model, "jawOpen", normalize=False)
    torch.testing.assert_close(rows[1], torch.tensor(list(alone.values()), dtype=rows.dtype),
                               rtol=1e-4, atol=0)


@pytest.mark.parametrize("layer,target", [("pool2", "identity"), ("pool4", "expression"),
                                          ("pool5", "browInnerUp_L")])
def test_integrated_gradients_completeness(blend_net, blend_batch, blend_model, layer, target):
    ig = A.integrated_gradients(blend_net, blend_batch["image"], blend_model, layer, target,
                                steps=32)
    with torch.no_grad():
        features = blend_net.backbone(blend_batch["image"])
    assert ig.attributions.shape == features[layer].shape
    gap = ig.value - ig.baseline_value
    assert float(gap.abs().max()) > 1e-4  # something to explain
    total = ig.attributions.sum((1, 2, 3))
    torch.testing.assert_close(total, gap, rtol=0.05, atol=0.02 * float(gap.abs().max()))


def test_integrated_gradients_layer_attribution(blend_net, blend_batch, blend_model):
    shares = A.layer_attribution(blend_net, blend_batch["image"][:2], blend_model, "identity",
                                 method="integrated_gradients", steps=4,
                                 layers=("pool4", "pool5"))
    assert list(shares) == ["pool4", "pool5"]
    assert sum(shares.values()) == pytest.approx(1.0)


def test_attribution_restores_training_mode(blend_model, blend_batch):
    net = make_tiny_net(blend_model).train()
    A.layer_attribution(net, blend_batch["image"], blend_model)
    assert net.training


def test_bad_inputs_name_the_argument(blend_net, blend_batch, blend_model):
    images = blend_batch["image"]
    with pytest.raises(ValueError, match="images: expected shape"):
        A.layer_attribution(blend_net, torch.rand(2, 3, 32, 32), blend_model)
    with pytest.raises(TypeError, match="net: expected an E2FARNet"):
        A.layer_attribution(torch.nn.Linear(2, 2), images, blend_model)
    with pytest.raises(ValueError, match="target: expected one of"):
        A.layer_attribution(blend_net, images, blend_model, target="smile")
    with pytest.raises(ValueError, match="method: expected one of"):
        A.layer_attribution(blend_net, images, blend_model, method="saliency")
    with pytest.raises(ValueError, match="layers: expected names"):
        A.layer_attribution(blend_net, images, blend_model, layers=("conv3",))
    with pytest.raises(ValueError, match="layer: expected one of"):
        A.integrated_gradients(blend_net, images, blend_model, "pool6")
    with pytest.raises(ValueError, match="steps: expected a positive integer"):
        A.integrated_gradients(blend_net, images, blend_model, "pool5", steps=0)
    with pytest.raises(ValueError, match="tap_scale: expected keys"):
        A.tap_attribution(blend_net, images, blend_model, tap_scale={"pool3": 0.0})
    with pytest.raises(ValueError, match="net: expected a network with a fusion CNN"):
        A.tap_attribution(make_tiny_net(blend_model, fusion_enabled=False), images, blend_model)
    with pytest.raises(ValueError, match="tap_scale: expected None for a network without"):
        A.layer_attribution(make_tiny_net(blend_model, fusion_enabled=False), images, blend_model,
                            tap_scale={"pool4": 0.0})
