"""experiments/gpu_run.py, the prepared GPU run, at toy sizes on the CPU: it sizes, trains, exports
and scores, and records what it did."""

import json
import runpy
import sys

import pytest
import torch

from e2far_lite.paths import REPO_ROOT
from e2far_lite.train.checkpoint import load_checkpoint

SCRIPT = REPO_ROOT / "experiments" / "gpu_run.py"


@pytest.mark.slow
def test_gpu_run_script_at_toy_sizes_on_the_cpu(tmp_path, monkeypatch):
    out = tmp_path / "out"
    argv = ["--device", "cpu", "--config", "smoke", "--minutes", "0.05", "--n", "8",
            "--no-speed", "--out", str(out)]
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), *argv])
    monkeypatch.setenv("E2FAR_CACHE", str(tmp_path / "cache"))
    runpy.run_path(str(SCRIPT), run_name="__main__")
    record = json.loads((out / "gpu_run.json").read_text())
    training = record["training"]
    assert training["preset"] == "smoke" and training["steps"] >= 10
    assert training["faces_seen"] == training["steps"] * training["batch_size"]
    assert training["measured_faces_per_s"] > 0 and training["minutes"] >= 0
    # the steps fill the budget at the measured speed (0.05 min here)
    planned = 0.05 * 60 * training["measured_faces_per_s"] / training["batch_size"]
    assert training["steps"] == max(10, int(planned)) or abs(training["steps"] - planned) <= 1
    for method in ("network", "mean_shape", "fit_true_landmarks"):
        assert record[method]["total_sim_mm"] > 0
    net, _, config = load_checkpoint(out / "gpu_run.pt")  # float16 weights, read as float32
    assert config.steps == training["steps"]
    assert all(p.dtype == torch.float32 for p in net.parameters())


def test_gpu_run_refuses_a_budget_it_cannot_size(tmp_path, monkeypatch):
    for minutes in ("inf", "0", "nan"):
        monkeypatch.setattr(sys, "argv", [str(SCRIPT), "--minutes", minutes, "--out",
                                          str(tmp_path / "out")])
        with pytest.raises(SystemExit, match=r"--minutes, --n: expected positive numbers"):
            runpy.run_path(str(SCRIPT), run_name="__main__")
    assert not (tmp_path / "out").exists()
