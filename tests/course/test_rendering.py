"""The checks of notebook 02: the package's own pieces pass; unwritten or wrong ones fail with a
CheckFailed that says what differs."""

from __future__ import annotations

import pytest
import torch

from e2far_lite.course.checks import CheckFailed
from e2far_lite.course.rendering import (
    check_barycentric,
    check_colour_jitter,
    check_edge,
    check_lambert,
    check_project,
    check_zbuffer,
)
from e2far_lite.render import perspective_project, rasterize, shade
from e2far_lite.synth.augment import apply

# the reference under a name of the test's own: the check refuses a function that calls it
_APPLY = apply


def edge(a, b, p):
    return (b[..., 0] - a[..., 0]) * (p[..., 1] - a[..., 1]) \
        - (b[..., 1] - a[..., 1]) * (p[..., 0] - a[..., 0])


def barycentric(triangle, points):
    a, b, c = triangle
    area = edge(a, b, c)
    w_a, w_b = edge(b, c, points) / area, edge(c, a, points) / area
    return torch.stack([w_a, w_b, 1 - w_a - w_b], -1)


def zbuffer(screen, triangles, size, perspective=True, bary=barycentric):
    """The notebook's solution: a loop over triangles, every pixel centre tested."""
    height, width = size
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    centres = torch.stack([xs, ys], -1).reshape(-1, 2).to(screen.dtype) + 0.5
    face_index = torch.full((height * width,), -1, dtype=torch.long)
    depth = torch.full((height * width,), float("inf"), dtype=screen.dtype)
    for f, corners in enumerate(triangles):
        tri = screen[corners]
        w = bary(tri[:, :2], centres)
        inside = (w >= 0).all(-1)
        z = 1 / (w / tri[:, 2]).sum(-1) if perspective else (w * tri[:, 2]).sum(-1)
        nearer = inside & (z < depth)
        face_index[nearer] = f
        depth[nearer] = z[nearer]
    return face_index.view(height, width), depth.view(height, width)


def lambert(normals, albedo, lights, normalize=True, clamp=True):
    n = torch.nn.functional.normalize(normals, dim=-1) if normalize else normals
    cosine = (n * lights.direction[:, None, None, :]).sum(-1, keepdim=True)
    if clamp:
        cosine = cosine.clamp(min=0)
    return albedo * (lights.ambient[:, None, None, :] + lights.diffuse[:, None, None, :] * cosine)


def test_the_package_and_the_notebook_solutions_pass(capsys):
    check_project(perspective_project)
    check_edge(edge)
    check_barycentric(barycentric)
    check_zbuffer(zbuffer)
    check_zbuffer(lambda s, t, size: (lambda fr: (fr.face_index[0], fr.depth[0]))(
        rasterize(s[None], t, size, cull_backfaces=False)))
    check_lambert(lambert)
    check_lambert(lambda n, a, lights: shade(n, a, torch.zeros_like(n), lights))
    out = capsys.readouterr().out
    assert out.count("✓") == 7 and "99 %" in out and "1e-4 mm" in out


@pytest.mark.parametrize("check", [check_project, check_edge, check_barycentric, check_zbuffer,
                                   check_lambert, check_colour_jitter])
def test_an_unwritten_piece_is_reported_as_not_written(check):
    def stub(*args):
        ...
    with pytest.raises(CheckFailed, match="not written yet"):
        check(stub)


def test_projection_without_the_divide_by_depth_fails():
    with pytest.raises(CheckFailed, match="twice as far along the same ray"):
        check_project(lambda p, f, c: p[..., :2] * f[:, None, None] + c[:, None, :])
    with pytest.raises(CheckFailed, match="elements differ"):  # centre forgotten
        check_project(lambda p, f, c: p[..., :2] / p[..., 2:] * f[:, None, None])


def test_wrong_edge_functions_fail():
    with pytest.raises(CheckFailed, match="wrong sign"):
        check_edge(lambda a, b, p: -edge(a, b, p))
    with pytest.raises(CheckFailed, match="elements differ"):
        check_edge(lambda a, b, p: edge(a, b, p) / 2)


