"""Looking inside the network: per-block cost, receptive fields, feature maps, the fusion branch.

Small helpers for notebooks 03 (backbone) and 04 (fusion CNN). The numbers come from the
modules themselves (forward passes, hooks, the layers' own kernel sizes and strides), so they
stay right when a config changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .backbone import TappedBackbone, check_images
from .checks import check_positive_int
from .complexity import count_macs, count_parameters
from .fusion import FusionCNN


def _chain_layers(stage: nn.Module) -> list[nn.Module]:
    return [m for m in stage.modules() if isinstance(m, (nn.Conv2d, nn.MaxPool2d))]


def _pair(value: int | tuple[int, ...]) -> int:
    return value if isinstance(value, int) else value[0]


def receptive_fields(backbone: TappedBackbone) -> dict[str, tuple[int, int]]:
    """Theoretical receptive field and stride of each tap, in input pixels.

    Walks the convs and pools of each stage in order: a layer of kernel k and stride s widens
    the field by (k - 1) times the current stride ("jump"), then multiplies the jump by s. Exact
    for plain chains such as :class:`~e2far_lite.backbone.VGGBackbone`; residual networks (the
    torchvision ``resnet18`` option) have side branches it does not model.

    Returns:
        ``{tap: (field, stride)}``; a unit of that tap sees a field x field window of the image.

    Examples:
        >>> from e2far_lite.backbone import VGGBackbone
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

    Each stage is measured with :func:`~e2far_lite.complexity.count_macs` on the input it really
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


