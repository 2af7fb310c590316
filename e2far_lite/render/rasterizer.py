"""A z-buffer rasterizer in plain PyTorch, by scatter.

Each triangle visits only the pixels of its own bounding box, so the cost grows with the pixels that
triangles cover, not with pixels x triangles. For every (triangle, pixel) candidate we compute
barycentric coordinates at the pixel centre, keep the ones inside the triangle, and let
``scatter_reduce(..., "amin")`` keep the nearest depth per pixel: that is the z-buffer. A second
scatter picks, per pixel, the candidate that reached that depth.

Screen coordinates: x right, y down, in pixels, pixel (i, j) centred at (j + 0.5, i + 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..checks import check_floating, check_image_size, check_shape


@dataclass
class Fragments:
    """What the rasterizer saw at each pixel.

    Attributes:
        face_index: (B, H, W) int64 triangle index, -1 for background.
        bary: (B, H, W, 3) perspective-correct barycentric weights of that triangle's vertices.
        depth: (B, H, W) camera-frame z in mm, ``inf`` for background.
    """

    face_index: Tensor
    bary: Tensor
    depth: Tensor

    @property
    def mask(self) -> Tensor:
        """(B, H, W) bool, True where a triangle covers the pixel."""
        return self.face_index >= 0


def _edge(ax: Tensor, ay: Tensor, bx: Tensor, by: Tensor, px: Tensor, py: Tensor) -> Tensor:
    """Twice the signed area of triangle (a, b, p)."""
    return (bx - ax) * (py - ay) - (by - ay) * (px - ax)


def check_triangles(triangles: Tensor, num_v: int) -> Tensor:
    """Require (F, 3) integer vertex indices in [0, num_v)."""
    check_shape(triangles, "triangles", (None, 3))
    if triangles.is_floating_point() or triangles.dtype == torch.bool:
        raise ValueError(f"triangles: expected an integer dtype, got {triangles.dtype}")
    if triangles.numel() and (int(triangles.min()) < 0 or int(triangles.max()) >= num_v):
        raise ValueError(f"triangles: expected indices in [0, {num_v - 1}] (screen has {num_v} "
                         f"vertices), got range [{int(triangles.min())}, {int(triangles.max())}]")
    return triangles


def rasterize(
    screen: Tensor,
    triangles: Tensor,
    image_size: tuple[int, int],
    cull_backfaces: bool = True,
    near: float = 1e-3,
) -> Fragments:
    """Rasterize a batch of meshes sharing one topology.

    Args:
        screen: (B, V, 3): pixel x, pixel y, and camera-frame depth z (mm, > 0 in front).
        triangles: (F, 3) vertex indices, counter-clockwise when seen from the front in the
            model frame (so clockwise on screen, where y points down).
        image_size: (H, W) in pixels, each at most ``checks.MAX_IMAGE_SIZE`` (4096).
        cull_backfaces: skip triangles facing away from the camera.
        near: triangles with a vertex closer than this (mm) are dropped.

    Returns:
        :class:`Fragments` with (B, H, W) maps. Triangles with a non-finite vertex are dropped
        like those behind the near plane.
    """
    check_shape(screen, "screen", (None, None, 3))
    check_floating(screen, "screen")
    num_v = screen.shape[1]
    check_triangles(triangles, num_v)
    if isinstance(image_size, (str, bytes)) or not hasattr(image_size, "__len__") \
            or len(image_size) != 2:
        raise ValueError(f"image_size: expected (H, W), got {image_size!r}")
    height, width = (check_image_size(s, "image_size") for s in image_size)
    batch, device = screen.shape[0], screen.device
    num_faces = triangles.shape[0]

    tri = screen[:, triangles]  # (B, F, 3 vertices, 3 coords)
    x, y, z = tri.unbind(-1)  # each (B, F, 3)
    area = _edge(x[..., 0], y[..., 0], x[..., 1], y[..., 1], x[..., 2], y[..., 2])
    keep = (z > near).all(-1) & (area != 0)
    if cull_backfaces:
        keep &= area < 0  # front faces are clockwise on a y-down screen

    # integer bounding boxes of pixel centres inside [min, max]
    x0 = torch.ceil(x.amin(-1) - 0.5).clamp(0, width).long()
    x1 = torch.floor(x.amax(-1) - 0.5).clamp(-1, width - 1).long()
    y0 = torch.ceil(y.amin(-1) - 0.5).clamp(0, height).long()
    y1 = torch.floor(y.amax(-1) - 0.5).clamp(-1, height - 1).long()
    nx, ny = (x1 - x0 + 1).clamp(min=0), (y1 - y0 + 1).clamp(min=0)
    counts = torch.where(keep, nx * ny, torch.zeros_like(nx)).flatten()  # (B*F,)

    # one candidate per (triangle, bounding-box pixel)
    owner = torch.repeat_interleave(torch.arange(counts.numel(), device=device), counts)
    start = torch.cumsum(counts, 0) - counts
    local = torch.arange(owner.numel(), device=device) - start[owner]
    nx_o = nx.flatten()[owner]
    px = x0.flatten()[owner] + local % nx_o
    py = y0.flatten()[owner] + local // nx_o
    cx, cy = px.to(screen.dtype) + 0.5, py.to(screen.dtype) + 0.5

    tx, ty, tz = (t.reshape(-1, 3)[owner] for t in (x, y, z))  # (C, 3)
    a = area.flatten()[owner]
    w0 = _edge(tx[:, 1], ty[:, 1], tx[:, 2], ty[:, 2], cx, cy) / a
    w1 = _edge(tx[:, 2], ty[:, 2], tx[:, 0], ty[:, 0], cx, cy) / a
    w2 = 1.0 - w0 - w1
    screen_bary = torch.stack([w0, w1, w2], -1)
    inside = (screen_bary >= 0).all(-1)

    # perspective-correct interpolation: 1/z is linear in screen space
    inv_z = (screen_bary / tz).sum(-1)
    depth = 1.0 / inv_z
    bary = screen_bary / tz / inv_z[:, None]

    b = owner // num_faces
    pixel = (b * height + py) * width + px
    pixel, depth, bary, owner = pixel[inside], depth[inside], bary[inside], owner[inside]

    num_pixels = batch * height * width
    zbuf = torch.full((num_pixels,), float("inf"), device=device, dtype=screen.dtype)
    zbuf.scatter_reduce_(0, pixel, depth, reduce="amin")
    # the candidate(s) that reached the minimum win; ties go to the highest candidate index
    won = depth <= zbuf[pixel]
    cand = torch.arange(pixel.numel(), device=device)
    best = torch.full((num_pixels,), -1, device=device, dtype=torch.long)
    best.scatter_reduce_(0, pixel[won], cand[won], reduce="amax")

    covered = best >= 0
    face_index = torch.full((num_pixels,), -1, device=device, dtype=torch.long)
    face_index[covered] = owner[best[covered]] % num_faces
    out_bary = torch.zeros(num_pixels, 3, device=device, dtype=screen.dtype)
    out_bary[covered] = bary[best[covered]]
    return Fragments(
        face_index=face_index.view(batch, height, width),
        bary=out_bary.view(batch, height, width, 3),
        depth=zbuf.view(batch, height, width),
    )


def interpolate(fragments: Fragments, attributes: Tensor, triangles: Tensor) -> Tensor:
    """Interpolate per-vertex attributes (B, V, C) at every pixel: (B, H, W, C), 0 off the mesh.

    Only covered pixels are computed, so the cost follows the face's area.
    """
    batch, height, width = fragments.face_index.shape
    channels = attributes.shape[-1]
    face = fragments.face_index.view(-1)
    covered = torch.nonzero(face >= 0).squeeze(1)  # flat pixel ids
    item = covered // (height * width)
    corner = triangles[face[covered]]  # (P, 3) vertex ids
    values = attributes[item[:, None], corner]  # (P, 3, C)
    bary = fragments.bary.view(-1, 3)[covered]
    out = attributes.new_zeros(batch * height * width, channels)
    out[covered] = (values * bary[..., None]).sum(1)
    return out.view(batch, height, width, channels)
