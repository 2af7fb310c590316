"""Tests of attribution.py on a tiny untrained network (64 px, a few channels) and a tiny model.

The helpers ``NAMES``, ``blend_model``, ``tiny_net`` and ``random_batch`` are shared: the tests
of the other analysis modules and of the chapter-07 widgets import them from here.
"""

from __future__ import annotations

import math

import pytest
import torch
from helpers_models import tiny_model

from e2far_lite.analysis import attribution as A
from e2far_lite.analysis.targets import target_function
from e2far_lite.model.morphable_model import MorphableModel
from e2far_lite.nets.backbone import TAP_NAMES, BackboneConfig
from e2far_lite.nets.fusion import FusionConfig
from e2far_lite.nets.network import E2FARNet, NetConfig

NAMES = ("jawOpen", "mouthSmile_L", "eyeBlink_R", "browInnerUp_L")


def blend_model() -> MorphableModel:
    """tiny_model() with four named blend shapes (random offsets, in mm)."""
    m = tiny_model()
    g = torch.Generator().manual_seed(1)
    shapes = torch.randn(len(NAMES), m.num_vertices, 3, generator=g)
    return MorphableModel(m.mean, m.id_basis, m.id_std, m.exp_basis, m.exp_std, m.triangles,
                          m.landmarks, blendshapes=shapes, blendshape_names=NAMES)


def tiny_net(model: MorphableModel, **changes) -> E2FARNet:
    torch.manual_seed(0)
    config = NetConfig(backbone=BackboneConfig(widths=(4, 8, 8, 16, 16)),
                       fusion=FusionConfig(width=8, hidden=16), image_size=64, id_hidden=16,
                       exp_hidden=16, pose_hidden=8, **changes)
    net = E2FARNet(model.num_id, model.num_exp, config)
    # untrained heads start near 0; give them a voice so outputs depend on the input
    for head in (net.id_head, net.fusion.head if net.fusion is not None else net.exp_head):
        if head is not None:
            torch.nn.init.normal_(head[-1].weight, std=0.3)
    return net.eval()


def random_batch(model: MorphableModel, size: int = 3, seed: int = 2) -> dict[str, torch.Tensor]:
    """``size`` random 64 px images with random coefficients: inputs, not faces."""
    g = torch.Generator().manual_seed(seed)
    return {"image": torch.rand(size, 3, 64, 64, generator=g),
            "a_id": torch.randn(size, model.num_id, generator=g),
            "a_exp": torch.randn(size, model.num_exp, generator=g)}


@pytest.fixture(scope="module")
def model() -> MorphableModel:
    return blend_model()


@pytest.fixture(scope="module")
def net(model) -> E2FARNet:
    return tiny_net(model)


@pytest.fixture(scope="module")
def batch(model) -> dict[str, torch.Tensor]:
    return random_batch(model)


def test_disconnected_tap_gets_no_share(net, batch, model):
    shares = A.tap_attribution(net, batch["image"], model, tap_scale={"pool4": 0.0})
    assert shares == {"pool4": 0.0, "pool5": 1.0}
    # all taps off: the expression no longer depends on the image at all
    dead = A.layer_attribution(net, batch["image"], model, "expression",
                               tap_scale={"pool4": 0.0, "pool5": 0.0})
    assert all(value == 0.0 for value in dead.values())


def test_attribution_depth():
    assert A.attribution_depth({"pool1": 1.0}) == 1.0
    assert A.attribution_depth({"pool2": 0.5, "pool4": 0.5}) == pytest.approx(3.0)
    assert math.isnan(A.attribution_depth({"pool1": 0.0, "pool5": 0.0}))


def test_layer_attribution_shares(net, batch, model):
    for target in ("expression", "identity", "jawOpen"):
        shares = A.layer_attribution(net, batch["image"], model, target)
        assert list(shares) == list(TAP_NAMES)
        assert all(v >= 0 for v in shares.values())
        assert sum(shares.values()) == pytest.approx(1.0)
    raw = A.layer_attribution(net, batch["image"], model, normalize=False, layers=("pool2",))
    assert list(raw) == ["pool2"] and raw["pool2"] > 0


