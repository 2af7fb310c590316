"""What a file that could not be read starts with, in words, for error messages."""

from __future__ import annotations

from pathlib import Path


def file_head(source: Path | bytes) -> str:
    """``"an empty file"``, ``"text starting '...'"`` or ``"binary data starting b'...'"``.

    Args:
        source: a file path or the file's bytes (only the first 64 bytes are read).
    """
    if isinstance(source, bytes):
        head = source[:64]
    else:
        with open(source, "rb") as handle:
            head = handle.read(64)
    if not head:
        return "an empty file"
    for cut in range(4):  # a multi-byte character may straddle the 64th byte
        try:
            text = head[:len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        if all(c.isprintable() or c.isspace() for c in text):
            return f"text starting {text[:24]!r}"
        break
    return f"binary data starting {head[:8]!r}"


__all__ = ["file_head"]
