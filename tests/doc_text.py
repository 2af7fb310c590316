"""Prose as the tests read it: whitespace made single spaces, since prose wraps anywhere."""

import nbformat

from e2far_lite.paths import REPO_ROOT


def flat(text: str) -> str:
    """``text`` with every run of whitespace made one space."""
    return " ".join(text.split())


def doc_page(name: str) -> str:
    """A page of ``docs/``, flattened."""
    return flat((REPO_ROOT / "docs" / name).read_text())


def notebook_prose(stem: str) -> str:
    """The markdown cells of the teacher notebook ``notebooks/{stem}.ipynb``, flattened."""
    notebook = nbformat.read(REPO_ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)
    return flat("\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown"))