def plot_block_costs(costs: Sequence[Mapping], title: str = ""):
    """Two bar charts side by side: parameters and MACs per block (rows of :func:`block_costs`)."""
    import matplotlib.pyplot as plt

    taps = [row["tap"] for row in costs]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3))
    for ax, key, unit, scale, color in ((axes[0], "params", "thousand parameters", 1e3, "#5b8bd0"),
                                        (axes[1], "macs", "million MACs (1 image)", 1e6,
                                         "#e08a4c")):
        values = [row[key] / scale for row in costs]
        bars = ax.bar(taps, values, color=color)
        ax.bar_label(bars, fmt="%.0f", fontsize=8)
        ax.set_ylabel(unit)
        ax.set_ylim(0, max(values) * 1.18)
        ax.spines[["top", "right"]].set_visible(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


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


def draw_tap_grid(ax, image_size: int, stride: int, **style) -> None:
    """Draw the cells of a tap with this stride (px) over an image of side ``image_size``.

    Each cell is the patch of pixels that one unit of the tap sits on (its receptive field is
    larger, see :func:`receptive_fields`). ``style`` goes to ``axhline`` / ``axvline``.
    """
    check_positive_int(stride, "stride")
    style = {"color": "white", "lw": 0.8, **style}
    for k in range(stride, image_size, stride):
        ax.axhline(k - 0.5, **style)
        ax.axvline(k - 0.5, **style)


def value_colours(values: Tensor, vmax: float, cmap: str = "viridis") -> Tensor:
    """Per-vertex colours (1, V, 3) of values (V,) in [0, vmax], for ``render_preview(albedo=)``."""
    import matplotlib.pyplot as plt

    scaled = (values.detach().float().cpu() / vmax).clamp(0, 1).numpy()
    return torch.from_numpy(plt.get_cmap(cmap)(scaled)[:, :3]).float()[None]


def _overlay(ax, image: np.ndarray, heat: Tensor, size: int) -> None:
    up = F.interpolate(heat[None, None].float(), size=(size, size), mode="bilinear",
                       align_corners=False)[0, 0]
    up = (up - up.min()) / (up.max() - up.min()).clamp_min(1e-12)
    ax.imshow(image.mean(-1), cmap="gray", vmin=0, vmax=1)
    ax.imshow(up.numpy(), cmap="inferno", alpha=0.65, vmin=0, vmax=1)


def feature_grid(image: Tensor, features: Mapping[str, Tensor], channels: int = 4,
                 taps: Sequence[str] | None = None, size: float = 1.6):
    """Feature maps of one image: a row per tap, the input then its ``channels`` busiest channels.

    Each channel is upsampled (bilinear) to the image size and drawn over the grey input, so
    what a unit responds to can be read off the face. Every map is scaled to its own range.

    Args:
        image: (3, S, S) RGB in [0, 1]; its first panel shows the tap's grid (up to 16 × 16).
        features: ``{tap: (C, h, w)}`` of that image (one item of the backbone's batch).
        channels: channels per row, chosen by :func:`top_channels`.
        taps: rows to draw; default every tap in ``features``.

    Returns:
        the matplotlib figure.
    """
    import matplotlib.pyplot as plt

    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"image: expected shape (3, S, S), got {tuple(image.shape)}")
    taps = list(taps or features.keys())
    side = image.shape[-1]
    picture = image.detach().cpu().clamp(0, 1).permute(1, 2, 0).numpy()
    fig, axes = plt.subplots(len(taps), channels + 1, squeeze=False,
                             figsize=(size * (channels + 1), size * len(taps) + 0.2))
    for row, tap in zip(axes, taps, strict=True):
        feature = features[tap].detach().float().cpu()
        c, h, w = feature.shape
        row[0].imshow(picture)
        if h <= 16:  # one cell per unit; finer grids would hide the face
            draw_tap_grid(row[0], side, side // h, lw=0.4, alpha=0.7)
        row[0].set_title(f"{tap}: {c}×{h}×{w}", fontsize=8)
        for ax, channel in zip(row[1:], top_channels(feature, channels), strict=False):
            _overlay(ax, picture, feature[channel], side)
            ax.set_title(f"channel {channel}", fontsize=7)
        for ax in row:
            ax.axis("off")
    fig.tight_layout()
    return fig


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


def _describe(layer: nn.Module) -> str:
    convs = [m for m in layer.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        return ""
    kernel, stride = _pair(convs[0].kernel_size), _pair(convs[0].stride)
    text = f"conv{kernel}×{kernel}" + (f" s{stride}" if stride > 1 else "")
    return f"{len(convs)}× {text}" if len(convs) > 1 else text


def fusion_diagram(fusion: FusionCNN, features: Mapping[str, Tensor], title: str = ""):
    """A block diagram of the fusion branch with the tensor shape after every step.

    Shapes are read from :func:`fusion_steps` on ``features`` (batch dimension dropped), so the
    picture matches the module, whatever its taps and widths.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    with torch.no_grad():
        steps = dict(fusion_steps(fusion, features))
    taps = fusion.taps
    n = len(taps)
    height = max(2.6, 1.1 * n + 0.6)
    fig, ax = plt.subplots(figsize=(12.5, height))
    ax.set_xlim(0, 12.9)
    ax.set_ylim(0, height)
    ax.axis("off")

    def shape(name: str) -> str:
        return "×".join(str(d) for d in steps[name].shape[1:])

    def box(x: float, y: float, w: float, text: str, color: str) -> None:
        ax.add_patch(FancyBboxPatch((x, y - 0.35), w, 0.7, boxstyle="round,pad=0.04",
                                    fc=color, ec="#444", lw=0.8))
        ax.text(x + w / 2, y, text, ha="center", va="center", fontsize=8)

    def arrow(x0: float, y0: float, x1: float, y1: float) -> None:
        ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=10,
                                     color="#333", lw=0.8))

    middle = height / 2
    rows = [middle + (n - 1) / 2 * 1.1 - 1.1 * i for i in range(n)]
    for tap, y in zip(taps, rows, strict=True):
        box(0.1, y, 1.5, f"{tap}\n{shape(tap)}", "#e4f2dc")
        box(2.1, y, 1.9, f"{_describe(fusion.projections[tap])}\n→ {shape(tap + ' projected')}",
            "#d8ecf7")
        arrow(1.65, y, 2.05, y)
        arrow(4.05, y, 4.55, middle)
    chain = [("concat", "concat", "#fde2c8"), ("fuse 1×1", "conv1×1 (fuse)", "#fde2c8"),
             ("flatten", "flatten", "#eeeeee"), ("FC + ReLU", "FC + ReLU", "#f4dcef"),
             ("a_exp", "FC → a_exp", "#fff3b0")]
    x = 4.6
    for i, (name, label, color) in enumerate(chain):
        box(x, middle, 1.35, f"{label}\n{shape(name)}", color)
        if i:
            arrow(x - 0.35, middle, x - 0.05, middle)
        x += 1.7
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_head_sizes(sizes: Mapping[str, Mapping[str, int]], title: str = ""):
    """Stacked horizontal bars: parameters of each part, one bar per network variant.

    Args:
        sizes: ``{variant: {part: parameters}}``, e.g. from
            ``{name: count_parameters(child) for name, child in net.named_children()}``.
    """
    import matplotlib.pyplot as plt

    parts = list(dict.fromkeys(part for variant in sizes.values() for part in variant))
    colors = dict(zip(parts, plt.get_cmap("Set2").colors, strict=False))
    fig, ax = plt.subplots(figsize=(9, 0.55 * len(sizes) + 1.2), layout="constrained")
    names, labelled = list(sizes), set()
    for row, name in enumerate(names):
        left = 0.0
        for part in parts:
            value = sizes[name].get(part, 0) / 1e6
            if value:
                ax.barh(row, value, left=left, color=colors[part],
                        label=None if part in labelled else part)
                labelled.add(part)
                left += value
        ax.text(left + 0.05, row, f"{left:.2f} M", va="center", fontsize=8)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel("million parameters")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    if title:
        ax.set_title(title)
    return fig


__all__ = ["block_costs", "draw_tap_grid", "feature_grid", "fusion_diagram", "fusion_steps",
           "gradient_footprint", "plot_block_costs", "plot_head_sizes", "receptive_fields",
           "top_channels", "value_colours"]
