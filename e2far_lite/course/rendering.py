"""Checks for notebook 02: the renderer's core, written by the student.

Four pieces, each run on fresh random inputs and compared with :mod:`e2far_lite.render`:

* ``project(points, focal, centre)``: the pinhole projection (:func:`perspective_project`);
* ``edge(a, b, p)`` and ``barycentric(triangle, points)``: the edge function and the barycentric
  coordinates the rasterizer computes at every pixel centre;
* ``zbuffer(screen, triangles, size)``: a z-buffer rasterizer for a small mesh
  (:func:`~e2far_lite.render.rasterize`);
* ``lambert(normals, albedo, lights)``: ambient + diffuse shading (:func:`shade` without its
  specular highlight);

and, in the closing exercise, the data's photometric augmentation:

* ``colour_jitter(images, brightness, contrast, saturation)``: the colour jitter and 8-bit
  rounding of :func:`e2far_lite.synth.augment.apply` (with its blur and noise off).

Screen coordinates are the package's: x right, y down, in pixels; pixel (i, j) is centred at
(j + 0.5, i + 0.5); depth is the camera-frame z in mm.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ..render import Lights, perspective_project, rasterize, shade
from ..render.rasterizer import _edge
from ..synth.augment import apply as augment
from .checks import (
    CheckFailed,
    call,
    compare,
    fresh_generator,
    not_written,
    passed,
    refuse_reference,
)

#: the share of pixels whose triangle must match the package's rasterizer
PIXEL_SHARE = 0.99
#: depth tolerance (mm) on pixels that see the same triangle: absolute, and relative to the depth
DEPTH_ATOL, DEPTH_RTOL = 1e-4, 1e-5


def _sci(value: float) -> str:
    """``1e-4`` for 0.0001: how the messages write a tolerance."""
    return f"{value:.0e}".replace("e-0", "e-")


def _tensor(got: Any, what: str, shape: tuple[int, ...]) -> Tensor:
    """``got`` if it is a tensor of ``shape``; otherwise :class:`CheckFailed` saying why."""
    not_written(got, what)
    if not isinstance(got, Tensor):
        raise CheckFailed(f"{what}: expected a torch.Tensor, got {type(got).__name__}")
    if tuple(got.shape) != shape:
        raise CheckFailed(f"{what}: expected shape {shape}, got {tuple(got.shape)}")
    return got


# ---------------------------------------------------------------------------------------------
# 1. the pinhole projection


def random_camera(g: torch.Generator, batch: int, num: int) -> tuple[Tensor, Tensor, Tensor]:
    """Camera-frame points (B, P, 3) mm in front of the camera (z in [200, 2000]), focal
    lengths (B,) px and principal points (B, 2) px."""
    xy = 300 * torch.rand(batch, num, 2, generator=g) - 150
    z = 200 + 1800 * torch.rand(batch, num, 1, generator=g)
    focal = 300 + 1700 * torch.rand(batch, generator=g)
    centre = 30 + 200 * torch.rand(batch, 2, generator=g)
    return torch.cat([xy, z], -1), focal, centre


def check_project(project: Callable) -> None:
    """``project(points (B, P, 3) mm, focal (B,) px, centre (B, 2) px)`` -> (B, P, 2) px must
    equal :func:`~e2far_lite.render.perspective_project` to 1e-3 px, on fresh random points."""
    g = fresh_generator()
    for batch in (1, 4):
        points, focal, centre = random_camera(g, batch, 50)
        what = f"project(points, focal, centre) for a batch of {batch}"
        got = _tensor(call(project, what, points, focal, centre), what, (batch, 50, 2))
        # a point twice as far along the same ray lands on the same pixel
        farther = _tensor(call(project, what, 2 * points, focal, centre), what, (batch, 50, 2))
        moved = float((farther.detach() - got.detach()).abs().max())
        if moved > 1e-3:
            raise CheckFailed(f"{what}: a point twice as far along the same ray through the "
                              f"camera centre must land on the same pixel; yours moves by up to "
                              f"{moved:.3g} px")
        compare(got, perspective_project(points, focal, centre), what, atol=1e-3, rtol=1e-6)
    passed("project(points, focal, centre) equals the package's perspective_project on fresh "
           "random points (batches of 1 and 4), to 1e-3 px")


# ---------------------------------------------------------------------------------------------
# 2. edge function, barycentric coordinates, z-buffer


def check_edge(edge: Callable) -> None:
    """``edge(a, b, p)`` -> twice the signed area of triangle (a, b, p), for points (..., 2)
    that broadcast, equal to the rasterizer's edge function to 1e-4 px²."""
    g = fresh_generator()
    a, b, p = (40 * torch.rand(100, 2, generator=g) - 4 for _ in range(3))
    what = "edge(a, b, p) for 100 triples of points (100, 2)"
    got = _tensor(call(edge, what, a, b, p), what, (100,))
    expected = _edge(a[:, 0], a[:, 1], b[:, 0], b[:, 1], p[:, 0], p[:, 1])
    if torch.allclose(got.detach(), -expected, atol=1e-4, rtol=1e-5):
        raise CheckFailed(f"{what}: every value has the wrong sign: it is the cross product "
                          "(b − a) × (p − a), in that order")
    compare(got, expected, what, atol=1e-4, rtol=1e-5)
    what = "edge(a, b, p) with one edge a, b (2,) and many points p (100, 2)"
    got = _tensor(call(edge, what, a[0], b[0], p), what, (100,))
    compare(got, _edge(a[0, 0], a[0, 1], b[0, 0], b[0, 1], p[:, 0], p[:, 1]), what, atol=1e-4,
            rtol=1e-5)
    passed("edge(a, b, p) equals the rasterizer's edge function on fresh random points")


