"""The errors for a value the caller passed and the package refused.

Every refusal names the argument, what was expected and what came
(``"name: expected X, got Y"``, like :mod:`e2far_lite.checks`); a :class:`BadInput` also
carries the three parts, so that a caller can say it in its own words without reading the
text. The command line looks ``argument`` up in a table of its flags and prints
``--init: expected ..., got ...``::

    try:
        train(config, out, resume="runs/a/last.pt")
    except BadInput as err:          # err.argument == "resume"
        print(f"--resume: expected {err.expected}, got {err.received}")

Each is a ``ValueError`` (a missing file is a ``FileNotFoundError`` too), so code that catches
those keeps working. This module imports nothing from the package (stage 0).
"""

from __future__ import annotations


class BadInput(ValueError):
    """A value refused at a public entry point.

    Attributes:
        argument: the refused parameter's name in the function that refused it (``"path"``,
            ``"photo"``, ``"init"``, ``"boxes[0]"``, ...): what a caller maps to its own name
            for the value, e.g. a command-line flag.
        expected: what would have been taken, e.g. ``"an e2far-lite checkpoint"``.
        received: what came, e.g. ``"'notes.txt', refused: an empty file"``.

    The message is ``f"{argument}: expected {expected}, got {received}"`` unless ``message``
    is given: the few refusals whose text names something else first (a photo's file name, a
    config difference) keep their own wording, and say the same thing.
    """

    def __init__(self, argument: str, expected: str, received: str,
                 message: str | None = None) -> None:
        super().__init__(message or f"{argument}: expected {expected}, got {received}")
        self.argument = argument
        self.expected = expected
        self.received = received

    def renamed(self, argument: str) -> BadInput:
        """The same refusal under the name a caller gave the value (``train``'s ``resume`` for
        the ``path`` of :func:`~e2far_lite.train.read_checkpoint`), in the standard form."""
        return type(self)(argument, self.expected, self.received)

    def __reduce__(self):  # picklable (across processes) despite the four-argument constructor
        return type(self), (self.argument, self.expected, self.received, str(self))


class MissingFile(BadInput, FileNotFoundError):
    """A path that names no file (also a ``FileNotFoundError``, as ``open`` would raise)."""


class NoFaceFound(BadInput):
    """The detector found no face in a photo given without face boxes: told apart from other
    refusals because the remedy differs (pass the box by hand)."""


__all__ = ["BadInput", "MissingFile", "NoFaceFound"]
