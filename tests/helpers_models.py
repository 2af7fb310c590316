"""Small random morphable models and networks for tests (fast, deterministic, no files).

``tiny_model`` is a model without blend shapes; ``make_blend_model``, ``make_tiny_net`` and
``make_random_batch`` build the analysis tests' model, network and batch (tests/conftest.py
serves one of each as the ``blend_model``, ``blend_net`` and ``blend_batch`` fixtures; call
these to get a variant, e.g. ``make_tiny_net(model, fusion_enabled=False)``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from e2far_lite.model.morphable_model import NUM_LANDMARKS, MorphableModel
from e2far_lite.nets.backbone import BackboneConfig
from e2far_lite.nets.fusion import FusionConfig
from e2far_lite.nets.network import E2FARNet, NetConfig


def tiny_model(num_vertices: int = 50, num_id: int = 5, num_exp: int = 4,
               seed: int = 0) -> MorphableModel:
    """A random MorphableModel on a small grid mesh.

    Vertices lie row by row on a grid with 10 mm spacing (x right, y up, a gentle z bump),
    ``ceil(sqrt(V))`` per row; each full grid cell gives two triangles, counter-clockwise seen
    from +z. The bases are random and deliberately NOT orthonormal (directions correlated with
    each other and between identity and expression), so Gram-matrix code is really exercised.
    Landmarks: 68 random vertex indices, with slots 0, 17, 48 and 60..67 set to -1 (undefined).
    """
    g = torch.Generator().manual_seed(seed)
    cols = math.ceil(math.sqrt(num_vertices))
    i = torch.arange(num_vertices)
    row, col = (i // cols).double(), (i % cols).double()
    x = 10.0 * (col - (cols - 1) / 2)
    y = -10.0 * (row - row.max() / 2)
    z = 20.0 * torch.exp(-(x**2 + y**2) / 2000.0)
    mean = torch.stack([x, y, z], 1)

    triangles = []
    for r in range(int(row.max())):
        for c in range(cols - 1):
            a, b = r * cols + c, (r + 1) * cols + c  # b is below a
            if b + 1 < num_vertices:
                triangles += [(a, b, a + 1), (a + 1, b, b + 1)]
    triangles = torch.tensor(triangles, dtype=torch.int64).view(-1, 3)

    scale = 1.0 / math.sqrt(3 * num_vertices)  # unit-norm-ish directions
    raw = torch.randn(num_id + num_exp, num_vertices, 3, generator=g, dtype=torch.float64)
    mix = torch.eye(num_id + num_exp, dtype=torch.float64) + 0.5  # correlate all directions
    basis = torch.einsum("ij,jvc->ivc", mix, raw) * scale
    id_std = torch.linspace(5.0, 1.0, num_id, dtype=torch.float64)
    exp_std = torch.linspace(3.0, 0.5, num_exp, dtype=torch.float64)

    landmarks = torch.randint(0, num_vertices, (NUM_LANDMARKS,), generator=g)
    landmarks[[0, 17, 48, *range(60, 68)]] = -1
    return MorphableModel(mean, basis[:num_id], id_std, basis[num_id:], exp_std,
                          triangles, landmarks)


def assert_is_the_default_model(path: Path) -> None:
    """The model file at ``path`` holds the committed default model: index arrays equal, float
    arrays within float16 storage (LAPACK may differ in the last bit on another machine)."""
    rebuilt = MorphableModel.load(path).state_arrays()
    committed = MorphableModel.default().state_arrays()
    assert rebuilt.keys() == committed.keys()
    for key in committed:
        if committed[key].dtype.kind in "iuU":
            assert np.array_equal(rebuilt[key], committed[key]), key
        else:
            assert np.allclose(rebuilt[key], committed[key], rtol=1e-3, atol=1e-4), key


NAMES = ("jawOpen", "mouthSmile_L", "eyeBlink_R", "browInnerUp_L")


def make_blend_model() -> MorphableModel:
    """tiny_model() with the four blend shapes of ``NAMES`` (random offsets, in mm)."""
    m = tiny_model()
    g = torch.Generator().manual_seed(1)
    shapes = torch.randn(len(NAMES), m.num_vertices, 3, generator=g)
    return MorphableModel(m.mean, m.id_basis, m.id_std, m.exp_basis, m.exp_std, m.triangles,
                          m.landmarks, blendshapes=shapes, blendshape_names=NAMES)


def make_tiny_net(model: MorphableModel, **changes) -> E2FARNet:
    """A 64 px E2FARNet of a few channels for ``model``, eval mode, heads scaled up a little."""
    torch.manual_seed(0)
    config = NetConfig(backbone=BackboneConfig(widths=(4, 8, 8, 16, 16)),
                       fusion=FusionConfig(width=8, hidden=16), image_size=64, id_hidden=16,
                       exp_hidden=16, pose_hidden=8, **changes)
    net = E2FARNet(model.num_id, model.num_exp, config)
    # untrained heads start near 0; give them a voice so outputs depend on the input
    for head in (net.id_head, net.fusion.head if net.fusion is not None else net.exp_head):
        if head is not None:
            torch.nn.init.normal_(head[-1].weight, std=0.3)
    return net.eval()


def make_random_batch(model: MorphableModel, size: int = 3,
                      seed: int = 2) -> dict[str, torch.Tensor]:
    """``size`` random 64 px images with random coefficients: inputs, not faces."""
    g = torch.Generator().manual_seed(seed)
    return {"image": torch.rand(size, 3, 64, 64, generator=g),
            "a_id": torch.randn(size, model.num_id, generator=g),
            "a_exp": torch.randn(size, model.num_exp, generator=g)}
