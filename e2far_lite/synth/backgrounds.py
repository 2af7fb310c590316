"""Image backgrounds for synthetic faces: smooth noise, colour gradients and photo crops.

Photo crops come from scikit-image's bundled sample images (no download). The astronaut photo is
left out on purpose: it holds a real face, and notebook 08 reconstructs it.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor

PHOTO_NAMES = ("coffee", "chelsea", "rocket", "camera", "brick", "grass", "gravel", "coins",
               "horse", "hubble_deep_field", "immunohistochemistry", "page", "text", "moon")
KINDS = ("noise", "gradient", "photo")


@functools.lru_cache(maxsize=1)
def bundled_photos() -> tuple[Tensor, ...]:
    """The scikit-image sample photos as (3, H, W) float tensors in [0, 1], longest side <= 320."""
    import skimage.data

    photos = []
    for name in PHOTO_NAMES:
        img = torch.as_tensor(getattr(skimage.data, name)()).float()
        if img.max() > 1.5:
            img = img / 255.0
        img = img[..., None].expand(*img.shape, 3) if img.dim() == 2 else img[..., :3]
        img = img.permute(2, 0, 1)[None]
        scale = 320 / max(img.shape[-2:])
        if scale < 1:
            img = F.interpolate(img, scale_factor=scale, mode="area")
        photos.append(img[0].contiguous())
    return tuple(photos)


#: Most cells per side of a smooth-noise background, and the uniform draws per background.
MAX_CELLS = 12
UNIFORMS = 2 + 3 * MAX_CELLS**2 + 3 + 7 + 4


def backgrounds_from_draws(u: Tensor, size: int) -> Tensor:
    """Backgrounds (B, 3, size, size) in [0, 1] from (B, ``UNIFORMS``) uniform draws, made for
    the whole batch at once (items of one kind together).

    Draws: kind, noise cells, the noise grid (3 x 12 x 12, the first cells² of each channel
    used), noise tone (3), gradient colours (3 + 3) and angle, photo index, crop side, top, left.
    """
    batch, device = len(u), u.device
    out = torch.empty(batch, 3, size, size, device=device)
    kind = (u[:, 0] * len(KINDS)).long().clamp(max=len(KINDS) - 1)
    grid_end = 2 + 3 * MAX_CELLS**2
    # smooth noise: a coarse random grid, bicubic-upsampled, over a random tone
    noise = torch.nonzero(kind == KINDS.index("noise")).flatten()
    cells = 2 + (u[:, 1] * (MAX_CELLS - 2)).long().clamp(max=MAX_CELLS - 3)
    for c in cells[noise].unique().tolist():
        rows = noise[cells[noise] == c]
        low = u[rows, 2:2 + 3 * c * c].reshape(-1, 3, c, c)
        tone = u[rows, grid_end:grid_end + 3, None, None]
        up = _bicubic_matrix(c, size).to(device)  # bicubic upsampling is separable: U low U^T
        smooth = up @ low @ up.T
        out.index_copy_(0, rows, (0.5 * smooth + 0.5 * tone).clamp(0, 1))
    # linear colour gradients in a random direction
    rows = torch.nonzero(kind == KINDS.index("gradient")).flatten()
    if len(rows):
        g = u[rows, grid_end + 3:grid_end + 10]
        a, b = g[:, 0:3, None, None], g[:, 3:6, None, None]
        angle = 2 * torch.pi * g[:, 6, None, None]
        ramp = torch.linspace(0, 1, size, device=device)
        ramp2d = torch.cos(angle) * ramp[None, None, :] + torch.sin(angle) * ramp[None, :, None]
        low = ramp2d.amin((1, 2), keepdim=True)
        high = ramp2d.amax((1, 2), keepdim=True)
        ramp2d = (ramp2d - low) / (high - low + 1e-6)
        out.index_copy_(0, rows, a + (b - a) * ramp2d[:, None])
    # square windows of the bundled photos, from a pyramid resized once per zoom level
    rows = torch.nonzero(kind == KINDS.index("photo")).flatten()
    if len(rows):
        out.index_copy_(0, rows, _photo_crops(u[rows, grid_end + 10:grid_end + 14], size))
    return out


@functools.lru_cache(maxsize=64)
def _bicubic_matrix(cells: int, size: int) -> Tensor:
    """(size, cells) weights of ``F.interpolate(mode="bicubic", align_corners=False)``."""
    eye = torch.eye(cells)[:, None, :, None].expand(cells, 1, cells, 1)
    cols = F.interpolate(eye.contiguous(), size=(size, 1), mode="bicubic", align_corners=False)
    return cols[:, 0, :, 0].T.contiguous()


#: Zoom levels of the photo pyramid: a crop is a window of the photo resized by one of them.
_ZOOMS = 12


@functools.lru_cache(maxsize=4)
def _photo_pyramid(size: int) -> tuple[tuple[Tensor, ...], ...]:
    """Each bundled photo resized so that a window of ``size`` px covers 30 % .. 100 % of its
    shorter side, at ``_ZOOMS`` levels: ``[photo][level]`` is (3, h, w)."""
    levels = []
    for photo in bundled_photos():
        short = min(photo.shape[-2:])
        scaled = []
        for k in range(_ZOOMS):
            side = short * (0.3 + 0.7 * k / (_ZOOMS - 1))  # the photo span one window covers
            zoom = size / side
            h, w = (max(size, round(n * zoom)) for n in photo.shape[-2:])
            scaled.append(F.interpolate(photo[None], size=(h, w), mode="bilinear",
                                        align_corners=False, antialias=zoom < 1)[0])
        levels.append(tuple(scaled))
    return tuple(levels)


def _photo_crops(u: Tensor, size: int) -> Tensor:
    """(n, 3, size, size) windows of the bundled photos from (n, 4) draws: photo, zoom, top,
    left. The photos are resized once per zoom level, so a crop is a slice."""
    pyramid = _photo_pyramid(size)
    crops = []
    for p, z, y, x in u.cpu().tolist():
        levels = pyramid[min(int(p * len(pyramid)), len(pyramid) - 1)]
        photo = levels[min(int(z * _ZOOMS), _ZOOMS - 1)]
        _, h, w = photo.shape
        top = min(int(y * (h - size + 1)), h - size)
        left = min(int(x * (w - size + 1)), w - size)
        crops.append(photo[:, top:top + size, left:left + size])
    return torch.stack(crops).to(u.device)
