"""The package's layering: a module imports only its own stage or lower ones, and only ui/ draws.

Every ``import`` of every module in e2far_lite is read with :mod:`ast` (at the top, inside
functions, under ``if TYPE_CHECKING:``: all of them count, a lazy import still ties the stages
together), relative imports are made absolute, and each module is looked up in ``STAGES``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "e2far_lite"
PACKAGE_DIR = Path(__file__).resolve().parents[1] / PACKAGE

# lower stage first; a new module or subpackage must be added here
STAGES: dict[str, int] = {
    "e2far_lite.checks": 0,
    "e2far_lite.paths": 0,
    "e2far_lite.devices": 0,
    "e2far_lite.errors": 0,
    "e2far_lite.io": 1,
    "e2far_lite.model": 2,
    "e2far_lite.render": 3,
    "e2far_lite.synth": 4,
    "e2far_lite.nets": 5,
    "e2far_lite.train": 6,
    "e2far_lite.evaluate": 7,
    "e2far_lite.analysis": 8,
    "e2far_lite.photo": 9,
    "e2far_lite.studies": 10,
    "e2far_lite.ui": 11,
    "e2far_lite.cli": 12,
    "e2far_lite.course": 12,
    "e2far_lite.__main__": 12,
    "e2far_lite": 12,  # the package's own __init__ (only this exact name, not a prefix)
}

# drawing and widget libraries: only ui/ may import them
GUI_LIBRARIES = frozenset({"matplotlib", "plotly", "ipywidgets", "anywidget"})
GUI_STAGE = "e2far_lite.ui"


def stage_of(module: str) -> int | None:
    """The stage of an e2far_lite module (longest listed prefix), None where it is not listed."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix == PACKAGE and module != PACKAGE:
            return None  # the bare package name covers only __init__ itself
        if prefix in STAGES:
            return STAGES[prefix]
    return None


def module_name(path: Path, root: Path = PACKAGE_DIR) -> str:
    """``e2far_lite/io/atomic.py`` -> ``e2far_lite.io.atomic``; an ``__init__`` is its package."""
    parts = [PACKAGE, *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(
    source: str, module: str, is_package: bool, known: frozenset[str] = frozenset()
) -> list[tuple[int, str]]:
    """(line, absolute module name) for every import in ``source``, however deeply nested.

    ``from . import x`` names the submodule ``x`` where ``known`` holds it, else the package.
    """
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                if node.level - 1 >= len(base):
                    raise ValueError(f"{module}:{node.lineno}: relative import beyond the package")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.append((node.lineno, sub if sub in known else target))
    return found


def violations(sources: dict[str, tuple[str, str, bool]]) -> list[str]:
    """Layering violations in ``{module: (where, source, is_package)}``, one line each."""
    known = frozenset(sources)
    problems: list[str] = []
    for module, (where, source, is_package) in sorted(sources.items()):
        stage = stage_of(module)
        if stage is None:
            problems.append(
                f"{where}: module {module} is not in STAGES (add its stage to the "
                "table in tests/test_layers.py)"
            )
            continue
        for line, target in imported_modules(source, module, is_package, known):
            top = target.split(".")[0]
            if top in GUI_LIBRARIES and not (
                module == GUI_STAGE or module.startswith(GUI_STAGE + ".")
            ):
                problems.append(
                    f"{where}:{line}: {module} -> {target} (only ui/ may import "
                    f"{', '.join(sorted(GUI_LIBRARIES))})"
                )
            if top != PACKAGE:
                continue
            target_stage = stage_of(target)
            if target_stage is None:
                problems.append(f"{where}:{line}: {module} -> {target} (not in STAGES)")
            elif target_stage > stage:
                problems.append(
                    f"{where}:{line}: {module} -> {target} (stage {stage} imports "
                    f"higher stage {target_stage})"
                )
    return problems


def package_sources(root: Path = PACKAGE_DIR) -> dict[str, tuple[str, str, bool]]:
    files = sorted(root.rglob("*.py"))
    assert files, f"no modules found under {root}"
    return {
        module_name(p, root): (
            str(p.relative_to(root.parent)),
            p.read_text("utf-8"),
            p.name == "__init__.py",
        )
        for p in files
    }


def test_no_upward_or_gui_imports():
    problems = violations(package_sources())
    assert not problems, "layering violations:\n" + "\n".join(problems)


def test_every_stage_in_the_table_exists():
    """The table has no stale entries: each name is a module or subpackage on disk."""
    modules = set(package_sources())
    assert set(STAGES) <= modules, sorted(set(STAGES) - modules)


def _fake(module: str, source: str, is_package: bool = False) -> dict[str, tuple]:
    return {module: (module.replace(".", "/") + ".py", source, is_package)}


def test_checker_catches_an_upward_import_even_inside_a_function():
    source = "import torch\n\ndef f():\n    from ..train.loop import train\n    return train\n"
    problems = violations(_fake("e2far_lite.model.fake", source))
    assert len(problems) == 1
    assert "e2far_lite.model.fake -> e2far_lite.train.loop" in problems[0]
    assert "stage 2 imports higher stage 6" in problems[0]
    assert ":4:" in problems[0]


@pytest.mark.parametrize(
    "source",
    [
        "from .. import ui\n",
        "from e2far_lite.ui.plots import image_grid\n",
        "import e2far_lite.photo\n",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..evaluate import scores\n",
        "from e2far_lite import MorphableModel\n",  # the top package is the highest stage
    ],
)
def test_checker_catches_other_spellings(source):
    assert len(violations(_fake("e2far_lite.synth.fake", source))) == 1


def test_checker_allows_same_and_lower_stages():
    source = (
        "from ..checks import check_shape\nfrom . import faces\nfrom .faces import x\n"
        "from ..model.morphable_model import MorphableModel\nimport numpy\n"
    )
    assert violations(_fake("e2far_lite.synth.fake", source)) == []
    # a package's __init__ resolves "." to itself
    assert violations(_fake("e2far_lite.synth", "from .faces import x\n", True)) == []


def test_checker_catches_gui_imports_outside_ui_and_unlisted_modules():
    assert len(violations(_fake("e2far_lite.cli", "import matplotlib.pyplot as plt\n"))) == 1
    assert len(violations(_fake("e2far_lite.photo.x", "from plotly import graph_objects\n"))) == 1
    assert violations(_fake("e2far_lite.ui.x", "import ipywidgets\n")) == []
    assert "not in STAGES" in violations(_fake("e2far_lite.newstage.x", ""))[0]
    assert "not in STAGES" in violations(_fake("e2far_lite.newcore", ""))[0]
