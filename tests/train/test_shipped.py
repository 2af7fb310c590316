"""pretrained(): loads the committed checkpoint of its mode, names the command for a missing one,
and never trains."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from e2far_lite.nets import E2FARNet
from e2far_lite.paths import REPO_ROOT
from e2far_lite.train import SHIPPED_FILE, SMOKE_FILE, pretrained

SMOKE_PATH = REPO_ROOT / "data" / SMOKE_FILE
PRETRAINED_PY = REPO_ROOT / "e2far_lite" / "train" / "shipped.py"


def test_smoke_mode_loads_the_committed_smoke_network(monkeypatch):
    monkeypatch.delenv("E2FAR_DATA", raising=False)
    monkeypatch.setenv("E2FAR_SMOKE", "1")
    net, model, config, source = pretrained()
    assert isinstance(net, E2FARNet) and not net.training
    assert "smoke" in source and SMOKE_FILE in source
    size = config.data.image_size
    assert size == net.config.image_size
    with torch.no_grad():
        out = net(torch.zeros(1, 3, size, size))
    assert out["a_id"].shape == (1, model.num_id)
    assert out["a_exp"].shape == (1, model.num_exp)
    assert torch.isfinite(out["a_id"]).all() and torch.isfinite(out["a_exp"]).all()
    assert pretrained(smoke=True).net is net  # cached: a notebook and its check share it


def test_a_missing_file_names_the_command_that_makes_it(monkeypatch, tmp_path):
    monkeypatch.setenv("E2FAR_DATA", str(tmp_path))
    for smoke, name, script in (
        (True, SMOKE_FILE, "make_smoke_checkpoint.py"),
        (False, SHIPPED_FILE, "make_checkpoint.py"),
    ):
        with pytest.raises(FileNotFoundError) as err:
            pretrained(smoke=smoke)
        assert str(tmp_path / name) in str(err.value) and script in str(err.value)
    monkeypatch.setenv("E2FAR_SMOKE", "1")  # smoke=None follows E2FAR_SMOKE
    with pytest.raises(FileNotFoundError, match="make_smoke_checkpoint.py"):
        pretrained()


@pytest.mark.slow  # a few seconds: CI runs it, the fast lane does not
def test_pretrained_cannot_train():
    # shipped.py imports nothing that trains ...
    tree = ast.parse(PRETRAINED_PY.read_text())
    imported = {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in imported if m.rsplit(".", 1)[-1] in ("loop", "train")}, imported
    # ... and, in a fresh process (empty caches), loading calls no function of the training loop
    # (the package's __init__ imports the loop module itself, so its presence proves nothing)
    script = textwrap.dedent("""
        import importlib, inspect
        import e2far_lite.train as package
        import e2far_lite.train.loop as loop
        def refuse(*args, **kwargs):
            raise SystemExit("pretrained() trained")
        for module in (loop, package):
            for name, value in list(vars(loop).items()):
                if inspect.isfunction(value) and value.__module__ == loop.__name__:
                    if hasattr(module, name):
                        setattr(module, name, refuse)
        pretrained = importlib.import_module("e2far_lite.train.shipped")
        result = pretrained.pretrained(smoke=True)
        print("loaded", type(result.net).__name__, result.net.training)
    """)
    env = {k: v for k, v in os.environ.items() if k != "E2FAR_DATA"}
    env.update(E2FAR_SMOKE="1", OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"))
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "loaded E2FARNet False"


def test_the_smoke_file_is_small_plain_data():
    assert SMOKE_PATH.is_file(), "make it with python data/make_smoke_checkpoint.py"
    assert SMOKE_PATH.stat().st_size < 5 * 2**20
    payload = torch.load(SMOKE_PATH, map_location="cpu", weights_only=True)
    assert payload["format"] == "e2far-lite-checkpoint" and "train_state" not in payload
    assert payload["config"]["image_size"] == 64  # the smoke preset
    floats = [v for v in payload["net"].values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float16 for v in floats)
