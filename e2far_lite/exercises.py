"""Answer checks for the notebooks' exercises.

Each exercise has a name; :func:`check` compares a student's answer with the value the package
computes (never a hard-coded number), prints a verdict and returns True or False.
"""

from __future__ import annotations

from collections.abc import Callable

from .morphable_model import MorphableModel


def _largest_blendshape() -> str:
    m = MorphableModel.default()
    reach = m.blendshapes.norm(dim=-1).amax(1)
    return m.blendshape_names[int(reach.argmax())]


def _components_for_99() -> int:
    from .ict import load_ict_face_area, orthonormal_basis

    _, _, explained = orthonormal_basis(load_ict_face_area().identity_modes, variance=1.0)
    return int((explained < 0.99).sum()) + 1


def _num_vertices() -> int:
    return MorphableModel.default().num_vertices


def _hidden_share() -> float:
    from .data import SyntheticFaces

    batch = SyntheticFaces(MorphableModel.default(), 64, seed=0).batch(range(64))
    return float(1 - batch["visible"].float().mean())


SOLUTIONS: dict[str, tuple[Callable[[], object], str]] = {
    "00_num_vertices": (_num_vertices, "look at model.num_vertices or model.mean.shape"),
    "01_largest_blendshape": (_largest_blendshape,
                              "take the largest vertex displacement norm of each blend shape"),
    "01_components_for_99": (_components_for_99,
                             "count components until the cumulative variance reaches 0.99"),
    "02_hidden_share": (_hidden_share,
                        "render the 64 samples in one faces.batch(...) call and average "
                        "the 'visible' flags"),
}


def register(name: str, solution: Callable[[], object], hint: str) -> None:
    """Add an exercise (later chapters register theirs)."""
    SOLUTIONS[name] = (solution, hint)


def check(name: str, answer: object, tolerance: float = 1e-6) -> bool:
    """Print whether ``answer`` solves exercise ``name``; ``None`` means not tried yet."""
    if name not in SOLUTIONS:
        raise ValueError(f"name: expected one of {sorted(SOLUTIONS)}, got {name!r}")
    solution, hint = SOLUTIONS[name]
    if answer is None:
        print(f"Not answered yet. Hint: {hint}.")
        return False
    expected = solution()
    if isinstance(expected, float):
        ok = isinstance(answer, (int, float)) and abs(answer - expected) <= tolerance * max(
            1.0, abs(expected))
    else:
        ok = answer == expected
    print("Correct!" if ok else f"Not quite ({answer!r}). Hint: {hint}.")
    return ok
