"""The command line's --help: each command listed once, every option explained, defaults shown."""

from __future__ import annotations

import argparse
import re

import pytest

from e2far_lite.cli import build_parser, main

COMMANDS = ("render", "benchmark", "train", "evaluate", "reconstruct", "landmarks-nme")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_top_level_help_lists_each_command_once(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for name in COMMANDS:
        assert len(re.findall(rf"^\s+{re.escape(name)}\b", text, re.M)) == 1, name
    assert "{render," not in text  # no second, comma-joined listing


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_is_explained_with_its_default(name):
    sub = _subparsers(build_parser())[name]
    text = sub.format_help()
    for action in sub._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"{name} {action.option_strings or action.dest}: no help"
        shown = any(action.default is v for v in (None, False)) or action.required
        if not shown and action.option_strings:
            assert "default" in sub._get_formatter()._get_help_string(action) or \
                "default" in action.help, f"{name} {action.option_strings}: default not shown"
    assert "(default: None)" not in text and "(default: False)" not in text


def test_render_seed_help_and_default(capsys):
    with pytest.raises(SystemExit):
        main(["render", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--seed SEED seed of the sampled faces" in text and "(default: 0)" in text


def test_train_help_names_every_preset():
    from e2far_lite.train.configs import PRESETS

    text = " ".join(_subparsers(build_parser())["train"].format_help().split())
    text = re.sub(r"(\w)- (\w)", r"\1-\2", text)  # argparse may wrap a line after a hyphen
    for name in PRESETS:
        assert re.search(rf"\b{re.escape(name)}\b[,)( ]", text), name
