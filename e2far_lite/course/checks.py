"""Checks for the code a student writes in the notebooks: run it on fresh random inputs, compare
it with the package's reference, and say what is wrong without giving the answer.

Every check has the same shape::

    check_xxx(student_function_or_module)   # prints "✓ ..." or raises CheckFailed

A :class:`CheckFailed` message names the piece, what was expected and what came back: a missing
implementation (``...`` returns ``None``), a wrong type, shape or dtype, or the first element
that differs, with its index and both values. It never prints the reference's code. Inputs are
drawn afresh on every call (a new seed each time), so a stored number cannot pass.

The teacher version of a notebook runs every check on the solution; the student version (made by
:mod:`e2far_lite.course.student`) stops at the first check whose piece is not written yet.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from types import CodeType
from typing import Any

import torch
from torch import Tensor


class CheckFailed(AssertionError):
    """A student's piece does not match the reference; the message says how."""


def fresh_generator() -> torch.Generator:
    """A generator seeded from the system's randomness: new inputs on every check."""
    return torch.Generator().manual_seed(random.SystemRandom().randrange(2**31))


def passed(what: str) -> None:
    """Print the success line every check ends with."""
    print(f"✓ {what}")


def not_written(value: Any, what: str) -> None:
    """Refuse the ``...`` (Ellipsis) or ``None`` an unwritten stub returns."""
    if value is None or value is Ellipsis:
        raise CheckFailed(f"{what}: got {value!r}: the cell's code is not written yet "
                          "(replace the ... with your code and run the cell again)")


def compare(got: Any, expected: Tensor, what: str, atol: float = 1e-4,
            rtol: float = 1e-4) -> None:
    """Raise :class:`CheckFailed` unless ``got`` is a tensor like ``expected`` within tolerance.

    The message names the first difference: the type, the shape, the dtype, a NaN, or the first
    element out of tolerance (its index and both values), and the largest difference.

    Args:
        got: what the student's code returned.
        expected: the reference's result.
        what: the piece being checked, e.g. ``"faces(a_id, a_exp)"``; it starts the message.
        atol, rtol: as in :func:`torch.allclose`, in the tensor's units.
    """
    not_written(got, what)
    if not isinstance(got, Tensor):
        raise CheckFailed(f"{what}: expected a torch.Tensor, got {type(got).__name__}")
    if tuple(got.shape) != tuple(expected.shape):
        raise CheckFailed(f"{what}: expected shape {tuple(expected.shape)}, got "
                          f"{tuple(got.shape)}")
    if got.dtype != expected.dtype and not (got.is_floating_point()
                                            and expected.is_floating_point()):
        raise CheckFailed(f"{what}: expected dtype {expected.dtype}, got {got.dtype}")
    got = got.detach().to("cpu", expected.dtype)
    expected = expected.detach().cpu()
    if got.is_floating_point() and bool(torch.isnan(got).any()) and not bool(
            torch.isnan(expected).any()):
        first = tuple(int(i) for i in torch.nonzero(torch.isnan(got))[0])
        raise CheckFailed(f"{what}: NaN at index {first}")
    if got.is_floating_point():
        bad = (got - expected).abs() > atol + rtol * expected.abs()
    else:
        bad = got != expected
    if bool(bad.any()):
        first = tuple(int(i) for i in torch.nonzero(bad)[0])
        worst = float((got.double() - expected.double()).abs().max())
        raise CheckFailed(
            f"{what}: {int(bad.sum())} of {bad.numel()} elements differ; the first at index "
            f"{first}: got {float(got[first]):.6g}, expected {float(expected[first]):.6g} "
            f"(largest difference {worst:.3g}, tolerance {atol:g} + {rtol:g}·|expected|)")


def as_count(got: Any, what: str) -> int:
    """``got`` as an int count: a Python int or a one-element integer tensor; anything else (a
    float, a bool, an unwritten stub's ``None``) raises :class:`CheckFailed`."""
    not_written(got, what)
    if isinstance(got, Tensor) and got.numel() == 1 and not got.is_floating_point():
        got = int(got.item())
    if isinstance(got, bool) or not isinstance(got, int):
        raise CheckFailed(f"{what}: expected an int (a count), got {type(got).__name__} {got!r}")
    return got


def _names_used(code: CodeType) -> set[str]:
    """Every global, attribute and enclosing-scope name a code object uses, its nested
    functions' included."""
    names = set(code.co_names) | set(code.co_freevars)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            names |= _names_used(const)
    return names


def refuse_reference(function: Any, names: tuple[str, ...], what: str) -> None:
    """Refuse a student's function that calls the package's reference (one of ``names``)
    instead of computing the piece: it would pass by echoing what it is compared with."""
    code = getattr(function, "__code__", None)
    if code is None:
        return  # not a plain Python function: call() will say what it is
    used = sorted(_names_used(code) & set(names))
    if used:
        raise CheckFailed(f"{what}: your function calls the package's `{used[0]}`, the very "
                          "function the check compares it with: write the computation "
                          "yourself (after the check, the notebook uses the package's version)")


def call(function: Callable[..., Any], what: str, *args: Any, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)``, with an error inside it reported as the student's."""
    if function is None or function is Ellipsis or not callable(function):
        raise CheckFailed(f"{what}: expected a function, got {function!r}: define it first")
    try:
        return function(*args, **kwargs)
    except CheckFailed:
        raise
    except NotImplementedError:
        raise CheckFailed(f"{what}: not written yet (it raised NotImplementedError)") from None
    except Exception as err:  # the student's code failed: say where, not how to fix it
        raise CheckFailed(f"{what}: raised {type(err).__name__}: {err}") from err


__all__ = ["CheckFailed", "as_count", "call", "compare", "fresh_generator", "not_written", "passed",
           "refuse_reference"]