def random_triangle(g: torch.Generator, size: int = 32, min_area: float = 40.0) -> Tensor:
    """(3, 2) pixel corners inside a ``size`` px square, of area at least ``min_area`` px²."""
    while True:
        tri = size * torch.rand(3, 2, generator=g)
        area = _edge(tri[0, 0], tri[0, 1], tri[1, 0], tri[1, 1], tri[2, 0], tri[2, 1])
        if abs(float(area)) >= 2 * min_area:
            return tri


def check_barycentric(barycentric: Callable) -> None:
    """``barycentric(triangle (3, 2) px, points (P, 2) px)`` -> (P, 3) weights that sum to one
    and give back each point (``weights @ triangle == points``), for points inside and outside,
    both orientations of the triangle, and equal to the package's rasterizer's barycentric
    coordinates at the pixel centres it covers."""
    g = fresh_generator()
    size = 32
    drawn = random_triangle(g, size)
    # the same triangle both ways round: its signed area changes sign
    for orientation in ("as drawn", "with two corners swapped"):
        tri = drawn if orientation == "as drawn" else drawn[[0, 2, 1]]
        points = (size + 8) * torch.rand(200, 2, generator=g) - 4
        what = f"barycentric(triangle, points) for a random triangle {orientation}"
        w = _tensor(call(barycentric, what, tri, points), what, (200, 3)).detach()
        compare(w.sum(-1), torch.ones(200), f"{what}: the three weights of each point sum to",
                atol=1e-4, rtol=0)
        compare(w.to(tri.dtype) @ tri, points,
                f"{what}: Σ weight_i · corner_i must give back the point (px)", atol=1e-3,
                rtol=0)
        # the package's rasterizer at the pixel centres it covers (constant depth: its
        # perspective-correct weights are then the screen-space ones)
        screen = torch.cat([tri, torch.ones(3, 1)], -1)[None]
        frags = rasterize(screen, torch.tensor([[0, 1, 2]]), (size, size), cull_backfaces=False)
        covered = frags.mask[0]
        ii, jj = torch.nonzero(covered, as_tuple=True)
        centres = torch.stack([jj, ii], -1).float() + 0.5
        got = _tensor(call(barycentric, what, tri, centres), what, (len(centres), 3))
        compare(got, frags.bary[0][covered],
                f"{what}: weights at the pixel centres the package's rasterizer covers",
                atol=1e-4, rtol=0)
    passed("barycentric(triangle, points) sums to one, gives back each point and equals the "
           "package's rasterizer's weights, on fresh random triangles (both orientations)")


def random_mesh(g: torch.Generator, num_faces: int = 8, size: int = 32) -> tuple[Tensor, Tensor]:
    """A small random scene: ``num_faces`` separate triangles, screen (3F, 3) with pixel x, y in
    [-4, size + 4] and depth z in [2, 10] mm, and triangles (F, 3) int64, some overlapping."""
    screen = torch.empty(3 * num_faces, 3)
    for f in range(num_faces):
        screen[3 * f:3 * f + 3, :2] = random_triangle(g, size + 8, min_area=30) - 4
    screen[:, 2] = 2 + 8 * torch.rand(3 * num_faces, generator=g)
    return screen, torch.arange(3 * num_faces).view(num_faces, 3)


