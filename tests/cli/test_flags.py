"""The command line hands each path to the library once and names flags from typed errors.

The library validates what it is given and raises :class:`~e2far_lite.errors.BadInput`
carrying the argument's name, what was expected and what came; the command line looks the
name up in a table of its flags. So: no message text is ever matched in ``cli.py``, a refusal
raised deep in the library reaches the user as ``--flag: expected X, got Y``, and each
checkpoint and photo is read once.
"""

from __future__ import annotations

import argparse
import ast
import os
import pickle
from pathlib import Path

import pytest
import skimage.data
import torch
from PIL import Image

import e2far_lite.cli as cli
from e2far_lite.cli import build_parser, main
from e2far_lite.errors import BadInput, MissingFile, NoFaceFound
from e2far_lite.paths import data_dir
from e2far_lite.train.shipped import SHIPPED_FILE, SMOKE_FILE

SHIPPED = data_dir() / SHIPPED_FILE
SMOKE = data_dir() / SMOKE_FILE
CLI_PY = Path(cli.__file__)


# ------------------------------------------------------------------------------ the errors
def test_bad_input_carries_its_parts_and_reads_like_the_package():
    err = BadInput("path", "an e2far-lite checkpoint", "'notes.txt'")
    assert isinstance(err, ValueError)
    assert str(err) == "path: expected an e2far-lite checkpoint, got 'notes.txt'"
    assert (err.argument, err.expected, err.received) == (
        "path", "an e2far-lite checkpoint", "'notes.txt'")
    renamed = err.renamed("init")
    assert type(renamed) is BadInput and str(renamed).startswith("init: expected an e2far")
    missing = MissingFile("photo", "an existing image file", "'a.jpg'")
    assert isinstance(missing, FileNotFoundError) and isinstance(missing, ValueError)
    assert isinstance(missing.renamed("resume"), MissingFile)
    worded = NoFaceFound("boxes", "face boxes", "none", message="no face found in a.png")
    assert str(worded) == "no face found in a.png" and worded.expected == "face boxes"
    again = pickle.loads(pickle.dumps(worded))  # crosses process boundaries intact
    assert type(again) is NoFaceFound and str(again) == str(worded)
    assert again.argument == "boxes"


