"""Renderer = rasterizer + shader, plus landmark projection with visibility.

Everything is batched and runs on whatever device the inputs are on (CPU or CUDA). On a CPU,
``backend="auto"`` hands the same work to the compiled twin in
:mod:`~e2far_lite.render.numba_kernels` (same formulas, one triangle at a time; 8x faster at
128 px on 2 cores, ``benchmark --speed``) when numba is installed and no input needs gradients;
``backend="torch"`` always runs the tensor code below, the reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..checks import check_finite, check_floating, check_image_size, check_shape
from ..model.morphable_model import vertex_normals
from . import numba_kernels
from .camera import perspective_project
from .rasterizer import Fragments, check_triangles, interpolate, rasterize
from .shading import Lights, shade

#: Renderer backends: see :class:`Renderer`.
BACKENDS = ("auto", "torch", "numba")


@dataclass
class RenderOutput:
    """Images and buffers for a batch.

    Attributes:
        image: (B, 3, H, W) RGB in [0, 1], black where there is no face.
        mask: (B, 1, H, W) float, 1 on the face.
        depth: (B, H, W) mm, ``inf`` off the face.
        fragments: the rasterizer's :class:`~e2far_lite.render.Fragments`.
    """

    image: Tensor
    mask: Tensor
    depth: Tensor
    fragments: Fragments


class Renderer:
    """Render meshes seen by a pinhole camera.

    Args:
        image_size: output size in pixels (square images, H = W), at most
            ``checks.MAX_IMAGE_SIZE`` (4096).
        backend: ``"auto"`` (the compiled CPU kernel where it can run, else tensors),
            ``"torch"`` (always the tensor code: rasterizer.py + shading.py) or ``"numba"``
            (always the compiled kernel; CPU only, no gradients).

    Examples:
        >>> import torch
        >>> renderer = Renderer(8)
        >>> tri = torch.tensor([[0, 1, 2]])
        >>> verts = torch.tensor([[[-50.0, 50, 0], [50, 50, 0], [0, -50, 0]]])  # camera frame
        >>> out = renderer.render(verts + torch.tensor([0, 0, 100.0]), tri, torch.tensor([8.0]),
        ...                       torch.tensor([[4.0, 4.0]]), torch.ones(1, 3, 3))
        >>> out.image.shape
        torch.Size([1, 3, 8, 8])
    """

    def __init__(self, image_size: int, backend: str = "auto") -> None:
        self.image_size = check_image_size(image_size, "image_size")
        if backend not in BACKENDS:
            raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
        if backend == "numba" and not numba_kernels.available():
            raise ImportError("backend='numba' needs numba (`pip install numba`); "
                              "backend='auto' falls back to the tensor renderer")
        self.backend = backend

    def uses_kernel(self, *inputs: Tensor) -> bool:
        """Whether :meth:`render` of these inputs runs the compiled CPU kernel."""
        if self.backend == "torch":
            return False
        on_cpu = all(x.device.type == "cpu" and not x.requires_grad for x in inputs)
        if self.backend == "numba":
            if not on_cpu:
                raise ValueError("backend='numba': expected CPU tensors without gradients")
            return True
        return on_cpu and numba_kernels.available()

    def render(
        self,
        points: Tensor,
        triangles: Tensor,
        focal: Tensor,
        centre: Tensor,
        albedo: Tensor,
        lights: Lights | None = None,
    ) -> RenderOutput:
        """Rasterize and shade camera-frame meshes.

        Args:
            points: (B, V, 3) camera-frame vertices in mm (x right, y down, z forward).
            triangles: (F, 3) vertex indices (counter-clockwise from the front in model frame).
            focal: (B,) focal length in pixels.
            centre: (B, 2) principal point in pixels.
            albedo: (B, V, 3) RGB per vertex in [0, 1].
            lights: :class:`Lights`; default a soft frontal light.

        Returns:
            :class:`RenderOutput`.
        """
        check_shape(points, "points", (None, None, 3))
        check_floating(points, "points")
        batch, num_v = points.shape[:2]
        check_shape(albedo, "albedo", (batch, num_v, 3))
        check_shape(focal, "focal", (batch,))
        check_shape(centre, "centre", (batch, 2))
        for name, value in (("points", points), ("focal", focal), ("centre", centre),
                            ("albedo", albedo)):
            check_finite(check_floating(value, name), name)
        size = self.image_size
        lights = lights if lights is not None else Lights.frontal(batch, points.device)
        if self.uses_kernel(points, focal, centre, albedo):
            check_triangles(triangles, num_v)
            identity = torch.eye(3).expand(batch, 3, 3)
            return self.render_posed(points, identity, torch.zeros(batch, 3), focal, centre,
                                     triangles, albedo, lights)
        screen = torch.cat([perspective_project(points, focal, centre), points[..., 2:]], -1)
        frags = rasterize(screen, triangles, (size, size))
        # camera-frame normals: diag(1,-1,-1) is a rotation, so winding (and outward) is kept
        normals = vertex_normals(points, triangles)
        attrs = interpolate(frags, torch.cat([normals, albedo, points], -1), triangles)
        rgb = shade(attrs[..., :3], attrs[..., 3:6], attrs[..., 6:], lights)
        mask = frags.mask[..., None].to(rgb.dtype)
        image = (rgb * mask).clamp(0, 1).permute(0, 3, 1, 2)
        return RenderOutput(image.contiguous(), mask.permute(0, 3, 1, 2).contiguous(),
                            frags.depth, frags)

    def render_posed(self, vertices: Tensor, rotate: Tensor, translation: Tensor, focal: Tensor,
                     centre: Tensor, triangles: Tensor, albedo: Tensor,
                     lights: Lights) -> RenderOutput:
        """The compiled kernel on model-frame ``vertices`` (B, V, 3): it forms the camera-frame
        points ``vertices @ rotate + translation`` itself (``rotate`` (B, 3, 3) on row vectors,
        ``translation`` (B, 3) mm), so they never pass through memory. For trusted inputs on a
        CPU (the synthetic data); ``render`` is the checked entry point."""
        batch = vertices.shape[0]
        params = torch.cat([lights.direction, lights.ambient, lights.diffuse,
                            lights.specular[:, None]], 1).expand(batch, 10)
        image, face_index, bary, depth = numba_kernels.render_numba(
            vertices, rotate, translation, focal, centre, triangles, albedo, params,
            lights.shininess, self.image_size)
        frags = Fragments(face_index, bary, depth)
        return RenderOutput(image, frags.mask[:, None].to(image.dtype), depth, frags)


def project_landmarks(
    points: Tensor, focal: Tensor, centre: Tensor, depth: Tensor | None = None,
    tolerance: float = 4.0,
) -> tuple[Tensor, Tensor]:
    """Project camera-frame landmarks and test them against the z-buffer.

    Args:
        points: (B, P, 3) camera-frame points in mm (NaN for undefined landmarks).
        focal: (B,) pixels; centre: (B, 2) pixels.
        depth: optional (B, H, W) z-buffer in mm from the same camera.
        tolerance: a point is visible when it is at most this many mm behind the z-buffer.

    Returns:
        pixels (B, P, 2) and visible (B, P) bool (False for undefined points, points outside
        the image, or points hidden behind the surface).
    """
    pixels = perspective_project(points, focal, centre)
    visible = torch.isfinite(pixels).all(-1)
    if depth is not None:
        height, width = depth.shape[-2:]
        col = pixels[..., 0].floor().nan_to_num(-1).long()
        row = pixels[..., 1].floor().nan_to_num(-1).long()
        inside = (col >= 0) & (col < width) & (row >= 0) & (row < height)
        # the farthest surface in the 3x3 neighbourhood inside the image: points on the
        # silhouette stay visible (read at the P points only, not pooled over the image)
        zbuf = torch.full_like(points[..., 2], -float("inf"))
        flat_depth = depth.flatten(1)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                r, c = row + dy, col + dx
                ok = (r >= 0) & (r < height) & (c >= 0) & (c < width)
                flat = r.clamp(0, height - 1) * width + c.clamp(0, width - 1)
                near = torch.gather(flat_depth, 1, flat)
                zbuf = torch.maximum(zbuf, torch.where(ok, near, -float("inf")))
        visible = visible & inside & (points[..., 2] <= zbuf + tolerance)
    return pixels, visible


def render_preview(
    vertices: Tensor,
    triangles: Tensor,
    yaw: float = 0.0,
    pitch: float = 0.0,
    size: int = 256,
    albedo: Tensor | None = None,
    extent: float = 240.0,
) -> Tensor:
    """Portrait renders of model-frame meshes for pictures in notebooks.

    Args:
        vertices: (B, V, 3) in mm, model frame.
        triangles: (F, 3).
        yaw, pitch: head rotation in radians.
        size: image size in pixels.
        albedo: optional (B, V, 3) colours; default a uniform skin tone.
        extent: mm covered by the image side at the model's origin.

    Returns:
        (B, 3, size, size) images in [0, 1] on a white background.
    """
    from .camera import to_camera
    from .shading import skin_albedo

    if not extent > 0:
        raise ValueError(f"extent: expected a positive number of mm, got {extent!r}")
    check_shape(vertices, "vertices", (None, None, 3))
    batch, distance = vertices.shape[0], 1500.0
    dev = vertices.device
    angles = torch.tensor([[yaw, pitch, 0.0]], device=dev).expand(batch, 3)
    points = to_camera(vertices, angles, torch.tensor([[0.0, 0.0, distance]], device=dev)
                       .expand(batch, 3))
    focal = torch.full((batch,), size * distance / extent, device=dev)
    centre = torch.full((batch, 2), size / 2, device=dev)
    if albedo is None:
        albedo = skin_albedo(vertices[0], batch).to(dev)
    out = Renderer(size).render(points, triangles, focal, centre, albedo)
    return out.image + (1 - out.mask)
