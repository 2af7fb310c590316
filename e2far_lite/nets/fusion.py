"""The fusion CNN of UH-E2FAR: expression from intermediate and deep features together.

Expression lives in small, local detail (mouth corners, eyelids) that deep layers blur away, so
the paper fuses an intermediate tap (pool4) with the last one (pool5). Here any taps can be fused:

    pool{k}  (B, C_k, s, s), s = 2^(5-k) g  --(5-k) x [conv3x3 stride 2, BN, ReLU]-->  (B, W, g, g)
    pool5    (B, C_5, g, g)                  --conv1x1, BN, ReLU-------------------->  (B, W, g, g)
    concat   (B, T W, g, g)  --conv1x1, BN, ReLU-->  (B, W, g, g)
             --flatten, FC (hidden), ReLU, FC-->  (B, E)

g is the pool5 grid (image size / 32), W = ``width``, T the number of taps. A tap k levels
above pool5 goes through k stride-2 3x3 convs rather than one conv of stride 2^k: a 3x3 kernel
with stride 4 or 8 would skip pixels, and the chain costs little because each conv works on a
smaller map than the one before.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..checks import check_positive_int, check_shape, check_tensor
from .backbone import TAP_NAMES


@dataclass
class FusionConfig:
    taps: tuple[str, ...] = ("pool4", "pool5")  # intermediate layers fused for expression
    width: int = 128  # channels after each tap's projection (and after fusing)
    hidden: int = 256  # units of the fully connected layer before the E outputs


def _conv_bn_relu(in_channels: int, out_channels: int, kernel: int, stride: int) -> list:
    return [nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2,
                      bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]


class FusionCNN(nn.Module):
    """Project each tap to the pool5 grid, concatenate, fuse, regress expression coefficients.

    Args:
        tap_channels: ``{tap name: channels}`` of the backbone (e.g. ``backbone.channels``).
        num_exp: E, the number of expression coefficients.
        config: which taps, and the widths.
        grid_size: g, the side of the pool5 map in cells (image size / 32).

    Examples:
        >>> fusion = FusionCNN({"pool4": 128, "pool5": 256}, num_exp=29, grid_size=4)
        >>> feats = {"pool4": torch.rand(2, 128, 8, 8), "pool5": torch.rand(2, 256, 4, 4)}
        >>> fusion(feats).shape
        torch.Size([2, 29])
    """

    def __init__(self, tap_channels: Mapping[str, int], num_exp: int,
                 config: FusionConfig | None = None, grid_size: int = 4) -> None:
        super().__init__()
        config = config or FusionConfig()
        check_positive_int(num_exp, "num_exp")
        check_positive_int(grid_size, "grid_size")
        check_positive_int(config.width, "config.width")
        check_positive_int(config.hidden, "config.hidden")
        taps = tuple(config.taps)
        if not taps or len(set(taps)) != len(taps):
            raise ValueError(f"config.taps: expected distinct tap names, got {taps}")
        for tap in taps:
            if tap not in TAP_NAMES or tap not in tap_channels:
                known = tuple(t for t in TAP_NAMES if t in tap_channels)
                raise ValueError(f"config.taps: expected names among {known}, got {tap!r}")
        self.config = config
        self.taps = taps
        self.num_exp = num_exp
        self.grid_size = grid_size
        self.tap_channels = {tap: int(tap_channels[tap]) for tap in taps}
        last = len(TAP_NAMES) - 1
        projections: OrderedDict[str, nn.Module] = OrderedDict()
        for tap in taps:
            steps = last - TAP_NAMES.index(tap)  # stride-2 convs down to the pool5 grid
            in_channels = self.tap_channels[tap]
            layers = [] if steps else _conv_bn_relu(in_channels, config.width, 1, 1)
            for _ in range(steps):
                layers += _conv_bn_relu(in_channels, config.width, 3, 2)
                in_channels = config.width
            projections[tap] = nn.Sequential(*layers)
        self.projections = nn.ModuleDict(projections)
        self.fuse = nn.Sequential(*_conv_bn_relu(len(taps) * config.width, config.width, 1, 1))
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(config.width * grid_size * grid_size, config.hidden),
            nn.ReLU(inplace=True),
            nn.Linear(config.hidden, num_exp),
        )
        # coefficients are in std units: start near 0, the mean expression
        nn.init.normal_(self.head[-1].weight, std=1e-3)
        nn.init.zeros_(self.head[-1].bias)

    def tap_size(self, tap: str) -> int:
        """Side in cells of a tap's map: g * 2^(levels above pool5)."""
        return self.grid_size * 2 ** (len(TAP_NAMES) - 1 - TAP_NAMES.index(tap))

    def project_taps(self, features: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Each tap brought to the pool5 grid.

        Args:
            features: ``{tap: (B, C_tap, s, s)}`` as the backbone returns (extra taps ignored),
                s = g * 2^(levels above pool5).

        Returns:
            ``{tap: (B, width, g, g)}`` in ``self.taps`` order, after BN and ReLU.
        """
        if not isinstance(features, Mapping):
            raise TypeError(f"features: expected a mapping of tap name to tensor, "
                            f"got {type(features).__name__}")
        missing = [tap for tap in self.taps if tap not in features]
        if missing:
            raise ValueError(f"features: expected taps {self.taps}, missing {missing}")
        first = check_tensor(features[self.taps[0]], f"features[{self.taps[0]!r}]")
        batch = first.shape[0] if first.dim() else None
        projected = {}
        for tap in self.taps:
            size = self.tap_size(tap)
            check_shape(features[tap], f"features[{tap!r}]",
                        (batch, self.tap_channels[tap], size, size))
            projected[tap] = self.projections[tap](features[tap])
        return projected

    def _scaled(self, projected: dict[str, Tensor],
                tap_scale: Mapping[str, float | Tensor] | None) -> list[Tensor]:
        maps = [projected[tap] for tap in self.taps]
        if not tap_scale:
            return maps
        unknown = [tap for tap in tap_scale if tap not in self.taps]
        if unknown:
            raise ValueError(f"tap_scale: expected keys among {self.taps}, got {unknown}")
        batch = maps[0].shape[0]
        for i, tap in enumerate(self.taps):
            if tap not in tap_scale:
                continue
            scale = torch.as_tensor(tap_scale[tap], dtype=maps[i].dtype, device=maps[i].device)
            if scale.dim() == 1 and scale.shape[0] == batch:
                scale = scale.view(batch, 1, 1, 1)
            elif scale.dim() != 0:
                raise ValueError(f"tap_scale[{tap!r}]: expected a number or shape ({batch},), "
                                 f"got {tuple(scale.shape)}")
            maps[i] = maps[i] * scale
        return maps

    def forward(self, features: Mapping[str, Tensor],
                tap_scale: Mapping[str, float | Tensor] | None = None) -> Tensor:
        """Expression coefficients from the fused taps.

        Args:
            features: ``{tap: (B, C_tap, s, s)}``, see :meth:`project_taps`.
            tap_scale: optional ``{tap: scale}`` multiplying that tap's projected map before
                concatenation, a number or a (B,) tensor; missing taps keep scale 1. Scale 0
                disconnects a tap (no gradient reaches it), 2 doubles its say.

        Returns:
            (B, E) expression coefficients in std units.
        """
        maps = self._scaled(self.project_taps(features), tap_scale)
        return self.head(self.fuse(torch.cat(maps, dim=1)))
