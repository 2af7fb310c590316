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


def random_background(size: int, generator: torch.Generator) -> Tensor:
    """One random background (3, size, size) in [0, 1], a pure function of the generator state."""
    g = generator
    kind = KINDS[int(torch.randint(len(KINDS), (1,), generator=g))]
    if kind == "noise":
        cells = int(torch.randint(2, 12, (1,), generator=g))
        low = torch.rand(1, 3, cells, cells, generator=g)
        tone = torch.rand(1, 3, 1, 1, generator=g)
        out = F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False)[0]
        return (0.5 * out + 0.5 * tone[0]).clamp(0, 1)
    if kind == "gradient":
        a, b = torch.rand(3, 1, 1, generator=g), torch.rand(3, 1, 1, generator=g)
        angle = 2 * torch.pi * torch.rand(1, generator=g)
        ramp = torch.linspace(0, 1, size)
        ramp2d = torch.cos(angle) * ramp[None, :] + torch.sin(angle) * ramp[:, None]
        ramp2d = (ramp2d - ramp2d.min()) / (ramp2d.max() - ramp2d.min() + 1e-6)
        return a + (b - a) * ramp2d[None]
    photos = bundled_photos()
    photo = photos[int(torch.randint(len(photos), (1,), generator=g))]
    _, h, w = photo.shape
    side = int(min(h, w) * (0.3 + 0.7 * float(torch.rand(1, generator=g))))
    top = int(torch.randint(h - side + 1, (1,), generator=g))
    left = int(torch.randint(w - side + 1, (1,), generator=g))
    crop = photo[:, top:top + side, left:left + side][None]
    return F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False)[0]
