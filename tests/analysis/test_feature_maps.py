"""Tests for feature_viz.py: costs add up, receptive fields match gradients, pictures draw."""

from __future__ import annotations

import matplotlib
import pytest
import torch

from e2far_lite.analysis.feature_maps import (
    block_costs,
    fusion_steps,
    gradient_footprint,
    receptive_fields,
    top_channels,
)
from e2far_lite.nets.backbone import BackboneConfig, VGGBackbone
from e2far_lite.nets.complexity import count_macs, count_parameters
from e2far_lite.nets.fusion import FusionCNN, FusionConfig
from e2far_lite.ui.feature_plots import (
    feature_grid,
    fusion_diagram,
    plot_block_costs,
    plot_head_sizes,
)

matplotlib.use("Agg")
SMALL = BackboneConfig(widths=(4, 6, 8, 10, 12))


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def small_backbone(seed: int = 0) -> VGGBackbone:
    torch.manual_seed(seed)
    return VGGBackbone(SMALL)


def test_receptive_fields_of_two_conv_blocks():
    # two 3x3 convs add 4 jumps, the 2x2 pool one more: r_k = r_{k-1} + 5 * 2^(k-1)
    fields = receptive_fields(small_backbone())
    assert fields == {"pool1": (6, 2), "pool2": (16, 4), "pool3": (36, 8), "pool4": (76, 16),
                      "pool5": (156, 32)}
    one_conv = receptive_fields(VGGBackbone(BackboneConfig(widths=SMALL.widths,
                                                           convs_per_block=1)))
    assert one_conv["pool1"] == (4, 2) and one_conv["pool2"] == (10, 4)


def test_block_costs_add_up_to_the_backbone():
    net = small_backbone()
    costs = block_costs(net, 64)
    assert [row["tap"] for row in costs] == list(net.taps)
    assert sum(row["macs"] for row in costs) == count_macs(net, (1, 3, 64, 64))
    assert sum(row["params"] for row in costs) == count_parameters(net)
    assert costs[0]["input"] == (1, 3, 64, 64)
    assert costs[-1]["output"] == (1, 12, 2, 2)
    for before, after in zip(costs, costs[1:], strict=False):
        assert after["input"] == before["output"]
    assert net.training  # the train flag is restored


def test_block_costs_rejects_sizes_the_backbone_cannot_take():
    with pytest.raises(ValueError, match="multiples of 32"):
        block_costs(small_backbone(), 100)


@pytest.mark.parametrize("tap", ["pool1", "pool2", "pool3"])
def test_gradient_footprint_stays_inside_the_receptive_field(tap):
    net = small_backbone()
    footprint = gradient_footprint(net, tap, image_size=64, samples=2)
    field, stride = receptive_fields(net)[tap]
    rows = footprint.sum(1).nonzero().flatten()
    assert footprint.shape == (64, 64) and float(footprint.max()) == pytest.approx(1.0)
    assert 0 < int(rows.max() - rows.min()) + 1 <= field
    # the centre cell of the tap covers pixels [c * stride, (c + 1) * stride)
    centre = (64 // stride) // 2 * stride
    assert rows.min() <= centre and rows.max() >= centre + stride - 1
    assert net.training


def test_gradient_footprint_rejects_unknown_taps():
    with pytest.raises(ValueError, match="tap"):
        gradient_footprint(small_backbone(), "fc6")


def test_top_channels_prefers_structure():
    feature = torch.zeros(3, 4, 4)
    feature[1, 0, 0] = 5.0  # strongly varying
    feature[2] = torch.linspace(0, 1, 16).view(4, 4)  # mildly varying
    assert top_channels(feature, 2) == [1, 2]
    with pytest.raises(ValueError, match="feature"):
        top_channels(torch.zeros(1, 3, 4, 4), 2)


def test_fusion_steps_end_at_the_forward_output():
    net = small_backbone()
    net.eval()
    with torch.no_grad():
        features = net(torch.rand(2, 3, 64, 64))
    fusion = FusionCNN(net.channels, 5, FusionConfig(("pool3", "pool4", "pool5"), 8, 16), 2)
    fusion.eval()
    with torch.no_grad():
        steps = fusion_steps(fusion, features)
        expected = fusion(features)
    names = [name for name, _ in steps]
    assert names[:3] == ["pool3", "pool4", "pool5"] and names[-1] == "a_exp"
    shapes = dict((name, tuple(x.shape)) for name, x in steps)
    assert shapes["pool3 projected"] == (2, 8, 2, 2)
    assert shapes["concat"] == (2, 24, 2, 2) and shapes["flatten"] == (2, 32)
    assert torch.equal(steps[-1][1], expected)


def test_pictures_draw():
    net = small_backbone()
    net.eval()
    image = torch.rand(3, 64, 64)
    with torch.no_grad():
        features = net(image[None])
    fig = feature_grid(image, {tap: f[0] for tap, f in features.items()}, channels=3)
    assert len(fig.axes) == 5 * 4
    assert len(plot_block_costs(block_costs(net, 64)).axes) == 2
    fusion = FusionCNN(net.channels, 5, FusionConfig(width=8, hidden=16), 2)
    assert fusion_diagram(fusion, features, title="fusion").axes
    fig = plot_head_sizes({"a": {"backbone": 10, "head": 5}, "b": {"backbone": 10}})
    assert len(fig.axes) == 1
    with pytest.raises(ValueError, match="image"):
        feature_grid(image[None], features)
