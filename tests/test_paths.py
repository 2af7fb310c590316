"""paths.py: where shipped files and the cache live, and the variables that move them."""

from pathlib import Path

from e2far_lite.analysis.stability import probe_batch
from e2far_lite.paths import REPO_ROOT, cache_dir, data_dir
from e2far_lite.train.shipped import pretrained


def test_defaults_are_inside_the_repository(monkeypatch):
    monkeypatch.delenv("E2FAR_DATA", raising=False)
    monkeypatch.delenv("E2FAR_CACHE", raising=False)
    assert data_dir() == REPO_ROOT / "data"
    assert cache_dir() == REPO_ROOT / "data" / "cache"


def test_cache_moves_with_e2far_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("E2FAR_CACHE", str(tmp_path / "elsewhere"))
    assert cache_dir() == tmp_path / "elsewhere"
    assert data_dir() == Path(REPO_ROOT / "data")  # the shipped files stay where they are


def test_rendered_splits_go_to_e2far_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("E2FAR_CACHE", str(tmp_path / "cache"))
    net, model, config, _ = pretrained(smoke=False)
    split = probe_batch(net, model, config.data, num_samples=2, seed=123)
    assert split["image"].shape[0] == 2
    assert list((tmp_path / "cache").glob("split-*"))
