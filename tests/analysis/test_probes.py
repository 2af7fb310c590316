"""Tests of probes.py: ridge probes on exactly linear targets, R² in vertex space."""

from __future__ import annotations

import pytest
import torch
from helpers_models import make_random_batch

from e2far_lite.analysis import probes as P
from e2far_lite.nets.backbone import TAP_NAMES
from e2far_lite.synth.faces import DataConfig, SyntheticFaces
from e2far_lite.train.losses import gram_matrix


def test_probe_r2_on_linear_and_random_targets():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(200, 12, generator=g)
    y = x @ torch.randn(12, 4, generator=g) + 2.0
    assert P.probe_r2(x, y, ridge=1e-6) == pytest.approx(1.0, abs=1e-4)
    assert P.probe_r2(x, y) > 0.99  # ridge chosen from the default candidates
    noise = torch.randn(200, 4, generator=g)
    assert P.probe_r2(x, noise) < 0.2


def test_linear_probes_recover_a_linear_target(blend_net, blend_model):
    g = torch.Generator().manual_seed(4)
    images = torch.rand(64, 3, 64, 64, generator=g)
    pooled = P.pooled_features(blend_net, images, grid=2)
    assert pooled["pool3"].shape == (64, 8 * 4)
    batch = {"image": images,
             "a_exp": pooled["pool3"] @ torch.randn(32, blend_model.num_exp, generator=g),
             "a_id": torch.randn(64, blend_model.num_id, generator=g)}
    probes = P.linear_probes(blend_net, batch, blend_model, ridge=1e-6)
    assert list(probes) == list(TAP_NAMES)
    assert probes["pool3"]["expression"] == pytest.approx(1.0, abs=1e-3)
    assert probes["pool3"]["identity"] < 0.5  # random targets are not readable
    assert P.best_layer(probes, "expression") == "pool3"


def test_vertex_space_r2_matches_the_explicit_offsets(blend_model):
    g = torch.Generator().manual_seed(6)
    truth = torch.randn(30, blend_model.num_exp, generator=g)
    guess = torch.randn(30, blend_model.num_exp, generator=g)
    gram = gram_matrix(blend_model.exp_basis, blend_model.exp_std).double()
    r2 = P._r2(guess.double(), truth.double(), gram)
    offsets, guessed = blend_model.expression_offset(truth), blend_model.expression_offset(guess)
    explicit = 1 - (guessed - offsets).pow(2).sum() / (offsets - offsets.mean(0)).pow(2).sum()
    assert r2 == pytest.approx(float(explicit), rel=1e-4)


def test_linear_probes_read_synthetic_faces(blend_net, blend_model):
    faces = SyntheticFaces(blend_model, 16, seed=3, config=DataConfig(image_size=64))
    probes = P.linear_probes(blend_net, faces, layers=("pool5",), ridge=1.0)
    assert list(probes) == ["pool5"] and set(probes["pool5"]) == {"expression", "identity"}


def test_bad_inputs_name_the_argument(blend_net, blend_model):
    batch = make_random_batch(blend_model)
    with pytest.raises(ValueError, match="ridge: expected a positive number"):
        P.probe_r2(torch.randn(20, 3), torch.randn(20, 2), ridge=-1.0)
    with pytest.raises(ValueError, match="targets: expected shape"):
        P.probe_r2(torch.randn(20, 3), torch.randn(19, 2))
    with pytest.raises(ValueError, match="features: expected enough samples"):
        P.probe_r2(torch.randn(5, 3), torch.randn(5, 2))
    with pytest.raises(ValueError, match="model: expected the MorphableModel"):
        P.linear_probes(blend_net, batch)
    with pytest.raises(ValueError, match="layer: expected one of"):
        P.linear_probes(blend_net, batch, blend_model, layers=("conv3",))
    with pytest.raises(ValueError, match="gram: expected shape"):
        P.probe_r2(torch.randn(20, 3), torch.randn(20, 2), gram=torch.eye(3))
    with pytest.raises(ValueError, match="faces_or_batch: expected images of 64 px"):
        faces = SyntheticFaces(blend_model, 8, config=DataConfig(image_size=128))
        P.linear_probes(blend_net, faces)
    with pytest.raises(ValueError, match="target: expected one of"):
        P.best_layer({"pool5": {"expression": 1.0, "identity": 1.0}}, "pose")
