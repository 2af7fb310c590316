"""Compiled CPU twins of the renderer and of the photo finish (background, augmentation).

:class:`~e2far_lite.render.Renderer` with ``backend="torch"`` is the renderer the course
teaches (``rasterizer.py`` + ``shading.py``): every step is a batched tensor operation, which is
what a GPU wants. On a CPU those operations spend their time moving candidate (triangle, pixel)
lists through memory: at 128 px a batch of 64 faces makes about a million candidates, each touched
by some 50 tensor operations. This module computes the same images with the same formulas in the
classic way, one triangle at a time, each writing straight into the z-buffer, compiled by numba
and run over the batch on all CPU threads:

    for each image (in parallel):
        vertex normals: sum of the triangles' cross products at their corners, normalised
        for each front-facing triangle, for each pixel centre in its bounding box:
            edge functions -> screen barycentrics -> inside? -> 1/z interpolation -> depth test
        for each covered pixel: perspective-correct normal, albedo, position -> Blinn-Phong

Everything is float32 as in the tensor path, and the arithmetic follows its order, so images
agree with it to rounding (a pixel centre that lies on a shared edge may go to the neighbouring
triangle). Ties in depth go to the later triangle, as there. No gradients: the training data
needs none (``Renderer`` falls back to the tensor path when an input requires grad).

:func:`finish_numba` does the same for what follows the render in a training image (the
background behind the face, colour jitter, blur, sensor noise, 8-bit rounding: ``augment.apply``),
which costs a dozen passes over the batch as tensor operations and one here.

numba is optional: :func:`available` says whether it imports. The first call compiles the
kernels (several seconds; numba caches them on disk afterwards).

Threads: the kernels run on as many threads as torch does (``torch.get_num_threads()``, capped
by numba's ``NUMBA_NUM_THREADS``), so ``torch.set_num_threads`` or ``OMP_NUM_THREADS`` is the one
knob for both. And they never change torch's count: numba's OpenMP thread pool (its default
threading layer where a ``libgomp`` is loaded, as torch's wheels load one) starts with
``omp_set_num_threads(NUMBA_NUM_THREADS)`` in the one OpenMP runtime the process shares with
torch, which would silently undo a count the user set before the first render;
:func:`_torch_threads_kept` puts it back.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor


@functools.cache
def available() -> bool:
    """True when numba imports (the compiled path can run)."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def _host(x: Tensor) -> np.ndarray:
    """A float32 CPU array sharing memory with ``x`` where it can (no copy when it already is)."""
    return x.detach().to("cpu", torch.float32).contiguous().numpy()


@contextlib.contextmanager
def _torch_threads_kept() -> Iterator[None]:
    """Run numba's parallel kernels on torch's thread count and leave that count as it was.

    Costs two thread-count calls per kernel launch (microseconds, against milliseconds of work).
    """
    import numba

    threads = torch.get_num_threads()
    numba_threads = numba.get_num_threads()
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(numba_threads)
        if torch.get_num_threads() != threads:  # numba's OpenMP pool started just now
            torch.set_num_threads(threads)


