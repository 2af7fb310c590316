"""Looking inside the network: per-block cost, receptive fields, top channels, the fusion branch.

Small helpers for notebooks 03 (backbone) and 04 (fusion CNN). The numbers come from the
modules themselves (forward passes, hooks, the layers' own kernel sizes and strides), so they
stay right when a config changes.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from ..checks import check_positive_int
from ..nets.backbone import TappedBackbone, check_images
from ..nets.complexity import count_macs, count_parameters
from ..nets.fusion import FusionCNN


def _chain_layers(stage: nn.Module) -> list[nn.Module]:
    return [m for m in stage.modules() if isinstance(m, (nn.Conv2d, nn.MaxPool2d))]


def _pair(value: int | tuple[int, ...]) -> int:
    return value if isinstance(value, int) else value[0]


def receptive_fields(backbone: TappedBackbone) -> dict[str, tuple[int, int]]:
    """Theoretical receptive field and stride of each tap, in input pixels.

    Walks the convs and pools of each stage in order: a layer of kernel k and stride s widens
    the field by (k - 1) times the current stride ("jump"), then multiplies the jump by s. Exact
    for plain chains such as :class:`~e2far_lite.nets.VGGBackbone`; residual networks (the
    torchvision ``resnet18`` option) have side branches it does not model.

    Returns:
        ``{tap: (field, stride)}``; a unit of that tap sees a field x field window of the image.

    Examples:
        >>> from e2far_lite.nets.backbone import VGGBackbone
        >>> receptive_fields(VGGBackbone())["pool1"]
        (6, 2)
    """
    field, jump = 1, 1
    out: dict[str, tuple[int, int]] = {}
    for tap, stage in backbone.stages.items():
        for layer in _chain_layers(stage):
            kernel, stride = _pair(layer.kernel_size), _pair(layer.stride)
            dilation = _pair(layer.dilation)
            field += (kernel - 1) * dilation * jump
            jump *= stride
        out[tap] = (field, jump)
    return out


def block_costs(backbone: TappedBackbone, image_size: int = 128) -> list[dict]:
    """Shape, parameters and MACs of each backbone block for one (1, 3, S, S) image.

    Each stage is measured with :func:`~e2far_lite.nets.count_macs` on the input it really
    sees (the previous tap's output), so the MACs of all blocks add up to the backbone's.

    Returns:
        one dict per tap, in order: ``tap``, ``input`` and ``output`` shapes (tuples),
        ``params``, ``macs``, ``field`` and ``stride`` (see :func:`receptive_fields`).
    """
    check_positive_int(image_size, "image_size")
    images = torch.zeros(1, 3, image_size, image_size)
    check_images(images)
    first = next(iter(backbone.parameters()), None)
    device = first.device if first is not None else torch.device("cpu")
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.no_grad():
            features = backbone(images.to(device))
    finally:
        backbone.train(was_training)
    fields = receptive_fields(backbone)
    rows, shape = [], (1, 3, image_size, image_size)
    for tap, stage in backbone.stages.items():
        out_shape = tuple(features[tap].shape)
        rows.append({"tap": tap, "input": shape, "output": out_shape,
                     "params": count_parameters(stage), "macs": count_macs(stage, shape),
                     "field": fields[tap][0], "stride": fields[tap][1]})
        shape = out_shape
    return rows




def gradient_footprint(backbone: TappedBackbone, tap: str, image_size: int = 128,
                       samples: int = 4, seed: int = 0) -> Tensor:
    """Which input pixels the centre unit of ``tap`` depends on: mean |d unit / d pixel|.

    The *effective* receptive field: the gradient of the centre cell of the tap (summed over
    channels) with respect to random input images, averaged over ``samples`` images and the
    three colour channels, scaled to a maximum of 1. Zero outside the theoretical field.

    Returns:
        (S, S) tensor in [0, 1] on the CPU.
    """
    if tap not in backbone.taps:
        raise ValueError(f"tap: expected one of {backbone.taps}, got {tap!r}")
    check_positive_int(samples, "samples")
    first = next(iter(backbone.parameters()))
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(samples, 3, image_size, image_size, generator=generator)
    images = images.to(first.device).requires_grad_(True)
    was_training = backbone.training
    backbone.eval()
    try:
        feature = backbone(images)[tap]
        h, w = feature.shape[2:]
        feature[:, :, h // 2, w // 2].sum().backward()
    finally:
        backbone.train(was_training)
    footprint = images.grad.abs().mean((0, 1)).cpu()
    return footprint / footprint.max().clamp_min(1e-12)


def top_channels(feature: Tensor, count: int) -> list[int]:
    """The ``count`` channels of one map (C, h, w) with the most spatial variation, best first.

    A flat channel (all zero after ReLU, or constant) shows nothing; the spatial standard
    deviation picks the ones with structure.
    """
    if feature.dim() != 3:
        raise ValueError(f"feature: expected shape (C, h, w), got {tuple(feature.shape)}")
    check_positive_int(count, "count")
    spread = feature.detach().flatten(1).std(1)
    return spread.argsort(descending=True)[:count].tolist()










def fusion_steps(fusion: FusionCNN, features: Mapping[str, Tensor]) -> list[tuple[str, Tensor]]:
    """The fusion CNN run one step at a time: ``[(step name, tensor), ...]``.

    Steps: each input tap, each projected tap, the concatenation, the 1x1 fuse conv, the
    flattened grid, the hidden FC layer (after ReLU) and ``a_exp``. The last tensor equals
    ``fusion(features)``.
    """
    steps: list[tuple[str, Tensor]] = [(tap, features[tap]) for tap in fusion.taps]
    projected = fusion.project_taps(features)
    steps += [(f"{tap} projected", projected[tap]) for tap in fusion.taps]
    x = torch.cat([projected[tap] for tap in fusion.taps], dim=1)
    steps.append(("concat", x))
    x = fusion.fuse(x)
    steps.append(("fuse 1×1", x))
    flatten, hidden, relu, last = fusion.head
    x = flatten(x)
    steps.append(("flatten", x))
    x = relu(hidden(x))
    steps.append(("FC + ReLU", x))
    steps.append(("a_exp", last(x)))
    return steps








__all__ = ["block_costs", "fusion_steps", "gradient_footprint", "receptive_fields", "top_channels"]
