"""Every file the package writes goes through io/: atomic, and JSON strict.

Read with :mod:`ast`: outside ``e2far_lite/io/``, a call that writes a file (``open`` in a write
mode, ``Path.write_text``/``write_bytes``, ``json.dump``, ``torch.save``, ``np.save*``,
``savefig``) must sit inside a ``with atomic_write(...)`` block, and JSON is written only by
:func:`e2far_lite.io.write_json` (``json.dump`` is refused everywhere else). A ``savefig`` into
an in-memory buffer (``io.BytesIO``) writes no file and is allowed, as is a call of io's own
``write_text``/``write_json``/``write_figure``.
"""

from __future__ import annotations

import ast

import pytest

from e2far_lite.paths import REPO_ROOT

PACKAGE_DIR = REPO_ROOT / "e2far_lite"
IO_DIR = PACKAGE_DIR / "io"
WRITERS = {"write_text", "write_bytes", "savefig", "save", "savez", "savez_compressed",
           "tofile", "dump"}


def _name(node: ast.AST) -> str:
    """``json.dump`` -> "json.dump", ``fig.savefig`` -> "fig.savefig", ``open`` -> "open"."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    return "?"


def _write_mode(call: ast.Call) -> bool:
    modes = [a for a in call.args[1:2]] + [k.value for k in call.keywords if k.arg == "mode"]
    return any(isinstance(m, ast.Constant) and isinstance(m.value, str)
               and set(m.value) & set("wax+") for m in modes)


def unguarded_writes(source: str) -> list[tuple[int, str]]:
    """(line, call) of every file write in ``source`` that does not go through io/."""
    tree = ast.parse(source)
    buffers = {t.id for node in ast.walk(tree) if isinstance(node, ast.Assign)
               and isinstance(node.value, ast.Call) and _name(node.value.func).endswith("BytesIO")
               for t in node.targets if isinstance(t, ast.Name)}
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.With) and any(
                isinstance(item.context_expr, ast.Call)
                and _name(item.context_expr.func).endswith("atomic_write") for item in node.items):
            guarded |= {id(n) for n in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        last = name.rpartition(".")[2]
        if name == "json.dump":
            found.append((node.lineno, node.col_offset, name))  # JSON only through write_json
        elif name == "open" and _write_mode(node) and id(node) not in guarded:
            found.append((node.lineno, node.col_offset, name))
        elif (isinstance(node.func, ast.Attribute) and last in WRITERS
              and id(node) not in guarded):  # io's own write_text(...) is a plain name
            target = node.args[0] if node.args else None
            if isinstance(target, ast.Name) and target.id in buffers:
                continue  # into memory, not a file
            if last == "dump" and not name.startswith(("pickle.", "torch.")):
                continue
            found.append((node.lineno, node.col_offset, name))
    return [(line, name) for line, _, name in sorted(found)]


@pytest.mark.parametrize("path", sorted(p for p in PACKAGE_DIR.rglob("*.py")
                                        if IO_DIR not in p.parents),
                         ids=lambda p: str(p.relative_to(PACKAGE_DIR)))
def test_module_writes_files_only_through_io(path):
    found = unguarded_writes(path.read_text())
    assert not found, (f"{path.relative_to(PACKAGE_DIR.parent)} writes files outside io/ at "
                       f"{found}: use io.write_json, io.write_text, io.write_figure or "
                       f"`with io.atomic_write(path) as handle:`")


def test_the_check_sees_each_kind_of_write():
    source = '''
import json, io
def f(path, fig, payload):
    path.write_text("x")
    json.dump(payload, open(path, "w"))
    fig.savefig(path)
    buffer = io.BytesIO()
    fig.savefig(buffer)
    with atomic_write(path) as handle:
        torch.save(payload, handle)
    torch.save(payload, path)
'''
    assert [name for _, name in unguarded_writes(source)] == [
        "path.write_text", "json.dump", "open", "fig.savefig", "torch.save"]
