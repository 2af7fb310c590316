"""Fixtures of the JupyterLab browser tests (test_browser*.py), one set per test module: a
headless Chromium, a JupyterLab over a temporary copy of the notebooks in smoke mode, and the
folder the screenshots go to."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from browser_helpers import chromium_path, jupyter_lab, launch, missing

from e2far_lite.paths import REPO_ROOT

NOTEBOOKS = REPO_ROOT / "notebooks"


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    """Where screenshots go: ``$E2FAR_ARTIFACTS`` (CI lists them), else a temporary folder."""
    folder = os.environ.get("E2FAR_ARTIFACTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("browser-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium, headless, driven by Playwright (skips, or fails under
    ``E2FAR_REQUIRE_BROWSER=1``, where either is missing)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright is not installed (pip install playwright; its browser download "
                "is not needed)")
    executable = chromium_path()
    if executable is None:
        missing("chromium is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = launch(playwright, executable)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def lab(browser, tmp_path_factory):
    """``(base, token)`` of a JupyterLab over a temporary copy of the notebooks, in smoke mode
    on one thread."""
    work = tmp_path_factory.mktemp("lab")
    root = work / "notebooks"
    shutil.copytree(NOTEBOOKS, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    env = {**os.environ, "E2FAR_SMOKE": "1", "OMP_NUM_THREADS": "1"}
    started = time.perf_counter()
    with jupyter_lab(root, env, work / "jupyterlab.log") as (base, token):
        print(f"\nJupyterLab up in {time.perf_counter() - started:.1f} s at {base}")
        yield base, token