# ------------------------------------------------------------------ no message text matched
def _reads_error_text(node: ast.AST, names: set[str]) -> bool:
    """``str(err)``, ``err.args`` or ``repr(err)`` for a caught exception ``err``."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
            node.func.id in ("str", "repr", "format") and node.args and \
            isinstance(node.args[0], ast.Name) and node.args[0].id in names:
        return True
    return (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id in names and node.attr in ("args", "strerror", "msg"))


def text_matching(source: str) -> list[str]:
    """Places where a caught exception's text is inspected (a method called on it, compared,
    searched, indexed) rather than only shown."""
    tree = ast.parse(source)
    caught = {h.name for h in ast.walk(tree) if isinstance(h, ast.ExceptHandler) and h.name}
    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
    found = []
    for node in ast.walk(tree):
        if not _reads_error_text(node, caught):
            continue
        parent = parents.get(node)
        if isinstance(parent, (ast.Attribute, ast.Compare, ast.Subscript)) or (
                isinstance(parent, ast.Call) and isinstance(parent.func, ast.Attribute)):
            found.append(f"line {node.lineno}: {ast.unparse(parent)}")
    return found


def test_the_checker_finds_text_matching():
    bad = ("try:\n    f()\nexcept ValueError as err:\n"
           "    if str(err).startswith('init:'):\n        pass\n"
           "    x = 'resume' in str(err)\n    y = str(err).removeprefix('boxes[0]: ')\n"
           "    z = re.match('path', str(err))\n")
    assert len(text_matching(bad)) == 4
    shown = "try:\n    f()\nexcept ValueError as err:\n    raise SystemExit(str(err))\n"
    assert text_matching(shown) == []


def test_the_cli_never_matches_message_text():
    source = CLI_PY.read_text()
    assert text_matching(source) == []
    for pattern in (".startswith(f\"{flag}", "removeprefix(", "in str(err)"):
        assert pattern not in source, pattern


def test_detectors_are_defined_once():
    tree = ast.parse(CLI_PY.read_text())
    assigned = [t.id for node in ast.walk(tree) if isinstance(node, (ast.Assign, ast.AnnAssign))
                for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
                if isinstance(t, ast.Name)]
    assert "DETECTORS" not in assigned
    from e2far_lite.photo.detect import DETECTORS

    commands = next(a for a in build_parser()._actions
                    if isinstance(a, argparse._SubParsersAction)).choices
    for name in ("reconstruct", "landmarks-nme"):
        detector = next(a for a in commands[name]._actions if a.dest == "detector")
        assert tuple(detector.choices) == ("auto", *DETECTORS), name


# -------------------------------------------------- a deep refusal names the user's flag
def _refuse(argument_of=lambda *args, **kwargs: "path"):
    """A stand-in for a library reader that refuses whatever it is given, deep inside."""
    def refuse(*args, **kwargs):
        raise BadInput(argument_of(*args, **kwargs), "SOMETHING EXPECTED", "SOMETHING ELSE")
    return refuse


def _photo(tmp_path) -> Path:
    path = tmp_path / "astronaut.png"
    Image.fromarray(skimage.data.astronaut()).save(path)
    return path


@pytest.mark.parametrize("flag", ["--init", "--resume"])
def test_a_refused_train_checkpoint_names_its_flag(tmp_path, monkeypatch, flag):
    """read_checkpoint refuses its ``path``; train names it ``init`` or ``resume``; the
    command line, the flag."""
    import e2far_lite.train.loop as loop

    monkeypatch.setattr(loop, "read_checkpoint", _refuse())
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--config", "smoke", "--out", str(tmp_path / "run"), "--quiet",
              flag, str(SMOKE)])
    assert str(exit_.value) == f"{flag}: expected SOMETHING EXPECTED, got SOMETHING ELSE"
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", ["evaluate", "reconstruct", "landmarks-nme"])
def test_a_refused_checkpoint_names_checkpoint(tmp_path, monkeypatch, command):
    import e2far_lite.train.checkpoint as checkpoint

    monkeypatch.setattr(checkpoint, "read_checkpoint", _refuse())
    argv = {"evaluate": ["evaluate", "--n", "2", "--no-fit"],
            "reconstruct": ["reconstruct", str(_photo(tmp_path)), "-o",
                            str(tmp_path / "face.obj")],
            "landmarks-nme": ["landmarks-nme", str(tmp_path / "faces.xml")]}[command]
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--checkpoint", str(SMOKE)])
    assert str(exit_.value) == "--checkpoint: expected SOMETHING EXPECTED, got SOMETHING ELSE"
    assert not (tmp_path / "face.obj").exists()


def test_a_refused_photo_names_the_photo_argument(tmp_path, monkeypatch):
    from e2far_lite.photo import images

    monkeypatch.setattr(images, "_decode", _refuse(lambda source, name, argument: argument))
    with pytest.raises(SystemExit) as exit_:
        main(["reconstruct", str(_photo(tmp_path)), "-o", str(tmp_path / "face.obj"),
              "--checkpoint", str(SMOKE)])
    assert str(exit_.value) == "photo: expected SOMETHING EXPECTED, got SOMETHING ELSE"
    # and a real one: the file's name and what is wrong with it
    (tmp_path / "notes.png").write_text("my notes")
    monkeypatch.undo()
    with pytest.raises(SystemExit, match=r"^photo: expected an image file Pillow can read "
                                         r"\(JPEG, .*\), got notes.png: not an image file "
                                         r"\(text starting 'my notes'\)$"):
        main(["reconstruct", str(tmp_path / "notes.png"), "-o", str(tmp_path / "face.obj")])
    with pytest.raises(SystemExit, match=r"^photo: expected an existing image file, got "
                                         r"'.*nothing.png'$"):
        main(["reconstruct", str(tmp_path / "nothing.png"), "-o", str(tmp_path / "face.obj")])


def test_a_refusal_of_an_argument_no_flag_gave_is_not_blamed_on_a_flag(tmp_path, monkeypatch):
    import e2far_lite.train.checkpoint as checkpoint

    monkeypatch.setattr(checkpoint, "read_checkpoint", _refuse(lambda *a, **k: "model"))
    with pytest.raises(BadInput, match="^model: expected SOMETHING EXPECTED"):
        main(["evaluate", "--checkpoint", str(SMOKE), "--n", "2", "--no-fit"])


# ------------------------------------------------------------------- each file read once
@pytest.fixture
def reads(monkeypatch):
    """The files ``torch.load`` and ``PIL.Image.open`` were asked to open, in order."""
    opened: list[Path] = []
    real_load, real_open = torch.load, Image.open

    def load(f, *args, **kwargs):
        if isinstance(f, (str, os.PathLike)):
            opened.append(Path(f))
        return real_load(f, *args, **kwargs)

    def open_(fp, *args, **kwargs):
        if isinstance(fp, (str, os.PathLike)):
            opened.append(Path(fp))
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(torch, "load", load)
    monkeypatch.setattr(Image, "open", open_)
    return opened


def test_reconstruct_reads_the_checkpoint_and_the_photo_once(tmp_path, reads, capsys):
    photo = _photo(tmp_path)
    main(["reconstruct", str(photo), "--box", "180", "40", "120", "150", "--checkpoint",
          str(SMOKE), "-o", str(tmp_path / "face.ply"), "--colors",
          "--overlay", str(tmp_path / "overlay.png")])
    assert reads.count(SMOKE) == 1 and reads.count(photo) == 1, reads
    assert (tmp_path / "face.ply").is_file() and (tmp_path / "overlay.png").is_file()


def test_evaluate_reads_its_checkpoint_once(tmp_path, reads, capsys):
    main(["evaluate", "--checkpoint", str(SMOKE), "--n", "2", "--no-fit",
          "--cache-dir", str(tmp_path / "cache")])
    assert reads.count(SMOKE) == 1, reads
    assert f"checkpoint {SMOKE} (step " in capsys.readouterr().out


@pytest.mark.parametrize("flag, message", [
    ("--init", r"^--init: expected the network of this config, got .*e2far_lite.pt'"),
    ("--resume", r"^--resume: expected a training checkpoint \(with optimizer state\), got "
                 r"'e2far_lite.pt', a weights-only file$"),
])
def test_train_reads_init_and_resume_once(tmp_path, reads, flag, message):
    """The shipped file is a readable checkpoint the smoke preset refuses: before, the command
    line read it once to check it and train read it again."""
    with pytest.raises(SystemExit, match=message):
        main(["train", "--config", "smoke", "--out", str(tmp_path / "run"), "--quiet",
              "--cache-dir", str(tmp_path / "cache"), flag, str(SHIPPED)])
    assert reads.count(SHIPPED) == 1, reads
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()