def test_grad_x_act_equals_the_sub_network_gradient(net, batch, model):
    """One backward through the whole net == the gradient of the sub-network from each tap."""
    images = batch["image"]
    raw = A.layer_attribution(net, images, model, "mouthSmile_L", normalize=False)
    fn = target_function(model, "mouthSmile_L")
    with torch.no_grad():
        features = net.backbone(images)
    for layer in ("pool3", "pool4", "pool5"):
        act = features[layer].clone().requires_grad_(True)
        out = net.forward_from(layer, act, features)
        grad, = torch.autograd.grad(fn(out["a_id"], out["a_exp"]).sum(), act)
        assert raw[layer] == pytest.approx(float((grad * act).detach().abs().sum()), rel=1e-4)


def test_per_sample_rows_add_up_to_the_batch(net, batch, model):
    images = batch["image"]
    rows = A.per_sample_attribution(net, images, model, "jawOpen")
    assert rows.shape == (3, len(TAP_NAMES))
    whole = A.layer_attribution(net, images, model, "jawOpen", normalize=False)
    torch.testing.assert_close(rows.sum(0), torch.tensor(list(whole.values()),
                                                         dtype=rows.dtype), rtol=1e-5, atol=0)
    alone = A.layer_attribution(net, images[1:2], model, "jawOpen", normalize=False)
    torch.testing.assert_close(rows[1], torch.tensor(list(alone.values()), dtype=rows.dtype),
                               rtol=1e-4, atol=0)


@pytest.mark.parametrize("layer,target", [("pool2", "identity"), ("pool4", "expression"),
                                          ("pool5", "browInnerUp_L")])
def test_integrated_gradients_completeness(net, batch, model, layer, target):
    ig = A.integrated_gradients(net, batch["image"], model, layer, target, steps=32)
    with torch.no_grad():
        features = net.backbone(batch["image"])
    assert ig.attributions.shape == features[layer].shape
    gap = ig.value - ig.baseline_value
    assert float(gap.abs().max()) > 1e-4  # something to explain
    total = ig.attributions.sum((1, 2, 3))
    torch.testing.assert_close(total, gap, rtol=0.05, atol=0.02 * float(gap.abs().max()))


def test_integrated_gradients_layer_attribution(net, batch, model):
    shares = A.layer_attribution(net, batch["image"][:2], model, "identity",
                                 method="integrated_gradients", steps=4,
                                 layers=("pool4", "pool5"))
    assert list(shares) == ["pool4", "pool5"]
    assert sum(shares.values()) == pytest.approx(1.0)


def test_attribution_restores_training_mode(model, batch):
    net = tiny_net(model).train()
    A.layer_attribution(net, batch["image"], model)
    assert net.training


def test_bad_inputs_name_the_argument(net, batch, model):
    images = batch["image"]
    with pytest.raises(ValueError, match="images: expected shape"):
        A.layer_attribution(net, torch.rand(2, 3, 32, 32), model)
    with pytest.raises(TypeError, match="net: expected an E2FARNet"):
        A.layer_attribution(torch.nn.Linear(2, 2), images, model)
    with pytest.raises(ValueError, match="target: expected one of"):
        A.layer_attribution(net, images, model, target="smile")
    with pytest.raises(ValueError, match="method: expected one of"):
        A.layer_attribution(net, images, model, method="saliency")
    with pytest.raises(ValueError, match="layers: expected names"):
        A.layer_attribution(net, images, model, layers=("conv3",))
    with pytest.raises(ValueError, match="layer: expected one of"):
        A.integrated_gradients(net, images, model, "pool6")
    with pytest.raises(ValueError, match="steps: expected a positive integer"):
        A.integrated_gradients(net, images, model, "pool5", steps=0)
    with pytest.raises(ValueError, match="tap_scale: expected keys"):
        A.tap_attribution(net, images, model, tap_scale={"pool3": 0.0})
    with pytest.raises(ValueError, match="net: expected a network with a fusion CNN"):
        A.tap_attribution(tiny_net(model, fusion_enabled=False), images, model)
    with pytest.raises(ValueError, match="tap_scale: expected None for a network without"):
        A.layer_attribution(tiny_net(model, fusion_enabled=False), images, model,
                            tap_scale={"pool4": 0.0})