@functools.cache
def _kernel():
    import numba
    from numba import prange

    f32 = np.float32

    @numba.njit(parallel=True, cache=True, nogil=True)
    def render_batch(vertices, rotate, translation, focal, centre, triangles, albedo, lights,
                     shininess, cull, near, face_index, bary, depth,
                     image):  # pragma: no cover - compiled
        batch, num_v = vertices.shape[0], vertices.shape[1]
        num_f = triangles.shape[0]
        height, width = depth.shape[1], depth.shape[2]
        half, one, zero, eps = f32(0.5), f32(1.0), f32(0.0), f32(1e-12)
        exponent = int(shininess)
        whole = exponent == shininess and 0 <= exponent <= 256
        for b in prange(batch):
            # --- camera frame (camera.to_camera) and pixels (camera.perspective_project)
            points = np.empty((num_v, 3), dtype=np.float32)
            screen = np.empty((num_v, 3), dtype=np.float32)
            for v in range(num_v):
                for c in range(3):
                    points[v, c] = (vertices[b, v, 0] * rotate[b, 0, c]
                                    + vertices[b, v, 1] * rotate[b, 1, c]
                                    + vertices[b, v, 2] * rotate[b, 2, c] + translation[b, c])
                z = max(points[v, 2], f32(1e-6))
                screen[v, 0] = points[v, 0] / z * focal[b] + centre[b, 0]
                screen[v, 1] = points[v, 1] / z * focal[b] + centre[b, 1]
                screen[v, 2] = points[v, 2]
            # --- area-weighted vertex normals (camera frame)
            normals = np.zeros((num_v, 3), dtype=np.float32)
            for f in range(num_f):
                i0, i1, i2 = triangles[f, 0], triangles[f, 1], triangles[f, 2]
                ax = points[i1, 0] - points[i0, 0]
                ay = points[i1, 1] - points[i0, 1]
                az = points[i1, 2] - points[i0, 2]
                bx = points[i2, 0] - points[i0, 0]
                by = points[i2, 1] - points[i0, 1]
                bz = points[i2, 2] - points[i0, 2]
                nx, ny, nz = ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx
                for i in (i0, i1, i2):
                    normals[i, 0] += nx
                    normals[i, 1] += ny
                    normals[i, 2] += nz
            for v in range(num_v):
                norm = math.sqrt(normals[v, 0] ** 2 + normals[v, 1] ** 2 + normals[v, 2] ** 2)
                norm = max(f32(norm), eps)
                for c in range(3):
                    normals[v, c] /= norm
            # --- z-buffer, one triangle at a time
            for f in range(num_f):
                i0, i1, i2 = triangles[f, 0], triangles[f, 1], triangles[f, 2]
                x0, y0, z0 = screen[i0, 0], screen[i0, 1], screen[i0, 2]
                x1, y1, z1 = screen[i1, 0], screen[i1, 1], screen[i1, 2]
                x2, y2, z2 = screen[i2, 0], screen[i2, 1], screen[i2, 2]
                area = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)
                # NaN fails every comparison, so non-finite triangles are dropped here too
                if not (z0 > near and z1 > near and z2 > near and area != zero):
                    continue
                if cull and not area < zero:
                    continue
                if not (math.isfinite(x0 + x1 + x2 + y0 + y1 + y2) and math.isfinite(area)):
                    continue
                col0 = max(int(math.ceil(min(x0, x1, x2) - half)), 0)
                col1 = min(int(math.floor(max(x0, x1, x2) - half)), width - 1)
                row0 = max(int(math.ceil(min(y0, y1, y2) - half)), 0)
                row1 = min(int(math.floor(max(y0, y1, y2) - half)), height - 1)
                inv_area = one / area
                inv_z0, inv_z1, inv_z2 = one / z0, one / z1, one / z2
                for row in range(row0, row1 + 1):
                    cy = f32(row) + half
                    for col in range(col0, col1 + 1):
                        cx = f32(col) + half
                        w0 = ((x2 - x1) * (cy - y1) - (y2 - y1) * (cx - x1)) * inv_area
                        w1 = ((x0 - x2) * (cy - y2) - (y0 - y2) * (cx - x2)) * inv_area
                        w2 = one - w0 - w1
                        if w0 < zero or w1 < zero or w2 < zero:
                            continue
                        q0, q1, q2 = w0 * inv_z0, w1 * inv_z1, w2 * inv_z2
                        inv_z = q0 + q1 + q2
                        d = one / inv_z
                        if d <= depth[b, row, col]:
                            depth[b, row, col] = d
                            face_index[b, row, col] = f
                            bary[b, row, col, 0] = q0 * d
                            bary[b, row, col, 1] = q1 * d
                            bary[b, row, col, 2] = q2 * d
            # --- shade the covered pixels (shading.shade, Blinn-Phong)
            lx, ly, lz = lights[b, 0], lights[b, 1], lights[b, 2]
            for row in range(height):
                for col in range(width):
                    f = face_index[b, row, col]
                    if f < 0:
                        continue
                    v0, v1, v2 = triangles[f, 0], triangles[f, 1], triangles[f, 2]
                    w0, w1, w2 = bary[b, row, col, 0], bary[b, row, col, 1], bary[b, row, col, 2]
                    n0 = w0 * normals[v0, 0] + w1 * normals[v1, 0] + w2 * normals[v2, 0]
                    n1 = w0 * normals[v0, 1] + w1 * normals[v1, 1] + w2 * normals[v2, 1]
                    n2 = w0 * normals[v0, 2] + w1 * normals[v1, 2] + w2 * normals[v2, 2]
                    p0 = w0 * points[v0, 0] + w1 * points[v1, 0] + w2 * points[v2, 0]
                    p1 = w0 * points[v0, 1] + w1 * points[v1, 1] + w2 * points[v2, 1]
                    p2 = w0 * points[v0, 2] + w1 * points[v1, 2] + w2 * points[v2, 2]
                    norm = max(f32(math.sqrt(n0 * n0 + n1 * n1 + n2 * n2)), eps)
                    n0, n1, n2 = n0 / norm, n1 / norm, n2 / norm
                    lambert = max(n0 * lx + n1 * ly + n2 * lz, zero)
                    norm = max(f32(math.sqrt(p0 * p0 + p1 * p1 + p2 * p2)), eps)
                    hx, hy, hz = -p0 / norm + lx, -p1 / norm + ly, -p2 / norm + lz
                    norm = max(f32(math.sqrt(hx * hx + hy * hy + hz * hz)), eps)
                    highlight = max((n0 * hx + n1 * hy + n2 * hz) / norm, zero)
                    spec = zero
                    if lambert > zero:
                        if whole:  # integer exponent: repeated squaring, far cheaper than pow
                            power, base, e = one, highlight, exponent
                            while e:
                                if e & 1:
                                    power *= base
                                base *= base
                                e >>= 1
                            spec = lights[b, 9] * power
                        else:
                            spec = lights[b, 9] * highlight ** shininess
                    for c in range(3):
                        rgb = (w0 * albedo[b, v0, c] + w1 * albedo[b, v1, c]
                               + w2 * albedo[b, v2, c])
                        value = rgb * (lights[b, 3 + c] + lights[b, 6 + c] * lambert) + spec
                        image[b, c, row, col] = min(max(value, zero), one)

    return render_batch