def _linear_depth(screen: Tensor, triangles: Tensor, face: Tensor) -> Tensor:
    """(H, W) depth interpolated linearly in screen space, on the triangle ``face`` names."""
    height, width = face.shape
    out = torch.full((height, width), float("nan"))
    for i, j in torch.nonzero(face >= 0).tolist():
        x, y, z = screen[triangles[face[i, j]]].unbind(-1)
        px, py = j + 0.5, i + 0.5
        area = _edge(x[0], y[0], x[1], y[1], x[2], y[2])
        w0 = _edge(x[1], y[1], x[2], y[2], torch.tensor(px), torch.tensor(py)) / area
        w1 = _edge(x[2], y[2], x[0], y[0], torch.tensor(px), torch.tensor(py)) / area
        out[i, j] = w0 * z[0] + w1 * z[1] + (1 - w0 - w1) * z[2]
    return out


def check_zbuffer(zbuffer: Callable, size: int = 32, num_faces: int = 8) -> None:
    """``zbuffer(screen (V, 3), triangles (F, 3), (H, W))`` -> (face_index (H, W) int64, -1 for
    background; depth (H, W) mm, inf for background), against the package's
    :func:`~e2far_lite.render.rasterize` (no back-face culling) on two fresh random meshes:
    at least 99 % of the pixels must see the same triangle, and on those the depth must agree
    within 1e-4 mm + 1e-5 · depth."""
    g = fresh_generator()
    shares = []
    for trial in (1, 2):
        screen, triangles = random_mesh(g, num_faces, size)
        what = f"zbuffer(screen, triangles, ({size}, {size})) on random mesh {trial}"
        result = call(zbuffer, what, screen, triangles, (size, size))
        not_written(result, what)
        if not (isinstance(result, tuple) and len(result) == 2):
            raise CheckFailed(f"{what}: expected a tuple (face_index, depth), got "
                              f"{type(result).__name__}")
        face = _tensor(result[0], f"{what}: face_index", (size, size)).detach()
        depth = _tensor(result[1], f"{what}: depth", (size, size)).detach().float()
        if face.is_floating_point() or face.dtype == torch.bool:
            raise CheckFailed(f"{what}: face_index: expected an integer dtype, got {face.dtype}")
        ref = rasterize(screen[None], triangles, (size, size), cull_backfaces=False)
        ref_face, ref_depth = ref.face_index[0], ref.depth[0]
        same = face.long() == ref_face
        background = same & (ref_face < 0)
        if bool((depth[background] != float("inf")).any()):
            i, j = (int(k) for k in torch.nonzero(background & (depth != float("inf")))[0])
            raise CheckFailed(f"{what}: depth: background pixels must keep depth inf; pixel "
                              f"(row {i}, column {j}) has {float(depth[i, j]):.4g}")
        seen = same & (ref_face >= 0)
        bad = seen & ~((depth - ref_depth).abs() <= DEPTH_ATOL + DEPTH_RTOL * ref_depth.abs())
        if bool(bad.any()):
            i, j = (int(k) for k in torch.nonzero(bad)[0])
            message = (f"{what}: depth differs on {int(bad.sum())} of {int(seen.sum())} covered "
                       f"pixels; the first is pixel (row {i}, column {j}) on triangle "
                       f"{int(ref_face[i, j])}: got {float(depth[i, j]):.6g} mm, expected "
                       f"{float(ref_depth[i, j]):.6g} mm")
            linear = _linear_depth(screen, triangles, ref_face)
            if abs(float(depth[i, j]) - float(linear[i, j])) <= 1e-4 * abs(float(linear[i, j])):
                message += (" (yours is the screen-space average Σ w_i z_i: under a pinhole "
                            "camera it is 1/z, not z, that varies linearly across the screen)")
            raise CheckFailed(message)
        share = float(same.float().mean())
        if share < PIXEL_SHARE:
            i, j = (int(k) for k in torch.nonzero(~same)[0])
            mine, theirs = int(face[i, j]), int(ref_face[i, j])
            if theirs < 0:
                why = "no triangle covers that pixel centre"
            elif mine < 0:
                why = f"its centre lies inside triangle {theirs}"
            else:
                why = (f"triangle {theirs} covers it at depth {float(ref_depth[i, j]):.4g} mm, "
                       f"nearer than what your triangle {mine} gives there")
            raise CheckFailed(
                f"{what}: {int((~same).sum())} of {size * size} pixels see another triangle "
                f"than the package's rasterizer ({100 * share:.1f} %, at least "
                f"{100 * PIXEL_SHARE:g} % needed); the first is pixel (row {i}, column {j}): "
                f"yours says {mine}, expected {theirs} ({why})")
        shares.append(share)
    passed(f"zbuffer sees the same triangle as the package's rasterizer on "
           f"{100 * min(shares):.1f} % of the pixels (the worse mesh; at least "
           f"{100 * PIXEL_SHARE:g} % needed) of two fresh random {num_faces}-triangle meshes "
           f"at {size}x{size} px, with depth within {_sci(DEPTH_ATOL)} mm + "
           f"{_sci(DEPTH_RTOL)}·depth")


