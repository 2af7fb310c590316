"""The scatter z-buffer against a slow, obvious per-pixel reference."""

import pytest
import torch

from e2far_lite.render.rasterizer import interpolate, rasterize


def reference_rasterize(screen, triangles, size):
    """A Python loop over pixels and triangles: the definition of a z-buffer."""
    h, w = size
    depth = torch.full((h, w), float("inf"), dtype=torch.float64)
    face = torch.full((h, w), -1, dtype=torch.long)
    for f, (a, b, c) in enumerate(triangles.tolist()):
        (x0, y0, z0), (x1, y1, z1), (x2, y2, z2) = screen[a], screen[b], screen[c]
        area = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)
        if area >= 0:  # back face (counter-clockwise on a y-down screen) or degenerate
            continue
        for i in range(h):
            for j in range(w):
                px, py = j + 0.5, i + 0.5
                w0 = ((x2 - x1) * (py - y1) - (y2 - y1) * (px - x1)) / area
                w1 = ((x0 - x2) * (py - y2) - (y0 - y2) * (px - x2)) / area
                w2 = 1 - w0 - w1
                if min(w0, w1, w2) < 0:
                    continue
                z = 1 / (w0 / z0 + w1 / z1 + w2 / z2)
                if z < depth[i, j]:
                    depth[i, j], face[i, j] = z, f
    return face, depth


def test_single_triangle_fills_expected_pixels():
    # clockwise on screen = front facing; right triangle covering the lower-left half
    screen = torch.tensor([[[0.0, 0.0, 10.0], [8.0, 8.0, 10.0], [0.0, 8.0, 10.0]]])
    frags = rasterize(screen, torch.tensor([[0, 2, 1]]), (8, 8))
    assert frags.face_index.shape == (1, 8, 8)
    expected = torch.tensor([[j + 0.5 <= i + 0.5 for j in range(8)] for i in range(8)])
    assert torch.equal(frags.mask[0], expected)
    assert torch.allclose(frags.depth[0][expected], torch.tensor(10.0))
    assert torch.allclose(frags.bary.sum(-1)[0][expected], torch.tensor(1.0))


def test_back_faces_are_culled():
    screen = torch.tensor([[[0.0, 0.0, 10.0], [8.0, 8.0, 10.0], [0.0, 8.0, 10.0]]])
    frags = rasterize(screen, torch.tensor([[0, 1, 2]]), (8, 8))  # counter-clockwise
    assert not frags.mask.any()
    frags = rasterize(screen, torch.tensor([[0, 1, 2]]), (8, 8), cull_backfaces=False)
    assert frags.mask.any()


def test_depth_test_keeps_nearer_surface():
    near = [[1.0, 1.0, 5.0], [7.0, 7.0, 5.0], [1.0, 7.0, 5.0]]
    far = [[0.0, 0.0, 9.0], [8.0, 8.0, 9.0], [0.0, 8.0, 9.0]]
    screen = torch.tensor([far + near])
    tris = torch.tensor([[0, 2, 1], [3, 5, 4]])
    for order in (tris, tris.flip(0)):  # drawing order must not matter
        frags = rasterize(screen, order, (8, 8))
        near_id = int((order == 3).any(1).nonzero())
        covered_by_near = frags.face_index[0] == near_id
        assert covered_by_near.sum() > 0
        assert torch.allclose(frags.depth[0][covered_by_near], torch.tensor(5.0))


def test_matches_reference_on_random_meshes():
    g = torch.Generator().manual_seed(0)
    size = (12, 10)
    screen = torch.cat([torch.rand(1, 15, 2, generator=g) * torch.tensor([10.0, 12.0]),
                        2 + 8 * torch.rand(1, 15, 1, generator=g)], -1).double()
    triangles = torch.randint(0, 15, (20, 3), generator=g)
    distinct = ((triangles[:, 0] != triangles[:, 1]) & (triangles[:, 1] != triangles[:, 2])
                & (triangles[:, 0] != triangles[:, 2]))
    triangles = triangles[distinct]
    frags = rasterize(screen, triangles, size)
    face, depth = reference_rasterize(screen[0], triangles, size)
    assert torch.equal(frags.mask[0], face >= 0)
    assert torch.allclose(frags.depth[0][face >= 0], depth[face >= 0])
    # where depths are unique, the same triangle wins
    assert (frags.face_index[0] == face).float().mean() > 0.97


def test_interpolate_reproduces_vertex_attribute():
    screen = torch.tensor([[[0.0, 0.0, 4.0], [16.0, 16.0, 8.0], [0.0, 16.0, 6.0]]])
    tris = torch.tensor([[0, 2, 1]])
    frags = rasterize(screen, tris, (16, 16))
    # interpolating camera z must give the z-buffer's depth (perspective-correct)
    z = interpolate(frags, screen[..., 2:], tris)[..., 0]
    assert torch.allclose(z[frags.mask], frags.depth[frags.mask], rtol=1e-5)


@pytest.mark.parametrize("batch", [1, 3])
def test_batch_items_are_independent(batch):
    g = torch.Generator().manual_seed(1)
    screen = torch.cat([torch.rand(batch, 9, 2, generator=g) * 16,
                        1 + torch.rand(batch, 9, 1, generator=g)], -1)
    tris = torch.tensor([[0, 1, 2], [3, 4, 5], [6, 7, 8], [2, 1, 0], [5, 4, 3], [8, 7, 6]])
    frags = rasterize(screen, tris, (16, 16))
    for b in range(batch):
        single = rasterize(screen[b:b + 1], tris, (16, 16))
        assert torch.equal(single.face_index[0], frags.face_index[b])
