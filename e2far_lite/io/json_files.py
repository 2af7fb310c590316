"""The one JSON writer: strict JSON, written all-or-nothing.

Every JSON file the package and its scripts write (evaluation figures, study results, training
histories, cache indexes) goes through :func:`write_json`. JSON has no NaN or infinity; a
figure that could not be measured (a diverged loss, a mean over no faces) is written as
``null``, which every JSON reader accepts, instead of Python's non-standard ``NaN``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from .atomic import atomic_write


def write_json(path: str | os.PathLike, payload: Any, indent: int | None = 2) -> Path:
    """Write ``payload`` as strict JSON to ``path``, atomically.

    Args:
        path: the file; its folder is created when missing.
        payload: dicts, lists, tuples, strings, numbers, booleans and None. Non-finite floats
            (NaN, inf) become ``null``; anything else JSON cannot hold raises ``TypeError``
            before the file is touched.
        indent: spaces per level (None: one line).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Examples:
        >>> import tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     out = write_json(pathlib.Path(folder) / "figures.json", {"rmse_mm": float("nan")})
        ...     print(out.read_text().split())
        ['{', '"rmse_mm":', 'null', '}']
    """
    path = Path(path)
    text = json.dumps(_finite(payload), indent=indent, allow_nan=False) + "\n"
    with atomic_write(path, "w") as handle:
        handle.write(text)
    return path


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


__all__ = ["write_json"]
