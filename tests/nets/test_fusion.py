"""Tests for fusion.py: shapes, the tap scale used by attribution, gradients, input checks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from e2far_lite.nets.fusion import FusionCNN, FusionConfig

CHANNELS = {"pool1": 4, "pool2": 6, "pool3": 8, "pool4": 10, "pool5": 12}
GRID = 2  # pool5 side, i.e. a 64 px image


def features(batch: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {tap: torch.rand(batch, c, GRID * 2 ** (5 - k), GRID * 2 ** (5 - k), generator=g)
            for k, (tap, c) in enumerate(CHANNELS.items(), start=1)}


def fusion(taps=("pool4", "pool5"), seed: int = 0) -> FusionCNN:
    torch.manual_seed(seed)
    return FusionCNN(CHANNELS, num_exp=7, config=FusionConfig(taps=taps, width=8, hidden=16),
                     grid_size=GRID)


def convs(module: nn.Module) -> list[nn.Conv2d]:
    return [m for m in module.modules() if isinstance(m, nn.Conv2d)]


@pytest.mark.parametrize("taps", [("pool4", "pool5"), ("pool3", "pool4", "pool5"), ("pool2",)])
def test_shapes(taps):
    net = fusion(taps)
    assert net(features()).shape == (2, 7)
    projected = net.project_taps(features())
    assert tuple(projected) == taps
    for tap in taps:
        assert projected[tap].shape == (2, 8, GRID, GRID)
        # k levels above pool5: k stride-2 3x3 convs; pool5 itself: one 1x1 conv
        steps = 5 - int(tap[-1])
        kernels = [c.kernel_size for c in convs(net.projections[tap])]
        assert kernels == ([(3, 3)] * steps if steps else [(1, 1)])


def test_starts_near_zero():
    assert fusion()(features()).abs().max() < 0.1


def test_gradients_reach_every_tap():
    net = fusion(("pool3", "pool4", "pool5"))
    net(features()).sum().backward()
    for tap in net.taps:
        for conv in convs(net.projections[tap]):
            assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0, tap


def test_scale_zero_disconnects_a_tap():
    net = fusion(("pool3", "pool4", "pool5"))
    net(features(), tap_scale={"pool4": 0.0}).sum().backward()
    for conv in convs(net.projections["pool4"]):
        assert torch.count_nonzero(conv.weight.grad) == 0
    for tap in ("pool3", "pool5"):
        for conv in convs(net.projections[tap]):
            assert conv.weight.grad.abs().sum() > 0


def test_scale_values():
    net = fusion().eval()  # eval: BN statistics do not depend on the batch
    feats = features(batch=3)
    plain = net(feats)
    assert torch.allclose(net(feats, tap_scale={"pool4": 1.0}), plain)
    assert torch.allclose(net(feats, tap_scale={}), plain)
    doubled = net(feats, tap_scale={"pool4": torch.tensor(2.0)})
    assert not torch.allclose(doubled, plain)
    per_sample = net(feats, tap_scale={"pool4": torch.tensor([1.0, 2.0, 0.0])})
    assert torch.allclose(per_sample[0], plain[0])
    assert torch.allclose(per_sample[1], doubled[1])
    assert torch.allclose(per_sample[2], net(feats, tap_scale={"pool4": 0})[2])


def test_bad_inputs_name_the_argument():
    net = fusion()
    feats = features()
    with pytest.raises(ValueError, match="tap_scale: expected keys among"):
        net(feats, tap_scale={"pool3": 0.5})
    with pytest.raises(ValueError, match=r"tap_scale\['pool4'\]: expected a number or shape"):
        net(feats, tap_scale={"pool4": torch.ones(5)})
    with pytest.raises(ValueError, match=r"features: expected taps .*missing \['pool4'\]"):
        net({"pool5": feats["pool5"]})
    bad = dict(feats, pool4=torch.rand(2, 10, 3, 3))
    with pytest.raises(ValueError, match=r"features\['pool4'\]: expected shape \(2, 10, 4, 4\)"):
        net(bad)
    with pytest.raises(ValueError, match="config.taps: expected names"):
        FusionCNN(CHANNELS, 7, FusionConfig(taps=("pool6",)), GRID)
    with pytest.raises(ValueError, match="config.taps: expected distinct"):
        FusionCNN(CHANNELS, 7, FusionConfig(taps=("pool5", "pool5")), GRID)
