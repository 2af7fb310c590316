"""Photometric augmentation: colour jitter, Gaussian blur, sensor noise, 8-bit quantisation.

Parameters are drawn per item (so each item stays a pure function of its own seed), then applied
to the whole batch at once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

#: Uniform draws per item of :func:`params_from_draws`.
UNIFORMS = 5


def params_from_draws(u: Tensor, strength: float = 1.0) -> Tensor:
    """Per-item parameters (B, 5) from (B, 5) uniform draws: brightness, contrast, saturation,
    blur sigma (px), noise std."""
    s = strength
    return torch.stack([
        1 + s * 0.25 * (2 * u[:, 0] - 1),
        1 + s * 0.25 * (2 * u[:, 1] - 1),
        1 + s * 0.35 * (2 * u[:, 2] - 1),
        s * 1.2 * u[:, 3] * (u[:, 3] > 0.4),
        s * 0.03 * u[:, 4],
    ], 1)


def gaussian_blur(images: Tensor, sigma: Tensor) -> Tensor:
    """Blur each image (B, C, H, W) with its own sigma (B,) in pixels (0 = unchanged)."""
    b, c, h, w = images.shape
    radius = 3
    x = torch.arange(-radius, radius + 1, device=images.device, dtype=images.dtype)
    sig = sigma.to(images).clamp(min=1e-3)[:, None]
    kernel = torch.exp(-0.5 * (x[None] / sig) ** 2)
    kernel = kernel / kernel.sum(1, keepdim=True)  # (B, 7); sigma~0 gives a delta
    k = kernel.repeat_interleave(c, 0)  # (B*C, 7)
    flat = images.reshape(1, b * c, h, w)
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="replicate"),
                    k[:, None, None, :], groups=b * c)
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="replicate"),
                    k[:, None, :, None], groups=b * c)
    return flat.view(b, c, h, w)


def apply(images: Tensor, params: Tensor, noise: Tensor) -> Tensor:
    """Apply per-item ``params`` (B, 5) from :func:`params_from_draws`; ``noise`` is
    (B, 3, H, W) N(0, 1).

    Returns images (B, 3, H, W) in [0, 1], quantised to 8 bits like a real photo.
    """
    p = params.to(images)[:, :, None, None, None]
    brightness, contrast, saturation, sigma, noise_std = p.unbind(1)
    gray = images.mean(1, keepdim=True)
    out = gray + (images - gray) * saturation
    mean = out.mean((1, 2, 3), keepdim=True)
    out = (out - mean) * contrast + mean
    out = out * brightness
    out = gaussian_blur(out, sigma.flatten())
    out = out + noise_std * noise.to(images)
    return quantize(out)


def quantize(images: Tensor) -> Tensor:
    """Clamp to [0, 1] and round to 1/255 steps, so a uint8 cache reloads exactly."""
    return torch.round(images.clamp(0, 1) * 255) / 255
