"""Input checks for public entry points: one message form everywhere.

Every error names the argument, what was expected and what came, e.g.
``ValueError: a_id: expected shape (B, 62), got (2, 3)``.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor


def _fmt_shape(shape: Sequence[int | str | None]) -> str:
    # a free leading size is the batch (B); a free size elsewhere is any size (*)
    inner = ", ".join(("B" if i == 0 else "*") if s is None else str(s)
                      for i, s in enumerate(shape))
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def check_tensor(x: object, name: str) -> Tensor:
    """Raise ``TypeError`` unless ``x`` is a tensor."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    return x


def check_shape(x: Tensor, name: str, shape: Sequence[int | None]) -> Tensor:
    """Check ``x.shape`` against ``shape``; ``None`` matches any size (printed as B when it
    is the leading size, * elsewhere).

    Examples:
        >>> check_shape(torch.zeros(2, 3), "a_id", (None, 3)).shape
        torch.Size([2, 3])
    """
    check_tensor(x, name)
    ok = x.dim() == len(shape) and all(
        s is None or s == d for s, d in zip(shape, x.shape, strict=True))
    if not ok:
        raise ValueError(f"{name}: expected shape {_fmt_shape(shape)}, got {tuple(x.shape)}")
    return x


def check_floating(x: Tensor, name: str) -> Tensor:
    """Require a floating dtype (no silent casts of integer input)."""
    check_tensor(x, name)
    if not x.is_floating_point():
        raise ValueError(f"{name}: expected a floating-point dtype, got {x.dtype}")
    return x


def check_finite(x: Tensor, name: str) -> Tensor:
    """Require every value to be finite (no NaN or inf)."""
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name}: expected finite values, got {bad} NaN/inf of {x.numel()}")
    return x


def check_positive_int(value: object, name: str) -> int:
    """Require a positive integer (sizes, counts): a Python ``int`` or anything that is one,
    like ``np.int64``; not a bool, a float or a string. Returns it as an ``int``."""
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        number = 0
    if isinstance(value, bool) or number <= 0:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return number


def check_path(value: object, name: str) -> Path:
    """Require a file-system path (``str`` or ``os.PathLike``); returns it as a ``Path``."""
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name}: expected a file path (str or os.PathLike), got "
                        f"{type(value).__name__} {value!r}")
    return Path(value)


#: Largest image side in pixels anywhere in the package (renderer, data, network): a bigger
#: request is refused at once instead of trying to allocate (B x H x W buffers, FC layers).
MAX_IMAGE_SIZE = 4096


def check_image_size(value: object, name: str) -> int:
    """A positive integer image side no larger than :data:`MAX_IMAGE_SIZE` pixels."""
    number = check_positive_int(value, name)
    if number > MAX_IMAGE_SIZE:
        raise ValueError(f"{name}: expected at most {MAX_IMAGE_SIZE} px, got {value}")
    return number


def check_coefficients(x: Tensor, name: str, size: int) -> Tensor:
    """A ``(B, size)`` finite floating tensor of model coefficients."""
    check_shape(x, name, (None, size))
    check_floating(x, name)
    return check_finite(x, name)
