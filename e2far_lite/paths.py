"""Where the repository's files live: shipped data in ``data/``, recorded experiments in
``experiments/``, both beside the package."""

from __future__ import annotations

import os
from pathlib import Path

#: The repository root when the package is used from a clone (``pip install -e .``).
REPO_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """The folder holding the shipped model and checkpoint; ``E2FAR_DATA`` overrides it."""
    return Path(os.environ.get("E2FAR_DATA", REPO_ROOT / "data"))


def experiments_dir() -> Path:
    """The folder of the experiment scripts and their recorded results (``experiments/``)."""
    return REPO_ROOT / "experiments"


def cache_dir() -> Path:
    """Where rendered splits are cached (``data/cache``); ``E2FAR_CACHE`` moves it.

    Training and notebooks 05-07 write rendered faces there (uint8 shards); deleting the folder
    is safe: a split is rendered again when next needed.
    """
    return Path(os.environ.get("E2FAR_CACHE", data_dir() / "cache"))


def shared_dir() -> Path:
    """The hand-out folder ``../shared`` beside the clone; ``E2FAR_SHARED`` overrides it."""
    return Path(os.environ.get("E2FAR_SHARED", REPO_ROOT.parent / "shared"))


def is_smoke() -> bool:
    """True when ``E2FAR_SMOKE=1``: notebooks and scripts shrink to tiny sizes for CI."""
    return os.environ.get("E2FAR_SMOKE", "0") not in ("", "0", "false", "False")
