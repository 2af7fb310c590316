"""Checks for notebook 03: a VGG block and the VGG-lite backbone, built by the student as
``nn.Module``s with the package's layer names (:class:`~e2far_lite.nets.VGGBackbone`).

Both checks load the shipped network's backbone weights (in smoke mode the smoke network's, as
:func:`~e2far_lite.train.pretrained` chooses) into the student's module with
``load_state_dict(strict=True)`` and compare the outputs on fresh random inputs.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from ..nets.backbone import TAP_NAMES, VGGBackbone
from ..nets.complexity import count_macs
from .checks import CheckFailed, as_count, call, compare, fresh_generator, not_written, passed
from .modules import built_like

#: feature maps must agree to this (absolute and relative), in the features' own units
TOLERANCE = 1e-5


def shipped_backbone() -> VGGBackbone:
    """The backbone of the network :func:`~e2far_lite.train.pretrained` loads, in eval mode."""
    from ..train.shipped import pretrained

    backbone = pretrained()[0].backbone
    if not isinstance(backbone, VGGBackbone):
        raise TypeError(f"expected the shipped network to have a VGGBackbone, got "
                        f"{type(backbone).__name__}")
    return backbone.eval()


def block_layout(backbone: VGGBackbone) -> dict[str, tuple[int, int, int]]:
    """``{tap: (in_channels, width, convs)}`` of each block of ``backbone``."""
    layout = {}
    in_channels = 3
    for tap in TAP_NAMES:
        convs = [m for m in backbone.stages[tap].modules() if isinstance(m, nn.Conv2d)]
        layout[tap] = (in_channels, convs[-1].out_channels, len(convs))
        in_channels = convs[-1].out_channels
    return layout


def _randint(low: int, high: int, generator: torch.Generator) -> int:
    """A random integer in [low, high]."""
    return int(torch.randint(low, high + 1, (), generator=generator))


def check_vgg_block(block_class: type, backbone: VGGBackbone | None = None) -> None:
    """``block_class(block, in_channels, width, convs)`` must hold the package's layers (names
    ``conv{block}_{j}``, ``bn{block}_{j}``) so that the shipped backbone's block loads into it
    strictly, and map (B, in_channels, s, s) to (B, width, s/2, s/2) as the package's block
    does, to 1e-5: block 1 and another block drawn at random, on fresh random inputs."""
    backbone = backbone or shipped_backbone()
    layout = block_layout(backbone)
    g = fresh_generator()
    device = next(backbone.parameters()).device
    # the other block has several convs where the network has such blocks, so that the second
    # conv's input channels (width, not in_channels) are always tested
    several = [k for k in range(2, len(TAP_NAMES) + 1) if layout[TAP_NAMES[k - 1]][2] > 1]
    others = several or list(range(2, len(TAP_NAMES) + 1))
    for block in (1, others[_randint(0, len(others) - 1, g)]):
        tap = TAP_NAMES[block - 1]
        in_channels, width, convs = layout[tap]
        what = f"VGGBlock({block}, {in_channels}, {width}, {convs})"
        student = built_like(block_class, backbone.stages[tap], what, block, in_channels, width,
                             convs)
        side = 2 * _randint(3, 8, g)
        x = torch.randn(2, in_channels, side, side, generator=g).to(device)
        with torch.no_grad():
            got = call(student, f"{what}(x) for x of shape {tuple(x.shape)}", x)
            compare(got, backbone.stages[tap](x), f"{what}(x) for x of shape {tuple(x.shape)}",
                    atol=TOLERANCE, rtol=TOLERANCE)
    passed("VGGBlock loads the shipped backbone's blocks with strict=True and computes what they "
           f"do on fresh random inputs, to {TOLERANCE:g}")


def check_backbone(backbone_class: type, backbone: VGGBackbone | None = None) -> None:
    """``backbone_class(widths, convs)`` must hold the package's parameters under the package's
    names (``stages.pool3.conv3_2.weight``, ...), load the shipped backbone's weights strictly
    and return the same taps ``{"pool1": (B, C1, H/2, W/2), ..., "pool5": (B, C5, H/32,
    W/32)}`` for fresh random [0, 1] images, to 1e-5."""
    backbone = backbone or shipped_backbone()
    layout = block_layout(backbone)
    widths = tuple(width for _, width, _ in layout.values())
    convs = tuple(count for _, _, count in layout.values())
    what = f"Backbone({widths}, {convs})"
    student = built_like(backbone_class, backbone, what, widths, convs)
    g = fresh_generator()
    side = 32 * _randint(2, 4, g)
    images = torch.rand(2, 3, side, side, generator=g).to(next(backbone.parameters()).device)
    call_what = f"{what}(images) for images of shape {tuple(images.shape)}"
    with torch.no_grad():
        got = call(student, call_what, images)
        expected = backbone(images)
    not_written(got, call_what)
    if not isinstance(got, Mapping):
        raise CheckFailed(f"{call_what}: expected a dict {{tap name: feature map}}, got "
                          f"{type(got).__name__}")
    missing = [tap for tap in TAP_NAMES if tap not in got]
    if missing:
        raise CheckFailed(f"{call_what}: expected the taps {TAP_NAMES}, missing {missing}")
    for k, tap in enumerate(TAP_NAMES):  # in order: the first tap that differs says where
        try:
            compare(got[tap], expected[tap], f"{call_what}[{tap!r}]", atol=TOLERANCE,
                    rtol=TOLERANCE)
        except CheckFailed as failed:
            where = ("pool1 is block 1's output: look at block 1 and at what comes before it"
                     if k == 0 else f"{', '.join(TAP_NAMES[:k])} agree: look at block {k + 1} "
                     "and at what it reads")
            raise CheckFailed(f"{failed} ({where})") from None
    passed("Backbone loads the shipped backbone's weights with strict=True and returns the same "
           f"pool1 .. pool5 on fresh random images, to {TOLERANCE:g}")


def check_conv_macs(conv_macs: object) -> None:
    """``conv_macs(in_channels, out_channels, kernel, stride, side)`` must equal
    :func:`~e2far_lite.nets.count_macs` of ``nn.Conv2d(in_channels, out_channels, kernel,
    stride, padding=kernel // 2)`` on one (1, in_channels, side, side) input, for fresh random
    sizes (an exact integer count)."""
    g = fresh_generator()
    for trial in range(6):
        kernel = (1, 3, 5)[_randint(0, 2, g)]
        stride = 1 + trial % 2  # both strides, every time
        in_channels, out_channels = _randint(1, 24, g), _randint(1, 24, g)
        side = _randint(3, 20, g)
        if trial == 1:  # a strided conv on an odd side: its output side is not side / stride
            side = 2 * _randint(1, 9, g) + 1
        what = f"conv_macs({in_channels}, {out_channels}, {kernel}, {stride}, {side})"
        conv = nn.Conv2d(in_channels, out_channels, kernel, stride, padding=kernel // 2)
        expected = count_macs(conv, (1, in_channels, side, side))
        got = call(conv_macs, what, in_channels, out_channels, kernel, stride, side)
        got = as_count(got, what)
        if got != expected:
            raise CheckFailed(f"{what}: got {got:,}, expected {expected:,} (a conv of stride "
                              f"{stride} with padding {kernel // 2})")
    passed("conv_macs equals count_macs of the same nn.Conv2d on fresh random sizes")


__all__ = ["block_layout", "check_backbone", "check_conv_macs", "check_vgg_block",
           "shipped_backbone"]
