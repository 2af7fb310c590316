"""The shipped checkpoint loads safely and reproduces the validation figures recorded beside it."""

import json

import pytest
import torch

from e2far_lite.checkpoint import SHIPPED_FILE, load_checkpoint
from e2far_lite.paths import data_dir
from e2far_lite.train import load_split, validate

CHECKPOINT = data_dir() / SHIPPED_FILE
FIGURES = CHECKPOINT.with_suffix(".json")


def test_shipped_checkpoint_is_small_and_safe():
    assert CHECKPOINT.stat().st_size < 10 * 2**20
    payload = torch.load(CHECKPOINT, weights_only=True)  # plain tensors and containers only
    assert "net" in payload


@pytest.mark.slow
def test_shipped_checkpoint_reproduces_its_figures(tmp_path):
    recorded = json.loads(FIGURES.read_text())
    net, model, config = load_checkpoint(CHECKPOINT, device="cpu")
    figures = validate(net, model, load_split(model, config, tmp_path))
    for key in ("total_mm", "neutral_mm", "expression_mm"):
        assert figures[key] == pytest.approx(recorded["validation"][key], rel=1e-3), key
        assert figures[key] < recorded["mean_shape"][key]
