"""All-or-nothing file writes: a temporary file in the same folder, renamed over the target.

Every file the package writes (checkpoints, models, meshes, logs, JSON figures, cached splits)
goes through :func:`atomic_write`, so a crash, a full disk or a bad input midway leaves the
previous file intact and no half-written file behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb",
                 newline: str | None = None) -> Iterator[IO]:
    """Open a temporary file for writing; on success it replaces ``path`` in one rename.

    Args:
        path: the file to write; its folder is created when missing.
        mode: ``"wb"`` (bytes) or ``"w"`` (UTF-8 text).
        newline: passed to ``open`` in text mode (``""`` for the csv module).

    Yields:
        the open file. If the ``with`` block raises, the temporary file is removed and
        ``path`` is left as it was. The file gets the usual 0644 permissions.

    Examples:
        >>> import tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     target = pathlib.Path(folder) / "notes" / "note.txt"  # "notes/" is created
        ...     with atomic_write(target, "w") as handle:
        ...         _ = handle.write("hello")
        ...     print(target.read_text(), sorted(p.name for p in target.parent.iterdir()))
        hello ['note.txt']
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode: expected 'wb' or 'w', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o644)
        text = {} if mode == "wb" else {"encoding": "utf-8", "newline": newline}
        with os.fdopen(fd, mode, **text) as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


__all__ = ["atomic_write"]
