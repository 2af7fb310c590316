"""The README is a short front door; the pages of docs/ hold the rest, and every link resolves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from e2far_lite.paths import REPO_ROOT

ROOT = REPO_ROOT
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
DOCUMENTS = [README, *PAGES]
IDS = [str(p.relative_to(ROOT)) for p in DOCUMENTS]

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")  # [text](target) and ![alt](target)
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
CODE = re.compile(r"`[^`\n]*`")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.MULTILINE)
# a file of the repository named in code: `tests/test_layers.py`, `experiments/recipe_study.json`
NAMED = re.compile(r"`((?:\.ci|data|e2far_lite|experiments|notebooks|tests)/[\w./-]+)`")


def prose(text: str) -> str:
    """The text without fenced code blocks and inline code, where brackets are not links."""
    return CODE.sub("", FENCE.sub("", text))


def links(path: Path) -> list[str]:
    return LINK.findall(prose(path.read_text()))


def anchors(path: Path) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces
    made hyphens, and -1, -2, ... after a repeated one."""
    seen: dict[str, int] = {}
    for heading in HEADING.findall(prose(path.read_text())):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        if count:
            seen[f"{slug}-{count}"] = 1
    return set(seen)


def test_readme_is_short():
    assert len(README.read_text().split()) < 1500  # words, as `wc -w` counts them


def test_every_docs_page_is_linked_from_the_readme():
    assert PAGES
    linked = {(ROOT / target.split("#")[0]).resolve() for target in links(README)}
    for page in PAGES:
        assert page.resolve() in linked, page.name


def test_readme_keeps_the_test_commands_and_maps_every_subpackage():
    readme = README.read_text()
    assert "\npython -m pytest -q\n" in readme
    assert '\npython -m pytest -q -m "not slow and not browser"\n' in readme
    subpackages = [p.parent.name for p in (ROOT / "e2far_lite").glob("*/__init__.py")]
    assert subpackages
    for name in subpackages:
        assert f"| `{name}` |" in readme, name


@pytest.mark.parametrize("path", DOCUMENTS, ids=IDS)
def test_relative_links_point_to_files_and_headings_that_exist(path):
    for target in links(path):
        if re.match(r"[a-z][a-z+.-]*:", target):  # https:, mailto: ...
            continue
        file, _, anchor = target.partition("#")
        resolved = (path.parent / file).resolve() if file else path
        assert resolved.exists(), f"{path.name}: {target}"
        assert resolved.is_relative_to(ROOT), f"{path.name}: {target} leaves the repository"
        if anchor:
            assert resolved.suffix == ".md", f"{path.name}: {target}"
            assert anchor in anchors(resolved), f"{path.name}: {target}: no such heading"


@pytest.mark.parametrize("path", DOCUMENTS, ids=IDS)
def test_files_named_in_code_exist(path):
    for name in NAMED.findall(path.read_text()):
        if name.startswith("data/cache") or "__pycache__" in name:  # made on first use,
            continue  # ignored by git: not in a fresh clone before anything ran
        assert (ROOT / name).exists(), f"{path.name}: {name}"
