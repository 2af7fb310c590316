"""All-or-nothing file writes: a temporary file in the same folder, renamed over the target.

Every file the package writes (checkpoints, models, meshes, logs, JSON figures, tables, pictures,
cached splits) goes through :func:`atomic_write` (JSON through :func:`~e2far_lite.io.write_json`,
text through :func:`write_text`, pictures through :func:`write_figure`), so a crash, a full disk
or a bad input midway leaves the previous file intact and no half-written file behind.
``tests/io/test_file_writes.py`` fails if a module writes a file any other way.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


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


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path`` as a Path."""
    with atomic_write(path, "w") as handle:
        handle.write(text)
    return Path(path)


def write_figure(figure: Any, path: str | os.PathLike, **savefig: Any) -> Path:
    """Save a matplotlib figure to ``path`` atomically, in the format its suffix names.

    Args:
        figure: anything with matplotlib's ``savefig(file, format=...)``.
        path: e.g. ``overlay.png`` or ``curve.svg``.
        savefig: passed on (``dpi=120``, ``facecolor="white"``).
    """
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if not fmt:
        raise ValueError(f"path: expected a file name with a picture suffix (.png, .svg, .pdf), "
                         f"got {str(path)!r}")
    with atomic_write(path) as handle:
        figure.savefig(handle, format=fmt, **savefig)
    return path


__all__ = ["atomic_write", "write_figure", "write_text"]
