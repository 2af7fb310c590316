"""Every notebook runs top to bottom in a real Jupyter kernel, in smoke mode (E2FAR_SMOKE=1)."""

from __future__ import annotations

import json
import os
import re

import nbformat
import pytest
from nbclient import NotebookClient

from e2far_lite.paths import REPO_ROOT, experiments_dir, shared_dir

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
# the course's development set of annotated real faces, where it lies beside the repository:
# notebook 08 then measures on it (E2FAR_DEV_FACES), and skips that measurement elsewhere
DEV_XML = shared_dir() / "data" / "real_faces_dev" / "faces_with_landmarks.xml"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_smoke_mode(path, monkeypatch):
    monkeypatch.setenv("E2FAR_SMOKE", "1")
    if DEV_XML.is_file():
        monkeypatch.setenv("E2FAR_DEV_FACES", str(DEV_XML))
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    # every notebook has an exercise or a piece the student writes, which a cell checks
    assert any(re.search(r"\bcheck(_\w+)?\(", c.source) for c in nb.cells
               if c.cell_type == "code")
    if path.stem.startswith("05"):  # the student's loop against train()'s recorded figures
        compared = next(c for c in nb.cells if c.cell_type == "code"
                        and "loop_reference.json" in c.source)
        text = "".join(o.get("text", "") for o in compared.outputs)
        assert "moved the landmark NME by" in text and "of it, within 10 %" in text, text
    if path.stem.startswith("09"):  # the longer run beside the line fitted before it ran
        compared = next(c for c in nb.cells if c.cell_type == "code"
                        and "curve_prediction.json" in c.source)
        text = "".join(o.get("text", "") for o in compared.outputs)
        kinds = {o.get("output_type") for o in compared.outputs}
        assert "nme_pct" in text and "(the line said" in text and "display_data" in kinds, text
    if path.stem.startswith("10") and DEV_XML.is_file():  # the real-face measurement
        measured = next(c for c in nb.cells if c.cell_type == "code"
                        and "dev_annotations()" in c.source)
        text = "".join(o.get("text", "") for o in measured.outputs)
        assert "No development set" not in text
        assert "18 faces" in text and "crops from the detected boxes" in text and "oracle" in text


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_clean(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), \
        "strip outputs before committing"
    assert all(c.get("id") for c in nb["cells"]), "every cell needs an id (nbformat 4.5)"
    nbformat.validate(nbformat.reads(path.read_text(), as_version=4))
    first = "".join(nb["cells"][0]["source"])
    assert first.startswith("# ") and "colab.research.google.com" in first
    assert "Run time" in first
    install = "".join(code[0]["source"])
    assert "google.colab" in install and "torch" not in install.replace("torch is kept", "")


def test_notebooks_exist():
    names = [p.stem for p in NOTEBOOKS]
    for prefix in ("00_", "01_", "02_"):
        assert any(n.startswith(prefix) for n in names), prefix
    assert os.environ.get("E2FAR_SMOKE", "0") in ("0", "1", "")


def course_time(seconds: float) -> str:
    """How the README, docs/ and the notebook headers write a measured run time."""
    return f"{seconds:.0f} s" if seconds < 60 else f"{seconds / 60:.1f} min"


def test_readme_and_headers_state_the_measured_course_times():
    # experiments/time_course.py ran every notebook in full on the project's CPU and recorded it
    record = json.loads((experiments_dir() / "course_times.json").read_text())
    assert set(record["notebooks"]) == {p.name for p in NOTEBOOKS}
    assert record["total_minutes"] <= 30  # the whole course in about half an hour on 2 cores
    root = NOTEBOOKS[0].parent.parent
    readme = (root / "README.md").read_text()
    for path in NOTEBOOKS:
        shown = course_time(record["notebooks"][path.name]["seconds"])
        row = next(line for line in readme.splitlines() if f"(notebooks/{path.name})" in line)
        assert f"| {shown} |" in row, path.name
        first = "".join(json.loads(path.read_text())["cells"][0]["source"])
        assert f"**Run time:** {shown} " in first and "2-core" in first, path.name
    # the whole course: in the README's summary and where docs/teaching.md says how it was timed
    for text in (readme, (root / "docs" / "teaching.md").read_text()):
        assert f"{record['total_minutes']} min" in " ".join(text.split())
    # notebook 05's cpu-quick run: its minutes and the validation figures it printed
    training = " ".join((root / "docs" / "training.md").read_text().split())
    quick = record["notebooks"]["05_multitask_loss_and_training.ipynb"]
    assert f"it took **{quick['training_minutes']} min**" in training
    assert f"printed `{quick['training_figures']}`" in training


def test_readme_and_docs_state_what_a_busy_machine_costs():
    # experiments/busy_notebook05.py ran notebook 05 in full beside two busy loops
    record = json.loads((experiments_dir() / "busy_notebook05.json").read_text())
    training, load = record["training"], record["load_average_1min"]
    assert record["busy_loops"] == 2 and training["stopped_by_budget"]
    assert training["seconds"] <= training["budget_s"] + 30  # the budget and one validation
    loads = f"load average {load['min']:.1f}–{load['max']:.1f}"
    steps = f"{training['steps_done']:,} of 3,600 steps"
    cell = f"{training['seconds'] / 60:.1f} min"
    for text in ((REPO_ROOT / "README.md").read_text(),
                 (REPO_ROOT / "docs" / "teaching.md").read_text()):
        text = " ".join(text.split())
        assert loads in text and steps in text and cell in text
        assert f"{record['minutes']} min" in text
