"""How big and how costly a network is: parameter count and multiply-accumulates (MACs).

MACs are counted with forward hooks on ``nn.Conv2d`` and ``nn.Linear`` only: batch norm, ReLU,
pooling and additions are cheap next to them and are left out, as is usual when quoting GMACs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters (buffers such as BN running stats are not parameters)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def _conv_macs(conv: nn.Conv2d, output: Tensor) -> int:
    kh, kw = conv.kernel_size
    return output.numel() * (conv.in_channels // conv.groups) * kh * kw


def _linear_macs(linear: nn.Linear, output: Tensor) -> int:
    return output.numel() * linear.in_features


def count_macs(module: nn.Module, input_size: Sequence[int] = (1, 3, 128, 128)) -> int:
    """Multiply-accumulates of one forward pass on a random input of ``input_size``.

    The count is for the whole batch in ``input_size`` (use batch 1 for per-image cost). The
    module runs once in eval mode under ``no_grad`` (its training flag is restored afterwards),
    so BN running statistics are not touched.

    Args:
        module: any module whose forward takes one image tensor.
        input_size: (B, C, H, W) of the input, on the module's device and dtype.

    Returns:
        MACs as an integer (1 GMAC = 1e9).

    Examples:
        >>> count_macs(nn.Linear(10, 5), (1, 10))
        50
    """
    total = 0

    def hook(layer: nn.Module, _inputs: tuple, output: Tensor) -> None:
        nonlocal total
        if isinstance(layer, nn.Conv2d):
            total += _conv_macs(layer, output)
        else:
            total += _linear_macs(layer, output)

    handles = [m.register_forward_hook(hook) for m in module.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear))]
    first = next(iter(module.parameters()), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None else torch.float32
    was_training = module.training
    try:
        module.eval()
        with torch.no_grad():
            module(torch.rand(tuple(input_size), device=device, dtype=dtype))
    finally:
        module.train(was_training)
        for handle in handles:
            handle.remove()
    return total
