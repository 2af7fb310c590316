"""Shading: skin albedo per vertex and a Lambertian + ambient + specular light.

All vectors are in the camera frame (x right, y down, z away from the camera).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Lights:
    """One directional light plus ambient light, per batch item.

    Attributes:
        direction: (B, 3) unit vector from the surface toward the light.
        ambient: (B, 3) RGB ambient intensity.
        diffuse: (B, 3) RGB intensity of the directional light.
        specular: (B,) strength of the Blinn-Phong highlight (0 = matte).
        shininess: Blinn-Phong exponent.
    """

    direction: Tensor
    ambient: Tensor
    diffuse: Tensor
    specular: Tensor
    shininess: float = 20.0

    @classmethod
    def frontal(cls, batch: int, device: torch.device | str = "cpu") -> Lights:
        """A soft light from slightly above the camera (pictures in notebooks)."""
        direction = torch.nn.functional.normalize(torch.tensor([0.2, -0.4, -1.0]), dim=0)
        return cls(direction.to(device).expand(batch, 3),
                   torch.full((batch, 3), 0.45, device=device),
                   torch.full((batch, 3), 0.65, device=device),
                   torch.full((batch,), 0.15, device=device))

    @classmethod
    def random(cls, batch: int, generator: torch.Generator, device: torch.device | str = "cpu",
               ) -> Lights:
        """Random direction within ~70° of the camera axis, random colour temperature."""
        g = generator
        d = torch.randn(batch, 3, generator=g) * torch.tensor([0.8, 0.6, 0.0])
        d[:, 2] = -1.0
        tint = 1.0 + 0.12 * (2 * torch.rand(batch, 3, generator=g) - 1)
        amb = (0.25 + 0.35 * torch.rand(batch, 1, generator=g)) * tint
        dif = (0.45 + 0.5 * torch.rand(batch, 1, generator=g)) * tint
        spec = 0.3 * torch.rand(batch, generator=g)
        return cls(torch.nn.functional.normalize(d, dim=1).to(device), amb.to(device),
                   dif.to(device), spec.to(device))


def skin_albedo(
    mean_vertices: Tensor, batch: int, generator: torch.Generator | None = None
) -> Tensor:
    """Skin-like albedo per vertex with smooth, low-frequency variation.

    Args:
        mean_vertices: (V, 3) template in mm (only used for smooth spatial patterns).
        batch: number of albedos B.
        generator: random source (None: a fixed mid skin tone, no variation).

    Returns:
        (B, V, 3) RGB in [0, 1].
    """
    device = mean_vertices.device
    if generator is None:
        return torch.tensor([0.80, 0.60, 0.50], device=device).expand(batch, len(mean_vertices), 3)
    g = generator
    # base tones from light to dark skin, interpolated
    tones = torch.tensor([[0.92, 0.75, 0.66], [0.80, 0.60, 0.48], [0.62, 0.43, 0.32],
                          [0.40, 0.27, 0.20]])
    t = torch.rand(batch, generator=g) * (len(tones) - 1)
    lo = t.floor().long().clamp(max=len(tones) - 2)
    frac = (t - lo)[:, None]
    base = tones[lo] * (1 - frac) + tones[lo + 1] * frac  # (B, 3)
    # low-frequency variation: a few random cosines over the face (periods 60–200 mm)
    freq = torch.randn(batch, 4, 3, generator=g) / (60 + 140 * torch.rand(batch, 4, 1, generator=g))
    phase = 2 * torch.pi * torch.rand(batch, 4, generator=g)
    amp = 0.06 * torch.rand(batch, 4, 3, generator=g)
    waves = torch.cos(2 * torch.pi * torch.einsum("vc,bkc->bvk", mean_vertices.cpu(), freq)
                      + phase[:, None, :])  # (B, V, 4)
    variation = torch.einsum("bvk,bkc->bvc", waves, amp)
    return (base[:, None, :] + variation).clamp(0, 1).to(device)


def shade(
    normals: Tensor, albedo: Tensor, positions: Tensor, lights: Lights
) -> Tensor:
    """Per-pixel colour from interpolated attributes.

    Args:
        normals: (B, H, W, 3) surface normals (need not be unit length).
        albedo: (B, H, W, 3) RGB.
        positions: (B, H, W, 3) camera-frame points in mm (for the view direction).
        lights: :class:`Lights` with batch B.

    Returns:
        (B, H, W, 3) RGB, not clipped.
    """
    n = torch.nn.functional.normalize(normals, dim=-1, eps=1e-12)
    light = lights.direction[:, None, None, :]
    lambert = (n * light).sum(-1, keepdim=True).clamp(min=0)
    color = albedo * (lights.ambient[:, None, None, :] + lights.diffuse[:, None, None, :] * lambert)
    view = torch.nn.functional.normalize(-positions, dim=-1, eps=1e-12)
    half = torch.nn.functional.normalize(view + light, dim=-1, eps=1e-12)
    highlight = (n * half).sum(-1, keepdim=True).clamp(min=0) ** lights.shininess
    return color + lights.specular[:, None, None, None] * highlight * (lambert > 0)
