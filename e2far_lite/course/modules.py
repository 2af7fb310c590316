"""Checks shared by the networks a student builds: construct the student's ``nn.Module``, load
the package's weights into it strictly, and compare the outputs.

A student's module matches the package's when it holds the same parameters and buffers under the
same names with the same shapes; then the package's trained weights load into it with
``load_state_dict(strict=True)`` and the two must compute the same thing. When the names differ,
the check lists the missing and the unexpected ones instead of PyTorch's traceback.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .checks import CheckFailed, call

#: how many names a message lists before it says "and N more"
_LISTED = 6


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:_LISTED])
    return shown + (f" and {len(names) - _LISTED} more" if len(names) > _LISTED else "")


def build(cls: Any, what: str, *args: Any, **kwargs: Any) -> nn.Module:
    """``cls(*args, **kwargs)``, which must be an ``nn.Module`` (an error inside the student's
    ``__init__`` is reported as a :class:`CheckFailed` naming ``what``)."""
    if not isinstance(cls, type):
        raise CheckFailed(f"{what}: expected a class (an nn.Module subclass), got {cls!r}: "
                          "define it first")
    module = call(cls, what, *args, **kwargs)
    if not isinstance(module, nn.Module):
        raise CheckFailed(f"{what}: expected an nn.Module, got {type(module).__name__} "
                          "(does the class derive from nn.Module?)")
    if "_parameters" not in module.__dict__:
        raise CheckFailed(f"{what}: nn.Module.__init__ did not run; call super().__init__() "
                          "first thing in __init__")
    return module


def load_reference(module: nn.Module, reference: nn.Module, what: str) -> None:
    """Load ``reference``'s state dict into the student's ``module`` with ``strict=True``.

    Raises:
        CheckFailed: the module holds no parameters at all (its ``__init__`` is not written
            yet), or names are missing or unexpected (listed), or a shape differs (named).
    """
    expected = reference.state_dict()
    got = module.state_dict()
    if not got and next(module.parameters(), None) is None:
        raise CheckFailed(f"{what}: the module has no parameters: its __init__ is not written "
                          "yet (build the layers there and run the cell again)")
    missing = [name for name in expected if name not in got]
    unexpected = [name for name in got if name not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} ({_names(missing)})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} ({_names(unexpected)})")
        parameters = {name for name, _ in module.named_parameters()}
        if unexpected and not missing and not parameters & set(unexpected):
            # only extra buffers: the names are right, these should not be saved at all
            raise CheckFailed(f"{what}: the package's weights do not fit: "
                              f"{'; '.join(parts)}: buffers that your state_dict saves and the "
                              "package's does not (print(module.state_dict().keys()) shows "
                              "yours)")
        raise CheckFailed(f"{what}: the package's weights do not fit, the parameter names "
                          f"differ: {'; '.join(parts)}. Name the layers as the package does "
                          "(print(module.state_dict().keys()) shows yours)")
    for name, tensor in expected.items():
        if tuple(got[name].shape) != tuple(tensor.shape):
            raise CheckFailed(f"{what}: {name} has shape {tuple(got[name].shape)}, the "
                              f"package's has {tuple(tensor.shape)}")
    try:
        module.load_state_dict(expected, strict=True)
    except RuntimeError as err:  # names and shapes fit: what is left is unusual, say it
        raise CheckFailed(f"{what}: load_state_dict(strict=True) failed: {err}") from None


def built_like(cls: Any, reference: nn.Module, what: str, *args: Any,
               **kwargs: Any) -> nn.Module:
    """The student's ``cls(*args, **kwargs)`` with ``reference``'s weights, in eval mode."""
    module = build(cls, what, *args, **kwargs)
    load_reference(module, reference, what)
    return module.to(next(reference.parameters()).device).eval()


__all__ = ["build", "built_like", "load_reference"]
