"""Notebook 08 measures on a development set of annotated faces when ``E2FAR_DEV_FACES`` names
one (here the course's shared set, where it exists), in smoke mode."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from e2far_lite.paths import shared_dir

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "08_real_photos.ipynb"
DEV_XML = shared_dir() / "data" / "real_faces_dev" / "faces_with_landmarks.xml"


@pytest.mark.slow
@pytest.mark.skipif(not DEV_XML.is_file(),
                    reason="no development set of annotated faces beside the repository "
                           "(any dlib XML or iBUG .pts set: set E2FAR_DEV_FACES to measure)")
def test_notebook_08_measures_on_the_dev_set(monkeypatch):
    monkeypatch.setenv("E2FAR_SMOKE", "1")
    monkeypatch.setenv("E2FAR_DEV_FACES", str(DEV_XML))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert not [o for c in code for o in c.outputs if o.get("output_type") == "error"]
    measured = next(c for c in code if "dev_annotations()" in c.source)
    text = "".join(o.get("text", "") for o in measured.outputs)
    assert "No development set" not in text
    assert "18 faces" in text and "crops from the detected boxes" in text
    assert "oracle" in text
