"""Speed figures: every function runs at tiny sizes and returns positive, finite numbers; the
MobileNetV1 reference has the size measured in its docstring."""

from __future__ import annotations

import json
import math
import os

import pytest
import torch

from e2far_lite.cli import main
from e2far_lite.evaluate import speed
from e2far_lite.nets import mobilenet
from e2far_lite.nets.complexity import count_macs, count_parameters
from e2far_lite.nets.mobilenet import MobileNetV1
from e2far_lite.train.configs import get_config

CPU = torch.device("cpu")


def _positive(figures: dict, keys: set[str]) -> None:
    assert set(figures) == keys
    for key, value in figures.items():
        assert math.isfinite(value) and value > 0, (key, value)


def test_mobilenet_counts_match_the_documented_ones():
    net = MobileNetV1()
    assert count_parameters(net) == mobilenet.PARAMETERS == 3_270_526  # 3DDFA_V2: 3.27M
    assert count_macs(net, (1, 3, 120, 120)) == mobilenet.MACS == 177_436_800
    assert net(torch.rand(2, 3, 120, 120)).shape == (2, 62)
    half = MobileNetV1(width=0.5)  # 3DDFA_V2's mb05: 0.85M parameters
    assert count_parameters(half) == 850_398
    assert count_macs(half, (1, 3, 120, 120)) == 46_455_872


def test_time_call_takes_the_median():
    calls = []
    seconds = speed.time_call(lambda: calls.append(1), CPU, repeats=3, warmup=2)
    assert len(calls) == 5 and 0 <= seconds < 1


def test_render_throughput(default_model):
    figures = speed.render_throughput(default_model, CPU, batch=2, image_size=32, repeats=1)
    backend = figures.pop("backend")
    assert backend in ("numba", "torch")
    _positive(figures, {"samples_per_s", "render_per_s", "render_torch_per_s"})


def test_train_throughput(default_model):
    config = get_config("smoke", image_size=32)
    figures = speed.train_throughput(config, CPU, batch_size=2, repeats=1, warmup=0,
                                     model=default_model)
    _positive(figures, {"batch_size", "images_per_s", "net_images_per_s", "step_s"})
    assert figures["batch_size"] == 2
    # both rates describe the same steps: B images over a step's time, with or without rendering
    assert figures["step_s"] > 0


def test_inference_latency_and_matmul_peak():
    figures = speed.inference_latency(MobileNetV1(width=0.25), 32, CPU, (1, 3), repeats=1)
    _positive(figures, {"ms_per_image_b1", "ms_per_image_b3"})
    peak = speed.matmul_peak(CPU, size=64, repeats=1)
    assert math.isfinite(peak) and peak > 0


@pytest.fixture()
def tiny_report_setup(monkeypatch):
    """speed_report on the smoke net at 32 px and a quarter-width MobileNet: seconds."""
    monkeypatch.setattr(speed, "get_config",
                        lambda name, **kw: get_config(
                            "smoke", **{"image_size": 32, "amp": name == "cpu-2h", **kw}))
    monkeypatch.setattr(speed, "MobileNetV1", lambda: MobileNetV1(width=0.25))
    monkeypatch.setattr(speed, "INPUT_SIZE", 32)
    monkeypatch.setattr(speed, "matmul_peak", lambda device, size=None, dtype=None,
                        repeats=5: 1.0)


def test_speed_report_has_every_figure(tiny_report_setup):
    lines = []
    report = speed.speed_report(CPU, batch=2, image_size=32, repeats=1, echo=lines.append)
    assert lines and report["repeats"] == 1
    load = {"load_average"} if hasattr(os, "getloadavg") else set()  # not on Windows
    assert set(report) == {"device", "repeats", "peak_gflops", "rendering", "training",
                           "inference"} | load
    assert report.get("load_average", 0) >= 0
    # the cpu-2h preset's bf16 autocast is timed against float32 where this CPU has bf16
    bf16 = speed.amp_dtype(get_config("smoke", amp=True), CPU) is not None
    assert set(report["training"]) == {"default", "cpu-quick", "cpu-2h"} | (
        {"cpu-2h float32"} if bf16 else set())
    assert set(report["inference"]) == {"E2FARNet default", "E2FARNet cpu-quick",
                                        "E2FARNet cpu-full", "MobileNetV1 (3DDFA_V2)"}
    _positive(report["peak_gflops"], {"float32"} | ({"bfloat16"} if bf16 else set()))
    for figures in report["inference"].values():
        _positive(figures, {"image_size", "params", "macs", "ms_per_image_b1",
                            "ms_per_image_b64", "unfolded_ms_per_image_b1",
                            "unfolded_ms_per_image_b64", "gflops", "of_peak",
                            "b1_vs_mobilenet"})
        # achieved GFLOP/s is 2 MACs per image times images/s at batch 64
        assert figures["gflops"] == pytest.approx(
            2 * figures["macs"] / figures["ms_per_image_b64"] * 1000 / 1e9)
    assert report["inference"]["MobileNetV1 (3DDFA_V2)"]["b1_vs_mobilenet"] == 1.0
    table = speed.format_report(report)
    assert "MobileNetV1 (3DDFA_V2)" in table and "cpu-quick" in table
    json.dumps(report)  # JSON-ready


def test_cli_writes_json(tiny_report_setup, tmp_path, capsys):
    path = tmp_path / "speed.json"
    main(["benchmark", "--speed", "--device", "cpu", "--batch", "2", "--size", "32",
          "--repeats", "1", "--json", str(path)])
    saved = json.loads(path.read_text())
    assert saved["rendering"]["batch_size"] == 2
    assert "ms/img b64" in capsys.readouterr().out
