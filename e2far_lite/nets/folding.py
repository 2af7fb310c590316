"""Inference speed: fold every batch norm into the convolution before it, and store kernels
channels-last.

In eval mode a ``BatchNorm2d`` is a fixed affine map per channel, ``y = g (x - m) / s + b``
(g, b learned; m, s the running mean and standard deviation), and a convolution is linear, so
the pair is one convolution with rescaled kernels and a new bias:

    W' = W * g / s        (per output channel)
    b' = (b_conv - m) * g / s + b

The network computes the same function (to float rounding) while reading and writing each
feature map one time fewer. Kernels stored channels-last (NHWC) let oneDNN, PyTorch's CPU
convolution library, skip re-ordering them at every call. :func:`for_inference` does both;
``python -m e2far_lite benchmark --speed`` prints the times with and without.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def fold_batch_norm(net: nn.Module) -> nn.Module:
    """An eval-mode copy of ``net`` where each ``BatchNorm2d`` that directly follows a
    ``Conv2d`` inside an ``nn.Sequential`` is folded into it (and replaced by ``Identity``).

    The original is untouched; the copy is for inference only (its batch norms no longer
    learn). Other modules are kept as they are.

    Examples:
        >>> conv_bn = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).eval()
        >>> x = torch.rand(1, 3, 8, 8)
        >>> bool(torch.allclose(fold_batch_norm(conv_bn)(x), conv_bn(x), atol=1e-6))
        True
    """
    if not isinstance(net, nn.Module):
        raise TypeError(f"net: expected a torch.nn.Module, got {type(net).__name__}")
    folded = copy.deepcopy(net).eval()
    for module in folded.modules():
        if isinstance(module, nn.Sequential):
            _fold_in(module)
    return folded


def for_inference(net: nn.Module) -> nn.Module:
    """An eval-mode copy of ``net`` made fast for inference: batch norms folded
    (:func:`fold_batch_norm`) and parameters in channels-last memory format. Inputs may be in
    either layout; outputs are the same to float rounding."""
    return fold_batch_norm(net).to(memory_format=torch.channels_last)


@torch.no_grad()
def _fold_in(block: nn.Sequential) -> None:
    names = list(block._modules)
    for before, name in zip(names, names[1:], strict=False):
        conv, norm = block._modules[before], block._modules[name]
        if not (isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d)
                and norm.track_running_stats and norm.running_var is not None):
            continue
        scale = torch.rsqrt(norm.running_var + norm.eps)
        if norm.affine:
            scale = scale * norm.weight
        shift = -norm.running_mean * scale + (norm.bias if norm.affine else 0.0)
        bias = conv.bias if conv.bias is not None else torch.zeros_like(norm.running_mean)
        conv.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
        conv.bias = nn.Parameter(bias * scale + shift)
        block._modules[name] = nn.Identity()


__all__ = ["fold_batch_norm", "for_inference"]
