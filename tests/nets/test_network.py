"""Tests for network.py: the variants' outputs, the starting pose, the heads run from given
taps, gradients, input checks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from e2far_lite.nets.backbone import BackboneConfig
from e2far_lite.nets.fusion import FusionConfig
from e2far_lite.nets.network import E2FARNet, NetConfig

K, E = 5, 4
SMALL = BackboneConfig(widths=(4, 8, 8, 16, 16))


def small(**kwargs) -> NetConfig:
    """A tiny 64 px net: the tests check wiring, not capacity."""
    kwargs.setdefault("fusion", FusionConfig(width=8, hidden=16))
    return NetConfig(backbone=SMALL, image_size=64, id_hidden=16, exp_hidden=16,
                     pose_hidden=16, **kwargs)


def images(batch: int = 2, size: int = 64) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0))


def test_default_net_shapes():
    torch.manual_seed(0)
    out = E2FARNet(K, E)(images(size=128))
    assert out["a_id"].shape == (2, K)
    assert out["a_exp"].shape == (2, E)
    assert out["pose"].shape == (2, 6)
    assert "features" not in out


@pytest.mark.parametrize("config", [
    small(),
    small(fusion=FusionConfig(taps=("pool3", "pool4", "pool5"), width=8, hidden=16)),
    small(fusion_enabled=False),
    small(multi_task=False),
], ids=["fusion", "three-taps", "no-fusion", "single-task"])
def test_variants(config):
    torch.manual_seed(0)
    net = E2FARNet(K, E, config)
    out = net(images(), return_features=True)
    assert out["a_id"].shape == (2, K) and out["a_exp"].shape == (2, E)
    assert out["pose"].shape == (2, 6)
    assert out["features"]["pool5"].shape == (2, 16, 2, 2)
    has_fusion = config.multi_task and config.fusion_enabled
    assert (net.fusion is not None) == has_fusion
    assert (net.shape_head is not None) == (not config.multi_task)
    if has_fusion:
        assert net.fusion.taps == config.fusion.taps


VARIANTS = {"fusion": small(), "no-fusion": small(fusion_enabled=False),
            "single-task": small(multi_task=False)}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_heads_and_forward_from_reproduce_forward(name):
    torch.manual_seed(0)
    net = E2FARNet(K, E, VARIANTS[name]).eval()
    with torch.no_grad():
        out = net(images(), return_features=True)
        features = out["features"]
        heads = net.heads(features)
        assert list(heads) == ["a_id", "a_exp"]
        for key in heads:
            assert torch.equal(heads[key], out[key])
        for layer in ("pool1", "pool3", "pool5"):
            again = net.forward_from(layer, features[layer], features)
            for key in heads:
                torch.testing.assert_close(again[key], out[key], rtol=1e-5, atol=1e-6)


def test_forward_from_recomputes_the_layers_above():
    torch.manual_seed(0)
    net = E2FARNet(K, E, small()).eval()
    with torch.no_grad():
        features = net.backbone(images())
        base = net.heads(features)
        changed = net.forward_from("pool3", torch.zeros_like(features["pool3"]), features)
    # pool4 and pool5 (the fusion taps, and pool5 for identity) follow from the new pool3
    assert not torch.allclose(changed["a_id"], base["a_id"])
    assert not torch.allclose(changed["a_exp"], base["a_exp"])


def test_heads_pass_tap_scale_to_the_fusion_cnn():
    torch.manual_seed(0)
    net = E2FARNet(K, E, small()).eval()
    with torch.no_grad():
        features = net.backbone(images())
        scale = {"pool4": 0.0, "pool5": torch.tensor([1.0, 2.0])}
        out = net.heads(features, tap_scale=scale)
        assert torch.equal(out["a_exp"], net.fusion(features, tap_scale=scale))
        assert torch.equal(out["a_id"], net.heads(features)["a_id"])  # identity reads no tap


def test_starts_at_mean_face_and_default_pose():
    torch.manual_seed(0)
    net = E2FARNet(K, E, small())
    out = net(images())
    assert out["a_id"].abs().max() < 0.1 and out["a_exp"].abs().max() < 0.1
    pose = out["pose"]
    assert pose[:, :3].abs().max() < 0.1  # about frontal
    assert torch.allclose(pose[:, 3:5], torch.full((2, 2), 32.0), atol=3.0)  # crop centre
    assert net.scale_init == pytest.approx(0.65 * 64 / 128)
    assert torch.allclose(pose[:, 5], torch.full((2,), net.scale_init), rtol=0.1)
    assert torch.equal(net.decode_pose(torch.zeros(1, 6)),
                       torch.tensor([[0.0, 0.0, 0.0, 32.0, 32.0, net.scale_init]]))


def test_expression_gradients_reach_every_tap():
    torch.manual_seed(0)
    config = small(fusion=FusionConfig(taps=("pool3", "pool4", "pool5"), width=8, hidden=16))
    net = E2FARNet(K, E, config)
    net(images())["a_exp"].sum().backward()
    for tap in config.fusion.taps:
        for conv in (m for m in net.fusion.projections[tap].modules()
                     if isinstance(m, nn.Conv2d)):
            assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0, tap
    assert net.backbone.stages["pool1"].conv1_1.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.id_head.parameters())  # a_exp only


def test_bad_inputs_name_the_argument():
    net = E2FARNet(K, E, small())
    with pytest.raises(ValueError, match=r"images: expected shape \(B, 3, 64, 64\), "
                                         r"got \(2, 3, 128, 128\)"):
        net(images(size=128))
    with pytest.raises(ValueError, match="images: expected a floating-point dtype"):
        net(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))
    with pytest.raises(TypeError, match="images: expected a torch.Tensor"):
        net([[0.0]])
    with pytest.raises(ValueError, match="config.image_size: expected a multiple of 32"):
        E2FARNet(K, E, NetConfig(image_size=100))
    with pytest.raises(ValueError, match="num_exp: expected a positive integer"):
        E2FARNet(K, 0, small())
    features = net.backbone(images())
    with pytest.raises(ValueError, match="layer: expected one of"):
        net.forward_from("conv3", features["pool3"], features)
    with pytest.raises(TypeError, match="features: expected a dict of taps with 'pool5'"):
        net.heads(features["pool5"])
    with pytest.raises(ValueError, match="tap_scale: expected keys among"):
        net.heads(features, tap_scale={"pool3": 0.0})
    with pytest.raises(ValueError, match="tap_scale: expected None for a network without"):
        E2FARNet(K, E, small(fusion_enabled=False)).heads(features, tap_scale={"pool4": 0.0})
