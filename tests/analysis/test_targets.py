"""Tests of targets.py: the scalar outputs against their slow definitions on the vertices."""

from __future__ import annotations

import pytest
import torch
from helpers_models import NAMES

from e2far_lite.analysis.targets import TARGETS, target_function


def test_targets_match_the_slow_definitions(blend_model):
    a_id, a_exp = torch.randn(5, blend_model.num_id), torch.randn(5, blend_model.num_exp)
    offset = blend_model.expression_offset(a_exp)
    rms_exp = offset.pow(2).sum(-1).mean(1).sqrt()
    neutral = blend_model.neutral(a_id) - blend_model.mean
    rms_id = neutral.pow(2).sum(-1).mean(1).sqrt()
    torch.testing.assert_close(target_function(blend_model, "expression")(a_id, a_exp), rms_exp,
                               rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(target_function(blend_model, "identity")(a_id, a_exp), rms_id,
                               rtol=1e-4, atol=1e-4)
    weights = blend_model.exp_to_blendshapes(a_exp)
    torch.testing.assert_close(target_function(blend_model, "eyeBlink_R")(a_id, a_exp),
                               weights[:, NAMES.index("eyeBlink_R")], rtol=1e-4, atol=1e-5)


def test_rms_targets_are_differentiable_at_the_mean_face(blend_model):
    for target in TARGETS:
        a_id = torch.zeros(2, blend_model.num_id, requires_grad=True)
        a_exp = torch.zeros(2, blend_model.num_exp, requires_grad=True)
        target_function(blend_model, target)(a_id, a_exp).sum().backward()
        grad = a_exp.grad if target == "expression" else a_id.grad
        assert torch.isfinite(grad).all()


def test_bad_targets_name_the_argument(blend_model):
    with pytest.raises(ValueError, match=r"target: expected one of \['expression', 'identity', "
                                         r"'jawOpen'"):
        target_function(blend_model, "smile")
    with pytest.raises(TypeError, match="target: expected a str"):
        target_function(blend_model, 3)
