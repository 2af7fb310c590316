"""Read the pickled face models the field ships (FLAME, 3DDFA-V2) without running their code.

A pickle is a program: loading one calls whatever functions it names. ``pickle.load`` on a file
from the internet can therefore run ``os.system``. This module follows the "restricting globals"
recipe of the Python documentation: :class:`RestrictedUnpickler` resolves only the few names a
numerical model needs (numpy arrays and dtypes, scipy sparse matrices, chumpy arrays) and refuses
every other one with :class:`RefusedGlobal`, before anything is called.

chumpy (the autodiff library FLAME's ``generic_model.pkl`` was written with) is not needed: its
``chumpy.ch.Ch`` objects come back as :class:`ChumpyArray`, which keeps the array state ``x``.
Python 2 pickles are read with ``encoding="latin1"``, the encoding numpy documents for them.

Examples:
    >>> import io, pickle, numpy as np
    >>> load(io.BytesIO(pickle.dumps({"v": np.zeros(2)}, protocol=2)))["v"]
    array([0., 0.])
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

__all__ = ["ChumpyArray", "RefusedGlobal", "RestrictedUnpickler", "load"]


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a function or class outside the allow-list; nothing was called."""


class ChumpyArray:
    """Stand-in for ``chumpy.ch.Ch``: keeps the pickled state, exposes the array ``x``.

    ``np.asarray(obj)`` gives the array, as ``obj.r`` would with chumpy installed.
    """

    state: dict[str, Any]  # set by __setstate__; pickle builds the object without __init__

    def __setstate__(self, state: Any) -> None:
        # chumpy pickles its __dict__; a (dict, slots) pair is the other form pickle allows
        if isinstance(state, tuple) and len(state) == 2:
            state = {**(state[0] or {}), **(state[1] or {})}
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(
                f"chumpy.ch.Ch: expected a dict state, got {type(state).__name__}")
        self.state = state

    @property
    def x(self) -> np.ndarray:
        state = getattr(self, "state", {})
        if "x" not in state:
            raise ValueError(f"chumpy.ch.Ch: expected an array state 'x', got keys "
                             f"{sorted(state)}")
        return np.asarray(state["x"])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        x = self.x
        return x if dtype is None else x.astype(dtype)

    def __repr__(self) -> str:
        return f"ChumpyArray(shape={self.x.shape})" if hasattr(self, "state") else "ChumpyArray()"


def _encode_latin1(text: str, encoding: str = "latin1", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as Python 3 writes bytes into protocol-2 pickles, latin-1 only."""
    if encoding.lower().replace("-", "").replace("_", "") not in ("latin1", "iso88591"):
        raise RefusedGlobal(f"_codecs.encode: refused encoding {encoding!r} (only latin1)")
    return text.encode("latin1", errors)


def _sparse(name: str) -> Callable[[], type]:
    def get() -> type:
        import scipy.sparse  # only when a pickle holds sparse matrices (FLAME's J_regressor)

        return getattr(scipy.sparse, name)

    return get


_ALLOWED_STANDINS: tuple[type, ...] = (ChumpyArray,)


def _reconstructor(cls: type, base: type, state: Any) -> Any:
    """``copy_reg._reconstructor`` (protocols 0 and 1) for allowed classes and ``object`` only."""
    if base is not object or not (cls in _ALLOWED_STANDINS or _is_sparse_class(cls)):
        raise RefusedGlobal(f"copy_reg._reconstructor: refused to build {cls!r} from {base!r}")
    return object.__new__(cls)


def _is_sparse_class(cls: object) -> bool:
    return isinstance(cls, type) and cls.__module__.startswith("scipy.sparse")


_RECONSTRUCT = np.array(0).__reduce__()[0]  # numpy's _reconstruct, wherever numpy keeps it
_SCALAR = np.float64(0).__reduce__()[0]  # numpy's scalar(dtype, bytes)


def _numpy_globals() -> dict[tuple[str, str], Callable[[], Any]]:
    table: dict[tuple[str, str], Callable[[], Any]] = {}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        table[(module, "_reconstruct")] = lambda: _RECONSTRUCT
        table[(module, "scalar")] = lambda: _SCALAR
    for module in ("numpy", "numpy.core.multiarray", "numpy._core.multiarray"):
        table[(module, "ndarray")] = lambda: np.ndarray
        table[(module, "dtype")] = lambda: np.dtype
    return table


def _sparse_globals() -> dict[tuple[str, str], Callable[[], Any]]:
    table: dict[tuple[str, str], Callable[[], Any]] = {}
    for fmt in ("csc", "csr"):
        # scipy moved the classes: scipy.sparse.csc (Python 2 era) -> scipy.sparse._csc
        for module in ("scipy.sparse", f"scipy.sparse.{fmt}", f"scipy.sparse._{fmt}"):
            table[(module, f"{fmt}_matrix")] = _sparse(f"{fmt}_matrix")
    return table


#: (module, name) as written in the pickle -> what it resolves to. Nothing else resolves.
ALLOWED_GLOBALS: dict[tuple[str, str], Callable[[], Any]] = {
    **_numpy_globals(),
    **_sparse_globals(),
    ("chumpy.ch", "Ch"): lambda: ChumpyArray,
    ("copy_reg", "_reconstructor"): lambda: _reconstructor,
    ("copyreg", "_reconstructor"): lambda: _reconstructor,
    ("__builtin__", "object"): lambda: object,
    ("builtins", "object"): lambda: object,
    # chumpy's pickled state holds a set (_dirty_vars); containers run no code
    ("__builtin__", "set"): lambda: set,
    ("builtins", "set"): lambda: set,
    ("__builtin__", "frozenset"): lambda: frozenset,
    ("builtins", "frozenset"): lambda: frozenset,
    ("_codecs", "encode"): lambda: _encode_latin1,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :data:`ALLOWED_GLOBALS` and refuses the rest."""

    def __init__(self, file: IO[bytes], source: str = "pickle") -> None:
        super().__init__(file, encoding="latin1")
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        resolve = ALLOWED_GLOBALS.get((module, name))
        if resolve is None:
            raise RefusedGlobal(
                f"{self.source}: refused global '{module}.{name}' (not a numpy, scipy.sparse or "
                "chumpy array; a model file has no reason to name it, nothing was run)")
        return resolve()

    def persistent_load(self, pid: Any) -> Any:
        raise RefusedGlobal(f"{self.source}: refused persistent id {pid!r}")


def load(file: str | os.PathLike | IO[bytes]) -> Any:
    """Unpickle a model file (path or binary file object) through :class:`RestrictedUnpickler`.

    Raises:
        FileNotFoundError: the path does not exist.
        RefusedGlobal: the pickle names anything outside the allow-list (nothing is called).
        pickle.UnpicklingError, EOFError, ...: the file is not a (complete) pickle.
    """
    if isinstance(file, (str, os.PathLike)):
        path = Path(file)
        if not path.is_file():
            raise FileNotFoundError(f"path: expected an existing pickle file, got {str(path)!r}")
        with path.open("rb") as handle:
            return RestrictedUnpickler(handle, source=path.name).load()
    return RestrictedUnpickler(file).load()
