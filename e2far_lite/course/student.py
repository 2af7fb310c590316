"""Student versions of the notebooks, made from the teacher versions by ``otter assign``.

The teacher versions (``notebooks/NN_*.ipynb``) hold the solutions between otter-grader's
markers (a raw cell ``# BEGIN QUESTION`` with ``name:``, a raw cell ``# BEGIN SOLUTION`` before
the cells to stub, and ``# BEGIN SOLUTION`` / ``# END SOLUTION`` comment lines inside them
around the lines a student writes). ``otter assign`` replaces each marked region with ``...``;
the student then fills it in. The check cells that follow each question are ordinary code cells
calling :mod:`e2far_lite.course.checks`: they run the student's code on fresh random inputs
against the package's reference and stay in both versions. (Otter's own ``grader.check`` reads
its tests from the notebook file, which Colab does not have on disk, and would make otter a
dependency of every student's install; so it is not used.)

Run from the repository root (needs ``pip install otter-grader``, which the ``teacher`` extra
brings)::

    python -m e2far_lite.course.student            # writes notebooks/student/*.ipynb

``tests/course/test_student.py`` checks that the committed student versions are what this
makes, that each stops at its first check with a helpful message, and that the teacher versions
pass every check.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from ..io.atomic import atomic_write

#: otter's assignment configuration, the same for every notebook: no grading files, no PDFs,
#: no otter cells in the student version (its checks are ordinary cells; see the module doc)
ASSIGNMENT_CONFIG = """# ASSIGNMENT CONFIG
init_cell: false
check_all_cell: false
export_cell: false
run_tests: false
generate: false
solutions_pdf: false
template_pdf: false
tests:
  files: false
"""

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
STUDENT = NOTEBOOKS / "student"
#: what replaces a teacher notebook's own path in its links and badges
TEACHER_PATH = "notebooks/{name}"
STUDENT_PATH = "notebooks/student/{name}"


def has_questions(notebook: nbformat.NotebookNode) -> bool:
    """True when the notebook marks at least one question for ``otter assign``."""
    return any(c.cell_type == "raw" and c.source.lstrip().startswith("# BEGIN QUESTION")
               for c in notebook.cells)


def _otter_cells_removed(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop the empty ``<!-- BEGIN/END QUESTION -->`` markdown cells otter leaves for its PDF
    export (none is made here) and the otter metadata of a notebook without otter tests."""
    notebook.cells = [c for c in notebook.cells
                      if not (c.cell_type == "markdown" and c.source.strip() in (
                          "<!-- BEGIN QUESTION -->", "<!-- END QUESTION -->"))]
    notebook.metadata.pop("otter", None)
    return notebook


def student_version(teacher: Path, workdir: Path) -> nbformat.NotebookNode:
    """The student version of ``teacher`` (a notebook path), made by ``otter assign`` in
    ``workdir``: solutions replaced by ``...``, everything else as it is."""
    source = nbformat.read(teacher, as_version=4)
    if not has_questions(source):
        raise ValueError(f"teacher: expected a notebook with otter questions, got "
                         f"{teacher.name!r} without any '# BEGIN QUESTION' cell")
    source.cells.insert(0, nbformat.v4.new_raw_cell(ASSIGNMENT_CONFIG))
    master = workdir / teacher.name
    nbformat.write(source, master)
    dist = workdir / "dist"
    done = subprocess.run([sys.executable, "-m", "otter", "assign", master.name, "dist"],
                          cwd=workdir, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"otter assign failed on {teacher.name}:\n{done.stderr[-3000:]}")
    student = nbformat.read(dist / "student" / teacher.name, as_version=4)
    student = _otter_cells_removed(student)
    for cell in student.cells:
        cell.source = cell.source.replace(TEACHER_PATH.format(name=teacher.name),
                                          STUDENT_PATH.format(name=teacher.name))
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.validator.normalize(student)
    return student


def write_student_versions(teachers: list[Path] | None = None, out: Path = STUDENT) -> list[Path]:
    """Write the student version of each teacher notebook with questions into ``out``.

    Args:
        teachers: notebook paths (default: every ``notebooks/NN_*.ipynb`` with questions).
        out: the folder written (created).

    Returns:
        the paths written.
    """
    if teachers is None:
        teachers = [p for p in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
                    if has_questions(nbformat.read(p, as_version=4))]
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for teacher in teachers:
        with tempfile.TemporaryDirectory() as work:
            student = student_version(teacher, Path(work))
        path = out / teacher.name
        with atomic_write(path, "w") as handle:
            nbformat.write(student, handle)
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="teacher notebooks (default: every one with questions)")
    parser.add_argument("--out", type=Path, default=STUDENT,
                        help="where the student versions go (default: notebooks/student)")
    args = parser.parse_args()
    for path in write_student_versions(args.notebooks or None, args.out):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