@functools.cache
def _finish_kernel():
    import numba
    from numba import prange

    f32 = np.float32

    @numba.njit(parallel=True, cache=True, nogil=True)
    def finish_batch(image, mask, background, params, noise, offsets, out):  # pragma: no cover
        batch, height, width = image.shape[0], image.shape[2], image.shape[3]
        zero, one, third, radius = f32(0.0), f32(1.0), f32(1.0 / 3.0), 3
        for b in prange(batch):
            brightness, contrast, saturation = params[b, 0], params[b, 1], params[b, 2]
            sigma, noise_std = params[b, 3], params[b, 4]
            work = np.empty((3, height, width), dtype=np.float32)
            total = 0.0
            for row in range(height):
                for col in range(width):
                    m = mask[b, 0, row, col]
                    r, g, bl = image[b, 0, row, col], image[b, 1, row, col], image[b, 2, row, col]
                    if background.shape[0]:
                        r = r * m + background[b, 0, row, col] * (one - m)
                        g = g * m + background[b, 1, row, col] * (one - m)
                        bl = bl * m + background[b, 2, row, col] * (one - m)
                    else:
                        r, g, bl = r * m, g * m, bl * m
                    gray = (r + g + bl) * third
                    r = gray + (r - gray) * saturation
                    g = gray + (g - gray) * saturation
                    bl = gray + (bl - gray) * saturation
                    work[0, row, col], work[1, row, col], work[2, row, col] = r, g, bl
                    total += r + g + bl
            mean = f32(total / (3 * height * width))
            for c in range(3):
                for row in range(height):
                    for col in range(width):
                        work[c, row, col] = ((work[c, row, col] - mean) * contrast + mean) \
                            * brightness
            # separable Gaussian blur, replicated borders (augment.gaussian_blur)
            sig = max(sigma, f32(1e-3))
            kernel = np.empty(2 * radius + 1, dtype=np.float32)
            for k in range(2 * radius + 1):
                x = f32(k - radius) / sig
                kernel[k] = math.exp(f32(-0.5) * x * x)
            kernel /= kernel.sum()
            if kernel[radius] < one:
                rows = np.empty_like(work)
                padded = np.empty(max(height, width) + 2 * radius, dtype=np.float32)
                for c in range(3):  # along rows, through a replicate-padded copy
                    for row in range(height):
                        for j in range(width + 2 * radius):
                            padded[j] = work[c, row, min(max(j - radius, 0), width - 1)]
                        for col in range(width):
                            acc = zero
                            for k in range(2 * radius + 1):
                                acc += kernel[k] * padded[col + k]
                            rows[c, row, col] = acc
                for c in range(3):  # along columns: whole rows at a time (vectorised)
                    for row in range(height):
                        for col in range(width):
                            work[c, row, col] = zero
                        for k in range(2 * radius + 1):
                            i = min(max(row + k - radius, 0), height - 1)
                            weight = kernel[k]
                            for col in range(width):
                                work[c, row, col] += weight * rows[c, i, col]
            oy, ox = offsets[b, 0], offsets[b, 1]
            for c in range(3):
                for row in range(height):
                    for col in range(width):
                        v = work[c, row, col] + noise_std * noise[c, oy + row, ox + col]
                        v = min(max(v, zero), one)
                        out[b, c, row, col] = np.rint(v * f32(255.0)) / f32(255.0)

    return finish_batch


