"""Small random morphable models for tests (fast, deterministic, no files).

Keep this stable: other test files import ``tiny_model``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from e2far_lite.model.morphable_model import NUM_LANDMARKS, MorphableModel


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
