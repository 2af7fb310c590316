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
        normal = torch.randn(batch, 3, generator=g)
        uniform = torch.rand(batch, LIGHT_UNIFORMS, generator=g)
        return cls.from_draws(normal, uniform).to(device)

    @classmethod
    def from_draws(cls, normal: Tensor, uniform: Tensor) -> Lights:
        """The lights of :meth:`random` from its draws: ``normal`` (B, 3) N(0, 1) and
        ``uniform`` (B, 6) U(0, 1) (tint 3, ambient, diffuse, specular)."""
        d = normal[:, :3] * torch.tensor([0.8, 0.6, 0.0])
        d[:, 2] = -1.0
        tint = 1.0 + 0.12 * (2 * uniform[:, 0:3] - 1)
        amb = (0.25 + 0.35 * uniform[:, 3:4]) * tint
        dif = (0.45 + 0.5 * uniform[:, 4:5]) * tint
        spec = 0.3 * uniform[:, 5]
        return cls(torch.nn.functional.normalize(d, dim=1), amb, dif, spec)

    def to(self, device: torch.device | str) -> Lights:
        return Lights(self.direction.to(device), self.ambient.to(device),
                      self.diffuse.to(device), self.specular.to(device), self.shininess)


#: Uniform draws per item of :meth:`Lights.from_draws` (the direction takes 3 normals).
LIGHT_UNIFORMS = 6
#: Smooth colour patterns over the face that albedos mix (see :func:`albedo_from_draws`).
ALBEDO_PATTERNS = 16
#: Draws per item of :func:`albedo_from_draws`: normals (pattern weights), then uniforms (tone).
ALBEDO_NORMALS, ALBEDO_UNIFORMS = 3 * ALBEDO_PATTERNS, 1


def albedo_patterns(mean_vertices: Tensor) -> Tensor:
    """(P, V) fixed smooth patterns: cosines over the template with periods of 60-200 mm in
    random directions (always the same ones), each of mean square 1/2."""
    g = torch.Generator().manual_seed(20170721)
    direction = torch.nn.functional.normalize(torch.randn(ALBEDO_PATTERNS, 3, generator=g), dim=1)
    period = 60 + 140 * torch.rand(ALBEDO_PATTERNS, 1, generator=g)
    phase = 2 * torch.pi * torch.rand(ALBEDO_PATTERNS, 1, generator=g)
    freq = (direction / period).to(mean_vertices)
    return torch.cos(2 * torch.pi * freq @ mean_vertices.T + phase.to(mean_vertices))


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
    normal = torch.randn(batch, ALBEDO_NORMALS, generator=generator)
    uniform = torch.rand(batch, ALBEDO_UNIFORMS, generator=generator)
    return albedo_from_draws(mean_vertices, normal, uniform)


def albedo_from_draws(mean_vertices: Tensor, normal: Tensor, uniform: Tensor) -> Tensor:
    """The albedo of :func:`skin_albedo` from its draws, for a whole batch at once.

    A base tone between light and dark skin, plus a random mix of the smooth
    :func:`albedo_patterns` per colour channel (about 0.05 std).

    Args:
        mean_vertices: (V, 3) template in mm.
        normal: (B, 48) N(0, 1) draws (pattern weights); uniform: (B, 1) U(0, 1) draws (tone).

    Returns:
        (B, V, 3) RGB in [0, 1], on ``mean_vertices``' device.
    """
    device = mean_vertices.device
    batch = len(normal)
    normal, uniform = normal.to(device), uniform.to(device)
    tones = torch.tensor([[0.92, 0.75, 0.66], [0.80, 0.60, 0.48], [0.62, 0.43, 0.32],
                          [0.40, 0.27, 0.20]], device=device)
    t = uniform[:, 0] * (len(tones) - 1)
    lo = t.floor().long().clamp(max=len(tones) - 2)
    frac = (t - lo)[:, None]
    base = tones[lo] * (1 - frac) + tones[lo + 1] * frac  # (B, 3)
    weights = normal.view(batch, ALBEDO_PATTERNS, 3) * (0.0048 / ALBEDO_PATTERNS) ** 0.5
    variation = torch.einsum("pv,bpc->bvc", albedo_patterns(mean_vertices), weights)
    return (base[:, None, :] + variation).clamp(0, 1)


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
