import math

import pytest
import torch

from e2far_lite.render.camera import perspective_project, rotation_matrix, to_camera
from e2far_lite.render.rasterizer import rasterize
from e2far_lite.render.renderer import Renderer, project_landmarks
from e2far_lite.render.shading import skin_albedo


def dense_depth(screen, triangles, size):
    """Reference z-buffer: every pixel against every triangle (pixels x triangles)."""
    h, w = size
    ys, xs = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    p = torch.stack([xs.flatten(), ys.flatten()], 1).double()  # (P, 2)
    t = screen[triangles].double()  # (F, 3, 3)
    (x0, y0, z0), (x1, y1, z1), (x2, y2, z2) = (t[:, i].unbind(-1) for i in range(3))
    area = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)
    front = area < 0
    px, py = p[:, :1], p[:, 1:]
    w0 = ((x2 - x1) * (py - y1) - (y2 - y1) * (px - x1)) / area
    w1 = ((x0 - x2) * (py - y2) - (y0 - y2) * (px - x2)) / area
    w2 = 1 - w0 - w1
    inside = (w0 >= 0) & (w1 >= 0) & (w2 >= 0) & front
    z = 1 / (w0 / z0 + w1 / z1 + w2 / z2)
    z = torch.where(inside, z, torch.full_like(z, float("inf")))
    return z.amin(1).view(h, w)


def place(model, yaw, size=32, distance=600.0):
    v = model.mean[None]
    pts = to_camera(v, torch.tensor([[yaw, 0.0, 0.0]]), torch.tensor([[0.0, 0.0, distance]]))
    focal = torch.tensor([size * distance / 230.0])
    centre = torch.tensor([[size / 2, size / 2]])
    return pts, focal, centre


@pytest.mark.parametrize("yaw_deg", [-70, 0, 70])
def test_self_occlusion_matches_dense_reference(default_model, yaw_deg):
    pts, focal, centre = place(default_model, math.radians(yaw_deg))
    screen = torch.cat([perspective_project(pts, focal, centre), pts[..., 2:]], -1)
    frags = rasterize(screen, default_model.triangles, (32, 32))
    ref = dense_depth(screen[0], default_model.triangles, (32, 32))
    assert torch.equal(frags.mask[0], torch.isfinite(ref))
    covered = torch.isfinite(ref)
    assert covered.sum() > 200
    assert torch.allclose(frags.depth[0][covered].double(), ref[covered], rtol=1e-5)


def test_landmark_visibility_follows_the_turn(default_model):
    m = default_model
    # iBUG 0-4 lie on the subject's right (x < 0), 12-16 on the left (x > 0)
    jaw_right, jaw_left = m.landmarks[0:5], m.landmarks[12:17]
    renderer = Renderer(128)
    seen = {}
    for yaw in (-1.2, 0.0, 1.2):
        pts, focal, centre = place(m, yaw, size=128)
        out = renderer.render(pts, m.triangles, focal, centre, skin_albedo(m.mean, 1))
        _, visible = project_landmarks(pts[:, m.landmarks], focal, centre, out.depth)
        seen[yaw] = visible[0]
    assert seen[0.0].float().mean() > 0.9
    # turning the head hides the far side of the jaw, and the near side stays visible
    # positive yaw turns the nose toward +x, so the subject's left side turns away
    for yaw, far, near in ((1.2, jaw_left, jaw_right), (-1.2, jaw_right, jaw_left)):
        lm_index = {int(v): i for i, v in enumerate(m.landmarks)}
        far_vis = seen[yaw][[lm_index[int(v)] for v in far]]
        near_vis = seen[yaw][[lm_index[int(v)] for v in near]]
        assert far_vis.float().mean() < 0.5 and near_vis.float().mean() > 0.5, yaw


def test_landmarks_project_onto_their_vertices(default_model):
    m = default_model
    pts, focal, centre = place(m, 0.3, size=128)
    out = Renderer(128).render(pts, m.triangles, focal, centre, skin_albedo(m.mean, 1))
    pixels, visible = project_landmarks(pts[:, m.landmarks], focal, centre, out.depth)
    assert torch.allclose(pixels, perspective_project(pts[:, m.landmarks], focal, centre))
    col, row = pixels[0, visible[0]].long().unbind(-1)
    # visible landmarks sit on the face (a few lie on the rim of the eye and mouth openings)
    assert float(out.mask[0, 0, row, col].mean()) > 0.85
    assert out.image.shape == (1, 3, 128, 128)
    assert float(out.image.min()) >= 0 and float(out.image.max()) <= 1


def test_rotation_is_orthonormal_and_turns_the_nose_right():
    angles = torch.tensor([[0.3, -0.2, 0.1], [1.2, 0.5, -0.4]])
    r = rotation_matrix(angles)
    assert torch.allclose(r @ r.transpose(1, 2), torch.eye(3).expand(2, 3, 3), atol=1e-6)
    nose = torch.tensor([[[0.0, 0.0, 1.0]]])
    turned = to_camera(nose, torch.tensor([[0.5, 0.0, 0.0]]), torch.zeros(1, 3))
    assert float(turned[0, 0, 0]) > 0  # positive yaw: nose toward image right


def test_bad_render_input(small_model):
    with pytest.raises(ValueError, match="image_size: expected a positive integer, got 0"):
        Renderer(0)
    renderer = Renderer(16)
    pts = small_model.mean[None] + torch.tensor([0, 0, 500.0])
    with pytest.raises(ValueError, match=r"albedo: expected shape \(1, 320, 3\)"):
        renderer.render(pts, small_model.triangles, torch.tensor([50.0]),
                        torch.tensor([[8.0, 8.0]]), torch.ones(1, 5, 3))
    with pytest.raises(ValueError, match="points: expected a floating-point dtype"):
        renderer.render(pts.long(), small_model.triangles, torch.tensor([50.0]),
                        torch.tensor([[8.0, 8.0]]), torch.ones(1, 320, 3))