def test_swapped_barycentrics_fail():
    with pytest.raises(CheckFailed, match="must give back the point"):
        check_barycentric(lambda t, p: barycentric(t, p)[:, [1, 0, 2]])
    with pytest.raises(CheckFailed, match="sum to"):
        check_barycentric(lambda t, p: barycentric(t, p) * 2)


def test_wrong_zbuffers_fail_naming_the_pixel():
    with pytest.raises(CheckFailed, match="screen-space average"):  # no divide by z
        check_zbuffer(lambda s, t, size: zbuffer(s, t, size, perspective=False))
    with pytest.raises(CheckFailed, match=r"pixel \(row \d+, column \d+\)"):  # swapped weights
        check_zbuffer(lambda s, t, size: zbuffer(
            s, t, size, bary=lambda tri, p: barycentric(tri, p)[:, [1, 0, 2]]))

    def farthest(screen, triangles, size):  # keeps the farthest triangle, not the nearest
        face, depth = zbuffer(-screen * torch.tensor([-1.0, -1.0, 1.0]), triangles, size)
        return face, torch.where(face >= 0, -depth, depth)
    with pytest.raises(CheckFailed, match="nearer than"):
        check_zbuffer(farthest)
    with pytest.raises(CheckFailed, match="expected a tuple"):
        check_zbuffer(lambda s, t, size: zbuffer(s, t, size)[0])


def test_wrong_shading_fails():
    with pytest.raises(CheckFailed, match="facing away"):
        check_lambert(lambda n, a, lights: lambert(n, a, lights, clamp=False))
    with pytest.raises(CheckFailed, match="random length"):
        check_lambert(lambda n, a, lights: lambert(n, a, lights, normalize=False))


def colour_jitter(images, brightness, contrast, saturation, image_mean=(1, 2, 3), round=True,
                  clamp=True):
    """The notebook's solution; the keywords make the slips the check names."""
    def per_image(factor):
        return factor[:, None, None, None]

    grey = images.mean(1, keepdim=True)
    out = grey + (images - grey) * per_image(saturation)
    mean = out.mean(image_mean, keepdim=True)
    out = ((out - mean) * per_image(contrast) + mean) * per_image(brightness)
    out = out.clamp(0, 1) if clamp else out
    return torch.round(out * 255) / 255 if round else out


def test_colour_jitter_passes_the_solution_in_any_order_and_precision(capsys):
    check_colour_jitter(colour_jitter)
    check_colour_jitter(lambda images, b, c, s: _APPLY(
        images, torch.stack([b, c, s, 0 * b, 0 * b], 1), torch.zeros_like(images)))

    def brightness_first_in_float32(images, brightness, contrast, saturation):
        # the three steps commute; only the clamp and the rounding must come last
        images, brightness = images.float(), brightness.float()
        return colour_jitter(images * brightness[:, None, None, None], torch.ones_like(
            brightness), contrast.float(), saturation.float())

    check_colour_jitter(brightness_first_in_float32)
    assert capsys.readouterr().out.count("✓") == 3


def test_wrong_colour_jitters_are_refused_saying_why():
    with pytest.raises(CheckFailed, match="all factors 1: .* not a multiple of 1/255"):
        check_colour_jitter(lambda *args: colour_jitter(*args, round=False))
    with pytest.raises(CheckFailed, match=r"must stay in \[0, 1\]"):
        check_colour_jitter(lambda *args: colour_jitter(*args, clamp=False))
    with pytest.raises(CheckFailed, match="only contrast varied: .* mean of the whole batch"):
        check_colour_jitter(lambda *args: colour_jitter(*args, image_mean=(0, 1, 2, 3)))
    with pytest.raises(CheckFailed, match="each channel's mean"):
        check_colour_jitter(lambda *args: colour_jitter(*args, image_mean=(2, 3)))
    with pytest.raises(CheckFailed, match=r"only brightness varied: .* elements differ"):
        check_colour_jitter(lambda images, b, c, s: colour_jitter(images, torch.ones_like(b), c,
                                                                  s))  # brightness forgotten
