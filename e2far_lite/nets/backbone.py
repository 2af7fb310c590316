"""VGG-lite backbone: five conv blocks whose pooled outputs are the taps ``pool1`` .. ``pool5``.

UH-E2FAR builds on VGG-Face. Here the same layout is shrunk (16 .. 256 channels instead of
64 .. 512) so that a 128 px forward costs about 0.27 GMACs and trains on a CPU. Tap ``pool{k}``
has stride 2**k: a (B, 3, 128, 128) image gives pool5 of (B, 256, 4, 4).

A torchvision ``vgg16_bn`` or ``resnet18`` can stand in (``BackboneConfig(arch=...)``), with the
same taps; torchvision is imported only then and is not a dependency of this package.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..checks import check_floating, check_tensor

#: Tap names in order; ``pool{k}`` has stride 2**k with respect to the input image.
TAP_NAMES = ("pool1", "pool2", "pool3", "pool4", "pool5")
#: The input must be divisible by the stride of the last tap.
STRIDE = 32
ARCHS = ("lite", "vgg16_bn", "resnet18")
# ImageNet statistics: fixed, so that the lite net and torchvision weights see the same input.
_PIXEL_MEAN = (0.485, 0.456, 0.406)
_PIXEL_STD = (0.229, 0.224, 0.225)


@dataclass
class BackboneConfig:
    arch: str = "lite"  # "lite" (below), or torchvision "vgg16_bn" / "resnet18"
    widths: tuple[int, ...] = (16, 32, 64, 128, 256)  # channels of blocks 1..5 (lite only)
    # 3x3 convs before each 2x2 max pool (lite only): one number for every block, or one per
    # block, e.g. (1, 1, 2, 2, 2) to spend less time on the large, thin maps of blocks 1-2
    convs_per_block: int | tuple[int, ...] = 2
    batch_norm: bool = True  # conv -> BN -> ReLU (lite only)
    pretrained: bool = False  # torchvision archs: load ImageNet weights (downloads once)


def check_images(images: Tensor, name: str = "images") -> Tensor:
    """Require (B, 3, H, W) floating images with H, W positive multiples of 32."""
    check_tensor(images, name)
    ok = images.dim() == 4 and images.shape[1] == 3
    if ok:
        h, w = images.shape[2:]
        ok = h >= STRIDE and w >= STRIDE and h % STRIDE == 0 and w % STRIDE == 0
    if not ok:
        raise ValueError(f"{name}: expected shape (B, 3, H, W) with H and W multiples of "
                         f"{STRIDE}, got {tuple(images.shape)}")
    return check_floating(images, name)


class TappedBackbone(nn.Module):
    """Runs named stages in order and returns every stage's output as a tap.

    Images are normalised inside (ImageNet mean/std), so callers pass plain [0, 1] RGB.

    Args:
        stages: ordered ``{tap name: stage}``; stage k halves the resolution of stage k-1.
        channels: ``{tap name: output channels}``.
    """

    pixel_mean: Tensor
    pixel_std: Tensor

    def __init__(self, stages: OrderedDict[str, nn.Module], channels: dict[str, int]) -> None:
        super().__init__()
        self.stages = nn.ModuleDict(stages)
        self.channels: dict[str, int] = dict(channels)
        self.register_buffer("pixel_mean", torch.tensor(_PIXEL_MEAN).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("pixel_std", torch.tensor(_PIXEL_STD).view(1, 3, 1, 1),
                             persistent=False)

    @property
    def taps(self) -> tuple[str, ...]:
        return tuple(self.stages.keys())

    def forward(self, images: Tensor) -> OrderedDict[str, Tensor]:
        """Feature maps of every tap.

        Args:
            images: (B, 3, H, W) RGB in [0, 1], H and W multiples of 32.

        Returns:
            ordered ``{"pool1": (B, C1, H/2, W/2), ..., "pool5": (B, C5, H/32, W/32)}``.
        """
        check_images(images)
        x = (images - self.pixel_mean) / self.pixel_std
        features: OrderedDict[str, Tensor] = OrderedDict()
        for name, stage in self.stages.items():
            x = stage(x)
            features[name] = x
        return features


class VGGBackbone(TappedBackbone):
    """VGG-style blocks ``(conv3x3 -> BN -> ReLU) x n -> maxpool2x2``, five of them.

    Layer names follow VGG: ``stages.pool3.conv3_2`` is the second conv of block 3 and
    ``stages.pool3.pool3`` its pool.

    Examples:
        >>> net = VGGBackbone()
        >>> net(torch.rand(2, 3, 128, 128))["pool5"].shape
        torch.Size([2, 256, 4, 4])
    """

    def __init__(self, config: BackboneConfig | None = None) -> None:
        config = config or BackboneConfig()
        if len(config.widths) != len(TAP_NAMES):
            raise ValueError(f"config.widths: expected {len(TAP_NAMES)} block widths, "
                             f"got {len(config.widths)}")
        convs = config.convs_per_block
        counts = tuple(convs) if isinstance(convs, (tuple, list)) else (convs,) * len(TAP_NAMES)
        if len(counts) != len(TAP_NAMES) or any(
                isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in counts):
            raise ValueError(f"config.convs_per_block: expected an integer >= 1 or "
                             f"{len(TAP_NAMES)} of them, got {convs!r}")
        stages: OrderedDict[str, nn.Module] = OrderedDict()
        in_channels = 3
        for block, (tap, width, count) in enumerate(
                zip(TAP_NAMES, config.widths, counts, strict=True), start=1):
            layers: OrderedDict[str, nn.Module] = OrderedDict()
            for j in range(1, count + 1):
                layers[f"conv{block}_{j}"] = nn.Conv2d(
                    in_channels, width, 3, padding=1, bias=not config.batch_norm)
                if config.batch_norm:
                    layers[f"bn{block}_{j}"] = nn.BatchNorm2d(width)
                layers[f"relu{block}_{j}"] = nn.ReLU(inplace=True)
                in_channels = width
            layers[tap] = nn.MaxPool2d(2)
            stages[tap] = nn.Sequential(layers)
        super().__init__(stages, dict(zip(TAP_NAMES, config.widths, strict=True)))
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)


def torchvision_backbone(arch: str, pretrained: bool = False) -> TappedBackbone:
    """A torchvision network cut into the five taps ``pool1`` .. ``pool5`` (stride 2**k).

    ``vgg16_bn``: the outputs of its five max pools (64, 128, 256, 512, 512 channels).
    ``resnet18``: stem (stride 2), layer1 .. layer4 (64, 64, 128, 256, 512 channels); the taps
    keep the ``pool{k}`` names so that the fusion CNN can read them by stride.

    Raises:
        ImportError: torchvision is not installed (it is optional for this package).
    """
    try:
        from torchvision import models  # optional: only this function needs it
    except ImportError as err:
        raise ImportError(
            f"BackboneConfig(arch={arch!r}) needs torchvision, which e2far-lite does not "
            "install; `pip install torchvision` (the build matching your torch), or use "
            "arch='lite'") from err
    weights = "DEFAULT" if pretrained else None
    if arch == "vgg16_bn":
        layers = list(models.vgg16_bn(weights=weights).features)
        stages: OrderedDict[str, nn.Module] = OrderedDict()
        start = 0
        for tap in TAP_NAMES:
            end = next(i for i in range(start, len(layers))
                       if isinstance(layers[i], nn.MaxPool2d)) + 1
            stages[tap] = nn.Sequential(*layers[start:end])
            start = end
        return TappedBackbone(stages, dict(zip(TAP_NAMES, (64, 128, 256, 512, 512), strict=True)))
    if arch == "resnet18":
        net = models.resnet18(weights=weights)
        stages = OrderedDict([
            ("pool1", nn.Sequential(net.conv1, net.bn1, net.relu)),
            ("pool2", nn.Sequential(net.maxpool, net.layer1)),
            ("pool3", net.layer2), ("pool4", net.layer3), ("pool5", net.layer4)])
        return TappedBackbone(stages, dict(zip(TAP_NAMES, (64, 64, 128, 256, 512), strict=True)))
    raise ValueError(f"arch: expected one of {ARCHS}, got {arch!r}")


def build_backbone(config: BackboneConfig | None = None) -> TappedBackbone:
    """The backbone named by ``config.arch``: the lite VGG or a torchvision network."""
    config = config or BackboneConfig()
    if config.arch == "lite":
        return VGGBackbone(config)
    if config.arch not in ARCHS:
        raise ValueError(f"config.arch: expected one of {ARCHS}, got {config.arch!r}")
    return torchvision_backbone(config.arch, config.pretrained)
