"""The compiled CPU kernels against the tensor reference (renderer.py, augment.py)."""

import math

import pytest
import torch

from e2far_lite.render import numba_kernels
from e2far_lite.render.camera import to_camera
from e2far_lite.render.renderer import Renderer
from e2far_lite.render.shading import Lights, skin_albedo
from e2far_lite.synth import augment
from e2far_lite.synth.faces import DataConfig, SyntheticFaces, _noise_bank, _sensor_noise

pytestmark = pytest.mark.skipif(not numba_kernels.available(), reason="numba is not installed")


def posed_faces(model, angles_deg, size=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    batch = len(angles_deg)
    verts = model(torch.randn(batch, model.num_id, generator=g),
                  torch.randn(batch, model.num_exp, generator=g))
    angles = torch.tensor(angles_deg, dtype=torch.float32) * math.pi / 180
    points = to_camera(verts, angles, torch.tensor([[0.0, 0.0, 900.0]]).expand(batch, 3))
    focal = torch.full((batch,), size * 900 / 230.0)
    centre = torch.full((batch, 2), size / 2) + torch.randn(batch, 2, generator=g)
    return points, focal, centre, skin_albedo(model.mean, batch, g), Lights.random(batch, g)


# frontal, turned to the self-occluding extremes (the nose hides a cheek), nodding, tilted
POSES = [[0, 0, 0], [75, 0, 0], [-75, 10, 0], [30, -30, 0], [-40, 25, 20], [60, 20, -20]]


def test_kernel_matches_the_tensor_renderer(default_model):
    points, focal, centre, albedo, lights = posed_faces(default_model, POSES)
    args = (points, default_model.triangles, focal, centre, albedo, lights)
    ref = Renderer(96, backend="torch").render(*args)
    fast = Renderer(96, backend="numba").render(*args)
    covered = ref.fragments.mask
    assert int(covered.sum()) > 6 * 2000
    # the same pixels are covered, by the same triangles, at the same depth
    assert float((fast.fragments.mask != covered).float().mean()) < 1e-4
    same = (fast.fragments.face_index == ref.fragments.face_index).float().mean()
    assert float(same) > 0.999
    both = covered & fast.fragments.mask
    torch.testing.assert_close(fast.depth[both], ref.depth[both], rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(fast.mask, ref.mask.to(fast.mask.dtype))
    # and the same colours, to float rounding (a pixel on a shared edge may change triangle)
    diff = (fast.image - ref.image).abs()
    assert float(diff.mean()) < 1e-5 and float(diff.max()) < 0.05


def test_kernel_takes_model_frame_vertices(default_model):
    m = default_model
    g = torch.Generator().manual_seed(1)
    verts = m(torch.randn(2, m.num_id, generator=g), torch.zeros(2, m.num_exp))
    angles = torch.tensor([[0.5, -0.2, 0.1], [-1.0, 0.3, -0.2]])
    translation = torch.tensor([[5.0, -3.0, 800.0], [0.0, 0.0, 1200.0]])
    focal, centre = torch.tensor([300.0, 400.0]), torch.tensor([[32.0, 30.0], [31.0, 33.0]])
    albedo, lights = skin_albedo(m.mean, 2, g), Lights.random(2, g)
    from e2far_lite.render.camera import camera_rotation

    renderer = Renderer(64, backend="numba")
    posed = renderer.render_posed(verts, camera_rotation(angles), translation, focal, centre,
                                  m.triangles, albedo, lights)
    ref = renderer.render(to_camera(verts, angles, translation), m.triangles, focal, centre,
                          albedo, lights)
    assert float((posed.image - ref.image).abs().max()) < 0.05
    assert float((posed.mask != ref.mask).float().mean()) < 1e-3


def test_finish_kernel_matches_augment(default_model):
    g = torch.Generator().manual_seed(2)
    batch, size = 6, 64
    image = torch.rand(batch, 3, size, size, generator=g)
    mask = (torch.rand(batch, 1, size, size, generator=g) > 0.4).float()
    background = torch.rand(batch, 3, size, size, generator=g)
    params = augment.params_from_draws(torch.rand(batch, augment.UNIFORMS, generator=g))
    params[0, 3] = 0.0  # one item without blur
    offsets = torch.randint(0, size + 1, (batch, 2), generator=g)
    bank = _noise_bank(size)
    ref = augment.apply(image * mask + background * (1 - mask), params,
                        _sensor_noise(bank, offsets))
    fast = numba_kernels.finish_numba(image, mask, background, params, bank, offsets)
    diff = (fast - ref).abs()
    assert float(diff.max()) <= 1 / 255 + 1e-6  # a value on a rounding boundary may flip
    assert float((diff > 0).float().mean()) < 1e-3
    black = numba_kernels.finish_numba(image, mask, None, params, bank, offsets)
    ref_black = augment.apply(image * mask, params, _sensor_noise(bank, offsets))
    assert float((black - ref_black).abs().max()) <= 1 / 255 + 1e-6


def test_synthetic_faces_same_with_either_backend(default_model):
    config = DataConfig(image_size=64)
    fast = SyntheticFaces(default_model, 50, seed=4, config=config, backend="numba")
    ref = SyntheticFaces(default_model, 50, seed=4, config=config, backend="torch")
    a, b = fast.batch(range(6)), ref.batch(range(6))
    for key in a:  # labels: the same numbers (the kernel only makes pixels)
        if key in ("image", "visible"):
            continue
        torch.testing.assert_close(a[key], b[key], equal_nan=True, msg=key)
    assert float((a["visible"] != b["visible"]).float().mean()) < 0.01
    diff = (a["image"] - b["image"]).abs()
    assert float(diff.mean()) < 2e-4 and float((diff > 1.5 / 255).float().mean()) < 1e-3


def test_same_seed_same_batch_run_to_run(default_model):
    config = DataConfig(image_size=64)
    a = SyntheticFaces(default_model, 50, seed=9, config=config).batch(range(8))
    b = SyntheticFaces(default_model, 50, seed=9, config=config).batch(range(8))
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_numba_backend_refuses_gradients(default_model):
    points, focal, centre, albedo, lights = posed_faces(default_model, POSES[:1], size=32)
    renderer = Renderer(32, backend="numba")
    with pytest.raises(ValueError, match="backend='numba': expected CPU tensors without"):
        renderer.render(points, default_model.triangles, focal, centre,
                        albedo.requires_grad_(), lights)
    auto = Renderer(32)  # auto: gradients go through the tensor path
    out = auto.render(points, default_model.triangles, focal, centre, albedo, lights)
    out.image.sum().backward()
    assert albedo.grad is not None and float(albedo.grad.abs().sum()) > 0
    with pytest.raises(ValueError, match="backend: expected one of"):
        Renderer(32, backend="opengl")
