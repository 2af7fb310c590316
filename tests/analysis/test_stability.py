"""Tests of stability.py: the chapter's faces, its three answers and their comparison."""

from __future__ import annotations

import pytest
import torch

from e2far_lite.analysis import stability as A
from e2far_lite.analysis.probes import pooled_features
from e2far_lite.synth.faces import DataConfig, face_split


def test_layer_answers_and_their_comparison(blend_net, blend_model):
    g = torch.Generator().manual_seed(5)
    images = torch.rand(64, 3, 64, 64, generator=g)
    pooled = pooled_features(blend_net, images, grid=2)
    faces = {"image": images,
             "a_exp": pooled["pool3"] @ torch.randn(32, blend_model.num_exp, generator=g),
             "a_id": torch.randn(64, blend_model.num_id, generator=g)}
    answers = A.layer_answers(blend_net, blend_model, faces, attribution_faces=8)
    assert answers["best_probe"]["expression"] == "pool3"
    costs = answers["ablation"]["costs_mm"]
    assert answers["ablation"]["identity_costs_mm"].keys() == costs.keys()
    assert answers["ablation"]["first"] == max(costs, key=costs.get)
    depth = answers["depth"]
    assert depth["earlier"] == min(("expression", "identity"), key=depth.get)
    assert all(A.same_answers(answers, answers).values())
    other = {**answers, "depth": {**depth, "earlier": "other"}}
    assert A.same_answers(answers, other) == {"ablation": True, "depth": False,
                                              "best_probe/expression": True,
                                              "best_probe/identity": True}


def test_probe_batch_is_the_cached_face_split(blend_net, blend_model, tmp_path):
    data = DataConfig(image_size=64)
    faces = A.probe_batch(blend_net, blend_model, data, num_samples=3, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("split-*"))) == 1  # rendered once, cached
    again = A.probe_batch(blend_net, blend_model, data, num_samples=3, cache_dir=tmp_path)
    split = face_split(blend_model, data, 3, seed=7)  # the default seed
    for key in ("image", "a_id", "a_exp"):
        torch.testing.assert_close(faces[key], again[key], rtol=0, atol=0)
        torch.testing.assert_close(faces[key], split[key], rtol=1e-5, atol=1.5 / 255)


def test_bad_inputs_name_the_argument(blend_net, blend_model):
    with pytest.raises(ValueError, match="data: expected image_size 64"):
        A.probe_batch(blend_net, blend_model, DataConfig(image_size=128), num_samples=8)
    with pytest.raises(ValueError, match="num_samples: expected a positive integer"):
        A.probe_batch(blend_net, blend_model, num_samples=0)
    few = {"image": torch.rand(8, 3, 64, 64), "a_id": torch.zeros(8, blend_model.num_id),
           "a_exp": torch.zeros(8, blend_model.num_exp)}
    with pytest.raises(ValueError, match="faces: expected at least 64 faces"):
        A.layer_answers(blend_net, blend_model, few)

