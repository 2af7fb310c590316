"""Colab links and install cells name the repository that pyproject.toml names, and each
notebook's link opens that notebook itself (the student versions their own files)."""

from __future__ import annotations

import re

import pytest

from e2far_lite.paths import REPO_ROOT

ROOT = REPO_ROOT
# [project.urls] Repository = "..." (read with a pattern: tomllib needs Python 3.11)
REPOSITORY = re.search(r'^Repository = "([^"]+)"', (ROOT / "pyproject.toml").read_text(),
                       re.MULTILINE).group(1)
OWNER_NAME = REPOSITORY.removeprefix("https://github.com/")
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted(
    (ROOT / "notebooks" / "student").glob("*.ipynb"))
COLAB = re.compile(r"colab\.research\.google\.com/github/([^/]+/[^/]+)/blob/main/([^)\s\"]+)")


def test_repository_url_is_a_github_repository():
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", REPOSITORY)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[str(p.relative_to(ROOT)) for p in NOTEBOOKS])
def test_notebook_links_and_install_cell_name_the_repository(path):
    text = path.read_text()
    links = COLAB.findall(text)
    assert links, "no Colab link"
    for repo, target in links:
        assert repo == OWNER_NAME
        assert target == str(path.relative_to(ROOT)), "the link must open this notebook"
    clones = re.findall(r"git clone[^\n\"]*?(https://\S+?)(?:\.git)?[ \"\\]", text)
    assert clones and all(url == REPOSITORY for url in clones), clones


def test_readme_links_name_the_repository_and_existing_notebooks():
    readme = (ROOT / "README.md").read_text()
    links = COLAB.findall(readme)
    assert links
    for repo, target in links:
        assert repo == OWNER_NAME
        assert (ROOT / target).is_file(), target
