"""evaluate: three methods on the same faces, both alignments, pixel bins, JSON and the CLI."""

from __future__ import annotations

import json

import pytest
import torch

from e2far_lite.cli import main
from e2far_lite.evaluate.scores import (
    METHODS,
    PIXEL_BINS,
    evaluate_net,
    expression_pixels,
    held_out_faces,
    ratios,
)
from e2far_lite.io.json_files import write_json
from e2far_lite.model.metrics import shape_errors
from e2far_lite.nets.network import E2FARNet, NetConfig
from e2far_lite.synth.faces import DataConfig

KEYS = ("total_mm", "neutral_mm", "total_sim_mm", "neutral_sim_mm", "expression_mm", "nme_pct")
SMALL = DataConfig(image_size=64)


@pytest.fixture(scope="module")
def untrained(default_model):
    torch.manual_seed(0)
    return E2FARNet(default_model.num_id, default_model.num_exp, NetConfig(image_size=64))


@pytest.fixture(scope="module")
def result(untrained, default_model):
    return evaluate_net(untrained, default_model, SMALL, n=12, seed=3)


def test_every_method_has_every_figure(result):
    for method in METHODS:
        assert set(KEYS) <= set(result[method]), method
        assert all(result[method][k] >= 0 for k in KEYS)
        # a similarity alignment can only lower the error of the rigid one
        assert result[method]["total_sim_mm"] <= result[method]["total_mm"] + 1e-6
    assert result["faces"] == 12 and result["seed"] == 3 and result["image_size"] == 64


def test_mean_shape_row_matches_shape_errors(result, default_model):
    split = held_out_faces(default_model, SMALL, 12, 3)
    zero = {"a_id": torch.zeros_like(split["a_id"]), "a_exp": torch.zeros_like(split["a_exp"])}
    errors = shape_errors(default_model, zero, split)
    for key in ("total", "total_sim", "neutral", "expression"):
        assert result["mean_shape"][f"{key}_mm"] == pytest.approx(float(errors[key].mean()),
                                                                rel=1e-5)
    # fitting sees the true landmarks: far better landmarks than the mean face's
    assert result["fit_true_landmarks"]["nme_pct"] < result["mean_shape"]["nme_pct"]


def test_an_untrained_net_predicts_the_mean_face(result):
    # last layers start near 0: the network row sits on the mean-shape row
    ratio = ratios(result)
    assert ratio["total_sim_mm"] == pytest.approx(1.0, abs=0.02)
    paired = result["paired"]["network_vs_mean_shape"]["total_sim_mm"]
    assert abs(paired[0]) < 0.05 and paired[1] >= 0


def test_pixel_bins_count_every_face(result):
    bins = result["expression_by_pixels"]
    assert sum(bins["faces"]) == 12
    assert len(bins["edges_px"]) == len(PIXEL_BINS) and bins["edges_px"][-1] is None
    for method in METHODS:
        assert len(bins[method]) == len(PIXEL_BINS) - 1
        assert all((v is None) == (c == 0) for v, c in zip(bins[method], bins["faces"],
                                                            strict=True))


def test_expression_pixels(default_model):
    split = held_out_faces(default_model, SMALL, 6, 3)
    pixels = expression_pixels(default_model, split)
    assert pixels.shape == (6,) and bool((pixels >= 0).all())
    still = dict(split, a_exp=torch.zeros_like(split["a_exp"]))
    assert float(expression_pixels(default_model, still).abs().max()) < 1e-4
    # twice the image scale: twice the motion
    big = dict(split, pose=split["pose"] * torch.tensor([1, 1, 1, 1, 1, 2.0]))
    assert torch.allclose(expression_pixels(default_model, big), 2 * pixels, rtol=1e-4)


def test_write_json_is_atomic_and_strict(tmp_path):
    path = write_json(tmp_path / "a.json", {"x": 1, "bad": [float("nan"), float("inf")]})
    assert json.loads(path.read_text()) == {"x": 1, "bad": [None, None]}
    assert "NaN" not in path.read_text()
    with pytest.raises(TypeError):
        write_json(tmp_path / "b.json", {"x": object()})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]  # nothing half-written
    (tmp_path / "folder").mkdir()
    with pytest.raises(SystemExit, match="--json: expected a file name, got the folder"):
        main(["evaluate", "--checkpoint", "x.pt", "--json", str(tmp_path / "folder")])


@pytest.mark.slow
def test_cli_evaluate_json(tmp_path, capsys):
    out = tmp_path / "run"
    main(["train", "--config", "smoke", "--out", str(out), "--steps", "2", "--device", "cpu",
          "--quiet", "--cache-dir", str(tmp_path / "cache")])
    capsys.readouterr()
    target = tmp_path / "figures.json"
    main(["evaluate", "--checkpoint", str(out / "last.pt"), "--n", "6", "--json", str(target),
          "--cache-dir", str(tmp_path / "cache")])
    printed = capsys.readouterr().out
    assert "fit_true_landmarks" in printed and "by how far the expression moves" in printed
    recorded = json.loads(target.read_text())
    assert recorded["data"] == "full" and recorded["faces"] == 6 and recorded["step"] == 2
    assert "--n 6" in recorded["command"]
    for method in METHODS:
        assert set(KEYS) <= set(recorded[method])
    # --no-fit drops the fitting row; --data train uses the checkpoint's own distribution
    main(["evaluate", "--checkpoint", str(out / "last.pt"), "--n", "4", "--no-fit", "--data",
          "train", "--json", str(target), "--cache-dir", str(tmp_path / "cache")])
    recorded = json.loads(target.read_text())
    assert "fit_true_landmarks" not in recorded and recorded["data"] == "train"
    (tmp_path / "a-file").write_text("")
    with pytest.raises(SystemExit, match="--json: cannot write"):
        main(["evaluate", "--checkpoint", str(out / "last.pt"), "--n", "2", "--no-fit",
              "--json", str(tmp_path / "a-file" / "x.json"),
              "--cache-dir", str(tmp_path / "cache")])
