"""The trained network the later notebooks study: :func:`pretrained` loads it, never trains it.

=============  ===========================  ==================================================
mode           file (in ``data/``)          made by
=============  ===========================  ==================================================
normal         ``e2far_lite.pt``            ``python data/make_checkpoint.py`` (``cpu-night``
                                            then ``cpu-real`` with the realism levers, about
                                            four hours on two threads of a CPU with bf16)
smoke          ``e2far_lite_smoke.pt``      ``python data/make_smoke_checkpoint.py`` (the
(E2FAR_SMOKE)                               ``smoke`` preset, a few seconds; numbers mean
                                            little)
=============  ===========================  ==================================================

Both files are committed; a missing one is an error that names the command making it.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import NamedTuple

from ..model.morphable_model import MorphableModel
from ..nets.network import E2FARNet
from ..paths import data_dir, is_smoke
from .checkpoint import load_checkpoint
from .configs import TrainConfig

#: The shipped checkpoint in ``data/``, made by ``python data/make_checkpoint.py`` (about 4 h).
SHIPPED_FILE = "e2far_lite.pt"
#: The smoke-trained checkpoint in ``data/``, made by ``python data/make_smoke_checkpoint.py``.
SMOKE_FILE = "e2far_lite_smoke.pt"

#: How each file is made, for the error when it is missing.
_MAKE = {SHIPPED_FILE: "OMP_NUM_THREADS=2 NUMBA_NUM_THREADS=2 python data/make_checkpoint.py "
                       "(about 4 hours on a 2-core CPU with bf16; or set E2FAR_SMOKE=1 for the "
                       "small smoke-trained network)",
         SMOKE_FILE: "python data/make_smoke_checkpoint.py (a few seconds on a CPU)"}


class Pretrained(NamedTuple):
    """What :func:`pretrained` returns."""

    net: E2FARNet  # eval mode, on the CPU
    model: MorphableModel  # the morphable model of its coefficients
    config: TrainConfig  # its training config (``config.data``: how its faces looked)
    source: str  # which network this is, in words


@functools.lru_cache(maxsize=2)
def _pretrained(smoke: bool, path: str, mtime: float) -> Pretrained:
    net, model, config = load_checkpoint(path, device="cpu")
    name = Path(path).name
    source = (f"a smoke-trained network ({name}, smoke mode; its numbers mean little)" if smoke
              else f"the shipped checkpoint {name}")
    return Pretrained(net, model, config, source)


def pretrained(smoke: bool | None = None) -> Pretrained:
    """The network the later notebooks study, loaded from a committed checkpoint.

    Args:
        smoke: load the smoke-trained ``data/e2far_lite_smoke.pt`` instead of the shipped
            ``data/e2far_lite.pt``; ``None``: in smoke mode (``E2FAR_SMOKE=1``).

    Returns:
        ``(net, model, config, source)``: the float32 network in eval mode on the CPU, its
        morphable model, its training config and, in words, which network it is. Cached per
        process (until the file changes), so a notebook and its exercise check share one
        network: moving it (``net.to(...)``) moves it for both.

    Raises:
        FileNotFoundError: the file is missing; the message names the command that makes it.
    """
    if smoke is not None and not isinstance(smoke, bool):
        raise TypeError(f"smoke: expected True, False or None, got {type(smoke).__name__} "
                        f"{smoke!r}")
    smoke = is_smoke() if smoke is None else smoke
    name = SMOKE_FILE if smoke else SHIPPED_FILE
    path = data_dir() / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: make it with {_MAKE[name]}")
    return _pretrained(smoke, str(path), path.stat().st_mtime)


__all__ = ["pretrained", "Pretrained"]
