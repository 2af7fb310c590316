"""The course's checks for the code a student writes, and the student versions' maker.

One module per piece the notebooks build (:mod:`.morphable_model` for notebook 01, ...), each
holding ``check_*`` functions built on :mod:`.checks`; :mod:`.student` makes the student versions
of the notebooks with ``otter assign``. Notebooks import the checks they need from the module,
e.g. ``from e2far_lite.course.morphable_model import check_faces``.
"""

from .checks import CheckFailed

__all__ = ["CheckFailed"]
