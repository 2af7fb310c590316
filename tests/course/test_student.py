"""Student versions: made from the teacher notebooks by ``otter assign``, committed current, each
stopping at its first unwritten piece with a check that says what is missing."""

from __future__ import annotations

import json

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from e2far_lite.course.student import STUDENT, has_questions, student_version
from e2far_lite.paths import REPO_ROOT

ROOT = REPO_ROOT
TEACHERS = [p for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
            if has_questions(nbformat.read(p, as_version=4))]
IDS = [p.stem for p in TEACHERS]
# the notebooks in which the student writes a piece of the pipeline
BUILDS = {"00_overview_and_setup", "01_morphable_model", "02_rendering_and_data", "03_backbone",
          "04_fusion_cnn", "05_multitask_loss_and_training", "06_evaluation_and_ablation",
          "07_which_layers_drive_expression", "08_real_photos"}


def test_the_notebooks_that_build_have_questions_and_student_versions():
    assert BUILDS <= set(IDS)
    assert sorted(p.name for p in STUDENT.glob("*.ipynb")) == sorted(p.name for p in TEACHERS)


@pytest.mark.parametrize("path", TEACHERS, ids=IDS)
def test_each_question_is_followed_by_its_check(path):
    cells = nbformat.read(path, as_version=4).cells
    ends = [i for i, c in enumerate(cells)
            if c.cell_type == "raw" and c.source.strip() == "# END QUESTION"]
    assert ends
    for i in ends:
        after = cells[i + 1]
        assert after.cell_type == "code" and "check_" in after.source, cells[i - 1].source[:200]
    for cell in cells:
        if cell.cell_type == "code" and "# BEGIN SOLUTION" in cell.source:
            assert "# YOUR CODE HERE" in cell.source, cell.source[:200]


@pytest.mark.parametrize("path", TEACHERS, ids=IDS)
def test_student_version_is_committed_clean_and_has_no_solutions(path):
    student = STUDENT / path.name
    nb = json.loads(student.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)
    text = student.read_text()
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    assert f"notebooks/student/{path.name}" in "".join(nb["cells"][0]["source"])


@pytest.mark.slow
@pytest.mark.parametrize("path", TEACHERS, ids=IDS)
def test_committed_student_version_is_what_otter_assign_makes(path, tmp_path):
    made = student_version(path, tmp_path)
    committed = nbformat.read(STUDENT / path.name, as_version=4)
    assert [(c.cell_type, c.source) for c in committed.cells] == \
        [(c.cell_type, c.source) for c in made.cells], \
        "run python -m e2far_lite.course.student and commit notebooks/student/"


@pytest.mark.slow
@pytest.mark.parametrize("path", TEACHERS, ids=IDS)
def test_student_version_stops_at_its_first_check_with_a_helpful_message(path, monkeypatch):
    monkeypatch.setenv("E2FAR_SMOKE", "1")
    student = STUDENT / path.name
    nb = nbformat.read(student, as_version=4)
    client = NotebookClient(nb, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(student.parent)}})
    with pytest.raises(CellExecutionError) as failed:
        client.execute()
    assert failed.value.ename == "CheckFailed", str(failed.value)[-2000:]
    assert "not written yet" in failed.value.evalue
    stopped = next(c for c in nb.cells if c.cell_type == "code"
                   and any(o.get("output_type") == "error" for o in c.get("outputs", [])))
    assert "check_" in stopped.source  # the stub ran; the check after it said what is missing