# ---------------------------------------------------------------------------------------------
# 3. Lambert shading


def matte_lights(g: torch.Generator, batch: int) -> Lights:
    """Random :class:`Lights` with the specular highlight switched off."""
    lights = Lights.random(batch, g)
    lights.specular = torch.zeros(batch)
    return lights


def check_lambert(lambert: Callable) -> None:
    """``lambert(normals (B, H, W, 3), albedo (B, H, W, 3), lights)`` -> (B, H, W, 3) RGB must
    equal the package's :func:`~e2far_lite.render.shade` with the specular strength set to
    zero, to 1e-5, on fresh random normals (of any length), albedos and lights."""
    g = fresh_generator()
    batch, height, width = 3, 8, 10
    lights = matte_lights(g, batch)
    albedo = torch.rand(batch, height, width, 3, generator=g)
    positions = torch.randn(batch, height, width, 3, generator=g) * 50
    positions[..., 2] += 500
    unit = torch.nn.functional.normalize(torch.randn(batch, height, width, 3, generator=g), dim=-1)
    toward = lights.direction[:, None, None, :]
    facing = torch.nn.functional.normalize(unit + 1.5 * toward, dim=-1)  # n·l > 0 everywhere
    length = 0.2 + 3 * torch.rand(batch, height, width, 1, generator=g)
    cases = [(facing, "unit normals facing the light"),
             (unit, "unit normals, some facing away from the light (n·l < 0)"),
             (unit * length, "normals of random length (only their direction counts)")]
    for normals, case in cases:
        what = f"lambert(normals, albedo, lights) for {case}"
        got = call(lambert, what, normals, albedo, lights)
        compare(got, shade(normals, albedo, positions, lights), what, atol=1e-5, rtol=1e-5)
    passed("lambert(normals, albedo, lights) equals the package's shade with no specular "
           "highlight, on fresh random normals (of any length), albedos and lights, to 1e-5")


# ---------------------------------------------------------------------------------------------
# 4. the colour jitter of the data augmentation

#: one 8-bit step, the quantum of an augmented image
STEP = 1 / 255


def random_images(g: torch.Generator, batch: int, height: int, width: int) -> Tensor:
    """(B, 3, H, W) float64 images in [0, 1]: each image has its own brightness and tint, so that
    image means and channel means differ, and its pixels vary around them."""
    base = 0.15 + 0.7 * torch.rand(batch, 1, 1, 1, generator=g, dtype=torch.float64)
    tint = 0.3 * torch.rand(batch, 3, 1, 1, generator=g, dtype=torch.float64) - 0.15
    pixels = 0.4 * torch.rand(batch, 3, height, width, generator=g, dtype=torch.float64) - 0.2
    return (base + tint + pixels).clamp(0, 1)


def _jitter(images: Tensor, brightness: Tensor, contrast: Tensor, saturation: Tensor, *,
            luma: bool = False, mean_dims: tuple[int, ...] = (1, 2, 3), swap: bool = False,
            quantise_each: bool = False) -> Tensor:
    """The colour jitter with one of the slips a check looks for (all off: the package's):
    ``luma`` greys with the TV weights, ``mean_dims`` averages the contrast's mean over other
    dims, ``swap`` exchanges the two centres, ``quantise_each`` clamps and rounds every step."""
    def per_image(factor: Tensor) -> Tensor:
        return factor.to(images)[:, None, None, None]

    def step(x: Tensor) -> Tensor:
        return (x.clamp(0, 1) * 255).round() / 255 if quantise_each else x

    weights = torch.tensor([0.299, 0.587, 0.114], dtype=images.dtype)[:, None, None]
    grey = (images * weights).sum(1, keepdim=True) if luma else images.mean(1, keepdim=True)
    centre = images.mean(mean_dims, keepdim=True)
    out = step((centre if swap else grey) + (images - (centre if swap else grey))
               * per_image(saturation))
    mean = out.mean(1, keepdim=True) if swap else out.mean(mean_dims, keepdim=True)
    out = step((out - mean) * per_image(contrast) + mean)
    return ((out * per_image(brightness)).clamp(0, 1) * 255).round() / 255


