"""The checks of notebooks 03 and 04 (the student builds the backbone and the fusion CNN): the
package-equivalent solution passes, a wrong one fails with a CheckFailed that names what differs,
and an unwritten stub says "not written yet". They load the smoke network (E2FAR_SMOKE=1)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from e2far_lite.course.backbone import check_backbone, check_conv_macs, check_vgg_block
from e2far_lite.course.checks import CheckFailed
from e2far_lite.course.fusion import check_fusion, check_fusion_parameters


@pytest.fixture(autouse=True)
def _smoke(monkeypatch):
    monkeypatch.setenv("E2FAR_SMOKE", "1")


# --- notebook 03's solutions, and wrong variants ---------------------------------------------

class VGGBlock(nn.Module):
    def __init__(self, block, in_channels, width, convs, relu=True):
        super().__init__()
        for j in range(1, convs + 1):
            self.add_module(f"conv{block}_{j}",
                            nn.Conv2d(in_channels, width, 3, padding=1, bias=False))
            self.add_module(f"bn{block}_{j}", nn.BatchNorm2d(width))
            if relu:
                self.add_module(f"relu{block}_{j}", nn.ReLU())
            in_channels = width
        self.add_module(f"pool{block}", nn.MaxPool2d(2))

    def forward(self, x):
        for layer in self.children():
            x = layer(x)
        return x


class Backbone(nn.Module):
    block = VGGBlock
    normalise = True

    def __init__(self, widths, convs):
        super().__init__()
        self.register_buffer("pixel_mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("pixel_std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1),
                             persistent=False)
        stages = {}
        in_channels = 3
        for block, (width, count) in enumerate(zip(widths, convs, strict=True), start=1):
            stages[f"pool{block}"] = self.block(block, in_channels, width, count)
            in_channels = width
        self.stages = nn.ModuleDict(stages)

    def forward(self, images):
        x = (images - self.pixel_mean) / self.pixel_std if self.normalise else images
        features = {}
        for tap, stage in self.stages.items():
            x = stage(x)
            features[tap] = x
        return features


class Stub(nn.Module):
    """What the student version holds before the student writes anything."""

    def __init__(self, *args):
        super().__init__()
        ...

    def forward(self, x):
        ...


def test_the_solutions_of_notebook_03_pass(capsys):
    check_vgg_block(VGGBlock)
    check_backbone(Backbone)
    assert capsys.readouterr().out.count("✓") == 2


def test_unwritten_modules_are_not_written_yet():
    for check in (check_vgg_block, check_backbone, check_fusion):
        with pytest.raises(CheckFailed, match="not written yet"):
            check(Stub)


def test_a_forward_returning_none_is_not_written_yet():
    class NoForward(VGGBlock):
        def forward(self, x):
            ...

    with pytest.raises(CheckFailed, match=r"VGGBlock\(1, .*not written yet"):
        check_vgg_block(NoForward)


def test_a_missing_relu_is_found_in_the_output():
    class NoReLU(VGGBlock):
        def __init__(self, *args):
            super().__init__(*args, relu=False)

    with pytest.raises(CheckFailed, match=r"VGGBlock\(1, 3, .*elements differ; the first at"):
        check_vgg_block(NoReLU)


def test_wrong_names_are_listed():
    class Numbered(nn.Sequential):  # layers named 0, 1, 2, ... as nn.Sequential does
        def __init__(self, block, in_channels, width, convs):
            layers = []
            for _ in range(convs):
                layers += [nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
                           nn.BatchNorm2d(width), nn.ReLU()]
                in_channels = width
            super().__init__(*layers, nn.MaxPool2d(2))

    with pytest.raises(CheckFailed) as failed:
        check_vgg_block(Numbered)
    message = str(failed.value)
    assert "parameter names differ" in message
    assert "missing" in message and "conv1_1.weight" in message
    assert "unexpected" in message and "0.weight" in message


def test_a_wrong_kernel_is_named_with_its_shape():
    class OneByOne(VGGBlock):
        def __init__(self, block, in_channels, width, convs):
            super().__init__(block, in_channels, width, convs)
            self.add_module(f"conv{block}_1", nn.Conv2d(in_channels, width, 1, bias=False))

    with pytest.raises(CheckFailed, match=r"conv1_1.weight has shape \(4, 3, 1, 1\), the "
                                          r"package's has \(4, 3, 3, 3\)"):
        check_vgg_block(OneByOne)


def test_the_backbone_names_the_first_tap_that_differs():
    class Unnormalised(Backbone):
        normalise = False

    with pytest.raises(CheckFailed, match=r"\['pool1'\]: \d+ of \d+ elements differ"):
        check_backbone(Unnormalised)

    class Persistent(Backbone):  # the normalisation constants saved with the weights
        def __init__(self, widths, convs):
            super().__init__(widths, convs)
            self.register_buffer("pixel_mean", self.pixel_mean.clone())

    with pytest.raises(CheckFailed, match="unexpected 1 \\(pixel_mean\\): buffers that"):
        check_backbone(Persistent)


def test_conv_macs():
    def conv_macs(in_channels, out_channels, kernel, stride, side):
        out = (side + 2 * (kernel // 2) - kernel) // stride + 1
        return out * out * in_channels * out_channels * kernel * kernel

    check_conv_macs(conv_macs)
    with pytest.raises(CheckFailed, match="not written yet"):
        check_conv_macs(lambda *args: None)
    with pytest.raises(CheckFailed, match=r"conv_macs\(.*expected"):
        check_conv_macs(lambda i, o, k, s, side: side * side * i * o * k * k)  # stride ignored
    for _ in range(3):  # the output side of a strided conv on an odd side is tested every time
        with pytest.raises(CheckFailed, match=r"conv_macs\(.*expected"):
            check_conv_macs(lambda i, o, k, s, side: (side // s) ** 2 * i * o * k * k)


# --- notebook 04's solution, and wrong variants ----------------------------------------------

class Fusion(nn.Module):
    stride = 2
    fuse_relu = True

    def __init__(self, tap_channels, num_exp, width, hidden, grid_size):
        super().__init__()
        self.projections = nn.ModuleDict({
            "pool4": nn.Sequential(
                nn.Conv2d(tap_channels["pool4"], width, 3, stride=self.stride, padding=1,
                          bias=False),
                nn.BatchNorm2d(width), nn.ReLU()),
            "pool5": nn.Sequential(
                nn.Conv2d(tap_channels["pool5"], width, 1, bias=False),
                nn.BatchNorm2d(width), nn.ReLU()),
        })
        self.fuse = nn.Sequential(nn.Conv2d(2 * width, width, 1, bias=False),
                                  nn.BatchNorm2d(width),
                                  *([nn.ReLU()] if self.fuse_relu else []))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(width * grid_size**2, hidden),
                                  nn.ReLU(), nn.Linear(hidden, num_exp))

    def forward(self, features):
        maps = [self.projections[tap](features[tap]) for tap in ("pool4", "pool5")]
        return self.head(self.fuse(torch.cat(maps, dim=1)))


def test_the_solution_of_notebook_04_passes(capsys):
    check_fusion(Fusion)
    assert "✓" in capsys.readouterr().out


def test_a_wrong_stride_is_named():
    class Stride1(Fusion):
        stride = 1

    with pytest.raises(CheckFailed, match=r"projections\['pool4'\]\(features\['pool4'\]\): "
                                          r"expected shape \(3, \d+, 2, 2\), got \(3, \d+, 4, 4\)"):
        check_fusion(Stride1)


def test_a_missing_relu_in_the_fuse_conv_is_named():
    class NoReLU(Fusion):
        fuse_relu = False

    with pytest.raises(CheckFailed, match=r"\.fuse\(concatenated projections\): \d+ of"):
        check_fusion(NoReLU)


def test_parts_that_agree_point_at_forward():
    class Swapped(Fusion):  # pool5 first in the concatenation
        def forward(self, features):
            maps = [self.projections[tap](features[tap]) for tap in ("pool5", "pool4")]
            return self.head(self.fuse(torch.cat(maps, dim=1)))

    with pytest.raises(CheckFailed, match="look at how forward connects them"):
        check_fusion(Swapped)


def test_a_missing_fc_layer_is_listed():
    class OneFC(Fusion):
        def __init__(self, tap_channels, num_exp, width, hidden, grid_size):
            super().__init__(tap_channels, num_exp, width, hidden, grid_size)
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(width * grid_size**2, num_exp))

    with pytest.raises(CheckFailed, match=r"missing 2 \(head.3.weight, head.3.bias\)"):
        check_fusion(OneFC)


def test_fusion_parameters():
    def fusion_parameters(tap_channels, num_exp, width, hidden, grid_size):
        total = 0
        for tap, channels in tap_channels.items():
            steps = 5 - int(tap[-1])  # stride-2 3x3 convs down to the pool5 grid
            if steps == 0:
                total += channels * width + 2 * width
            else:
                total += channels * width * 9 + 2 * width
                total += (steps - 1) * (width * width * 9 + 2 * width)
        total += len(tap_channels) * width * width + 2 * width
        return total + width * grid_size**2 * hidden + hidden + hidden * num_exp + num_exp

    check_fusion_parameters(fusion_parameters)
    with pytest.raises(CheckFailed, match="not written yet"):
        check_fusion_parameters(lambda *args: None)
    with pytest.raises(CheckFailed, match="expected an int"):
        check_fusion_parameters(lambda *args: 1.5)
