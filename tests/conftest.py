"""Shared fixtures: the shipped default model, a small face-like model of another size, and the
tiny blend-shape model, network and batch of the analysis, widget and course tests; a smoke
network and the astronaut photo for the photo tests."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch
from helpers_models import make_blend_model, make_random_batch, make_tiny_net

from e2far_lite import MorphableModel
from e2far_lite.nets.network import E2FARNet
from e2far_lite.train.configs import get_config


@pytest.fixture(scope="session")
def default_model() -> MorphableModel:
    return MorphableModel.default()


def ellipsoid_model(rows: int = 20, cols: int = 16, num_id: int = 6, num_exp: int = 5,
                    seed: int = 0) -> MorphableModel:
    """A half-ellipsoid 'face' (about 150 x 200 x 90 mm) with random orthonormal bases.

    No blend shapes, and landmarks only for the first 40 points (the rest -1): it exercises
    the pipeline on a model that is not the default.
    """
    g = torch.Generator().manual_seed(seed)
    theta = torch.linspace(-1.3, 1.3, cols)  # around y (left-right)
    phi = torch.linspace(-1.2, 1.2, rows)  # up-down
    t, p = torch.meshgrid(theta, phi, indexing="xy")
    mean = torch.stack([75 * torch.sin(t) * torch.cos(p), 100 * torch.sin(p),
                        45 * torch.cos(t) * torch.cos(p)], -1).reshape(-1, 3)
    idx = torch.arange(rows * cols).view(rows, cols)
    a, b = idx[:-1, :-1].flatten(), idx[:-1, 1:].flatten()
    c, d = idx[1:, 1:].flatten(), idx[1:, :-1].flatten()
    # counter-clockwise seen from +z with y up: rows grow upward (phi increases)
    triangles = torch.cat([torch.stack([a, b, c], 1), torch.stack([a, c, d], 1)])
    num_v = mean.shape[0]
    q, _ = torch.linalg.qr(torch.randn(3 * num_v, num_id + num_exp, generator=g))
    id_basis = q[:, :num_id].T.reshape(num_id, num_v, 3)
    exp_basis = q[:, num_id:].T.reshape(num_exp, num_v, 3)
    landmarks = torch.full((68,), -1, dtype=torch.long)
    landmarks[:40] = torch.randperm(num_v, generator=g)[:40]
    return MorphableModel(mean, id_basis, torch.linspace(20, 5, num_id), exp_basis,
                          torch.linspace(10, 2, num_exp), triangles, landmarks)


@pytest.fixture()
def small_model() -> MorphableModel:
    return ellipsoid_model()


@pytest.fixture(scope="module")
def blend_model() -> MorphableModel:
    """A 50-vertex model with four named blend shapes (:func:`helpers_models.make_blend_model`)."""
    return make_blend_model()


@pytest.fixture(scope="module")
def blend_net(blend_model) -> E2FARNet:
    """An untrained 64 px network of a few channels for ``blend_model``, in eval mode."""
    return make_tiny_net(blend_model)


@pytest.fixture(scope="module")
def blend_batch(blend_model) -> dict[str, torch.Tensor]:
    """Three random 64 px images with random coefficients of ``blend_model``."""
    return make_random_batch(blend_model)


@pytest.fixture(scope="module")
def smoke():
    """``(net, model, config)``: a randomly initialised smoke-size network (outputs start near
    the mean face), the default model and the smoke preset, for the photo tests."""
    torch.manual_seed(0)
    config = get_config("smoke")
    model = MorphableModel.default()
    return E2FARNet(model.num_id, model.num_exp, config.net).eval(), model, config


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    """scikit-image's astronaut photo, (512, 512, 3) uint8: one face."""
    return skimage.data.astronaut()