#: slips a wrong colour jitter often makes, each with what the message says about it
_JITTER_SLIPS = (
    (dict(mean_dims=(0, 1, 2, 3)), "your result is the contrast about the mean of the whole "
     "batch; the package takes each image's own mean"),
    (dict(mean_dims=(2, 3)), "your result is the contrast about each channel's mean; the "
     "package takes each image's mean over all three channels and all pixels"),
    (dict(luma=True), "your grey weighs the channels (0.299, 0.587, 0.114); the package's grey "
     "is the plain mean of the three channels"),
    (dict(swap=True), "your result has the two centres swapped: saturation moves each pixel "
     "about its own grey, contrast about the image's mean"),
    (dict(quantise_each=True), "your result clamps and rounds after every step; the package "
     "does it once, at the end (a value may leave [0, 1] on the way)"),
)


def _matches(got: Tensor, expected: Tensor) -> bool:
    """Equal, but for rare one-step flips where rounding in another order crossed a half step."""
    diff = (got.detach().cpu().double() - expected).abs()
    wrong = diff > 1e-6
    return bool(diff.max() <= STEP + 1e-6) and int(wrong.sum()) <= max(1, wrong.numel() // 500)


def check_colour_jitter(colour_jitter: Callable) -> None:
    """``colour_jitter(images (B, 3, H, W) in [0, 1], brightness, contrast, saturation (B,))``
    -> (B, 3, H, W) must equal :func:`e2far_lite.synth.augment.apply` with blur and noise off
    (saturation about each pixel's grey, contrast about each image's mean, brightness, then
    clamp and round to 8-bit steps), on fresh random images: each factor alone, then all three.
    A few pixels may differ by one 8-bit step (rounding in another order)."""
    refuse_reference(colour_jitter, ("apply", "params_from_draws"),
                     "colour_jitter(images, brightness, contrast, saturation)")
    g = fresh_generator()
    batch = int(torch.randint(2, 5, (), generator=g))
    height, width = (int(v) for v in torch.randint(5, 10, (2,), generator=g))
    width = width + 1 if width == height else width  # H, W, B and 3 all differ: no lucky
    # broadcasting

    def factors(low: float, high: float) -> Tensor:
        return low + (high - low) * torch.rand(batch, generator=g, dtype=torch.float64)

    one = torch.ones(batch, dtype=torch.float64)
    stages = (("all factors 1", one, one, one),
              ("only saturation varied (brightness = contrast = 1)", one, one, factors(0, 2)),
              ("only contrast varied", one, factors(0.3, 1.7), one),
              ("only brightness varied", factors(0.5, 1.5), one, one),
              ("all three varied", factors(0.5, 1.5), factors(0.3, 1.7), factors(0, 2)))
    for label, brightness, contrast, saturation in stages:
        images = random_images(g, batch, height, width)
        params = torch.stack([brightness, contrast, saturation, 0 * one, 0 * one], 1)
        expected = augment(images, params, torch.zeros_like(images))  # blur and noise off
        what = (f"colour_jitter(images of shape {tuple(images.shape)}, brightness, contrast, "
                f"saturation) with {label}")
        got = _tensor(call(colour_jitter, what, images.clone(), brightness.clone(),
                           contrast.clone(), saturation.clone()), what, tuple(images.shape))
        values = got.detach().cpu().double()
        if bool(torch.isnan(values).any()):
            raise CheckFailed(f"{what}: NaN in the result")
        if bool((values < -1e-6).any() or (values > 1 + 1e-6).any()):
            raise CheckFailed(f"{what}: values from {float(values.min()):.4g} to "
                              f"{float(values.max()):.4g}: an image must stay in [0, 1] (clamp "
                              "it once the three factors are applied)")
        off_step = (values * 255 - (values * 255).round()).abs()
        if bool((off_step > 1e-3).any()):
            first = tuple(int(i) for i in torch.nonzero(off_step > 1e-3)[0])
            raise CheckFailed(f"{what}: the value at index {first} is {float(values[first]):.6g}"
                              ", not a multiple of 1/255: round each value to the nearest 8-bit "
                              "step, as a saved photo would be")
        if _matches(values, expected):
            continue
        for slip, message in _JITTER_SLIPS:
            if _matches(values, _jitter(images, brightness, contrast, saturation, **slip)):
                raise CheckFailed(f"{what}: {message}")
        compare(values, expected, what, atol=1e-6, rtol=0)
    passed("colour_jitter equals the package's augmentation with blur and noise off (each factor "
           "alone, then all three), on fresh random images, to one 8-bit step on a few pixels")


__all__ = ["check_barycentric", "check_colour_jitter", "check_edge", "check_lambert",
           "check_project", "check_zbuffer", "random_images", "random_mesh"]
