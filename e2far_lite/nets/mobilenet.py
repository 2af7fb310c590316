"""A MobileNetV1 3DMM regressor, the network 3DDFA_V2 uses: a speed reference for E2FARNet.

3DDFA_V2 (Guo et al., ECCV 2020) regresses 62 parameters from a 120 x 120 crop with MobileNetV1
at width multiplier 1.0::

    images (B, 3, 120, 120)
      conv 3x3 / 2, 32 -> BN -> ReLU                                  (B, 32, 60, 60)
      13 depthwise-separable blocks: dw 3x3 -> BN -> ReLU -> pw 1x1 -> BN -> ReLU
        64, 128/2, 128, 256/2, 256, 512/2, 512 x 5, 1024/2, 1024      (B, 1024, 4, 4)
      global average pool -> FC                                       (B, 62)

The 62 outputs are 12 pose (a 3x4 camera matrix), 40 shape and 10 expression coefficients.
Here the weights are random (nothing is downloaded): the network is only timed, next to
E2FARNet, in ``python -m e2far_lite benchmark --speed``.

Size, measured with :mod:`~e2far_lite.nets.complexity` (convs have no bias, as in 3DDFA_V2):

    parameters  3,270,526 = 3,185,088 conv + 21,888 BN (scale, shift) + 63,550 FC
                (3DDFA_V2 quotes 3.27M: the same count)
    MACs        177,436,800 at 120 x 120 = 177,373,312 conv + 63,488 FC

3DDFA_V2 quotes 183.5M MACs. The 6.0M more are not multiply-accumulates of convs or the FC:
they match counting each BN output element as 4 operations (subtract, divide, multiply,
add: 4 x 1,499,776 = 5,999,104) plus 17 per pooled channel (16 adds and a divide over the
4 x 4 map: 17,408): 183,453,312, i.e. 183.5M. That is how older versions of the thop counter
treated BN and pooling; the 3DDFA_V2 README does not say which tool it used, so this is our
reading, but the same rule also gives its x0.5 model's 49.5M (46,455,872 conv + FC MACs here,
0.85M parameters as quoted). Our count, like every MAC figure in this package, is convs and
linear layers only.
"""

from __future__ import annotations

from torch import Tensor, nn

#: (output channels, stride) of the 13 depthwise-separable blocks at width multiplier 1.0.
BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
          (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))
NUM_OUTPUTS = 62  # 12 pose + 40 shape + 10 expression
INPUT_SIZE = 120
#: count_parameters and count_macs (batch 1, 120 x 120) of MobileNetV1() as measured above.
PARAMETERS = 3_270_526
MACS = 177_436_800


def _conv_bn(in_channels: int, out_channels: int, kernel: int, stride: int,
             groups: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, kernel, stride, padding=kernel // 2,
                      groups=groups, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]


class MobileNetV1(nn.Module):
    """MobileNetV1 with a linear head: (B, 3, H, W) images -> (B, ``num_outputs``).

    Args:
        num_outputs: regressed parameters (62 for 3DDFA_V2's pose + shape + expression).
        width: width multiplier (1.0 in 3DDFA_V2); every channel count is scaled by it.

    Examples:
        >>> import torch
        >>> MobileNetV1()(torch.rand(2, 3, 120, 120)).shape
        torch.Size([2, 62])
    """

    def __init__(self, num_outputs: int = NUM_OUTPUTS, width: float = 1.0) -> None:
        super().__init__()
        if not width > 0:
            raise ValueError(f"width: expected > 0, got {width!r}")
        channels = int(32 * width)
        layers: list[nn.Module] = _conv_bn(3, channels, 3, 2)
        for out, stride in BLOCKS:
            out = int(out * width)
            layers += _conv_bn(channels, channels, 3, stride, groups=channels)  # depthwise
            layers += _conv_bn(channels, out, 1, 1)  # pointwise
            channels = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_outputs)

    def forward(self, images: Tensor) -> Tensor:
        """Regress parameters: images (B, 3, H, W) -> (B, num_outputs)."""
        return self.fc(self.pool(self.features(images)).flatten(1))


__all__ = ["MobileNetV1", "BLOCKS", "NUM_OUTPUTS", "INPUT_SIZE", "PARAMETERS", "MACS"]
