"""Tests for backbone.py (VGG-lite taps, input checks) and complexity.py (params, MACs)."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

from e2far_lite.nets.backbone import (
    TAP_NAMES,
    BackboneConfig,
    VGGBackbone,
    build_backbone,
    torchvision_backbone,
)
from e2far_lite.nets.complexity import count_macs, count_parameters


@pytest.fixture(scope="module")
def backbone() -> VGGBackbone:
    torch.manual_seed(0)
    return VGGBackbone()


def test_taps_are_ordered_and_strided(backbone):
    features = backbone(torch.rand(2, 3, 64, 96))
    assert tuple(features) == TAP_NAMES
    widths = BackboneConfig().widths
    for k, (name, width) in enumerate(zip(TAP_NAMES, widths, strict=True), start=1):
        assert features[name].shape == (2, width, 64 // 2**k, 96 // 2**k)
    assert backbone.channels == dict(zip(TAP_NAMES, widths, strict=True))
    assert isinstance(backbone.stages["pool3"].pool3, nn.MaxPool2d)


def test_lite_backbone_costs_under_budget(backbone):
    macs = count_macs(backbone, (1, 3, 128, 128))
    assert 0 < macs <= 0.3e9
    # halving the side quarters the cost: every layer is a conv
    assert count_macs(backbone, (1, 3, 64, 64)) * 4 == macs


def test_count_macs_matches_hand_count():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                        nn.Conv2d(8, 4, 3, stride=2, padding=1, groups=2),
                        nn.Flatten(), nn.Linear(4 * 8 * 8, 10))
    expected = 16 * 16 * 8 * 3 * 9 + 8 * 8 * 4 * 4 * 9 + 256 * 10
    net.train()
    assert count_macs(net, (1, 3, 16, 16)) == expected
    assert net.training  # mode restored
    assert count_macs(net, (3, 3, 16, 16)) == 3 * expected  # whole batch
    assert count_parameters(net) == (8 * 3 * 9 + 8) + (4 * 4 * 9 + 4) + (256 * 10 + 10)
    net[0].weight.requires_grad_(False)
    assert count_parameters(net, trainable_only=True) == count_parameters(net) - 8 * 3 * 9


def test_count_macs_leaves_batch_norm_statistics_alone(backbone):
    before = backbone.stages["pool1"].bn1_1.running_mean.clone()
    count_macs(backbone, (1, 3, 32, 32))
    assert torch.equal(backbone.stages["pool1"].bn1_1.running_mean, before)


def test_variants_without_batch_norm_and_one_conv():
    net = VGGBackbone(BackboneConfig(widths=(4, 4, 8, 8, 8), convs_per_block=1,
                                     batch_norm=False))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    assert net(torch.rand(1, 3, 32, 32))["pool5"].shape == (1, 8, 1, 1)


def test_convs_per_block_per_block():
    net = VGGBackbone(BackboneConfig(widths=(4, 4, 8, 8, 8), convs_per_block=(1, 1, 2, 2, 3)))
    convs = [sum(isinstance(m, nn.Conv2d) for m in stage.modules())
             for stage in net.stages.values()]
    assert convs == [1, 1, 2, 2, 3]
    assert net(torch.rand(1, 3, 32, 32))["pool5"].shape == (1, 8, 1, 1)
    for bad in ((1, 2), (1, 1, 0, 2, 2), 0, (1, 1, 2.0, 2, 2), 2.0, None):
        with pytest.raises(ValueError, match="config.convs_per_block: expected an integer"):
            VGGBackbone(BackboneConfig(convs_per_block=bad))


@pytest.mark.parametrize("shape", [(2, 3, 100, 128), (2, 1, 64, 64), (3, 64, 64), (2, 3, 16, 16)])
def test_bad_image_shapes_name_images(backbone, shape):
    with pytest.raises(ValueError, match=r"images: expected shape \(B, 3, H, W\).*got " +
                       str(shape).replace("(", r"\(").replace(")", r"\)")):
        backbone(torch.rand(shape))


def test_integer_images_are_refused(backbone):
    with pytest.raises(ValueError, match="images: expected a floating-point dtype"):
        backbone(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))


def test_bad_config():
    with pytest.raises(ValueError, match="config.widths"):
        VGGBackbone(BackboneConfig(widths=(8, 8)))
    with pytest.raises(ValueError, match="config.arch"):
        build_backbone(BackboneConfig(arch="vgg19"))


def test_torchvision_is_optional(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # makes `import torchvision` fail
    with pytest.raises(ImportError, match="needs torchvision.*arch='lite'"):
        torchvision_backbone("resnet18")
    with pytest.raises(ImportError, match="needs torchvision"):
        build_backbone(BackboneConfig(arch="vgg16_bn"))