def finish_numba(image: Tensor, mask: Tensor, background: Tensor | None, params: Tensor,
                 noise_bank: Tensor, offsets: Tensor) -> Tensor:
    """Composite, augment and quantise renders like ``augment.apply`` after
    ``image * mask + background * (1 - mask)``, with the compiled kernel.

    Args:
        image: (B, 3, H, W) renders in [0, 1]; mask: (B, 1, H, W) 1 on the face.
        background: (B, 3, H, W) in [0, 1], or None for black.
        params: (B, 5) from ``augment.params_from_draws``.
        noise_bank: (3, H', W') N(0, 1) field; item b reads the (H, W) window at ``offsets[b]``
            (B, 2) rows, columns.

    Returns:
        (B, 3, H, W) images in [0, 1], rounded to 1/255 steps.
    """
    out = np.empty(tuple(image.shape), dtype=np.float32)
    back = _host(background) if background is not None else np.zeros((0, 3, 1, 1), np.float32)
    kernel = _finish_kernel()
    with _torch_threads_kept():
        kernel(_host(image), _host(mask), back, _host(params), _host(noise_bank),
               offsets.to("cpu", torch.int64).contiguous().numpy(), out)
    return torch.from_numpy(out)


def render_numba(vertices: Tensor, rotate: Tensor, translation: Tensor, focal: Tensor,
                 centre: Tensor, triangles: Tensor, albedo: Tensor, light_params: Tensor,
                 shininess: float, size: int, cull_backfaces: bool = True,
                 near: float = 1e-3) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Pose, project, rasterize and shade on the CPU with the compiled kernel (inputs are
    trusted: ``Renderer`` and ``SyntheticFaces`` check them).

    Args:
        vertices: (B, V, 3) in mm; camera-frame points are ``vertices @ rotate + translation``.
        rotate: (B, 3, 3), acting on row vectors (identity for camera-frame vertices).
        translation: (B, 3) mm.
        focal: (B,) px; centre: (B, 2) px: the pinhole camera.
        triangles: (F, 3) vertex indices.
        albedo: (B, V, 3) RGB in [0, 1].
        light_params: (B, 10) direction (3), ambient (3), diffuse (3), specular (1).
        shininess: Blinn-Phong exponent.
        size: H = W in px.

    Returns:
        image (B, 3, H, W) in [0, 1] (black off the face), face_index (B, H, W) int64,
        bary (B, H, W, 3), depth (B, H, W) mm (``inf`` off the face).
    """
    batch = vertices.shape[0]
    face_index = np.full((batch, size, size), -1, dtype=np.int64)
    bary = np.zeros((batch, size, size, 3), dtype=np.float32)
    depth = np.full((batch, size, size), np.inf, dtype=np.float32)
    image = np.zeros((batch, 3, size, size), dtype=np.float32)
    tri = triangles.detach().to("cpu", torch.int64).contiguous().numpy()
    kernel = _kernel()
    with _torch_threads_kept():
        kernel(_host(vertices), _host(rotate), _host(translation), _host(focal), _host(centre),
               tri, _host(albedo), _host(light_params), np.float32(shininess),
               bool(cull_backfaces), np.float32(near), face_index, bary, depth, image)
    return (torch.from_numpy(image), torch.from_numpy(face_index), torch.from_numpy(bary),
            torch.from_numpy(depth))


__all__ = ["available", "render_numba", "finish_numba"]
