"""The committed default model is what data/build_default_model.py makes from the shipped npz."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers_models import assert_is_the_default_model

from e2far_lite import MorphableModel
from e2far_lite.model.ict import (
    expression_space,
    ict_ingredients_path,
    load_ict_face_area,
    orthonormal_basis,
)
from e2far_lite.paths import REPO_ROOT, data_dir

needs_ict = pytest.mark.skipif(not ict_ingredients_path().is_file(),
                               reason="data/ict_face_model/ict_face_area.npz is missing: it ships "
                               "with the repository (git checkout data/ict_face_model)")


@pytest.mark.slow  # a few seconds: CI runs it, the fast lane does not
@needs_ict
def test_committed_model_is_reproducible(tmp_path):
    out = tmp_path / "rebuilt.npz"
    subprocess.run([sys.executable, str(REPO_ROOT / "data" / "build_default_model.py"), str(out)],
                   check=True, cwd=REPO_ROOT, capture_output=True)
    assert_is_the_default_model(out)


@needs_ict
def test_identity_svd_is_the_same_distribution():
    face = load_ict_face_area()
    basis, std, explained = orthonormal_basis(face.identity_modes, variance=1.0)
    assert explained[-1] == pytest.approx(1.0)
    # covariance of sum_k w_k modes[k] equals that of the orthonormal model
    modes = face.identity_modes.reshape(100, -1)
    flat = basis.reshape(basis.shape[0], -1)
    probe = torch.randn(flat.shape[1], 3, dtype=torch.float64)
    cov_modes = modes.T @ (modes @ probe)
    cov_svd = flat.T @ (std[:, None] ** 2 * (flat @ probe))
    assert torch.allclose(cov_modes, cov_svd, rtol=1e-6, atol=1e-6)
    keep = int((explained < 0.995).sum()) + 1
    assert keep == MorphableModel.default().num_id


def test_expression_space_is_uncentred():
    g = torch.Generator().manual_seed(0)
    shapes = torch.randn(6, 10, 3, generator=g, dtype=torch.float64)
    weights = torch.rand(500, 6, generator=g, dtype=torch.float64)
    basis, std, explained = expression_space(shapes, weights, num=6)
    flat = basis.reshape(6, -1)
    assert torch.allclose(flat @ flat.T, torch.eye(6, dtype=torch.float64), atol=1e-10)
    # with all components the blend shapes are reproduced exactly; neutral -> 0 coefficients
    offsets = torch.einsum("bn,nvc->bvc", weights[:3], shapes).reshape(3, -1)
    recon = (offsets @ flat.T) @ flat
    assert torch.allclose(recon, offsets, atol=1e-10)
    second_moment = ((offsets @ flat.T) ** 2).mean(0)
    assert std.shape == (6,) and explained[-1] == pytest.approx(1.0)
    assert second_moment.shape == (6,)


def test_default_model_file_is_small():
    size = (data_dir() / "ict_face_model_lite.npz").stat().st_size
    assert size < 10 * 2**20
    assert (Path(data_dir()) / "LICENSE-ICT-FaceKit").is_file()
