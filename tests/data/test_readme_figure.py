"""data/make_readme_figure.py draws the README's picture from the shipped checkpoint."""

import subprocess
import sys

import pytest
from PIL import Image

from e2far_lite.paths import REPO_ROOT


@pytest.mark.slow
def test_readme_figure(tmp_path):
    out = tmp_path / "figure.png"
    subprocess.run([sys.executable, str(REPO_ROOT / "data" / "make_readme_figure.py"), "--out",
                    str(out)], check=True, cwd=REPO_ROOT, capture_output=True)
    assert out.stat().st_size < 300 * 1024  # small enough for a README
    width, height = Image.open(out).size
    assert width > 800 and height > 250


def test_committed_figure_is_small():
    figure = REPO_ROOT / "data" / "readme_figure.png"
    assert figure.stat().st_size < 300 * 1024
    assert "data/readme_figure.png" in (REPO_ROOT / "README.md").read_text()
