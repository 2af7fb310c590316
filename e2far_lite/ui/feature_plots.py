"""Pictures of the network's insides: block costs, tap grids, feature maps, the fusion branch.

The drawings of notebooks 03 (backbone) and 04 (fusion CNN); the numbers they draw come from
:mod:`e2far_lite.analysis.feature_maps`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..analysis.feature_maps import _pair, fusion_steps, top_channels
from ..checks import check_positive_int
from ..nets.fusion import FusionCNN


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


__all__ = ["draw_tap_grid", "feature_grid", "fusion_diagram", "plot_block_costs",
           "plot_head_sizes", "value_colours"]
